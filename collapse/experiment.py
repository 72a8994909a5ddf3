"""`lowbg collapse web`: what the filter buys, measured. One arm per filter over the same seeds, pools and held-out
text, and the comparison of the arms.

Layout of an experiment folder:
  web.json                       the experiment's options and filters; a resumed experiment must match them
  filters/<arm>/                 a detector filter's thresholds files (detectors.calibration format)
  arms/<arm>/                    one collapse run per filter (regime web; see collapse.protocol), generation 0 shared
  web.md, web.parquet            the comparison: per arm and generation, the held-out perplexity ratio and its tail
                                 quantiles (p90, p99) with 95% CIs over seeds, the filter's TPR and FPR, the synthetic
                                 share of the training data and the real documents thrown away; per arm against the
                                 `none` arm, the share of the collapse prevented, with a Fieller 95% CI
  web_ppl.png, web_filter.png, web_prevented.png   one panel per metric, one line per arm, CI bands

Every filter is built, loaded and calibrated before any arm's generation 0, so a filter that cannot load or
calibrate fails before anything is trained. The "collapse prevented" share of an arm at generation g is
1 - D_arm / D_none with D = held-out perplexity ratio - 1 (paired by seed): 1 is the whole degradation removed, 0
nothing, and a negative share means the arm degraded more than training on the unfiltered crawl: the filter cost
more (in lost real documents) than it saved.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from collapse.filters import FilterError, build_filter, parse_filter
from collapse.protocol import NOT_COMPARED, ConfigMismatch, RunConfig, load_run_data, option_defaults, run
from collapse.report import _fixed_layout, aggregate, fmt_ci, ok_rows, plot_runs
from collapse.stats import mean_ci, prevented_share

FORMAT = "lowbackground.collapse-web/1"
PPL_METRICS = ["heldout_ppl_ratio", "heldout_ppl_p90_ratio", "heldout_ppl_p99_ratio"]
FILTER_METRICS = ["filter_tpr", "filter_fpr", "filter_auroc", "train_synthetic_share", "filter_removed_real",
                  "real_discarded_total", "train_docs", "filter_share"]
TABLE_METRICS = PPL_METRICS + ["heldout_ppl"] + FILTER_METRICS + ["contamination", "train_real", "pool_real",
                                                                  "pool_synthetic", "real_pool_left"]
BASELINE = "none"


def is_experiment(path: str | Path) -> bool:
    return (Path(path) / "web.json").is_file()


def read_experiment(path: str | Path) -> dict[str, Any]:
    """web.json, checked: ConfigMismatch (a ValueError) when it is not an experiment's."""
    file = Path(path) / "web.json"
    try:
        doc = json.loads(file.read_text())
        if doc.get("format") != FORMAT or not isinstance(doc.get("arms"), dict) or "options" not in doc:
            raise KeyError("format, arms or options")
    except (json.JSONDecodeError, KeyError, AttributeError) as e:
        raise ConfigMismatch(f"{file} is not a collapse web experiment ({type(e).__name__}: {e})") from None
    return doc


def arm_dirs(path: str | Path) -> dict[str, Path]:
    """{filter: arm run folder} of an experiment, in the experiment's order."""
    doc = read_experiment(path)
    return {text: Path(path) / "arms" / slug for slug, text in doc["arms"].items()}


def _check_experiment(out: Path, base: RunConfig, filters: list[str]) -> bool:
    """Refuse to resume an experiment with other options or filters; True when it is new."""
    path = out / "web.json"
    if not path.exists():
        if out.exists() and any(p.name != "filters" for p in out.iterdir()):
            raise ConfigMismatch(f"{out} exists, is not empty and holds no web.json: choose another --output")
        return True
    saved = read_experiment(out)
    saved_opts, saved_filters = saved["options"], saved.get("filters", list(saved["arms"].values()))
    defaults = option_defaults()
    now = {k: v for k, v in asdict(base).items() if k not in NOT_COMPARED | {"filter"}}
    diff = {k: (saved_opts.get(k, defaults.get(k)), v) for k, v in now.items() if saved_opts.get(k, defaults.get(k))
            != v}
    if list(saved_filters) != list(filters):
        diff["filters"] = (",".join(saved_filters), ",".join(filters))
    if diff:
        lines = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise ConfigMismatch(f"refusing to resume {out}: options differ from the saved experiment ({lines}); "
                             "use the same options or a new --output")
    return False


