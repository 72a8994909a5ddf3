"""report.md and the plots of a run (and, through `plot_runs`, of several runs side by side). A web-regime run's
report adds its filter's figures per generation (TPR, FPR, synthetic share trained, real documents thrown away)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from collapse.stats import mean_ci  # noqa: E402

SUMMARY = ["heldout_ppl", "heldout_ppl_ratio", "gen0_ppl_on_samples", "distinct_2", "type_survival", "filter_tpr",
           "filter_fpr", "train_synthetic_share"]
REPORTED = [
    "heldout_ppl", "heldout_ppl_ratio", "heldout_ppl_p50", "heldout_ppl_p90", "heldout_ppl_p99",
    "heldout_ppl_p90_ratio", "heldout_ppl_p99_ratio",
    "heldout_bits_per_char", "gen0_ppl_on_samples", "gen0_ppl_on_samples_p50", "distinct_1", "distinct_2",
    "distinct_3", "self_bleu", "unigram_entropy", "zipf_slope", "types", "bigrams", "trigrams", "type_survival",
    "bigram_survival", "sample_words", "empty_samples",
]
# The web regime's filter (collapse.web): present only in web runs.
FILTER = ["contamination", "pool_real", "pool_synthetic", "filter_tpr", "filter_fpr", "filter_auroc", "filter_unscored",
          "filter_removed_real", "filter_removed_synthetic", "train_real", "train_synthetic", "train_synthetic_share",
          "real_pool_left", "filter_threshold", "filter_seconds", "filter_share"]
DIVERSITY = ["distinct_1", "distinct_2", "distinct_3", "self_bleu", "unigram_entropy", "zipf_slope"]
SUPPORT = ["types", "bigrams", "type_survival", "bigram_survival"]


def ok_rows(table: pa.Table) -> list[dict]:
    return [r for r in table.to_pylist() if r.get("status") == "ok"]


def aggregate(table: pa.Table, metric: str) -> list[tuple[int, float, float, float, int]]:
    """(generation, mean, low, high, seeds) over the seeds, for each generation."""
    rows = ok_rows(table)
    out = []
    for g in sorted({r["generation"] for r in rows}):
        out.append((g, *mean_ci(r.get(metric) for r in rows if r["generation"] == g)))
    return out


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "nan"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3f}"


def fmt_ci(m: float, lo: float, hi: float) -> str:
    return _fmt(m) + ("" if not math.isfinite(lo) else f" [{_fmt(lo)}, {_fmt(hi)}]")


def summary_table(table: pa.Table, metrics: list[str] = SUMMARY) -> str:
    """Plain-text table: mean [95% CI] over the seeds of each generation."""
    cols = {m: {g: fmt_ci(mu, lo, hi) for g, mu, lo, hi, _ in aggregate(table, m)} for m in metrics
            if m in table.column_names}
    gens = sorted({r["generation"] for r in ok_rows(table)})
    header = ["gen", *cols]
    body = [[str(g), *(cols[m].get(g, "") for m in cols)] for g in gens]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths)) for row in [header, *body]]
    stops = [r for r in table.to_pylist() if r.get("status") == "stopped"]
    lines += [f"seed {r['seed']} stopped at generation {r['generation']}: {r['reason']}" for r in stops]
    return "\n".join(lines)


# ---- plots -----------------------------------------------------------------------------------------------------------
def _fixed_layout(fig, nrows: int, ncols: int, title: bool) -> None:
    """Margins in inches for the panels' labels and titles: tight_layout measures every tick label's extent and costs
    more than drawing the figure."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.75 / w, right=1 - 0.2 / w, bottom=0.55 / h, top=1 - (0.75 if title else 0.4) / h,
                        wspace=0.9 * ncols / max(w - 0.95, 1), hspace=0.9 * nrows / max(h - 1.3, 1))


