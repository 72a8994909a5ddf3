"""Options of `lowbg curate`: our own flags, parsed here; the rest must be Beam pipeline options.

The parser is the single source of truth for the CLI, the Dataflow Flex Template's metadata.json (checked
against it in a test) and the manifest's record of the options a run used. A flag that is neither ours nor an
option of a registered Beam ``PipelineOptions`` class (the standard, Google Cloud, worker, portable, Flink,
Spark, direct, ... ones, and any the user's code registers) is refused before any work, naming the closest
known flag: Beam itself would only log a warning and drop it (``--langauges en`` would run unfiltered).

The value types below (:func:`fraction`, :func:`positive_int`, ...) are shared by every `lowbg` command, so a
range is checked the same way everywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import math
from dataclasses import dataclass

from pipeline import quality
from pipeline.cli import ArgumentParser, unknown_flag_message

DEFAULT_CUTOFF = "2022-11-30T00:00:00Z"  # ChatGPT's public release


def parse_utc(value: str) -> dt.datetime:
    """Parse an ISO-8601 time; a naive value is taken as UTC."""
    text = value.strip().replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def utc_time(value: str) -> dt.datetime:
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {value!r}") from exc


def _number(value: str, kind: type) -> float:
    try:
        x = kind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not {'a whole number' if kind is int else 'a number'}: {value!r}") from exc
    if isinstance(x, float) and not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"not a finite number: {value!r}")
    return x


def fraction(value: str) -> float:
    """A number within [0, 1] (a rate, a probability, a share of files)."""
    x = _number(value, float)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1]: {value}")
    return x


def openfraction(value: str) -> float:
    """A number strictly between 0 and 1 (a similarity threshold, a false-positive rate to hold)."""
    x = _number(value, float)
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"must be within (0, 1), ends excluded: {value}")
    return x


def positive_int(value: str) -> int:
    x = _number(value, int)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {value}")
    return x


def non_negative_int(value: str) -> int:
    x = _number(value, int)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return x


def band(value: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH: {value!r}") from exc
    if not (math.isfinite(low) and math.isfinite(high)):
        raise argparse.ArgumentTypeError(f"LOW and HIGH must be finite numbers: {value!r}")
    if low > high:
        raise argparse.ArgumentTypeError(f"LOW > HIGH in {value!r}")
    return low, high


def csv_list(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list: {value!r}")
    return items


QUALITY_PRESETS = list(quality.PRESETS)
QUALITY_SIGNAL_GROUPS = list(quality.GROUPS)


def _signal_groups(value: str) -> list[str]:
    groups = csv_list(value)
    if groups == ["none"]:
        return []
    if groups == ["all"]:
        return list(QUALITY_SIGNAL_GROUPS)
    unknown = [g for g in groups if g not in QUALITY_SIGNAL_GROUPS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown signal group(s) {', '.join(unknown)}; expected some of "
                                         f"{', '.join(QUALITY_SIGNAL_GROUPS)}, or all, or none")
    return groups


# Flags that several commands take, defined once (type and range, choices, help), so that they are spelled,
# checked and explained the same way everywhere: the start of one flag table for every command (issue 11).
SHARED_FLAGS: dict[str, dict] = {
    "--overwrite": {"action": "store_true", "help": "replace an existing output folder's shards"},
    "--allow-incomplete": {"action": "store_true", "help": "read a run folder without a valid manifest (a run that "
                           "finished elsewhere; see the README's run-completion contract)"},
    "--minhash-num-perm": {"type": positive_int, "default": 128, "help": "MinHash permutations"},
    "--minhash-threshold": {"type": fraction, "default": 0.8,
                            "help": "Jaccard similarity above which two documents are near duplicates"},
    "--minhash-ngram": {"type": positive_int, "default": 5, "help": "words per shingle"},
    "--target-fpr": {"type": fraction, "default": 0.01,
                     "help": "false-positive rate on human (pre-cutoff) text that the thresholds must hold"},
    "--thresholds": {"default": None, "metavar": "FILE", "help": "thresholds JSON from lowbg detect calibrate"},
    "--min-calibration-docs": {"type": positive_int, "default": 200, "help": "fewer pre-cutoff documents than this: "
                               "fall back to --thresholds or the published default"},
    "--on-uncertain": {"choices": ["keep", "reject"], "default": "keep",
                       "help": "what to do with documents that have no usable score"},
}


def add_flag(parser, name: str, default_note: str | None = None, **overrides) -> argparse.Action:
    """Add a flag of :data:`SHARED_FLAGS` to a parser or argument group; ``overrides`` change its keywords
    (a command-specific default), ``default_note`` is appended to its help."""
    kwargs = {**SHARED_FLAGS[name], **overrides}
    if default_note:
        kwargs["help"] = f"{kwargs['help']} (default: {default_note})"
    return parser.add_argument(name, **kwargs)


def build_curate_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="lowbg curate",
        description="Curate human-written documents from WARC/WET files into Parquet shards with provenance. "
        "Unrecognised flags (--runner, --direct_num_workers, --project, ...) are passed to Beam.",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--input", action="append", default=[], metavar="PATTERN",
                    help="WARC/WET/ARC file pattern (local, gs://, s3://...); repeatable")
    io.add_argument("--input-list", action="append", default=[], metavar="PATHS_FILE",
                    help="a Common Crawl path list (e.g. warc.paths.gz), one path per line; repeatable")
    io.add_argument("--input-base", default="", metavar="PREFIX",
                    help="prefix for relative paths in --input-list (e.g. s3://commoncrawl/ or a local mirror)")
    io.add_argument("--max-files", type=positive_int, default=None, help="read at most this many input files")
    io.add_argument("--sample-files", type=fraction, default=None, metavar="FRACTION",
                    help="read a deterministic sample (by path hash) of this fraction of the input files")
    io.add_argument("--output", required=True, metavar="DIR", help="output folder (local or a Beam filesystem)")
    io.add_argument("--shard-size", type=positive_int, default=50_000, metavar="ROWS",
                    help="at most this many rows per Parquet shard")
    io.add_argument("--num-buckets", type=positive_int, default=None,
                    help="output buckets per shard kind (default: one per input file, at most 1024)")
    io.add_argument("--max-payload-bytes", type=positive_int, default=8 * 1024 * 1024,
                    help="larger payloads (after HTTP decoding) are rejected as payload_too_large")
    io.add_argument("--processed-at", type=utc_time, default=None,
                    help="processing timestamp written on every row (default: now); set it for reproducible output")
    add_flag(io, "--overwrite")

    prov = p.add_argument_group("provenance")
    prov.add_argument("--cutoff", type=utc_time, default=utc_time(DEFAULT_CUTOFF),
                      help=f"capture-time cutoff (default {DEFAULT_CUTOFF}, ChatGPT's release)")

    lang = p.add_argument_group("language and quality")
    lang.add_argument("--languages", type=csv_list, default=None, metavar="en,de,...",
                      help="keep only these languages (default: all)")
    lang.add_argument("--min-language-score", type=fraction, default=0.65,
                      help="reject documents whose language-ID confidence is lower (FineWeb: 0.65)")
    lang.add_argument("--skip-language-id", action="store_true",
                      help="do not run language ID (language stays null; --languages cannot be used)")
    lang.add_argument("--language-model", default=None, metavar="PATH",
                      help="fastText language-ID model (default: the bundled lid.176.ftz)")
    lang.add_argument("--min-words", type=non_negative_int, default=None, help="reject documents with fewer words")
    lang.add_argument("--quality-preset", choices=QUALITY_PRESETS, default="none",
                      help="a named set of published quality rules: gopher-quality, gopher-repetition, gopher "
                      "(both; Rae et al. 2021), c4 (Raffel et al. 2020; keeps C4's lines), fineweb (Penedo et al. "
                      "2024: Gopher + C4 + FineWeb's filters; keeps C4's lines)")
    lang.add_argument("--quality-signals", type=_signal_groups, default=[], metavar="GROUP[,GROUP]",
                      help="quality signal groups to compute and store besides the preset's, for a later lowbg "
                      f"decide: {', '.join(QUALITY_SIGNAL_GROUPS)}, all or none (default: none)")

    dedup = p.add_argument_group("dedup")
    dedup.add_argument("--dedup", choices=["none", "exact", "near"], default="near",
                       help="near implies exact first")
    for flag in ("--minhash-num-perm", "--minhash-threshold", "--minhash-ngram"):
        add_flag(dedup, flag)
    dedup.add_argument("--reference-index", default=None, metavar="INDEX",
                       help="band-key index of a pre-cutoff corpus (lowbg index build)")

    det = p.add_argument_group("AI-text detection")
    det.add_argument("--detectors", type=csv_list, default=["fasttext"], metavar="NAME[,NAME]",
                     help="detectors in cascade order (fasttext, binoculars, fast-detectgpt, likelihood, ...); "
                     "'none' to skip scoring")
    det.add_argument("--cascade-band", type=band, default=None, metavar="LOW,HIGH",
                     help="send to the next detector only documents whose cheap score is within [LOW, HIGH]")
    det.add_argument("--score-pre-cutoff", type=fraction, default=None, metavar="FRACTION",
                     help="also score this fraction of pre-cutoff documents with the expensive detectors")
    for flag in ("--target-fpr", "--thresholds", "--min-calibration-docs", "--on-uncertain"):
        add_flag(det, flag)
    det.add_argument("--fasttext-model", default=None, metavar="PATH", help="default: the bundled detector")
    det.add_argument("--observer", default=None, metavar="PATH_OR_ID", help="Binoculars observer model")
    det.add_argument("--performer", default=None, metavar="PATH_OR_ID", help="Binoculars performer model")
    det.add_argument("--scoring-model", default=None, metavar="PATH_OR_ID", help="Fast-DetectGPT scoring model")
    det.add_argument("--reference-model", default=None, metavar="PATH_OR_ID", help="Fast-DetectGPT reference model")
    det.add_argument("--lm", default=None, metavar="PATH_OR_ID", help="model of likelihood/logrank/entropy/lrr")
    det.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                     help="where the LM detectors run (auto: CUDA when present, bf16 there)")
    det.add_argument("--max-tokens", type=positive_int, default=8192, help="token budget per LM batch")
    det.add_argument("--min-batch-size", type=positive_int, default=1, help="RunInference min batch (documents)")
    det.add_argument("--max-batch-size", type=positive_int, default=64,
                     help="RunInference max batch (documents; the LM detectors batch by --max-tokens)")
    det.add_argument("--large-model", action="store_true",
                     help="share one model per machine across worker processes (Beam large_model)")
    det.add_argument("--gpu-resource-hint", default=None, metavar="HINT",
                     help="Dataflow accelerator resource hint on the scoring step only, e.g. "
                     "'type:nvidia-l4;count:1;install-nvidia-driver'")
    return p


@dataclass(frozen=True)
class CurateArgs:
    """Parsed `lowbg curate` options plus the Beam flags left over."""

    ns: argparse.Namespace
    beam_args: list[str]

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("ns", "beam_args"):  # unpickling probes before fields exist
            raise AttributeError(name)
        return getattr(self.ns, name)

    def as_manifest(self) -> dict:
        out = {}
        for key, value in sorted(vars(self.ns).items()):
            out[key] = value.isoformat() if isinstance(value, dt.datetime) else value
        out["beam_args"] = list(self.beam_args)
        return out


def parse_curate_args(argv: list[str]) -> CurateArgs:
    """Parse `lowbg curate`'s command line; a bad one is refused here (one line, exit 2), before any work."""
    parser = build_curate_parser()
    parser.reject_unknown_flags(argv, beam_flag_names(), _NOT_A_FLAG)
    ns, beam_args = parser.parse_known_args(argv)
    check_beam_args(beam_args, parser)
    if not ns.input and not ns.input_list:
        parser.error("give at least one --input or --input-list")
    if ns.detectors == ["none"]:
        ns.detectors = []
    if ns.skip_language_id and ns.languages:
        parser.error("--languages needs language ID: drop --skip-language-id")
    check_runner_options(beam_args, ns, parser)
    return CurateArgs(ns, beam_args)


