"""Options of `lowbg curate`: our own flags, parsed here into typed settings; the rest must be Beam pipeline options.

The parser is the single source of truth for the CLI and the Dataflow Flex Template's metadata.json (checked
against it in a test); its defaults are those of :mod:`pipeline.settings` (and of :mod:`common.flags` for the
flags other commands share). :func:`parse_curate_args` turns a command line into one frozen
:class:`~pipeline.settings.CurateSettings`, which the manifest records whole. A flag that is neither ours nor an
option of a registered Beam ``PipelineOptions`` class (the standard, Google Cloud, worker, portable, Flink,
Spark, direct, ... ones, and any the user's code registers) is refused before any work, naming the closest
known flag: Beam itself would only log a warning and drop it (``--langauges en`` would run unfiltered).

:data:`PIPELINE_FLAGS` are the flags the pipeline's commands share (``curate``, ``decide``, ``index build``),
built like :data:`common.flags.FLAGS` with their defaults taken from the settings.
"""

from __future__ import annotations

import argparse
import functools
from typing import TYPE_CHECKING

from common.cli import (
    ArgumentParser,
    band,
    csv_list,
    fraction,
    non_negative_int,
    positive_int,
    unknown_flag_message,
    utc_time,
)
from common.flags import Flag, add_flag
from detectors.registry import DETECTORS, canonical_name
from pipeline import quality
from pipeline.settings import (
    DEDUP_MODES,
    ON_MACHINE,
    ON_REFERENCE_MATCH,
    ON_UNCERTAIN,
    CurateSettings,
    DecisionSettings,
    DedupSettings,
    IngestSettings,
    LanguageSettings,
    MinHashSettings,
    ProvenanceSettings,
    QualitySettings,
    ScoringSettings,
    SinkSettings,
    resolve_on_machine,
)

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

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


def input_slice(value: str) -> tuple[int, int]:
    """``I/N``: slice I (0-based) of N; N >= 1 and 0 <= I < N."""
    i, sep, n = value.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected I/N, e.g. 0/4 (slice I of N, 0-based)") from None
    if not sep or count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"{value!r}: expected I/N with N >= 1 and 0 <= I < N (0-based: the slices "
                                         f"of 4 are 0/4 to 3/4)")
    return index, count


def _detector_list(value: str) -> list[str]:
    names = csv_list(value)
    if names == ["none"]:
        return []
    try:
        canonical = [canonical_name(n) for n in names]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if "watermark" in canonical:
        raise argparse.ArgumentTypeError("watermark cannot run inside lowbg curate (the test needs the generator's "
                                         "key and tokenizer): use lowbg detect score --detector watermark")
    return canonical


_MINHASH, _DECISION, _LANGUAGE, _QUALITY = MinHashSettings(), DecisionSettings(), LanguageSettings(), QualitySettings()
PIPELINE_FLAGS: dict[str, Flag] = {f.name: f for f in (
    Flag("--languages", {"type": csv_list, "default": _LANGUAGE.languages, "metavar": "en,de,...",
                         "help": "keep only these languages"}),
    Flag("--min-language-score", {"type": fraction, "default": _LANGUAGE.min_score,
                                  "help": "reject documents whose language-ID confidence is lower (FineWeb: 0.65)"}),
    Flag("--min-words", {"type": non_negative_int, "default": _QUALITY.min_words,
                         "help": "reject documents with fewer words"}),
    Flag("--quality-preset", {"choices": QUALITY_PRESETS, "default": _QUALITY.preset,
                              "help": "a named set of published quality rules: gopher-quality, gopher-repetition, "
                              "gopher (both; Rae et al. 2021), c4 (Raffel et al. 2020; keeps C4's lines), fineweb "
                              "(Penedo et al. 2024: Gopher + C4 + FineWeb's filters; keeps C4's lines)"}),
    Flag("--minhash-num-perm", {"type": positive_int, "default": _MINHASH.num_perm, "help": "MinHash permutations"}),
    Flag("--minhash-threshold", {"type": fraction, "default": _MINHASH.threshold,
                                 "help": "Jaccard similarity above which two documents are near duplicates"}),
    Flag("--minhash-ngram", {"type": positive_int, "default": _MINHASH.ngram, "help": "words per shingle"}),
    Flag("--thresholds", {"default": _DECISION.thresholds, "metavar": "FILE",
                          "help": "thresholds JSON from lowbg detect calibrate"}),
    Flag("--min-calibration-docs", {"type": positive_int, "default": _DECISION.min_calibration_docs,
                                    "help": "fewer pre-cutoff documents than this: fall back to --thresholds or the "
                                    "published default"}),
    Flag("--on-uncertain", {"choices": list(ON_UNCERTAIN), "default": _DECISION.on_uncertain,
                            "help": "what to do with documents that have no usable score"}),
    Flag("--on-machine", {"choices": list(ON_MACHINE), "default": "auto",
                          "help": "what to do with post-cutoff documents the deciding detector flags: reject them "
                          "(machine_generated), keep them (scores and flags stay on the row and in the report), or "
                          "auto: reject only when a language-model detector is in the cascade (the bundled fastText "
                          "detector alone is near chance on generators it never saw)"}),
)}


