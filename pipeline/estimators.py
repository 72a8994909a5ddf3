"""How much of a crawl is machine-written, from aggregate statistics only (no Beam, no shards, no models).

Every estimator takes counts or binned histograms as ``stats/`` stores them (pipeline/stats.py) and returns a
point estimate with a 95% interval, or a lower confidence bound. The report (pipeline/report) says what each
assumes; in short, with ``f`` the flag rate of post-cutoff documents, ``e`` the flag rate of human (pre-cutoff)
documents at the same rule, and ``pi`` the machine-written share:

* :func:`excess_share` (a): ``pi >= (f - e) / (1 - e)``. Holds whatever the detector's true-positive rate, if
  the human part of the post-cutoff crawl is flagged at the pre-cutoff rate. Interval: Clopper-Pearson on
  ``f`` and ``e`` at 97.5% each (Bonferroni), pushed through the monotone formula.
* :func:`mixture_lower_bound` (b): the post-cutoff score distribution is ``(1 - pi) H + pi M`` with H the human
  one (the reference) and M unknown, so for every set S on the human side of a threshold
  ``1 - pi <= P_post(S) / P_H(S)`` (Blanchard, Lee & Scott 2010, "Semi-supervised novelty detection"). One-sided
  DKW bands (Massart 1990) on both empirical CDFs hold for all thresholds at once, which makes the best
  threshold's bound a valid 95% lower confidence bound, not a selected one.
* :func:`tpr_corrected` (c): ``pi = (f - e) / (TPR - e)``, a point estimate when the detector's TPR on this
  crawl's machine text is known (it rarely is: a TPR measured on other generators or genres biases it).
* :func:`word_excess` (Kobak et al. 2025): the same bound as (a) with "contains word w" as the detector.

Histograms are dicts (or parallel lists) of bin index -> count on a fixed scale; bins are ordered by score, so
"the bins below index k" is a threshold. Exact flag counts at the run's own thresholds come from the pipeline;
when only a histogram is available, a threshold inside a bin gives a range of counts (:class:`Rate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta as _beta

from detectors.base import HIGHER_IS_MACHINE

ALPHA = 0.05


def cp_lower(k: float, n: int, a: float) -> float:
    """One-sided Clopper-Pearson lower bound at level 1 - a for k successes out of n."""
    if n <= 0:
        return 0.0
    k = min(max(k, 0), n)
    return 0.0 if k <= 0 else float(_beta.ppf(a, k, n - k + 1))


def cp_upper(k: float, n: int, a: float) -> float:
    if n <= 0:
        return 1.0
    k = min(max(k, 0), n)
    return 1.0 if k >= n else float(_beta.ppf(1 - a, k + 1, n - k))


def clopper_pearson(k: float, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Two-sided 1 - alpha interval."""
    return cp_lower(k, n, alpha / 2), cp_upper(k, n, alpha / 2)


@dataclass(frozen=True)
class Rate:
    """A proportion: between ``k_low`` and ``k_high`` of ``n`` (equal when counted exactly, a range when a
    threshold falls inside a histogram bin)."""

    k_low: float
    k_high: float
    n: int

    @classmethod
    def exact(cls, k: float, n: int) -> Rate:
        return cls(k, k, n)

    @property
    def point(self) -> float:
        return (self.k_low + self.k_high) / 2 / self.n if self.n else math.nan

    @property
    def exact_count(self) -> bool:
        return self.k_low == self.k_high

    def interval(self, alpha: float = ALPHA) -> tuple[float, float]:
        return cp_lower(self.k_low, self.n, alpha / 2), cp_upper(self.k_high, self.n, alpha / 2)

    def to_json(self, alpha: float = ALPHA) -> dict:
        lo, hi = self.interval(alpha)
        out = {"n": self.n, "flagged": self.k_low if self.exact_count else [self.k_low, self.k_high],
               "rate": self.point, "ci": [lo, hi]}
        return out


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _excess(f: float, e: float) -> float:
    return (f - e) / (1 - e) if e < 1 else 0.0


