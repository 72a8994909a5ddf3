"""Runs side by side: each metric's difference from the first run, per generation, with a Welch 95% CI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from collapse.report import DIVERSITY, REPORTED, SUPPORT, fmt_ci, ok_rows, plot_runs, summary_table
from collapse.stats import diff_ci, mean_ci


def run_label(run: Path) -> str:
    cfg = json.loads((run / "config.json").read_text())["options"]
    regime = f"mix {cfg['real_fraction']:g}" if cfg["regime"] == "mix" else cfg["regime"]
    return f"{run.name} ({cfg['model']}, {regime})"


def load_runs(runs: list[str | Path]) -> dict[str, pa.Table]:
    out: dict[str, pa.Table] = {}
    for r in runs:
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
    if len(runs) < 2:
        raise ValueError("compare needs at least two runs")
    tables = load_runs(runs)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(tables)
    base = labels[0]
    rows = []
    for label in labels[1:]:
        for d in differences(tables[base], tables[label], REPORTED):
            rows.append({"baseline": base, "run": label, **d})
    table = pa.Table.from_pylist(rows) if rows else pa.table({"baseline": pa.array([], pa.string())})
    pq.write_table(table, out / "compare.parquet")
    plots = [
        plot_runs(tables, ["heldout_ppl_ratio", "heldout_ppl", "gen0_ppl_on_samples"], out / "compare_ppl_ratio.png",
                  "held-out perplexity (mean, 95% CI over seeds)"),
        plot_runs(tables, DIVERSITY, out / "compare_diversity.png", "diversity of the samples"),
        plot_runs(tables, SUPPORT, out / "compare_support.png", "support of the samples"),
    ]
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
