"""Build any detector by its CLI name from plain options (what the pipeline's workers call)."""

from __future__ import annotations

from detectors.base import HIGHER_IS_MACHINE, LOWER_IS_MACHINE, Detector

_LM_COMMON = {"device", "dtype", "max_tokens", "max_length", "min_tokens", "chunk_elements"}
OPTIONS: dict[str, tuple[set[str], set[str]]] = {  # name -> (required options, optional options)
    "binoculars": ({"observer", "performer"}, _LM_COMMON),
    "fast-detectgpt": ({"scoring"}, {"reference"} | _LM_COMMON),
    "likelihood": ({"model"}, _LM_COMMON),
    "logrank": ({"model"}, _LM_COMMON),
    "entropy": ({"model"}, _LM_COMMON),
    "lrr": ({"model"}, _LM_COMMON),
    "fasttext": (set(), {"model", "max_words"}),
    "watermark": ({"tokenizer"}, {"vocab_size", "gamma", "seeding_scheme", "hash_key", "ignore_repeated_ngrams",
                                  "device"}),
}
DETECTORS = tuple(OPTIONS)
DIRECTION = {name: HIGHER_IS_MACHINE for name in DETECTORS} | {"binoculars": LOWER_IS_MACHINE,
                                                                 "entropy": LOWER_IS_MACHINE}
# Detectors that score with a language model (the zero-shot family): what a cascade needs to catch machine text
# from generators no training set covered. fastText is a supervised classifier; a watermark test needs a key.
LANGUAGE_MODEL_DETECTORS = frozenset({"binoculars", "fast-detectgpt", "likelihood", "logrank", "entropy", "lrr"})
_ALIASES = {"fast-detect-gpt": "fast-detectgpt", "fastdetectgpt": "fast-detectgpt"}


def canonical_name(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in OPTIONS:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    return key


def is_language_model(name: str) -> bool:
    return canonical_name(name) in LANGUAGE_MODEL_DETECTORS


def build_detector(name: str, **options) -> Detector:
    """A ready detector. Options are the CLI flags with underscores (observer=, performer=, device=, max_tokens=,
    ...); None values are ignored, unknown or missing options raise ValueError. Models load here, so call this
    once per worker (e.g. in a DoFn's setup), not per element."""
    key = canonical_name(name)
    required, optional = OPTIONS[key]
    opts = {k: v for k, v in options.items() if v is not None}
    unknown = set(opts) - required - optional
    if unknown:
        raise ValueError(f"detector {key!r} does not take option(s) {sorted(unknown)}; "
                         f"it takes {sorted(required | optional)}")
    missing = required - set(opts)
    if missing:
        raise ValueError(f"detector {key!r} needs option(s) {sorted(missing)}")
    if key == "binoculars":
        from detectors.binoculars import Binoculars

        return Binoculars.from_pretrained(**opts)
    if key == "fast-detectgpt":
        from detectors.fast_detectgpt import FastDetectGPT

        return FastDetectGPT.from_pretrained(**opts)
    if key in ("likelihood", "logrank", "entropy", "lrr"):
        import importlib

        cls = {"likelihood": "Likelihood", "logrank": "LogRank", "entropy": "Entropy", "lrr": "LRR"}[key]
        return getattr(importlib.import_module(f"detectors.{key}"), cls).from_pretrained(**opts)
    if key == "fasttext":
        from detectors.fasttext_detector import FastTextDetector

        return FastTextDetector(**opts)
    from detectors.watermark import WatermarkDetector

    return WatermarkDetector.from_pretrained(**opts)