def excess_share(f: Rate, e: Rate, alpha: float = ALPHA) -> dict:
    """(a) ``(f - e) / (1 - e)``: a lower bound on the machine-written share, with its 1 - alpha interval.

    ``ci[0]`` is the 1 - alpha lower confidence bound (f and e each at 1 - alpha/2; the formula increases in f and
    decreases in e). Values are clipped to [0, 1].
    """
    f_lo, f_hi = f.interval(alpha / 2)
    e_lo, e_hi = e.interval(alpha / 2)
    return {"estimate": _clip(_excess(f.point, e.point)),
            "ci": [_clip(_excess(f_lo, e_hi)), _clip(_excess(f_hi, e_lo))],
            "f_post": f.to_json(alpha), "fpr": e.to_json(alpha)}


def tpr_corrected(f: Rate, e: Rate, tpr: float, tpr_ci: tuple[float, float] | None = None,
                  alpha: float = ALPHA) -> dict:
    """(c) ``(f - e) / (TPR - e)`` with its interval (f and e at 1 - alpha/2 each; TPR's interval as given)."""
    t_lo, t_hi = tpr_ci if tpr_ci else (tpr, tpr)
    f_lo, f_hi = f.interval(alpha / 2)
    e_lo, e_hi = e.interval(alpha / 2)
    if t_lo <= e_hi:
        return {"unavailable": f"TPR {t_lo:.3g} does not exceed the false-positive rate's upper bound {e_hi:.3g}: "
                               "the detector cannot separate machine from human text at this threshold"}

    def share(fv: float, ev: float, tv: float) -> float:
        return (fv - ev) / (tv - ev)

    # Increasing in f; decreasing in e and in TPR while f < TPR.
    return {"estimate": _clip(share(f.point, e.point, tpr)),
            "ci": [_clip(share(f_lo, e_hi, t_hi)), _clip(share(f_hi, e_lo, t_lo))],
            "tpr": tpr, "tpr_ci": list(tpr_ci) if tpr_ci else None}


def dkw_epsilon(n: int, a: float) -> float:
    """One-sided DKW-Massart band half-width: P(sup (F_n - F) > eps) <= exp(-2 n eps^2) = a."""
    return math.sqrt(math.log(1 / a) / (2 * n)) if n > 0 else math.inf


def _oriented(hists: list[dict[int, int]], direction: str) -> tuple[list[int], list[np.ndarray]]:
    """Bin indices in human-to-machine order and each histogram's counts on them."""
    keys = sorted(set().union(*[h.keys() for h in hists]))
    if direction != HIGHER_IS_MACHINE:
        keys = keys[::-1]
    return keys, [np.array([h.get(k, 0) for k in keys], dtype=np.float64) for h in hists]


def mixture_lower_bound(post: dict[int, int], human: dict[int, int], direction: str,
                        alpha: float = ALPHA) -> dict:
    """(b) The best lower bound on ``pi`` over all thresholds, valid at 1 - alpha for all thresholds at once.

    Returns ``lower_bound`` (the confidence bound), ``estimate`` (the plug-in ``1 - P_post(S)/P_H(S)`` at the
    threshold that gives the bound) and ``cut`` (the bin index where the machine side begins).
    """
    n_post, n_human = sum(post.values()), sum(human.values())
    keys, (p, h) = _oriented([post, human], direction)
    fp, fh = np.cumsum(p) / n_post, np.cumsum(h) / n_human  # P(S_j), S_j = the first j+1 bins (human side)
    eps_post, eps_human = dkw_epsilon(n_post, alpha / 2), dkw_epsilon(n_human, alpha / 2)
    usable = fh > eps_human
    if not usable.any():
        return {"lower_bound": 0.0, "estimate": None, "cut": None, "eps_post": eps_post, "eps_human": eps_human,
                "note": "too few human documents for a bound at any threshold"}
    ratio = np.full(len(keys), np.inf)
    ratio[usable] = (fp[usable] + eps_post) / (fh[usable] - eps_human)
    j = int(np.argmin(ratio))
    plug_in = 1 - fp[j] / fh[j] if fh[j] > 0 else 0.0
    cut = keys[j + 1] if j + 1 < len(keys) else None
    return {"lower_bound": _clip(1 - ratio[j]), "estimate": _clip(plug_in), "cut": cut,
            "human_side_post": float(fp[j]), "human_side_human": float(fh[j]),
            "eps_post": eps_post, "eps_human": eps_human}


