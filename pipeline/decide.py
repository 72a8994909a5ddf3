"""`lowbg decide`: re-split a run's rows under new policies, from the values stored on them, without re-running.

Every rejection that is a *policy over stored values* (:data:`pipeline.reasons.REDECIDABLE`) is made again, in
pipeline order, with its own reason code:

* language (``language``): ``--languages`` / ``--min-language-score`` over ``language`` and ``language_score``
  (:func:`pipeline.langid.language_decision`);
* quality: ``--min-words`` (``quality_min_words``), then the ``--quality-preset`` rules (``quality_<rule>``) over
  the stored signals (:func:`pipeline.quality.quality_decision`); a preset whose signals the run did not store is
  refused before anything is written (curate with ``--quality-signals`` to store them);
* machine text (``machine_generated``, ``uncertain``): thresholds recomputed from the stored scores of the
  pre-cutoff documents that reach the decision under the new policies (or ``--thresholds``), then
  :class:`pipeline.decision.MachinePolicy` (``--target-fpr``, ``--on-machine``, ``--on-uncertain``).

Each setting not given on the command line is the source run's (its manifest's ``options``). What stays as it
was: rejections decided from the record or the whole run (HTTP, content, decoding, dedup: ``redecide: kept`` in
the registry), and a row the source run rejected at a policy *before dedup* that the new policies would keep:
it never went through dedup and scoring, so no stored value says what would happen to it next. Such rows keep
their rejection and are counted in the manifest's ``not_redecided`` (by reason); loosening those policies needs a
new `lowbg curate` run. A duplicate stays a duplicate (dedup is not re-run) even when a stricter policy now
rejects the copy it duplicated.

Output: one curated and one rejected shard per input shard name (``curated/NAME`` and ``rejected/NAME`` of the
source are read together and written together), ``_thresholds.json`` where the run was scored, ``stats/``
recomputed from the rows written, and a manifest that balances: ``records_in`` (rows read) = curated + rejected
as counted again from the written shards. The manifest records the settings used, whole (``options``: the
source run's settings by stage with ``language``, ``quality`` and ``decision`` replaced by those applied).

The input must be a finished run (:mod:`schemas.run`): its manifest is valid and names exactly the shards in the
folder; ``--allow-incomplete`` reads a folder without one (the shards present, the detectors of its
``_thresholds.json``, `lowbg curate`'s defaults for what no manifest records), and the new manifest says so
(``"source_complete": false``). The output must not be the input folder, nor inside it or around it. Before
anything is read, the output is checked: writable, and not holding another run unless ``--overwrite``. Every file
goes through Beam's FileSystems (local, gs://, s3://, any registered filesystem) and is written atomically, the
manifest last.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow.parquet as pq

import schemas
from common.cli import ArgumentParser, InputError, run_command
from common.flags import add_flag
from detectors.registry import DetectorSpec, published_thresholds
from pipeline import quality
from pipeline.decision import (
    CALIBRATED,
    MachinePolicy,
    calibration_keys,
    compute_thresholds,
    flags,
    thresholds_from_record,
    thresholds_record,
)
from pipeline.document import Document
from pipeline.langid import language_decision
from pipeline.layout import (
    THRESHOLDS_FILE,
    basename,
    check_separate,
    check_writable,
    exists,
    join,
    open_read,
    prepare_output,
    read_json,
    read_run_manifest,
    run_shards,
    write_atomically,
    write_bytes,
)
from pipeline.manifest import assemble_manifest, check_balance, count_shards, write_manifest
from pipeline.options import add_pipeline_flag
from pipeline.reasons import DECISION, LANGUAGE, QUALITY, REDECIDABLE, REJECT_REASONS, STAGES
from pipeline.settings import (
    ON_MACHINE,
    DecisionSettings,
    LanguageSettings,
    recorded_settings,
    resolve_on_machine,
    to_json,
)
from pipeline.stats import RunStatsAccumulator, write_stats

KINDS = ("curated", "rejected")
MACHINE_SETTINGS = ("target_fpr", "thresholds", "min_calibration_docs", "on_uncertain", "on_machine")
POLICY_STAGES = (LANGUAGE, QUALITY, DECISION)  # the stages whose rejections are policies, in pipeline order


@dataclass(frozen=True)
class DecideSettings:
    """The policies `lowbg decide` applies (module docstring): the source run's, with the command line's on top."""

    language: LanguageSettings
    quality: quality.QualitySettings
    decision: DecisionSettings
    language_enabled: bool = True  # the source run identified languages (else the language policy cannot apply)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="lowbg decide", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, metavar="RUN_DIR", help="output folder of a `lowbg curate` run")
    p.add_argument("--output", required=True, metavar="DIR", help="a new folder (not the input, nor in it)")
    for flag in ("--languages", "--min-language-score", "--min-words", "--quality-preset"):
        add_pipeline_flag(p, flag, default=None, default_note="the run's")
    p.add_argument("--all-languages", action="store_true", help="drop the run's --languages restriction")
    add_flag(p, "--target-fpr", default=None, default_note="the run's")
    for flag in ("--min-calibration-docs", "--on-uncertain"):
        add_pipeline_flag(p, flag, default=None, default_note="the run's")
    # `auto` is curate's rule for a run's detectors, already resolved in the run's settings: decide says keep or
    # reject.
    add_pipeline_flag(p, "--on-machine", default=None, default_note="the run's",
                      choices=[c for c in ON_MACHINE if c != "auto"])
    add_pipeline_flag(p, "--thresholds")
    add_flag(p, "--allow-incomplete")
    add_flag(p, "--overwrite")
    return p


def check_thresholds_arg(path: str | None) -> None:
    if path is None:
        return
    if not exists(path):
        raise InputError(f"--thresholds {path}: no such file")
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"--thresholds {path}: not a readable thresholds JSON file: {exc}") from exc
    if not isinstance(data, dict) or "detector" not in data:
        raise InputError(f"--thresholds {path}: not a thresholds file of `lowbg detect calibrate` (no detector)")


def _fields(cls, recorded: Mapping) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in recorded.items() if k in names}


def source_settings(recorded: Mapping, thresholds: Mapping) -> tuple[DecideSettings, dict[str, dict]]:
    """The source run's policies (typed) and its settings by stage. Where its manifest does not record them (a
    manifest written afterwards by `lowbg manifest`, or none), `lowbg curate`'s defaults, and the target FPR its
    thresholds were computed for."""
    stages = recorded_settings(dict(recorded))
    lang = _fields(LanguageSettings, stages.get("language", {}))
    enabled = bool(lang.pop("enabled", True))
    if lang.get("languages") is not None:
        lang["languages"] = tuple(lang["languages"])
    qual = _fields(quality.QualitySettings, stages.get("quality", {}))
    qual["signals"] = tuple(qual.get("signals") or ())
    dec = _fields(DecisionSettings, stages.get("decision", {}))
    fprs = {e.get("target_fpr") for e in thresholds.values() if isinstance(e, dict)} - {None}
    if "target_fpr" not in dec and len(fprs) == 1:
        dec["target_fpr"] = fprs.pop()
    if "on_machine" not in dec:  # not recorded (a manifest written by `lowbg manifest`): `lowbg curate`'s default
        dec["on_machine"] = resolve_on_machine("auto", tuple(thresholds))
    try:
        settings = DecideSettings(LanguageSettings(**lang), quality.QualitySettings(**qual),
                                  DecisionSettings(**dec), enabled)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the run's recorded settings cannot be read back: {exc}") from exc
    return settings, stages


def apply_arguments(base: DecideSettings, args) -> DecideSettings:
    """The command line's settings on top of the run's (None: the run's)."""
    lang = base.language
    if args.all_languages and args.languages is not None:
        raise InputError("--languages and --all-languages contradict each other")
    if args.languages is not None or args.all_languages:
        lang = dataclasses.replace(lang, languages=None if args.all_languages else tuple(args.languages))
    if args.min_language_score is not None:
        lang = dataclasses.replace(lang, min_score=args.min_language_score)
    if lang != base.language and not base.language_enabled:
        raise InputError("the run did not identify languages (--skip-language-id): no stored language to decide on")
    qual = base.quality
    if args.quality_preset is not None:
        qual = dataclasses.replace(qual, preset=args.quality_preset)
    if args.min_words is not None:
        qual = dataclasses.replace(qual, min_words=args.min_words)
    changes = {name: getattr(args, name) for name in MACHINE_SETTINGS if getattr(args, name) is not None}
    return DecideSettings(lang, qual, dataclasses.replace(base.decision, **changes), base.language_enabled)


def _write_shard(rows: list[dict], kind: str, fh: BinaryIO) -> None:
    schemas.write_shard(rows, kind, fh)


def _rows(path: str, kind: str) -> list[dict]:
    with open_read(path) as fh:
        table = pq.read_table(fh)
    try:
        schemas.validate_table(table, kind)
    except schemas.SchemaMismatch as exc:
        raise InputError(f"{path}: {exc}") from exc
    return table.to_pylist()


def _source(run_dir: str, allow_incomplete: bool) -> tuple[dict | None, dict]:
    """(manifest or None, thresholds record) of the source run."""
    manifest = read_run_manifest(run_dir, allow_incomplete)
    if manifest is not None:
        return manifest, dict(manifest.get("thresholds") or {})
    path = join(run_dir, THRESHOLDS_FILE)
    if not exists(path):
        return None, {}
    try:
        return None, dict(read_json(path))
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: unreadable: {exc}") from exc


def _stage_index(stage: str) -> int:
    return STAGES.index(stage)


def reached(row_reason: str | None, stage: str) -> bool:
    """Whether a row with this reason (None: curated) went through ``stage`` in the source run."""
    return row_reason is None or _stage_index(REJECT_REASONS[row_reason].stage) >= _stage_index(stage)


class Redecider:
    """The new decision for one row, before the machine-text decision (module docstring): (reason, detail),
    None (it reaches the decision), or the row's own rejection when it stays as it was."""

    def __init__(self, settings: DecideSettings):
        self.settings = settings
        self.not_redecided: Counter = Counter()

    def before_decision(self, doc: Document) -> tuple[str, str | None] | None:
        old = doc.reason
        if old is not None and old not in REJECT_REASONS:
            raise InputError(f"document {doc.id} was rejected as {old!r}, a reason code this version does not know "
                             "(pipeline/reasons.py)")
        s = self.settings
        if s.language_enabled and reached(old, LANGUAGE):
            rejected = language_decision(doc.language, doc.language_score, s.language)
            if rejected:
                return rejected
        if reached(old, QUALITY):
            try:
                rejected = quality.quality_decision(doc, s.quality)
            except quality.MissingSignal as exc:
                raise InputError(f"document {doc.id}: {exc}") from exc
            if rejected:
                return rejected
        if old is None:
            return None
        stage = REJECT_REASONS[old].stage
        if old not in REDECIDABLE or stage == DECISION:
            return None if stage == DECISION else (old, doc.detail)
        # rejected by a language or quality policy the new settings pass: it never reached dedup and scoring
        self.not_redecided[old] += 1
        return old, doc.detail


def _pairs(run_dir: str, source: dict | None) -> Iterator[tuple[str, dict[str, list[str]]]]:
    by_name: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for kind in KINDS:
        for path in run_shards(run_dir, kind, source):
            by_name[basename(path)].setdefault(kind, []).append(path)
    yield from sorted(by_name.items())


def _docs(paths: dict[str, list[str]]) -> Iterator[Document]:
    for kind in KINDS:
        for path in paths.get(kind, []):
            for row in _rows(path, kind):
                yield Document.from_row(row)


def _specs(record: Mapping) -> list[DetectorSpec]:
    try:
        thresholds = thresholds_from_record(record)
    except ValueError as exc:
        raise InputError(f"the run's thresholds record: {exc}") from exc
    return [DetectorSpec(t.detector, t.direction, t.models, tuple(sorted(published_thresholds(t.detector,
                                                                                              t.models).items())))
            for t in thresholds.values()]


def redecide_thresholds(samples, specs: list[DetectorSpec], settings: DecisionSettings, previous: Mapping):
    """Thresholds from the stored scores; where this run cannot calibrate and no --thresholds file is given, the
    source run's own threshold is kept (it decided the rows being re-decided) before any published default."""
    computed = compute_thresholds(samples, specs, settings)
    old = thresholds_from_record(previous)
    for name, t in computed.items():
        before = old.get(name)
        if t.source == CALIBRATED or t.source.startswith("file ") or before is None or before.threshold is None:
            continue
        computed[name] = dataclasses.replace(before, note=t.note, source=f"previous run ({before.source})")
    return computed


def decide(run_dir: str, output: str, args=None, *, allow_incomplete: bool = False, overwrite: bool = False,
           **overrides) -> dict:
    """Re-split ``run_dir`` into ``output`` (module docstring). ``args``: the parsed command line (or keyword
    ``overrides`` with its dest names: ``target_fpr=0.2``, ``min_words=80``, ...)."""
    run_dir, output = str(run_dir), str(output)
    if args is None:
        args = build_parser().parse_args(["--input", run_dir, "--output", output])
        for key, value in overrides.items():
            if not hasattr(args, key):
                raise TypeError(f"decide() got an unknown setting {key!r}")
            setattr(args, key, value)
    # Everything that can be refused is refused before a shard is read.
    check_separate(run_dir, output)
    check_thresholds_arg(args.thresholds)
    check_writable(output)
    source, old_record = _source(run_dir, allow_incomplete)
    base, stages = source_settings((source or {}).get("options") or {}, old_record)
    settings = apply_arguments(base, args)
    specs = _specs(old_record)
    machine_flags = [f"--{name.replace('_', '-')}" for name in MACHINE_SETTINGS if getattr(args, name) is not None]
    if machine_flags and not specs:
        raise InputError(f"{run_dir} was not scored (no thresholds in its manifest): {', '.join(machine_flags)} "
                         "has nothing to decide on")
    pairs = list(_pairs(run_dir, source))
    prepare_output(output, overwrite)

    # Pass 1: the new decision before the machine-text one; the stored scores of the pre-cutoff documents that
    # reach it (the population the pipeline calibrates on).
    redecider = Redecider(settings)
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _, paths in pairs:
        for doc in _docs(paths):
            if redecider.before_decision(doc) is None:
                for detector, language, _, value in calibration_keys(doc):
                    samples[(detector, language)].append(value)
    thresholds = redecide_thresholds(samples, specs, settings.decision, old_record) if specs else {}
    redecider.not_redecided.clear()  # counted again in pass 2

    # Pass 2: decide again and write, one output shard per input shard name.
    policy = MachinePolicy([s.name for s in specs], settings.decision)
    stats = RunStatsAccumulator()  # stats/ of the new split, from the same rows (pipeline/stats.py)
    records_in = 0
    for name, paths in pairs:
        out: dict[str, list[dict]] = {"curated": [], "rejected": []}
        for doc in _docs(paths):
            records_in += 1
            rejected = redecider.before_decision(doc)
            doc.reason = doc.detail = None
            if rejected is None:
                rejected = policy.decide(doc, thresholds)
            if rejected is not None:
                doc.reject(*rejected)
            stats.add_document(doc, flags(doc, thresholds))
            out["rejected" if doc.rejected else "curated"].append(doc.to_row())
        for kind, rows in out.items():
            if rows:
                write_atomically(join(output, f"{kind}/{name}"), functools.partial(_write_shard, rows, kind))
    record = thresholds_record(thresholds)
    if record:
        write_bytes(join(output, THRESHOLDS_FILE), json.dumps(record, indent=2, sort_keys=True).encode())
    # The ledger: rows read against the rows in the shards written, counted again from the files.
    curated, _, _, curated_paths = count_shards(output, "curated")
    rejected_n, rejected_by, _, rejected_paths = count_shards(output, "rejected")
    options = {**stages, "language": {**to_json(settings.language), "enabled": settings.language_enabled},
               "quality": to_json(settings.quality), "decision": to_json(settings.decision),
               "decide": {"input": run_dir, "output": output, "allow_incomplete": allow_incomplete}}
    manifest = assemble_manifest(
        counts={"records_in": records_in, "curated": curated, "rejected": rejected_n,
                "rejected_by_reason": dict(sorted(rejected_by.items())), "skipped": {}, "errors": 0,
                "errors_by_reason": {}},
        shards={"curated": curated_paths, "rejected": rejected_paths, "errors": []}, options=options,
        extra={"decided_from": run_dir, "source_complete": source is not None,
               "source_counts": source["counts"] if source else None, "thresholds": record,
               "not_redecided": dict(sorted(redecider.not_redecided.items()))})
    check_balance(manifest)
    write_stats(output, *stats.to_json({"decided_from": run_dir}, record, "lowbg decide"))
    write_manifest(output, manifest)
    return manifest


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    manifest = decide(args.input, args.output, args, allow_incomplete=args.allow_incomplete,
                      overwrite=args.overwrite)
    c = manifest["counts"]
    if not manifest["source_complete"]:
        print(f"note: {args.input} had no valid manifest (--allow-incomplete): decided over the shards present")
    for name, entry in manifest["thresholds"].items():
        print(f"{name}: threshold {entry['threshold']} ({entry['source']}, n_human={entry.get('n_human')})")
    print(f"records {c['records_in']}: curated {c['curated']}, rejected {c['rejected']} {c['rejected_by_reason']}")
    if manifest["not_redecided"]:
        print(f"kept as decided (rejected before dedup by a policy the new settings pass; re-run curate to loosen "
              f"it): {manifest['not_redecided']}")
    return 0


def main(argv: list[str]) -> int:
    return run_command("lowbg decide", lambda: _main(argv))