def add_pipeline_flag(parser, name: str, default_note: str | None = None, **overrides) -> argparse.Action:
    return add_flag(parser, name, default_note, table=PIPELINE_FLAGS, **overrides)


def build_curate_parser() -> ArgumentParser:
    ingest, sinks, language, dedup = IngestSettings(), SinkSettings(), LanguageSettings(), DedupSettings()
    scoring, cutoff = ScoringSettings(), ProvenanceSettings().cutoff
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
    io.add_argument("--input-base", default=ingest.input_base, metavar="PREFIX",
                    help="prefix for relative paths in --input-list (e.g. s3://commoncrawl/ or a local mirror)")
    io.add_argument("--max-files", type=positive_int, default=ingest.max_files,
                    help="read at most this many input files")
    io.add_argument("--sample-files", type=fraction, default=ingest.sample_files, metavar="FRACTION",
                    help="read a deterministic sample (by path hash) of this fraction of the input files")
    io.add_argument("--input-slice", type=input_slice, default=ingest.input_slice, metavar="I/N",
                    help="read slice I of N (0-based) of the input files, sorted and distinct: N jobs with 0/N .. "
                    "N-1/N read every file once (dedup across them: lowbg index build, --reference-index)")
    io.add_argument("--output", required=True, metavar="DIR", help="output folder (local or a Beam filesystem)")
    io.add_argument("--shard-size", type=positive_int, default=sinks.shard_size, metavar="ROWS",
                    help="at most this many rows per Parquet shard")
    io.add_argument("--num-buckets", type=positive_int, default=sinks.num_buckets,
                    help="output buckets per shard kind (default: one per input file, at most 1024)")
    io.add_argument("--max-payload-bytes", type=positive_int, default=ingest.max_payload_bytes,
                    help="larger payloads (after HTTP decoding) are rejected as payload_too_large")
    io.add_argument("--processed-at", type=utc_time, default=None,
                    help="processing timestamp written on every row (default: now); set it for reproducible output")
    add_flag(io, "--overwrite")
    io.add_argument("--local-workers", type=positive_int, default=1, metavar="N",
                    help="a local run on N processes, each a one-worker run over its share of the input files, "
                    "merged into the output one worker would write (byte for byte); dedup and the detectors' "
                    "calibration and decision, which need every file's documents, run after them in one process "
                    "(docs/scaling.md)")

    prov = p.add_argument_group("provenance")
    prov.add_argument("--cutoff", type=utc_time, default=cutoff,
                      help=f"capture-time cutoff (default {cutoff.isoformat().replace('+00:00', 'Z')}, ChatGPT's "
                      "release)")

    lang = p.add_argument_group("language and quality")
    add_pipeline_flag(lang, "--languages", default_note="all")
    add_pipeline_flag(lang, "--min-language-score")
    lang.add_argument("--skip-language-id", action="store_true",
                      help="do not run language ID (language stays null; --languages cannot be used)")
    lang.add_argument("--language-model", default=language.model, metavar="PATH",
                      help="fastText language-ID model (default: the bundled lid.176.ftz)")
    for flag in ("--min-words", "--quality-preset"):
        add_pipeline_flag(lang, flag)
    lang.add_argument("--quality-signals", type=_signal_groups, default=list(QualitySettings().signals),
                      metavar="GROUP[,GROUP]",
                      help="quality signal groups to compute and store besides the preset's, for a later lowbg "
                      f"decide: {', '.join(QUALITY_SIGNAL_GROUPS)}, all or none (default: none)")

    dd = p.add_argument_group("dedup")
    dd.add_argument("--dedup", choices=list(DEDUP_MODES), default=dedup.mode, help="near implies exact first")
    for flag in ("--minhash-num-perm", "--minhash-threshold", "--minhash-ngram"):
        add_pipeline_flag(dd, flag)
    dd.add_argument("--reference-index", default=dedup.reference_index, metavar="INDEX",
                    help="index of finished runs' keys (lowbg index build): matches are dated by it")
    dd.add_argument("--on-reference-match", choices=list(ON_REFERENCE_MATCH), default=dedup.on_reference_match,
                    help="a document matching --reference-index: keep it (first_seen and content_provenance from "
                    "the index) or reject it as duplicate_exact/duplicate_near of the indexed document (dedup "
                    "across runs, e.g. --input-slice jobs)")

    det = p.add_argument_group("AI-text detection")
    det.add_argument("--detectors", type=_detector_list, default=list(scoring.detectors), metavar="NAME[,NAME]",
                     help=f"detectors in cascade order ({', '.join(d for d in DETECTORS if d != 'watermark')}); "
                     "'none' to skip scoring")
    det.add_argument("--cascade-band", type=band, default=scoring.cascade_band, metavar="LOW,HIGH",
                     help="send to the next detector only documents whose cheap score is within [LOW, HIGH]")
    det.add_argument("--score-pre-cutoff", type=fraction, default=scoring.score_pre_cutoff, metavar="FRACTION",
                     help="also score this fraction of pre-cutoff documents with the expensive detectors")
    add_flag(det, "--target-fpr")
    for flag in ("--thresholds", "--min-calibration-docs", "--on-uncertain", "--on-machine"):
        add_pipeline_flag(det, flag)
    for flag in ("--fasttext-model", "--observer", "--performer", "--scoring-model", "--reference-model",
                 "--lm-model", "--device", "--max-tokens"):
        add_flag(det, flag)
    det.add_argument("--min-batch-size", type=positive_int, default=scoring.min_batch_size,
                     help="RunInference min batch (documents)")
    det.add_argument("--max-batch-size", type=positive_int, default=scoring.max_batch_size,
                     help="RunInference max batch (documents; the LM detectors batch by --max-tokens); "
                          "fastText's fixed batch")
    det.add_argument("--large-model", action="store_true",
                     help="share one model per machine across worker processes (Beam large_model)")
    det.add_argument("--gpu-resource-hint", default=scoring.gpu_resource_hint, metavar="HINT",
                     help="Dataflow accelerator resource hint on the scoring step only, e.g. "
                     "'type:nvidia-l4;count:1;install-nvidia-driver'")
    return p