def run_web(base: RunConfig, filters: list[str], output: str | Path, log=print) -> pa.Table:
    """Run (or resume) one web-regime arm per filter and write the comparison; returns web.parquet's table."""
    if base.regime != "web":
        base = replace(base, regime="web")
    if not filters:
        raise FilterError("--filters is empty: give e.g. none,oracle,detector:fast-detectgpt:gen0")
    specs = [parse_filter(f) for f in filters]
    texts = [s.text for s in specs]
    dup = sorted({t for t in texts if texts.count(t) > 1})
    if dup:
        raise FilterError(f"--filters names {dup[0]} twice")
    slugs = [s.slug for s in specs]
    if len(set(slugs)) != len(slugs):
        raise FilterError(f"--filters {', '.join(texts)}: two filters map to the same folder name")
    arms = {slug: replace(base, filter=spec.text) for slug, spec in zip(slugs, specs)}  # validates each arm
    out = Path(output)
    new = _check_experiment(out, base, texts)
    data = load_run_data(arms[slugs[0]])
    prepared = {}
    for slug, cfg in arms.items():
        f = build_filter(cfg.filter, cfg.filter_fpr, data.calibration.texts, cfg.kind, out / "filters" / slug,
                         data.calibration_where(cfg))
        f.prepare(log)
        prepared[slug] = f
    if new:
        out.mkdir(parents=True, exist_ok=True)
        opts = {k: v for k, v in asdict(base).items() if k != "filter"}
        (out / "web.json").write_text(json.dumps({"format": FORMAT, "options": opts, "filters": texts,
                                                  "arms": dict(zip(slugs, texts)), "data": data.info}, indent=2))
    first = None
    for slug, cfg in arms.items():
        log(f"== arm {cfg.filter}")
        run(cfg, out / "arms" / slug, log=log, pool_filter=prepared[slug], share_from=first, run_data=data)
        first = first or out / "arms" / slug
    table = write_web_report(out)
    log(web_summary(out))
    return table


# ---- the comparison --------------------------------------------------------------------------------------------------
def load_arms(out: str | Path) -> dict[str, pa.Table]:
    tables = {}
    for text, path in arm_dirs(out).items():
        if (path / "metrics.parquet").exists():
            tables[text] = _with_totals(pq.read_table(path / "metrics.parquet"))
    if not tables:
        raise FileNotFoundError(f"{out} holds no finished arm (no arms/*/metrics.parquet)")
    return tables


def _with_totals(table: pa.Table) -> pa.Table:
    """Adds real_discarded_total: the real documents a seed's filter has thrown away up to each generation."""
    if "filter_removed_real" not in table.column_names:
        return table
    rows = table.to_pylist()
    total: dict[int, float] = {}
    out = []
    for r in sorted(rows, key=lambda r: (r["seed"], r["generation"])):
        v = r.get("filter_removed_real")
        if r.get("status") == "ok" and v is not None and math.isfinite(v):
            total[r["seed"]] = total.get(r["seed"], 0.0) + v
        r["real_discarded_total"] = total.get(r["seed"], math.nan) if r["generation"] > 0 else math.nan
        out.append(r)
    return pa.Table.from_pylist(out)


def _by_seed(table: pa.Table, metric: str, generation: int) -> dict[int, float]:
    return {r["seed"]: r.get(metric) for r in ok_rows(table) if r["generation"] == generation}


def prevented(tables: dict[str, pa.Table], metric: str = "heldout_ppl_ratio") -> list[dict[str, Any]]:
    """Per arm (but the baseline) and generation >= 1: the share of the `none` arm's degradation it prevents."""
    if BASELINE not in tables:
        return []
    base = tables[BASELINE]
    gens = sorted({r["generation"] for r in ok_rows(base)} - {0})
    out = []
    for arm, table in tables.items():
        if arm == BASELINE:
            continue
        for g in gens:
            b, a = _by_seed(base, metric, g), _by_seed(table, metric, g)
            seeds = sorted(set(a) & set(b))
            share, lo, hi = prevented_share([b[s] - 1 for s in seeds], [a[s] - 1 for s in seeds])
            out.append({"arm": arm, "generation": g, "metric": metric, "share": share, "low": lo, "high": hi,
                        "seeds": len(seeds)})
    return out


def verdict(share: float, lo: float, hi: float) -> str:
    if not math.isfinite(share):
        return "n/a"
    if math.isfinite(lo) and lo > 0:
        return "prevents collapse"
    if math.isfinite(hi) and hi < 0:
        return "costs more than it saves"
    if not math.isfinite(lo) and not math.isfinite(hi):
        return "no significant degradation to prevent"
    return "not significant"


def _share_text(share: float, lo: float, hi: float) -> str:
    if not math.isfinite(share):
        return "n/a"
    pct = f"{100 * share:.0f}%"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{pct} [{100 * lo:.0f}%, {100 * hi:.0f}%]"
    if math.isnan(lo):
        return pct
    return f"{pct} [unbounded]"