def ks_distance(a: dict[int, int], b: dict[int, int], alpha: float = ALPHA) -> dict:
    """Two-sample Kolmogorov-Smirnov distance on the bins (a lower bound of the unbinned one), its asymptotic
    p-value and the 1 - alpha critical value."""
    n, m = sum(a.values()), sum(b.values())
    keys, (ca, cb) = _oriented([a, b], HIGHER_IS_MACHINE)
    d = float(np.max(np.abs(np.cumsum(ca) / n - np.cumsum(cb) / m))) if keys else 0.0
    ne = n * m / (n + m)
    critical = math.sqrt(-math.log(alpha / 2) / 2) / math.sqrt(ne)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101)) if lam > 0 else 1.0
    return {"ks": d, "p_value": min(1.0, max(0.0, p)), "critical_95": critical, "n": [n, m]}


def cut_at_fpr(human: dict[int, int], direction: str, target_fpr: float) -> tuple[int | None, int]:
    """The threshold on the bins that flags at most ``floor(target * n)`` of these human documents (the
    pipeline's calibration rule, on bin boundaries): (first flagged bin index or None, documents flagged)."""
    n = sum(human.values())
    allowed = math.floor(target_fpr * n)
    keys, (h,) = _oriented([human], direction)
    flagged, cut = 0, None
    for k, c in zip(reversed(keys), reversed(h)):
        if flagged + c > allowed:
            break
        flagged += int(c)
        cut = k
    return cut, flagged


def flagged_beyond(hist: dict[int, int], cut: int | None, direction: str) -> int:
    """Documents in bins on the machine side of ``cut`` (``cut`` itself included)."""
    if cut is None:
        return 0
    if direction == HIGHER_IS_MACHINE:
        return sum(c for k, c in hist.items() if k >= cut)
    return sum(c for k, c in hist.items() if k <= cut)


def drift_check(by_year: dict[int, dict[int, int]], direction: str, target_fpr: float, min_docs: int,
                alpha: float = ALPHA) -> dict:
    """Calibrate on the older years' human scores, apply to the newest year's: how far its FPR moves.

    ``by_year``: pre-cutoff histograms by capture year. Uses the newest year with at least ``min_docs`` documents
    against all older years pooled (which also need ``min_docs``).
    """
    years = sorted(y for y, h in by_year.items() if sum(h.values()) >= min_docs)
    if len(years) < 2:
        sizes = {y: sum(h.values()) for y, h in sorted(by_year.items())}
        return {"unavailable": f"needs two capture years with at least {min_docs} pre-cutoff documents each "
                               f"(have {sizes or 'none'})"}
    newest = years[-1]
    older: dict[int, int] = {}
    for y, h in by_year.items():
        if y < newest:
            for k, c in h.items():
                older[k] = older.get(k, 0) + c
    n_old, n_new = sum(older.values()), sum(by_year[newest].values())
    cut, k_old = cut_at_fpr(older, direction, target_fpr)
    k_new = flagged_beyond(by_year[newest], cut, direction)
    new_rate = Rate.exact(k_new, n_new)
    lo, hi = new_rate.interval(alpha)
    per_year = []
    for y in sorted(by_year):
        n = sum(by_year[y].values())
        k = flagged_beyond(by_year[y], cut, direction)
        per_year.append({"year": y, "n": n, "flagged": k, "rate": k / n if n else None})
    return {"newest_year": newest, "older_years": [y for y in sorted(by_year) if y < newest],
            "target_fpr": target_fpr, "cut": cut, "n_older": n_old, "fpr_older": k_old / n_old,
            "n_newest": n_new, "fpr_newest": new_rate.point, "fpr_newest_ci": [lo, hi],
            "target_inside_ci": lo <= target_fpr <= hi, **{"ks_" + k: v for k, v in ks_distance(
                older, by_year[newest], alpha).items()}, "per_year": per_year}


def word_bounds(post_counts, n_post: int, pre_counts_high, n_pre: int, a: float) -> np.ndarray:
    """Each word's excess bound ``(p - q) / (1 - q)``, with p at its one-sided 1 - a Clopper-Pearson lower bound and
    q at its upper bound (vectorised over words)."""
    k = np.asarray(post_counts, dtype=np.float64)
    j = np.minimum(np.asarray(pre_counts_high, dtype=np.float64), n_pre)
    p_lo = np.where(k > 0, _beta.ppf(a, np.maximum(k, 1), n_post - k + 1), 0.0)
    q_hi = np.where(j < n_pre, _beta.ppf(1 - a, j + 1, np.maximum(n_pre - j, 1)), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q_hi < 1, (p_lo - q_hi) / (1 - q_hi), 0.0)
