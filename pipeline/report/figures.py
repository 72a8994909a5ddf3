"""The report's figures: matplotlib (Agg), returned as PNG bytes to embed as data URIs.

Text from pages (hosts, words, crawl ids) is drawn as plain text: every ``$`` is escaped, so a word cannot make
matplotlib parse it as mathtext (or fail on it).
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from detectors.base import HIGHER_IS_MACHINE  # noqa: E402
from pipeline.stats import LogitScale, Scale, scale_from_json  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

RC: dict[RcKeyType, Any] = {"font.size": 9, "axes.titlesize": 10, "figure.dpi": 100,
      "axes.spines.top": False, "axes.spines.right": False}
COLORS = {"in": "#555555", "skipped": "#9e9e9e", "error": "#d62728", "rejected": "#ff7f0e", "curated": "#2ca02c",
          "pre_cutoff": "#1f77b4", "post_cutoff": "#d62728", "post_cutoff_old_content": "#9467bd",
          "unknown": "#7f7f7f", "reference": "#17becf"}
MAX_LABEL = 40


def _plain(text) -> str:
    """Data as literal text for matplotlib (no mathtext, one line)."""
    s = "(none)" if text is None else str(text)
    return s.replace("\n", " ").replace("\r", " ").replace("$", r"\$")


def _label(text, keep_end: bool = False) -> str:
    s = "(none)" if text is None else str(text).replace("\n", " ").replace("\r", " ")
    if len(s) > MAX_LABEL:
        s = "…" + s[1 - MAX_LABEL:] if keep_end else s[:MAX_LABEL - 1] + "…"
    return _plain(s)


def _png(fig, tight: bool = True) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buf.getvalue()


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    with plt.rc_context(RC):
        return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)


def funnel(f: dict) -> bytes:
    stages = f["stages"]
    with plt.rc_context(RC):
        fig, axes = _figure(8, 0.3 * len(stages) + 1)
        ax = axes[0][0]
        y = np.arange(len(stages))[::-1]
        ax.barh(y, [s["n"] for s in stages], color=[COLORS[s["kind"]] for s in stages])
        ax.set_yticks(y, [_label(s["stage"]) for s in stages])
        for yi, s in zip(y, stages):
            ax.text(s["n"], yi, f" {s['n']:,} ({100 * s['share']:.1f}%)", va="center", fontsize=8)
        ax.set_xlabel("records")
        ax.set_title("Where the records went (pipeline order)")
        ax.set_xlim(0, max(s["n"] for s in stages) * 1.3 or 1)
        return _png(fig)


def eras_by(groups: list[dict], key: str, title: str, eras: list[str]) -> bytes:
    with plt.rc_context(RC):
        fig, axes = _figure(8, 0.35 * len(groups) + 1.2)
        ax = axes[0][0]
        y = np.arange(len(groups))[::-1]
        left = np.zeros(len(groups))
        for era in eras:
            values = np.array([g.get(era, 0) for g in groups], dtype=float)
            if values.any():
                ax.barh(y, values, left=left, color=COLORS.get(era), label=era)
                left += values
        ax.set_yticks(y, [_label(g[key]) for g in groups])
        ax.set_xlabel("documents")
        ax.set_title(_plain(title))
        ax.legend(fontsize=7, loc="lower right")
        return _png(fig)


def _centres(hist: dict[int, int], scale: Scale) -> tuple[np.ndarray, np.ndarray]:
    """Plot coordinates of each bin (logit units for probabilities) and its count."""
    keys = sorted(hist)
    xs = []
    for k in keys:
        lo, hi = scale.bounds(k)
        if isinstance(scale, LogitScale):
            lo_z = -scale.limit if lo <= 0 or lo == -math.inf else math.log(lo / (1 - lo))
            hi_z = scale.limit if hi >= 1 or hi == math.inf else math.log(hi / (1 - hi))
            xs.append((lo_z + hi_z) / 2)
        else:
            lo = hi if lo == -math.inf else lo
            hi = lo if hi == math.inf else hi
            xs.append((lo + hi) / 2)
    return np.array(xs, dtype=float), np.array([hist[k] for k in keys], dtype=float)


def _to_plot_x(value: float, scale: Scale) -> float:
    if isinstance(scale, LogitScale):
        v = min(max(value, 1e-300), 1 - 1e-16)
        return float(np.clip(math.log(v / (1 - v)), -scale.limit, scale.limit))
    return value


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    c = np.cumsum(w[order])
    return float(x[order][min(len(x) - 1, np.searchsorted(c, q * c[-1]))])


def _logit_ticks(ax, lo: float, hi: float) -> None:
    probs = [10.0 ** -k for k in range(10, 0, -1)] + [0.5] + [1 - 10.0 ** -k for k in range(1, 11)]
    ticks = [(math.log(p / (1 - p)), p) for p in probs]
    ticks = [(z, p) for z, p in ticks if lo <= z <= hi]
    step = max(1, math.ceil(len(ticks) / 9))
    middle = len(ticks) // 2
    ticks = [t for i, t in enumerate(ticks) if (i - middle) % step == 0]
    ax.set_xticks([z for z, _ in ticks], [f"{p:.10g}" for _, p in ticks], rotation=30, fontsize=7)


def score_distributions(hists: list[tuple[str, dict[int, int], str]], scale_json: dict, threshold: float | None,
                        ci, title: str) -> bytes:
    """Densities of several groups' scores (label, histogram, colour) with the threshold and its CI."""
    scale = scale_from_json(scale_json)
    data = [(label, *_centres(h, scale), color) for label, h, color in hists if h]
    with plt.rc_context(RC):
        fig, axes = _figure(8, 3.2)
        ax = axes[0][0]
        if not data:
            ax.text(0.5, 0.5, "no scores", ha="center", va="center", transform=ax.transAxes)
            return _png(fig)
        xs = np.concatenate([d[1] for d in data])
        ws = np.concatenate([d[2] / d[2].sum() for d in data])
        lo, hi = _weighted_quantile(xs, ws, 0.002), _weighted_quantile(xs, ws, 0.998)
        if threshold is not None:
            t = _to_plot_x(threshold, scale)
            lo, hi = min(lo, t), max(hi, t)
        if hi <= lo:
            lo, hi = lo - 1, hi + 1
        pad = 0.05 * (hi - lo)
        edges = np.linspace(lo - pad, hi + pad, 81)
        for label, x, w, color in data:
            density, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges, weights=w / w.sum())
            ax.stairs(density, edges, label=f"{_label(label)} (n={int(w.sum()):,})", color=color, linewidth=1.6,
                      fill=False)
        if threshold is not None:
            ax.axvline(_to_plot_x(threshold, scale), color="black", linestyle="--", linewidth=1, label="threshold")
            if ci and None not in ci:
                ax.axvspan(_to_plot_x(ci[0], scale), _to_plot_x(ci[1], scale), color="black", alpha=0.12,
                           label="threshold 95% CI")
        if isinstance(scale, LogitScale):
            _logit_ticks(ax, edges[0], edges[-1])
            ax.set_xlabel("score (logit axis)")
        else:
            ax.set_xlabel("score")
        ax.set_ylabel("share of documents per bin")
        ax.set_title(_plain(title))
        ax.legend(fontsize=7)
        return _png(fig)


