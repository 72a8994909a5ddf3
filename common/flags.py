"""The flags several `lowbg` commands take, defined once: name, value type (so the range check), default, help.

A command adds them with :func:`add_flag` (``default_note`` and keyword overrides for a command-specific default)
instead of restating them, so ``--target-fpr`` is spelled, checked and explained the same way in ``curate``,
``decide``, ``detect calibrate`` and ``collapse``; the detector model flags (``--observer``, ``--performer``,
``--scoring-model``, ``--reference-model``, ``--lm-model``, ``--fasttext-model``) and ``--device`` the same in
``curate`` and ``detect``; ``--text-field`` the same in ``detect`` and ``collapse``; ``--allow-incomplete`` in
every command that reads a run. A default that a library owns is taken from the library (the token budget from
:mod:`detectors.base`, the target false-positive rate from :mod:`detectors.calibration`).

Former spellings (``--scoring``, ``--reference``, ``--lm``, ``--text-column``, ...) are kept as deprecated
aliases: accepted, hidden from ``--help``, with a one-line note on stderr. Flags that only the pipeline's
commands share and whose defaults are the pipeline's settings (``--minhash-*``, ``--min-calibration-docs``,
``--on-uncertain``, ``--on-machine``, ``--thresholds``) are in :mod:`pipeline.options`, which builds them the
same way.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from common.cli import add_deprecated_alias, device, non_negative_int, openfraction, positive_int
from detectors.base import DEFAULT_MAX_TOKENS
from detectors.calibration import DEFAULT_TARGET_FPR


@dataclass(frozen=True)
class Flag:
    """One flag: its name, argparse keywords, and the former spellings still accepted."""

    name: str
    kwargs: dict[str, Any]
    aliases: tuple[str, ...] = ()
    dest: str | None = field(default=None)

    @property
    def destination(self) -> str:
        return self.dest or self.name.lstrip("-").replace("-", "_")


def _model(what: str) -> dict[str, Any]:
    return {"default": None, "metavar": "PATH_OR_ID", "help": what}


FLAGS: dict[str, Flag] = {f.name: f for f in (
    Flag("--allow-incomplete", {"action": "store_true", "help": "read a run folder without a valid manifest (a run "
                                "that finished elsewhere; see the README's run-completion contract)"}),
    Flag("--overwrite", {"action": "store_true", "help": "replace what the output folder already holds"}),
    Flag("--target-fpr", {"type": openfraction, "default": DEFAULT_TARGET_FPR, "metavar": "FPR",
                          "help": "false-positive rate on human (pre-cutoff) text that the thresholds must hold"}),
    Flag("--device", {"type": device, "default": "auto", "help": "where the language-model detectors run: auto "
                      "(CUDA when present, bf16 there), cpu, cuda, cuda:N or mps"}),
    Flag("--max-tokens", {"type": positive_int, "default": DEFAULT_MAX_TOKENS,
                          "help": "padded tokens per forward pass of a language-model detector"}),
    Flag("--fasttext-model", _model("fastText detector model (default: the bundled one)"), aliases=()),
    Flag("--observer", _model("Binoculars observer model (HF id or local folder)")),
    Flag("--performer", _model("Binoculars performer model")),
    Flag("--scoring-model", _model("Fast-DetectGPT scoring model"), aliases=("--scoring",)),
    Flag("--reference-model", _model("Fast-DetectGPT reference (sampling) model; omit for the one-model variant"),
         aliases=("--reference",)),
    Flag("--lm-model", _model("the model of the likelihood, logrank, entropy and lrr detectors"), aliases=("--lm",)),
    Flag("--text-field", {"default": "text", "metavar": "NAME",
                          "help": "the field (JSONL) or column (Parquet) that holds the text"},
         aliases=("--text-column",)),
    Flag("--seed", {"type": non_negative_int, "default": 0, "help": "random seed (bootstrap, splits)"}),
    Flag("--n-bootstrap", {"type": non_negative_int, "default": 1000,
                           "help": "bootstrap resamples for confidence intervals"}),
)}


def add_flag(parser, name: str, default_note: str | None = None, table: dict[str, Flag] | None = None,
             **overrides: Any) -> argparse.Action:
    """Add flag ``name`` of ``table`` (default :data:`FLAGS`) to a parser or argument group, with its deprecated
    aliases; ``overrides`` change its keywords (``dest``, a command-specific ``default``), ``default_note`` is
    appended to its help."""
    flag = (table or FLAGS)[name]
    kwargs = {**flag.kwargs, **overrides}
    kwargs.setdefault("dest", flag.destination)
    if default_note:
        kwargs["help"] = f"{kwargs['help']} (default: {default_note})"
    action = parser.add_argument(name, **kwargs)
    for alias in flag.aliases:
        add_deprecated_alias(parser, alias, name, action.dest, **({"type": kwargs["type"]} if "type" in kwargs
                                                                  else {}))
    return action


def add_flags(parser, *names: str, table: dict[str, Flag] | None = None) -> None:
    for name in names:
        add_flag(parser, name, table=table)