def comparison_rows(tables: dict[str, pa.Table]) -> list[dict[str, Any]]:
    rows = []
    for arm, table in tables.items():
        for metric in TABLE_METRICS:
            if metric not in table.column_names:
                continue
            for g, m, lo, hi, n in aggregate(table, metric):
                rows.append({"arm": arm, "generation": g, "metric": metric, "mean": m, "low": lo, "high": hi,
                             "seeds": n})
    for p in prevented(tables):
        rows.append({"arm": p["arm"], "generation": p["generation"], "metric": "collapse_prevented",
                     "mean": p["share"], "low": p["low"], "high": p["high"], "seeds": p["seeds"]})
    return rows


def _last_generation(tables: dict[str, pa.Table]) -> int:
    return max((r["generation"] for t in tables.values() for r in ok_rows(t)), default=0)


def _cell(table: pa.Table, metric: str, g: int, kind: str = "") -> str:
    """mean [95% CI] of a metric at generation g; kind "pct" as percentages, "count" as whole-ish counts."""
    if metric not in table.column_names:
        return ""
    for gen, m, lo, hi, _ in aggregate(table, metric):
        if gen != g:
            continue
        if kind == "pct" and math.isfinite(m):
            return f"{100 * m:.1f}%" + (f" [{100 * lo:.1f}, {100 * hi:.1f}]" if math.isfinite(lo) and lo != hi else "")
        if kind == "count" and math.isfinite(m):
            return f"{m:.1f}" + (f" [{lo:.1f}, {hi:.1f}]" if math.isfinite(lo) and lo != hi else "")
        return fmt_ci(m, lo, hi)
    return ""


LAST_COLUMNS = [("held-out ppl ratio", "heldout_ppl_ratio", ""), ("p90 ratio", "heldout_ppl_p90_ratio", ""),
                ("p99 ratio", "heldout_ppl_p99_ratio", ""), ("filter TPR", "filter_tpr", "pct"),
                ("filter FPR", "filter_fpr", "pct"), ("synthetic share trained", "train_synthetic_share", "pct"),
                ("real docs thrown away (total)", "real_discarded_total", "count"),
                ("train docs", "train_docs", "count")]


def last_generation_table(tables: dict[str, pa.Table], g: int | None = None) -> list[list[str]]:
    g = _last_generation(tables) if g is None else g
    prev = {p["arm"]: p for p in prevented(tables) if p["generation"] == g}
    header = ["arm", *(c[0] for c in LAST_COLUMNS), "collapse prevented [95% CI]", "verdict"]
    body = []
    for arm, table in tables.items():
        p = prev.get(arm)
        cells = [_cell(table, m, g, kind) for _, m, kind in LAST_COLUMNS]
        share = _share_text(p["share"], p["low"], p["high"]) if p else ("(baseline)" if arm == BASELINE else "")
        body.append([arm, *cells, share, verdict(p["share"], p["low"], p["high"]) if p else ""])
    return [header, *body]


def _text_table(rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(*rows)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows)


def _md_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return out + ["| " + " | ".join(r) + " |" for r in rows[1:]]


def web_summary(out: str | Path) -> str:
    tables = load_arms(out)
    g = _last_generation(tables)
    return f"what the filter buys, at generation {g} (mean [95% CI] over seeds):\n" + _text_table(
        last_generation_table(tables, g))