_NOT_A_FLAG = "neither a lowbg curate flag nor a Beam pipeline option"


class _BeamOptionError(Exception):
    pass


def _beam_parser_class():
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):  # a bad value for a Beam option: ours to report, in our error shape
            raise _BeamOptionError(message)

    return Parser


def _option_classes() -> list[type]:
    from apache_beam.options.pipeline_options import PipelineOptions

    seen: list[type] = []
    stack = list(PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop(0)
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen


@functools.cache
def _beam_parser(classes: tuple[type, ...]) -> argparse.ArgumentParser:
    parser = _beam_parser_class()(allow_abbrev=False, add_help=False, conflict_handler="resolve")
    for cls in classes:
        try:
            cls._add_argparse_args(parser)
        except Exception:  # noqa: BLE001 - a broken third-party options class must not stop ours
            continue
    return parser


def beam_option_parser() -> argparse.ArgumentParser:
    """A parser of every flag of every registered Beam ``PipelineOptions`` class (cached per set of classes:
    importing a module that defines options registers more)."""
    return _beam_parser(tuple(_option_classes()))


def beam_flag_names() -> list[str]:
    return [s for s in beam_option_parser()._option_string_actions if s.startswith("--")]


def check_beam_args(beam_args: list[str], parser: ArgumentParser) -> None:
    """Refuse (``parser.error``) flags that are not Beam options, and Beam options with bad values.

    Beam's own parsing would drop unknown flags with a warning and go on; a mistyped flag of ours
    (``--langauges``) would then silently not apply. The message names the closest of our flags and Beam's.
    """
    if not beam_args:
        return
    try:
        _, unknown = beam_option_parser().parse_known_args(beam_args)
    except _BeamOptionError as exc:
        parser.error(f"Beam pipeline option: {exc}")
    if unknown:
        parser.error(unknown_flag_message(unknown[0], parser.flag_names() + beam_flag_names(), _NOT_A_FLAG))


def check_runner_options(beam_args: list[str], ns: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse option sets that cannot work, before any work starts."""
    joined = " ".join(beam_args)
    runner = ""
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and i + 1 < len(beam_args):
            runner = beam_args[i + 1]
    is_direct = runner in ("", "DirectRunner", "direct", "FnApiRunner", "BundleBasedDirectRunner")
    if not is_direct and ("--direct_num_workers" in joined or "--direct_running_mode" in joined):
        parser.error(f"--direct_num_workers/--direct_running_mode only apply to the DirectRunner, not {runner}")
    if ns.gpu_resource_hint and "worker_accelerator" in joined:
        parser.error("give either --gpu-resource-hint (scoring step only) or "
                     "--dataflow_service_options=worker_accelerator=... (every worker), not both")
