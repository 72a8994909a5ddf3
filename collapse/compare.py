"""Runs side by side: each metric's difference from the first run, per generation, with a Welch 95% CI.

A `lowbg collapse web` experiment folder stands for its arms (one run per filter), in the experiment's order."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from collapse.report import DIVERSITY, FILTER, REPORTED, SUPPORT, fmt_ci, ok_rows, plot_runs, summary_table
from collapse.stats import diff_ci, mean_ci


def run_label(run: Path) -> str:
    path = run / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run} is not a collapse run (no config.json)")
    cfg = json.loads(path.read_text())["options"]
    regime = f"mix {cfg['real_fraction']:g}" if cfg["regime"] == "mix" else cfg["regime"]
    if cfg["regime"] == "web":
        regime = f"web, filter {cfg.get('filter', 'none')}"
    return f"{run.name} ({cfg['model']}, {regime})"


def expand_runs(runs: list[str | Path]) -> list[Path]:
    """Run folders, with each web experiment folder replaced by its arms."""
    from collapse.experiment import arm_dirs, is_experiment

    out: list[Path] = []
    for r in runs:
        out.extend(arm_dirs(r).values() if is_experiment(r) else [Path(r)])
    return out


def load_runs(runs: list[str | Path]) -> dict[str, pa.Table]:
    out: dict[str, pa.Table] = {}
    for r in expand_runs(runs):
        r = Path(r)
        if not (r / "metrics.parquet").exists():
            raise FileNotFoundError(f"{r} is not a finished collapse run (no metrics.parquet)")
        label = run_label(r)
        if label in out:
            label = f"{r} ({label.split(' (', 1)[1]}"
        out[label] = pq.read_table(r / "metrics.parquet")
    return out


def differences(base: pa.Table, other: pa.Table, metrics: list[str]) -> list[dict]:
    rows_a, rows_b = ok_rows(base), ok_rows(other)
    gens = sorted({r["generation"] for r in rows_a} & {r["generation"] for r in rows_b})
    out = []
    for m in metrics:
        if m not in base.column_names or m not in other.column_names:
            continue
        for g in gens:
            a = [r.get(m) for r in rows_a if r["generation"] == g]
            b = [r.get(m) for r in rows_b if r["generation"] == g]
            d, lo, hi = diff_ci(a, b)
            out.append({"generation": g, "metric": m, "baseline_mean": mean_ci(a)[0], "run_mean": mean_ci(b)[0],
                        "diff": d, "diff_low": lo, "diff_high": hi,
                        "significant": bool(lo == lo and hi == hi and (lo > 0 or hi < 0))})
    return out


def compare(runs: list[str | Path], output: str | Path, log=print) -> pa.Table:
    """Writes compare.md, compare.parquet and compare_*.png to `output`; returns the differences table."""
    tables = load_runs(runs)
    if len(tables) < 2:
        raise ValueError("compare needs at least two runs (or a web experiment of two arms or more)")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(tables)
    base = labels[0]
    rows = []
    for label in labels[1:]:
        for d in differences(tables[base], tables[label], REPORTED + FILTER):
            rows.append({"baseline": base, "run": label, **d})
    table = pa.Table.from_pylist(rows) if rows else pa.table({"baseline": pa.array([], pa.string())})
    pq.write_table(table, out / "compare.parquet")
    plots = [
        plot_runs(tables, ["heldout_ppl_ratio", "heldout_ppl", "gen0_ppl_on_samples"], out / "compare_ppl_ratio.png",
                  "held-out perplexity (mean, 95% CI over seeds)"),
        plot_runs(tables, DIVERSITY, out / "compare_diversity.png", "diversity of the samples"),
        plot_runs(tables, SUPPORT, out / "compare_support.png", "support of the samples"),
    ]
    if any("filter_tpr" in t.column_names for t in tables.values()):
        plots.append(plot_runs(tables, ["filter_tpr", "filter_fpr", "train_synthetic_share", "filter_removed_real"],
                               out / "compare_filter.png", "the web regime's filter"))
    md = ["# Collapse runs compared", "", f"Baseline: **{base}**. Each cell is run minus baseline: the difference of",
          "the means over seeds, with a Welch 95% CI; `*` marks an interval that excludes 0.", ""]
    for label in labels:
        md += [f"## {label}", "", "```", summary_table(tables[label]), "```", ""]
    for label in labels[1:]:
        diffs = [r for r in rows if r["run"] == label]
        gens = sorted({r["generation"] for r in diffs})
        md += [f"## {label} minus {base}", "", "| metric | " + " | ".join(f"gen {g}" for g in gens) + " |",
               "|---" * (len(gens) + 1) + "|"]
        for m in dict.fromkeys(r["metric"] for r in diffs):
            cells = {r["generation"]: fmt_ci(r["diff"], r["diff_low"], r["diff_high"]) + (" *" if r["significant"]
                                                                                              else "")
                     for r in diffs if r["metric"] == m}
            md.append(f"| {m} | " + " | ".join(cells.get(g, "") for g in gens) + " |")
        md.append("")
    md += ["## Plots", ""] + [f"![{p.name}]({p.name})" for p in plots]
    (out / "compare.md").write_text("\n".join(md) + "\n")
    final = [r for r in rows if r["metric"] in ("heldout_ppl_ratio", "type_survival")]
    last = max((r["generation"] for r in final), default=None)
    for r in final:
        if r["generation"] == last:
            log(f"{r['run']} - {base}: {r['metric']} at generation {last}: "
                f"{fmt_ci(r['diff'], r['diff_low'], r['diff_high'])}{' (significant)' if r['significant'] else ''}")
    log(f"comparison written to {out / 'compare.md'}")
    return table