def plot_prevented(tables: dict[str, pa.Table], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    rows = prevented(tables)
    if not rows:
        return None
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = {arm: f"C{i}" for i, arm in enumerate(tables)}  # the same colour per arm as in the other plots
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        g = np.array([r["generation"] for r in mine], dtype=float)
        m = np.array([100 * r["share"] for r in mine])
        lo = np.array([100 * r["low"] if math.isfinite(r["low"]) else np.nan for r in mine])
        hi = np.array([100 * r["high"] if math.isfinite(r["high"]) else np.nan for r in mine])
        ax.plot(g, m, marker="o", label=arm, color=colors[arm])
        ax.fill_between(g, lo, hi, alpha=0.25, color=colors[arm])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axhline(0, color="k", lw=0.8)
    ax.axhline(100, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("generation")
    ax.set_ylabel("% of the no-filter arm's degradation prevented")
    ax.set_title("collapse prevented (Fieller 95% CI; unbounded where it is missing)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _fixed_layout(fig, 1, 1, False)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_web_report(out: str | Path) -> pa.Table:
    """Writes web.md, web.parquet and the plots from the arms' saved metrics; returns the comparison table."""
    out = Path(out)
    doc = read_experiment(out)
    opts, data = {**option_defaults(), **doc["options"]}, doc.get("data", {})
    tables = load_arms(out)
    rows = comparison_rows(tables)
    table = pa.Table.from_pylist(rows) if rows else pa.table({"arm": pa.array([], pa.string())})
    pq.write_table(table, out / "web.parquet")
    plots = [
        plot_runs(tables, PPL_METRICS, out / "web_ppl.png", "held-out real text, ratio to generation 0 (95% CI)"),
        plot_runs(tables, [m for m in FILTER_METRICS if m != "filter_share"], out / "web_filter.png",
                  "the filter, from the pool's known labels (95% CI)"),
    ]
    p = plot_prevented(tables, out / "web_prevented.png")
    if p:
        plots.append(p)
    g = _last_generation(tables)
    missing = [t for t in doc["arms"].values() if t not in tables]
    sched = ",".join(f"{c:g}" for c in opts["contamination"])
    md = [
        "# What the filter buys: collapse under a contaminated web, per filter",
        "",
        f"- model `{opts['model']}`" + (f" (order {opts['order']})" if opts["model"] == "ngram" else "")
        + f", generations 0..{opts['generations']}, seeds 0..{opts['seeds'] - 1}",
        f"- contamination c_t = {sched} (generation 0 is the unfiltered pre-cutoff web), crawl factor "
        f"{opts['crawl_factor']:g}, synthetic candidates from {opts['synthetic_from']} earlier generation(s), real "
        f"pool {opts['real_pool_use']}d",
        f"- input: {data.get('n_docs', '?')} documents: {data.get('n_heldout', '?')} held out, "
        f"{data.get('n_calibration', '?')} for calibration, {data.get('n_train', '?')} in the real pool; "
        f"{data.get('sample_size', '?')} training documents per generation"
        + (f"; rows kept by --real-filter {' '.join(opts['real_filter'])}" if opts.get("real_filter") else ""),
        f"- detector thresholds calibrated at FPR {opts['filter_fpr']:g} on the calibration documents",
        "",
        f"## At generation {g}",
        "",
        "Mean over seeds [95% Student-t CI]. TPR / FPR are the shares of the crawl's synthetic / real documents the",
        "filter removed (flagged, or unscorable), measured from the pool's known labels; `collapse prevented` is",
        "1 - (ratio_arm - 1) / (ratio_none - 1) of the held-out perplexity ratio, paired by seed, with a Fieller CI.",
        "A negative share means the filtered arm degraded more than the unfiltered one: it cost more than it saved.",
        "",
        *_md_table(last_generation_table(tables, g)),
        "",
    ]
    if missing:
        md += [f"Arms not finished yet: {', '.join(missing)}.", ""]
    md += ["## Per generation", ""]
    gens = sorted({r["generation"] for t in tables.values() for r in ok_rows(t)})
    for metric in [*PPL_METRICS, *FILTER_METRICS, "collapse_prevented"]:
        present = {r["arm"] for r in rows if r["metric"] == metric}
        if not present:
            continue
        md += [f"### {metric}", "", "| arm | " + " | ".join(f"gen {x}" for x in gens) + " |",
               "|---" * (len(gens) + 1) + "|"]
        for arm in tables:
            if arm not in present:
                continue
            cells = {r["generation"]: (_share_text(r["mean"], r["low"], r["high"]) if metric == "collapse_prevented"
                                       else fmt_ci(r["mean"], r["low"], r["high"]))
                     for r in rows if r["arm"] == arm and r["metric"] == metric}
            md.append(f"| {arm} | " + " | ".join(cells.get(x, "") for x in gens) + " |")
        md.append("")
    stops = [(arm, r) for arm, t in tables.items() for r in t.to_pylist() if r.get("status") == "stopped"]
    if stops:
        md += ["## Stopped seeds", ""] + [f"- {arm}: seed {r['seed']} stopped at generation {r['generation']}: "
                                          f"{r['reason']}" for arm, r in stops] + [""]
    md += ["## Plots", ""] + [f"![{p.name}]({p.name})" for p in plots]
    md += ["", "Arms: " + ", ".join(f"[{t}](arms/{s}/report.md)" for s, t in doc["arms"].items()), ""]
    (out / "web.md").write_text("\n".join(md) + "\n")
    return table


def mean_of(table: pa.Table, metric: str, generation: int) -> tuple[float, float, float, int]:
    """(mean, low, high, seeds) of a metric at a generation, for tests and callers."""
    return mean_ci(r.get(metric) for r in ok_rows(table) if r["generation"] == generation)