def shares(rows: list[tuple[str, dict]], title: str) -> bytes:
    """Forest plot: (a) excess interval, (b) mixture lower bound, (c) TPR-corrected interval per group."""
    usable = [(label, e) for label, e in rows if "a_excess" in e]
    with plt.rc_context(RC):
        fig, axes = _figure(8, 0.42 * max(1, len(usable)) + 1.3)
        ax = axes[0][0]
        if not usable:
            ax.text(0.5, 0.5, "no group large enough for an estimate", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
            return _png(fig)
        y = np.arange(len(usable))[::-1].astype(float)
        for yi, (_, e) in zip(y, usable):
            a = e["a_excess"]
            ax.plot(a["ci"], [yi + 0.15] * 2, color="#1f77b4", linewidth=2.5)
            ax.plot([a["estimate"]], [yi + 0.15], "o", color="#1f77b4", markersize=4)
            b = e["b_mixture"]["lower_bound"]
            ax.plot([b], [yi], ">", color="#2ca02c", markersize=7)
            c = e.get("c_tpr")
            if c and "ci" in c:
                ax.plot(c["ci"], [yi - 0.15] * 2, color="#d62728", linewidth=2.5)
                ax.plot([c["estimate"]], [yi - 0.15], "s", color="#d62728", markersize=4)
        ax.plot([], [], color="#1f77b4", linewidth=2.5, marker="o", label="(a) excess flag rate, 95% CI")
        ax.plot([], [], ">", color="#2ca02c", label="(b) mixture lower bound (95%)")
        if any(e.get("c_tpr") for _, e in usable):
            ax.plot([], [], color="#d62728", linewidth=2.5, marker="s", label="(c) TPR-corrected, 95% CI")
        ax.set_yticks(y, [_label(label) for label, _ in usable])
        ax.set_ylim(-0.6, len(usable) - 0.4)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("machine-written share of post-cutoff documents")
        ax.set_title(_plain(title))
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        return _png(fig)


def vocabulary(v: dict, title: str) -> bytes:
    points = v["scatter"]
    with plt.rc_context(RC):
        fig, axes = _figure(8, 4.2)
        ax = axes[0][0]
        floor = 0.5 / max(v["n_pre"], 1)
        for kind, color in (("topical", "#9e9e9e"), ("style", "#d62728")):
            sel = [p for p in points if p["kind"] == kind]
            ax.scatter([max(p["pre_df"], floor) for p in sel], [p["post_df"] for p in sel], s=8, color=color,
                       alpha=0.6, label=f"{kind} words")
        top = max([p["post_df"] for p in points] + [1e-3])
        ax.plot([floor, 1], [floor, 1], color="black", linewidth=0.8, linestyle=":", label="no change")
        for r in v["style"][:12]:
            ax.annotate(_label(r["word"]), (max(r["pre_df"], floor), r["post_df"]), fontsize=7,
                        xytext=(3, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(min(p["post_df"] for p in points) * 0.8 if points else floor, min(1.0, top * 1.5))
        ax.set_xlabel(f"document frequency before the cutoff (absent: drawn at {floor:.2g})")
        ax.set_ylabel("document frequency after the cutoff")
        ax.set_title(_plain(title))
        ax.legend(fontsize=7, loc="lower right")
        return _png(fig)


def drift(by_year: dict[int, dict[int, int]], scale_json: dict, direction: str, cut_value: float | None,
          newest: int, title: str) -> bytes:
    scale = scale_from_json(scale_json)
    with plt.rc_context(RC):
        fig, axes = _figure(8, 3.2)
        ax = axes[0][0]
        cmap = plt.get_cmap("viridis")
        years = sorted(by_year)
        for i, year in enumerate(years):
            x, w = _centres(by_year[year], scale)
            order = np.argsort(x)
            x, w = x[order], w[order]
            cdf = np.cumsum(w) / w.sum()
            if direction != HIGHER_IS_MACHINE:
                cdf = 1 - np.concatenate([[0], cdf[:-1]])
            ax.step(x, cdf, where="post", color=cmap(i / max(1, len(years) - 1)),
                    linewidth=2.2 if year == newest else 1.2, label=f"{year} (n={int(w.sum()):,})")
        if cut_value is not None:
            ax.axvline(_to_plot_x(cut_value, scale), color="black", linestyle="--", linewidth=1,
                       label="threshold from the older years")
        if isinstance(scale, LogitScale):
            lo, hi = ax.get_xlim()
            _logit_ticks(ax, lo, hi)
        ax.set_xlabel("score" + (" (logit axis)" if isinstance(scale, LogitScale) else ""))
        ax.set_ylabel("share of documents on the human side" if direction != HIGHER_IS_MACHINE
                      else "cumulative share of documents")
        ax.set_title(_plain(title))
        ax.legend(fontsize=7)
        return _png(fig)


def signals(items: list[dict]) -> bytes:
    n = len(items)
    cols = 4
    nrows = math.ceil(n / cols)
    with plt.rc_context(RC):
        fig, axes = _figure(10, 2.1 * nrows + 0.4, nrows, cols)
        fig.subplots_adjust(left=0.05, right=0.98, top=1 - 0.5 / (2.1 * nrows + 0.4), bottom=0.08, hspace=0.55,
                            wspace=0.28)
        for ax, item in zip(axes.flat, items):
            scale = scale_from_json(item["scale"])
            for outcome, color in (("curated", COLORS["curated"]), ("rejected", COLORS["rejected"])):
                h = dict(zip(item[outcome]["hist"]["index"], item[outcome]["hist"]["count"]))
                if not h:
                    continue
                x, w = _centres(h, scale)
                order = np.argsort(x)
                ax.plot(x[order], w[order] / w.sum(), drawstyle="steps-mid", color=color, linewidth=1,
                        label=f"{outcome} (n={int(w.sum()):,})")
            if item["scale"]["kind"] == "log2":
                ax.set_xscale("symlog", linthresh=1)
            ax.set_title(f"{item['signal']} (curated n={item['curated']['n']:,}, rejected n={item['rejected']['n']:,})",
                         fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[n:]:
            ax.set_axis_off()
        handles = [Line2D([], [], color=COLORS[o], linewidth=1) for o in ("curated", "rejected")]
        fig.legend(handles, ["curated", "rejected"], loc="upper right", fontsize=7, ncols=2)
        return _png(fig, tight=False)


def cluster_sizes(sizes: dict) -> bytes:
    with plt.rc_context(RC):
        fig, axes = _figure(6, 2.8)
        ax = axes[0][0]
        if sizes["size"]:
            ax.bar(sizes["size"], sizes["count"], width=0.6 if max(sizes["size"]) < 30 else 1.0, color="#1f77b4")
            ax.set_yscale("log")
            if max(sizes["size"]) > 30:
                ax.set_xscale("log")
            else:
                ax.set_xticks(range(1, max(sizes["size"]) + 1))
                ax.set_xlim(0.4, max(sizes["size"]) + 0.6)
        else:
            ax.text(0.5, 0.5, "no dedup cluster sizes (dedup off)", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("copies in the cluster (the kept one included)")
        ax.set_ylabel("kept documents")
        ax.set_title("Dedup cluster sizes")
        return _png(fig)


def bars(labels: list[str], values: list[float], title: str, xlabel: str) -> bytes:
    with plt.rc_context(RC):
        fig, axes = _figure(8, 0.3 * len(labels) + 1.2)
        ax = axes[0][0]
        y = np.arange(len(labels))[::-1]
        ax.barh(y, values, color="#1f77b4")
        ax.set_yticks(y, [_label(x) for x in labels])
        ax.set_xlabel(xlabel)
        ax.set_title(_plain(title))
        return _png(fig)


def compare_funnel(runs: list[dict], reasons: list[str]) -> bytes:
    kinds = [("curated", COLORS["curated"]), ("rejected", COLORS["rejected"]), ("skipped", COLORS["skipped"]),
             ("errors", COLORS["error"])]
    with plt.rc_context(RC):
        fig, axes = _figure(8, 0.45 * len(runs) + 1.3)
        ax = axes[0][0]
        y = np.arange(len(runs))[::-1]
        left = np.zeros(len(runs))
        for kind, color in kinds:
            values = np.array([(r["funnel"].get(kind) or 0) / max(1, r["funnel"].get("records_in") or 0)
                               for r in runs])
            ax.barh(y, values, left=left, color=color, label=kind)
            left += values
        ax.set_yticks(y, [_label(r["label"], keep_end=True) for r in runs])
        ax.set_xlabel("share of records in")
        ax.set_title("Funnel per run")
        ax.legend(fontsize=7, loc="lower right")
        return _png(fig)


def compare_estimates(runs: list[dict]) -> bytes:
    rows = [("…" + r["label"][1 - MAX_LABEL:] if len(r["label"]) > MAX_LABEL else r["label"], r["estimates"])
            for r in runs if r.get("estimates") and "a_excess" in r["estimates"]]
    return shares(rows, "Machine-written share of post-cutoff documents, per run")