def settings_from(ns: argparse.Namespace, beam_args: list[str]) -> CurateSettings:
    """The typed settings of a parsed command line (the one place flags become settings)."""
    detectors = tuple(ns.detectors)
    return CurateSettings(
        ingest=IngestSettings(inputs=tuple(ns.input), input_lists=tuple(ns.input_list), input_base=ns.input_base,
                              max_files=ns.max_files, sample_files=ns.sample_files,
                              max_payload_bytes=ns.max_payload_bytes, input_slice=ns.input_slice),
        provenance=ProvenanceSettings(cutoff=ns.cutoff),
        language=LanguageSettings(enabled=not ns.skip_language_id,
                                  languages=tuple(ns.languages) if ns.languages else None,
                                  min_score=ns.min_language_score, model=ns.language_model),
        quality=QualitySettings(preset=ns.quality_preset, signals=tuple(ns.quality_signals), min_words=ns.min_words),
        dedup=DedupSettings(mode=ns.dedup, reference_index=ns.reference_index,
                            on_reference_match=ns.on_reference_match,
                            minhash=MinHashSettings(ns.minhash_num_perm, ns.minhash_threshold, ns.minhash_ngram)),
        scoring=ScoringSettings(
            detectors=detectors, cascade_band=ns.cascade_band, score_pre_cutoff=ns.score_pre_cutoff,
            fasttext_model=ns.fasttext_model, observer=ns.observer, performer=ns.performer,
            scoring_model=ns.scoring_model, reference_model=ns.reference_model, lm_model=ns.lm_model,
            device=ns.device, max_tokens=ns.max_tokens, min_batch_size=ns.min_batch_size,
            max_batch_size=ns.max_batch_size, large_model=ns.large_model, gpu_resource_hint=ns.gpu_resource_hint),
        decision=DecisionSettings(target_fpr=ns.target_fpr, thresholds=ns.thresholds,
                                  min_calibration_docs=ns.min_calibration_docs, on_uncertain=ns.on_uncertain,
                                  on_machine=resolve_on_machine(ns.on_machine, detectors)),
        sinks=SinkSettings(output=ns.output, shard_size=ns.shard_size, num_buckets=ns.num_buckets,
                           overwrite=ns.overwrite),
        processed_at=ns.processed_at,
        beam_args=tuple(beam_args),
    )


