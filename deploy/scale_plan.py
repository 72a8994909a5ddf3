"""The snapshot-scale plan of deploy/README.md, computed: documents per stage, CPU core-hours, GPU-hours, dedup
shuffle volume, Dataflow worker counts and wall time, and the reference index of a snapshot processed in
``--input-slice`` jobs (its size, build, and what the jobs read and rewrite of it).

Every input is in deploy/scale_plan.json, each with its source: a measured figure (per-core or per-GPU
documents/s from BENCHMARKS.md; ``null`` until measured) or a stated assumption. Results that need a missing
figure print as pending, with a ``<!-- FIGURE: name -->`` marker where the number will go.

    python deploy/scale_plan.py                                  # print the markdown tables
    python deploy/scale_plan.py --set ingest_extract_docs_per_core_s=140 --set llm_7b_docs_per_gpu_s=9
    python deploy/scale_plan.py --inputs my_plan.json
    python deploy/scale_plan.py --update-readme                  # rewrite the tables in deploy/README.md
    python deploy/scale_plan.py --json                           # the numbers, for scripts

tests/deploy/test_scale_plan.py checks the arithmetic and that deploy/README.md shows what this script prints.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_INPUTS = HERE / "scale_plan.json"
README = HERE / "README.md"
BEGIN_MARK = ("<!-- scale_plan.py:begin (generated: edit deploy/scale_plan.json, "
              "run deploy/scale_plan.py --update-readme) -->")
END_MARK = "<!-- scale_plan.py:end -->"

SECONDS_PER_HOUR = 3600.0
CPU_STAGES = (  # (stage, figure, documents it runs on)
    ("ingest + extract", "ingest_extract_docs_per_core_s", "responses"),
    ("language ID + quality", "langid_quality_docs_per_core_s", "extracted"),
    ("dedup (exact + MinHash)", "dedup_minhash_docs_per_core_s", "kept_lang_quality"),
    ("fastText detector", "fasttext_detector_docs_per_core_s", "deduped"),
)
LLM_DETECTORS = (  # (label, figure)
    ("tiny LM detector", "llm_tiny_docs_per_gpu_s"),
    ("7B LM detector", "llm_7b_docs_per_gpu_s"),
)


@dataclass(frozen=True)
class Inputs:
    values: dict[str, float | str | None]
    notes: dict[str, str]
    figures: tuple[str, ...]  # the names that are measured figures (the rest: assumptions, deployment)
    snapshots: dict[str, float]  # snapshot kind -> share of its documents captured before the cutoff

    def __getitem__(self, name: str):
        return self.values[name]

    def num(self, name: str) -> float | None:
        v = self.values[name]
        return None if v is None else float(v)


def load_inputs(path: Path = DEFAULT_INPUTS, overrides: dict[str, str] | None = None) -> Inputs:
    raw = json.loads(path.read_text(encoding="utf-8"))
    values: dict[str, float | str | None] = {}
    notes: dict[str, str] = {}
    figures = []
    for section in ("figures", "assumptions", "deployment"):
        for name, entry in raw[section].items():
            if name in values:
                raise ValueError(f"{name} is defined twice in {path}")
            values[name] = entry["value"]
            notes[name] = entry.get("source") or entry.get("why") or ""
            if section == "figures":
                figures.append(name)
    for name, text in (overrides or {}).items():
        if name not in values:
            raise ValueError(f"unknown input {name!r}; known: {', '.join(sorted(values))}")
        values[name] = _parse_value(text)
    snapshots = {k: float(v) for k, v in raw["snapshots"].items()}
    return Inputs(values, notes, tuple(figures), snapshots)


def _parse_value(text: str) -> float | str | None:
    if text.strip().lower() in ("null", "none", ""):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b <= 0:
        raise ValueError("a throughput figure must be > 0")
    return a / b


def _sum(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def funnel(inp: Inputs) -> dict[str, float]:
    """Documents entering each stage of one snapshot."""
    responses = inp.num("warc_files") * inp.num("responses_per_warc")
    extracted = responses * inp.num("html_share")
    kept = extracted * inp.num("language_keep_share") * inp.num("quality_keep_share")
    after_exact = kept * (1 - inp.num("exact_dup_share"))
    deduped = after_exact * (1 - inp.num("near_dup_share"))
    return {"responses": responses, "extracted": extracted, "kept_lang_quality": kept,
            "after_exact_dedup": after_exact, "deduped": deduped}


def cpu_core_hours(inp: Inputs, docs: dict[str, float]) -> dict[str, float | None]:
    """Core-hours per CPU stage: documents / (documents per core-second) / 3600."""
    speed = inp.num("vcpu_speed_vs_bench_core")
    return {stage: _div(_div(docs[which], inp.num(fig)), SECONDS_PER_HOUR * speed)
            for stage, fig, which in CPU_STAGES}


def llm_documents(inp: Inputs, deduped: float, pre_cutoff_share: float, cascade: bool, skip: bool) -> float:
    """Documents the expensive detector scores.

    cascade: only documents whose fastText score falls in the cascade band go on (cascade_band_fraction);
    skip: pre-cutoff documents are human by provenance and only a calibration sample is scored (score_pre_cutoff).
    """
    band = inp.num("cascade_band_fraction") if cascade else 1.0
    pre = deduped * pre_cutoff_share
    post = deduped - pre
    pre_scored = pre * inp.num("score_pre_cutoff") if skip else pre * band
    return post * band + pre_scored


def gpu_hours_table(inp: Inputs, deduped: float) -> list[dict]:
    rows = []
    for snapshot, share in inp.snapshots.items():
        for cascade in (False, True):
            for skip in (False, True):
                n = llm_documents(inp, deduped, share, cascade, skip)
                row = {"snapshot": snapshot, "cascade": cascade, "pre_cutoff_skip": skip, "documents": n}
                for label, fig in LLM_DETECTORS:
                    row[label] = _div(_div(n, inp.num(fig)), SECONDS_PER_HOUR)
                rows.append(row)
    return rows


def shuffle_bytes(inp: Inputs, docs: dict[str, float]) -> dict[str, float]:
    """Bytes the dedup stage shuffles (GroupByKey input), by phase."""
    record = inp.num("doc_id_bytes") + inp.num("shuffle_record_overhead_bytes")
    exact = docs["kept_lang_quality"] * (inp.num("exact_key_bytes") + record)
    near = docs["after_exact_dedup"] * inp.num("minhash_bands") * (inp.num("band_key_bytes") + record)
    # Dropping duplicates moves every document through one shuffle: grouped by digest, or joined with the verdicts.
    rejoin = docs["kept_lang_quality"] * (inp.num("avg_text_bytes") + inp.num("doc_metadata_bytes") + record)
    return {"exact": exact, "near": near, "rejoin": rejoin, "total": exact + near + rejoin}


def index_plan(inp: Inputs, docs: dict[str, float]) -> dict:
    """The reference index of one snapshot's curated documents (every one indexed: ``--documents all``), and the
    cost of processing the snapshot in ``input_slices`` jobs that each run against the index of the jobs before
    (``--on-reference-match reject``) and then extend it. Band keys: an upper bound (one per band per document;
    near copies that survived dedup share a few)."""
    n = docs["deduped"]
    rows = {"exact": n, "bands": n * inp.num("minhash_bands"), "signatures": n}
    per_row = {t: inp.num(f"index_{name}_row_bytes") for t, name in
               (("exact", "exact"), ("bands", "band"), ("signatures", "signature"))}
    disk = {t: None if per_row[t] is None else rows[t] * per_row[t] for t in rows}
    total = _sum(disk.values())
    record = inp.num("doc_id_bytes") + inp.num("shuffle_record_overhead_bytes") + 8  # + the date
    shuffled = (rows["exact"] * (inp.num("exact_key_bytes") + record)
                + rows["bands"] * (inp.num("band_key_bytes") + record)
                + rows["signatures"] * (inp.num("minhash_num_perm") * 4 + 48 + record))
    slices = inp.num("input_slices")
    # Job k (0-based) reads the index of k slices: on average (N - 1) / 2 slices' worth, N times.
    mean_share = (slices - 1) / (2 * slices)
    build_hours = _div(_div(n, inp.num("index_build_docs_per_core_s")),
                       SECONDS_PER_HOUR * inp.num("vcpu_speed_vs_bench_core"))
    return {
        "rows": rows, "disk_bytes": disk, "disk_bytes_total": total,
        "partitions": None if total is None else math.ceil(total / inp.num("index_partition_bytes")),
        "build_core_hours": build_hours,
        "curate_shuffle_bytes_full_index": shuffled,
        "sliced_curate_shuffle_bytes": slices * mean_share * shuffled,
        # each extension reads and rewrites the index
        "sliced_extend_io_bytes": None if total is None else slices * mean_share * total * 2,
    }


def sizing(inp: Inputs, cpu_hours: float | None, gpu_hours: float | None, read_bytes: float) -> dict:
    """Dataflow worker counts and wall time for the CPU pool and the GPU pool (resource-hint mode)."""
    util = inp.num("utilization")
    cpu_vcpus = inp.num("cpu_vcpus_per_worker")
    cpu_workers = inp.num("cpu_max_workers")
    gpus = inp.num("gpus_per_worker")
    gpu_workers = inp.num("gpu_max_workers")
    target = inp.num("target_wall_hours")
    cpu_wall = _div(cpu_hours, cpu_workers * cpu_vcpus * util)
    gpu_wall = _div(gpu_hours, gpu_workers * gpus * util)
    out = {
        "cpu_wall_hours": cpu_wall,
        "gpu_wall_hours": gpu_wall,
        # The pools run concurrently (the GPU step consumes what the CPU stages emit): the slower one sets the pace.
        "wall_hours": None if cpu_wall is None or gpu_wall is None else max(cpu_wall, gpu_wall),
        "cpu_workers_for_target": None if cpu_hours is None else math.ceil(cpu_hours / (target * cpu_vcpus * util)),
        "gpu_workers_for_target": None if gpu_hours is None else math.ceil(gpu_hours / (target * gpus * util)),
        "read_gbytes_per_s": None if cpu_wall is None else read_bytes / (cpu_wall * SECONDS_PER_HOUR) / 1e9,
        "read_mbytes_per_s_per_worker": None if cpu_wall is None
        else read_bytes / (cpu_wall * SECONDS_PER_HOUR) / cpu_workers / 1e6,
        "cpu_vcpu_hours": None if cpu_wall is None else cpu_wall * cpu_workers * cpu_vcpus,
        "gpu_machine_hours": None if gpu_wall is None or cpu_wall is None
        else gpu_workers * max(cpu_wall, gpu_wall),
    }
    # --gpu service: every worker is a GPU machine and runs the CPU stages too, on its few vCPUs.
    svc_vcpus = inp.num("gpu_vcpus_per_worker")
    svc_cpu_wall = _div(cpu_hours, gpu_workers * svc_vcpus * util)
    out["service_mode_wall_hours"] = None if svc_cpu_wall is None or gpu_wall is None else max(svc_cpu_wall, gpu_wall)
    return out


def compute(inp: Inputs) -> dict:
    docs = funnel(inp)
    cpu = cpu_core_hours(inp, docs)
    cpu_total = _sum(cpu.values())
    gpu_rows = gpu_hours_table(inp, docs["deduped"])
    plan_rows = [r for r in gpu_rows if r["snapshot"] == inp["plan_snapshot"]
                 and r["cascade"] and r["pre_cutoff_skip"]]
    if len(plan_rows) != 1:
        raise ValueError(f"plan_snapshot {inp['plan_snapshot']!r} is not one of {list(inp.snapshots)}")
    plan_gpu = plan_rows[0][inp["plan_detector"]]
    read_bytes = inp.num("warc_files") * inp.num("warc_bytes")
    return {
        "documents": docs,
        "read_bytes": read_bytes,
        "cpu_core_hours": cpu,
        "cpu_core_hours_total": cpu_total,
        "gpu_hours": gpu_rows,
        "shuffle_bytes": shuffle_bytes(inp, docs),
        "index": index_plan(inp, docs),
        "plan": {"snapshot": inp["plan_snapshot"], "detector": inp["plan_detector"], "gpu_hours": plan_gpu,
                 **sizing(inp, cpu_total, plan_gpu, read_bytes)},
    }


# ---------------------------------------------------------------------------------------------------- markdown


def _fmt(x: float | None, digits: int = 0, missing: str = "pending") -> str:
    if x is None:
        return f"_{missing}_"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def _number(x: float) -> str:
    return f"{x:,.0f}" if x.is_integer() else f"{x:,.6g}"


def _docs(x: float) -> str:
    return f"{x / 1e9:,.3f} B"


def _bytes(x: float | None) -> str:
    return "_pending_" if x is None else f"{x / 1e12:,.1f} TB"


def _figure_cell(inp: Inputs, name: str) -> str:
    v = inp[name]
    return f"<!-- FIGURE: {name} --> _pending_" if v is None else _fmt(float(v), 1)


def _needs(inp: Inputs, *figures: str) -> str:
    missing = [f for f in figures if inp[f] is None]
    return "" if not missing else " (needs " + ", ".join(f"`{f}`" for f in missing) + ")"


def render_markdown(inp: Inputs, res: dict) -> str:
    docs = res["documents"]
    out = []
    out.append("#### Inputs\n")
    out.append("| input | value | source |")
    out.append("|---|---:|---|")
    for name in inp.values:
        if name in inp.figures:
            value = _figure_cell(inp, name)
        else:
            v = inp[name]
            value = v if isinstance(v, str) else _number(float(v))
        out.append(f"| `{name}` | {value} | {inp.notes[name]} |")

    out.append("\n#### Documents per stage (one snapshot)\n")
    out.append("| stage input | documents | arithmetic |")
    out.append("|---|---:|---|")
    out.append(f"| WARC response records | {_docs(docs['responses'])} | `warc_files` x `responses_per_warc` |")
    out.append(f"| extracted HTML documents | {_docs(docs['extracted'])} | x `html_share` |")
    out.append(f"| kept by language ID + quality | {_docs(docs['kept_lang_quality'])} "
               "| x `language_keep_share` x `quality_keep_share` |")
    out.append(f"| after exact dedup | {_docs(docs['after_exact_dedup'])} | x (1 - `exact_dup_share`) |")
    out.append(f"| after near dedup (to the detectors) | {_docs(docs['deduped'])} | x (1 - `near_dup_share`) |")

    out.append("\n#### CPU core-hours (one snapshot)\n")
    out.append("| stage | documents | docs/core-s | core-hours |")
    out.append("|---|---:|---:|---:|")
    for stage, fig, which in CPU_STAGES:
        out.append(f"| {stage} | {_docs(docs[which])} | {_figure_cell(inp, fig)} "
                   f"| {_fmt(res['cpu_core_hours'][stage])} |")
    out.append(f"| **total** | | | **{_fmt(res['cpu_core_hours_total'])}** |")
    out.append("\ncore-hours = documents / (docs/core-s x `vcpu_speed_vs_bench_core`) / 3600.")

    out.append("\n#### GPU-hours of the LM detectors (one snapshot)\n")
    labels = [label for label, _ in LLM_DETECTORS]
    out.append("| snapshot | cascade | pre-cutoff skip | documents scored | " + " | ".join(labels) + " |")
    out.append("|---|---|---|---:|" + "---:|" * len(labels))
    for r in res["gpu_hours"]:
        cells = " | ".join(_fmt(r[label]) for label in labels)
        out.append(f"| {r['snapshot']} | {'yes' if r['cascade'] else 'no'} | {'yes' if r['pre_cutoff_skip'] else 'no'}"
                   f" | {_docs(r['documents'])} | {cells} |")
    figs = ", ".join(f"`{fig}`" for _, fig in LLM_DETECTORS)
    out.append(f"\nGPU-hours = documents scored / docs/GPU-s ({figs}) / 3600; documents scored = post-cutoff x "
               "(`cascade_band_fraction` with the cascade, else 1) + pre-cutoff x (`score_pre_cutoff` with the skip, "
               "else the same factor as post-cutoff).")

    sh = res["shuffle_bytes"]
    out.append("\n#### Dedup shuffle volume (one snapshot)\n")
    out.append("| phase | bytes | arithmetic |")
    out.append("|---|---:|---|")
    out.append(f"| exact (digest -> ids) | {_bytes(sh['exact'])} | kept x (`exact_key_bytes` + `doc_id_bytes` + "
               "`shuffle_record_overhead_bytes`) |")
    out.append(f"| near (MinHash bands -> ids) | {_bytes(sh['near'])} | after exact x `minhash_bands` x "
               "(`band_key_bytes` + `doc_id_bytes` + `shuffle_record_overhead_bytes`) |")
    out.append(f"| the documents themselves, once (grouped by digest, or joined with the verdicts) "
               f"| {_bytes(sh['rejoin'])} | kept x (`avg_text_bytes` + "
               "`doc_metadata_bytes` + `doc_id_bytes` + `shuffle_record_overhead_bytes`) |")
    out.append(f"| **total** | **{_bytes(sh['total'])}** | |")

    ix = res["index"]
    slices = f"{inp.num('input_slices'):,.0f}"
    out.append("\n#### Reference index of one snapshot, and the snapshot in `--input-slice` jobs\n")
    out.append("| quantity | value | arithmetic |")
    out.append("|---|---:|---|")
    out.append(f"| exact keys / signatures | {_docs(ix['rows']['exact'])} | after near dedup (every curated "
               "document indexed) |")
    out.append(f"| band keys (at most) | {_docs(ix['rows']['bands'])} | x `minhash_bands` |")
    out.append(f"| on disk: exact, bands, signatures | {_bytes(ix['disk_bytes']['exact'])}, "
               f"{_bytes(ix['disk_bytes']['bands'])}, {_bytes(ix['disk_bytes']['signatures'])} | rows x "
               "`index_exact_row_bytes`, `index_band_row_bytes`, `index_signature_row_bytes` |")
    out.append(f"| **index size** | **{_bytes(ix['disk_bytes_total'])}** | |")
    out.append(f"| `--partitions` | {_fmt(ix['partitions'])} | index size / `index_partition_bytes` |")
    out.append(f"| build core-hours (`lowbg index build`) | {_fmt(ix['build_core_hours'])}"
               f"{_needs(inp, 'index_build_docs_per_core_s')} | documents / `index_build_docs_per_core_s` / 3600 |")
    out.append("| curate shuffle of the whole index (one job against it) | "
               f"{_bytes(ix['curate_shuffle_bytes_full_index'])} | rows x (key + `doc_id_bytes` + date + "
               "`shuffle_record_overhead_bytes`), signatures `minhash_num_perm` x 4 bytes |")
    out.append(f"| {slices} sliced jobs: index shuffled in curate, all jobs | "
               f"{_bytes(ix['sliced_curate_shuffle_bytes'])} | job k reads the index of k slices: N x (N-1)/2N x "
               "the line above |")
    out.append(f"| {slices} sliced jobs: `index extend` reads + writes, all jobs | "
               f"{_bytes(ix['sliced_extend_io_bytes'])} | N x (N-1)/2N x 2 x index size |")
    out.append("\nBoth sliced totals grow with N x the index: fewer, larger slices (or `index extend` with several "
               "runs at once) cost less; a job far smaller than the index is better served by point lookups "
               "(`IndexReader`: one row group per key) than by shuffling the whole index.")

    p = res["plan"]
    gpu_fig = dict(LLM_DETECTORS)[p["detector"]]
    cpu_figs = [fig for _, fig, _ in CPU_STAGES]
    out.append(f"\n#### Dataflow plan: {p['snapshot']}, {p['detector']}, cascade and pre-cutoff skip on\n")
    out.append("| quantity | value | arithmetic |")
    out.append("|---|---:|---|")
    out.append(f"| read volume | {_bytes(res['read_bytes'])} | `warc_files` x `warc_bytes` |")
    out.append(f"| CPU core-hours | {_fmt(res['cpu_core_hours_total'])}{_needs(inp, *cpu_figs)} | table above |")
    out.append(f"| GPU-hours | {_fmt(p['gpu_hours'])}{_needs(inp, gpu_fig)} | table above |")
    out.append(f"| CPU pool | {inp['cpu_max_workers']:,.0f} x {inp['cpu_machine_type']} "
               f"({inp['cpu_vcpus_per_worker']:,.0f} vCPU) | `--max-workers`, `--machine-type` |")
    out.append(f"| GPU pool (resource hint) | {inp['gpu_max_workers']:,.0f} x {inp['gpu_machine_type']} "
               f"({inp['gpus_per_worker']:,.0f} GPU) | Dataflow right fitting for the scoring step |")
    out.append(f"| CPU pool wall time | {_fmt(p['cpu_wall_hours'], 1)} h | core-hours / (workers x vCPUs x "
               "`utilization`) |")
    out.append(f"| GPU pool wall time | {_fmt(p['gpu_wall_hours'], 1)} h | GPU-hours / (workers x GPUs x "
               "`utilization`) |")
    out.append(f"| **expected wall time** | **{_fmt(p['wall_hours'], 1)} h** | max of the two: the pools overlap |")
    out.append(f"| CPU workers for {inp['target_wall_hours']:,.0f} h | {_fmt(p['cpu_workers_for_target'])} "
               "| core-hours / (`target_wall_hours` x vCPUs x `utilization`) |")
    out.append(f"| GPU workers for {inp['target_wall_hours']:,.0f} h | {_fmt(p['gpu_workers_for_target'])} "
               "| GPU-hours / (`target_wall_hours` x GPUs x `utilization`) |")
    out.append(f"| aggregate read rate | {_fmt(p['read_gbytes_per_s'], 2)} GB/s "
               f"({_fmt(p['read_mbytes_per_s_per_worker'], 0)} MB/s per CPU worker) | read volume / CPU wall time |")
    out.append(f"| CPU vCPU-hours billed | {_fmt(p['cpu_vcpu_hours'])} | workers x vCPUs x CPU wall time |")
    out.append(f"| GPU machine-hours billed | {_fmt(p['gpu_machine_hours'])} | GPU workers x expected wall time "
               "(upper bound: autoscaling releases idle GPU workers) |")
    out.append(f"| wall time with `--gpu service` instead | {_fmt(p['service_mode_wall_hours'], 1)} h | every "
               f"worker a {inp['gpu_machine_type']}: CPU stages on {inp['gpu_max_workers']:,.0f} x "
               f"{inp['gpu_vcpus_per_worker']:,.0f} vCPUs |")
    return "\n".join(out) + "\n"


def update_readme(markdown: str, readme: Path = README) -> bool:
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(BEGIN_MARK), text.find(END_MARK)
    if start < 0 or end < start:
        raise ValueError(f"{readme} lacks the markers {BEGIN_MARK!r} ... {END_MARK!r}")
    new = text[: start + len(BEGIN_MARK)] + "\n" + markdown + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def readme_block(readme: Path = README) -> str:
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(BEGIN_MARK), text.find(END_MARK)
    if start < 0 or end < start:
        raise ValueError(f"{readme} lacks the scale_plan.py markers")
    return text[start + len(BEGIN_MARK) + 1: end]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=Path, default=DEFAULT_INPUTS, help="figures and assumptions (JSON)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override one input")
    ap.add_argument("--json", action="store_true", help="print the computed numbers as JSON")
    ap.add_argument("--update-readme", action="store_true", help="rewrite the generated block of deploy/README.md")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq:
            ap.error(f"--set expects NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value
    try:
        inp = load_inputs(args.inputs, overrides)
        res = compute(inp)
    except ValueError as exc:
        ap.error(str(exc))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    markdown = render_markdown(inp, res)
    if args.update_readme:
        changed = update_readme(markdown)
        print(f"{README}: {'updated' if changed else 'already up to date'}")
        return 0
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