def plot_runs(runs: dict[str, pa.Table], metrics: list[str], path: Path, title: str = "") -> Path:
    """One panel per metric: mean over seeds per generation with a 95% CI band, one line per run."""
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for label, table in runs.items():
            if metric not in table.column_names:
                continue
            agg = aggregate(table, metric)
            if not agg:
                continue
            g, m, lo, hi, _ = (np.array(x, dtype=float) for x in zip(*agg))
            ax.plot(g, m, marker="o", label=label)
            ax.fill_between(g, lo, hi, alpha=0.25)
        ax.set_title(metric)
        ax.set_xlabel("generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    _fixed_layout(fig, nrows, ncols, bool(title))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_gen0_histograms(run: Path, path: Path) -> Path | None:
    """Generation 0's perplexity on each generation's samples (Shumailov et al. 2024, Fig. 1 left)."""
    per_gen: dict[int, list[np.ndarray]] = {}
    for f in sorted(run.glob("seed_*/gen_[0-9][0-9][0-9]/samples.parquet")):
        g = int(f.parent.name.split("_")[1])
        x = pq.read_table(f, columns=["gen0_ppl"]).column("gen0_ppl").to_numpy(zero_copy_only=False)
        per_gen.setdefault(g, []).append(x[np.isfinite(x) & (x > 0)])
    data = {g: np.concatenate(v) for g, v in per_gen.items() if sum(len(a) for a in v)}
    if not data:
        return None
    # Log-spaced bins over the central 99% of all samples, so that a few outliers do not flatten the plot.
    pooled = np.log10(np.concatenate(list(data.values())))
    lo, hi = np.quantile(pooled, [0.005, 0.995])
    edges = np.linspace(lo, max(hi, lo + 1e-3), 50)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    cmap = plt.get_cmap("viridis")
    for i, (g, v) in enumerate(sorted(data.items())):
        h, _ = np.histogram(np.log10(v), bins=edges, density=True)
        ax.stairs(h, 10**edges, linewidth=1.6, color=cmap(i / max(1, len(data) - 1)), label=f"generation {g}")
    ax.set_xscale("log")
    ax.set_xlabel("perplexity under the generation-0 model (per sample)")
    ax.set_ylabel("density (per log10 unit)")
    ax.set_title("Generation 0's perplexity on each generation's samples")
    ax.legend(fontsize=8)
    _fixed_layout(fig, 1, 1, False)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- report.md -------------------------------------------------------------------------------------------------------
def metrics_markdown(table: pa.Table, metrics: list[str]) -> str:
    present = [m for m in metrics if m in table.column_names]
    gens = sorted({r["generation"] for r in ok_rows(table)})
    agg = {m: {g: fmt_ci(mu, lo, hi) for g, mu, lo, hi, _ in aggregate(table, m)} for m in present}
    lines = ["| metric | " + " | ".join(f"gen {g}" for g in gens) + " |", "|---" * (len(gens) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(agg[m].get(g, "") for g in gens) + " |" for m in present]
    return "\n".join(lines)


def write_report(run: str | Path) -> Path:
    """Re-creates report.md and the PNGs from metrics.parquet and the saved samples."""
    run = Path(run)
    table = pq.read_table(run / "metrics.parquet")
    cfg = json.loads((run / "config.json").read_text())
    opts, data = cfg["options"], cfg["data"]
    label = table.column("regime")[0].as_py() if table.num_rows else opts["regime"]
    web = opts["regime"] == "web"
    plots = {
        "ppl_ratio.png": plot_runs({label: table}, ["heldout_ppl_ratio", "heldout_ppl", "gen0_ppl_on_samples"],
                                   run / "ppl_ratio.png", "held-out perplexity (mean, 95% CI over seeds)"),
        "diversity.png": plot_runs({label: table}, DIVERSITY, run / "diversity.png", "diversity of the samples"),
        "support.png": plot_runs({label: table}, SUPPORT, run / "support.png", "support of the samples"),
    }
    if web and "filter_tpr" in table.column_names:
        plots["filter.png"] = plot_runs({opts.get("filter", "none"): table}, ["filter_tpr", "filter_fpr",
                                        "train_synthetic_share", "filter_removed_real"], run / "filter.png",
                                        "the filter, from the pool's known labels")
    hist = plot_gen0_histograms(run, run / "gen0_ppl_hist.png")
    if hist:
        plots["gen0_ppl_hist.png"] = hist
    stops = [r for r in table.to_pylist() if r.get("status") == "stopped"]
    seeds = sorted({r["seed"] for r in table.to_pylist()})
    md = [
        f"# Collapse run: {opts['model']}, regime {label}" + (f", filter {opts.get('filter')}" if web else ""),
        "",
        f"- input: {data['n_docs']} documents ({data['n_train']} train, {data['n_heldout']} held out), "
        f"fingerprint `{data['fingerprint'][:16]}`",
        f"- generations 0..{opts['generations']}, seeds {seeds}, sample size "
        f"{opts['sample_size'] or data['n_train']} documents per generation",
        f"- options: `{json.dumps({k: v for k, v in opts.items() if v is not None and k != 'shards'})}`",
        "",
        "Mean over seeds per generation, with a 95% Student-t confidence interval in brackets. Perplexities are on",
        "the held-out real text (token-weighted) unless named `gen0_ppl_on_samples` (generation 0's model on each",
        "generation's samples); diversity and support are over lower-cased words of the samples; survival is the",
        "fraction of the real training data's word types / bigrams that a generation's samples still contain.",
        "",
        metrics_markdown(table, REPORTED),
        "",
    ]
    if web:
        sched = ",".join(f"{c:g}" for c in opts.get("contamination") or [])
        md += ["## The crawl and its filter", "",
               f"Contamination c_t = {sched}, crawl factor {opts.get('crawl_factor', 1):g}, synthetic candidates "
               f"from {opts.get('synthetic_from')} earlier generation(s), real pool {opts.get('real_pool_use')}d; "
               f"filter `{opts.get('filter')}` (detector thresholds at FPR {opts.get('filter_fpr'):g} on "
               f"{data.get('n_calibration', '?')} calibration documents). TPR / FPR: the shares of the crawl's "
               "synthetic / real documents the filter removed, from the pool's known labels (generation 0 is not "
               "filtered).", "", metrics_markdown(table, FILTER), ""]
    if stops:
        md += ["## Stopped seeds", ""] + [f"- seed {r['seed']} stopped at generation {r['generation']}: {r['reason']}"
                                          for r in stops] + [""]
    md += ["## Plots", ""] + [f"![{name}]({name})" for name in plots]
    out = run / "report.md"
    out.write_text("\n".join(md) + "\n")
    return out
