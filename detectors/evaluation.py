"""Detector evaluation: AUROC and TPR at fixed FPRs, with bootstrap CIs and the number of negatives.

All metrics take machine-oriented scores (higher = machine; see base.machine_oriented). TPR at FPR f uses the
calibration rule (calibration.threshold_at_fpr on the human scores), so it is the TPR a threshold calibrated on
these human texts would give. It is reported as not measurable when n_negatives * f < 1: with 1,350 human texts,
TPR at 0.1% FPR rests on the single most machine-like human text.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from detectors.base import HIGHER_IS_MACHINE
from detectors.calibration import threshold_at_fpr

FPRS = (0.01, 0.001)


def auroc(neg, pos) -> float:
    """P(machine score > human score) + 0.5 P(tie) (Mann-Whitney U / (n_neg n_pos))."""
    neg, pos = np.asarray(neg, float), np.asarray(pos, float)
    ranks = rankdata(np.concatenate([neg, pos]))
    n0, n1 = neg.size, pos.size
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def tpr_at_fpr(neg, pos, fpr: float) -> tuple[float, float, float]:
    """(TPR, threshold, realised FPR) with the threshold calibrated on the negatives for `fpr`."""
    t, _, _, _ = threshold_at_fpr(neg, fpr, HIGHER_IS_MACHINE, n_bootstrap=0)
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    return float((pos > t).mean()), t, float((neg > t).mean())


def roc_curve(neg, pos) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from (0, 0) to (1, 1)."""
    scores = np.concatenate([np.asarray(neg, float), np.asarray(pos, float)])
    labels = np.concatenate([np.zeros(len(neg)), np.ones(len(pos))])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]  # last index of each distinct score
    tp, fp = np.cumsum(labels)[last], np.cumsum(1 - labels)[last]
    return np.r_[0, fp / max(len(neg), 1)], np.r_[0, tp / max(len(pos), 1)]


def evaluate_scores(neg, pos, fprs=FPRS, n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Metrics with 95% percentile-bootstrap CIs (negatives and positives resampled separately)."""
    neg, pos = np.asarray(neg, float), np.asarray(pos, float)
    out: dict = {"n_negatives": int(neg.size), "n_positives": int(pos.size)}
    if neg.size == 0 or pos.size == 0:
        out["error"] = "need both human and machine texts"
        return out
    rng = np.random.default_rng(seed)
    boots = [(neg[rng.integers(0, neg.size, neg.size)], pos[rng.integers(0, pos.size, pos.size)])
             for _ in range(n_bootstrap)]

    def ci(values) -> list[float] | None:
        return [float(v) for v in np.quantile(values, [0.025, 0.975])] if len(values) else None

    out["auroc"] = {"value": auroc(neg, pos), "ci": ci([auroc(n, p) for n, p in boots])}
    out["tpr_at_fpr"] = {}
    for f in fprs:
        tpr, t, realised = tpr_at_fpr(neg, pos, f)
        measurable = neg.size * f >= 1
        entry = {"value": tpr, "ci": ci([tpr_at_fpr(n, p, f)[0] for n, p in boots]), "threshold": t,
                 "realised_fpr": realised, "measurable": measurable}
        if not measurable:
            entry["note"] = (f"not measurable: {neg.size} negatives, need >= {math.ceil(1 / f)} for FPR {f:g}; "
                             "the threshold is the most machine-like human score")
        out["tpr_at_fpr"][str(f)] = entry
    return out


def format_table(rows: list[tuple[str, dict]], fprs=FPRS) -> str:
    """Markdown table of evaluate_scores results."""
    head = "| set | n_human | n_machine | AUROC [95% CI] | " + " | ".join(
        f"TPR@{f * 100:g}%FPR [95% CI]" for f in fprs) + " |"
    lines = [head, "|" + "---|" * (4 + len(fprs))]
    for name, m in rows:
        if "auroc" not in m:
            lines.append(f"| {name} | {m['n_negatives']} | {m['n_positives']} | n/a |" + " n/a |" * len(fprs))
            continue
        a = m["auroc"]
        cells = [f"{a['value']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]" if a["ci"] else f"{a['value']:.3f}"]
        for f in fprs:
            e = m["tpr_at_fpr"][str(f)]
            cell = f"{e['value']:.3f}" + (f" [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}]" if e["ci"] else "")
            cells.append(cell if e["measurable"] else f"n/m ({cell})")
        lines.append(f"| {name} | {m['n_negatives']} | {m['n_positives']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_roc(curves: list[tuple[str, dict, np.ndarray, np.ndarray]], path: str, title: str) -> None:
    """ROC curves (linear and log-FPR panels) to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for name, m, fpr, tpr in curves:
        label = f"{name} (AUROC {m['auroc']['value']:.3f})" if "auroc" in m else name
        axes[0].plot(fpr, tpr, label=label, lw=1.2)
        axes[1].plot(np.maximum(fpr, 1e-4), tpr, lw=1.2)
    axes[0].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    axes[1].set(xscale="log", xlabel="false positive rate (log)", xlim=(1e-4, 1), ylim=(0, 1.01))
    for f in FPRS:
        axes[1].axvline(f, color="grey", lw=0.6, ls=":")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