def parse_curate_args(argv: list[str]) -> CurateSettings:
    """Parse `lowbg curate`'s command line into its settings; a bad one is refused here (one line, exit 2),
    before any work."""
    parser = build_curate_parser()
    parser.reject_unknown_flags(argv, beam_flag_names(), _NOT_A_FLAG)
    ns, beam_args = parser.parse_known_args(argv)
    check_beam_args(beam_args, parser)
    if not ns.input and not ns.input_list:
        parser.error("give at least one --input or --input-list")
    if ns.on_reference_match != "keep" and not ns.reference_index:
        parser.error("--on-reference-match needs --reference-index")
    if ns.skip_language_id and ns.languages:
        parser.error("--languages needs language ID: drop --skip-language-id")
    check_runner_options(beam_args, ns, parser)
    return settings_from(ns, quiet_local_workers(beam_args))


def parse_local_workers(argv: list[str]) -> int:
    """``--local-workers`` of a command line that :func:`parse_curate_args` accepted (a way of running, not a
    setting: the output is the same whatever its value, so the manifest does not record it)."""
    ns, _ = build_curate_parser().parse_known_args(argv)
    return ns.local_workers


_NOT_A_FLAG = "neither a lowbg curate flag nor a Beam pipeline option"

# Beam's own options for the logs of its SDK worker processes (sdk_worker_main reads them when it starts).
QUIET_WORKER_ARGS = ("--default_sdk_harness_log_level=WARNING",
                     '--sdk_harness_log_level_overrides={"__main__": "ERROR", '
                     '"apache_beam.options.pipeline_options": "ERROR"}')


def quiet_local_workers(beam_args: list[str]) -> list[str]:
    """A local multi-process run (``--direct_running_mode=multi_processing``) starts one Python process per
    worker, whose stderr is the terminal's: without these options each prints Beam's start-up chatter (a dozen
    INFO lines) and notices about options it does not use. Added unless the command line sets a harness log
    level itself. What they cannot reach: the one line a worker logs while ``import apache_beam`` runs, before
    any option is read (Beam's "apitools not found" without the ``[gcp]`` extra)."""
    joined = " ".join(beam_args)
    if "multi_processing" not in joined or "sdk_harness_log_level" in joined:
        return list(beam_args)
    return [*beam_args, *QUIET_WORKER_ARGS]


class _BeamOptionError(Exception):
    pass


def _beam_parser_class():
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):  # a bad value for a Beam option: ours to report, in our error shape
            raise _BeamOptionError(message)

    return Parser


def _option_classes() -> list[type[PipelineOptions]]:
    from apache_beam.options.pipeline_options import PipelineOptions

    seen: list[type[PipelineOptions]] = []
    stack = list(PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop(0)
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen


@functools.cache
def _beam_parser(classes: tuple[type[PipelineOptions], ...]) -> argparse.ArgumentParser:
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
