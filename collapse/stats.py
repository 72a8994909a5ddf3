"""Means over seeds with Student-t confidence intervals, Welch intervals for differences between runs, and Fieller
intervals for the share of a baseline's degradation that another arm removes."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy import stats as st

NAN = float("nan")


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, low, high, n) over the finite values; the interval is NaN with fewer than two."""
    x = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return NAN, NAN, NAN, 0
    m = float(x.mean())
    if len(x) < 2:
        return m, NAN, NAN, 1
    half = float(st.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half, len(x)


def diff_ci(a: Iterable[float], b: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """mean(b) - mean(a) with a Welch-Satterthwaite interval (the runs' seeds are independent samples)."""
    xa = np.array([v for v in a if v is not None and np.isfinite(v)], dtype=np.float64)
    xb = np.array([v for v in b if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(xa) == 0 or len(xb) == 0:
        return NAN, NAN, NAN
    d = float(xb.mean() - xa.mean())
    if len(xa) < 2 or len(xb) < 2:
        return d, NAN, NAN
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    dof = (va + vb) ** 2 / ((va**2 / (len(xa) - 1) if va else 0) + (vb**2 / (len(xb) - 1) if vb else 0))
    half = float(st.t.ppf(0.5 + level / 2, dof) * se)
    return d, d - half, d + half


def prevented_share(base: Iterable[float], arm: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """The share of the baseline's degradation an arm removes, 1 - mean(arm) / mean(base), with a Fieller interval.

    base[i] and arm[i] are the degradations (e.g. held-out perplexity ratio - 1) of the same seed i in the two arms:
    paired, since a seed's real data and generation 0 are the same in every arm. Fieller's interval for the ratio
    of means r = mean(arm) / mean(base) is the set of r with (mean(arm) - r mean(base))^2 <= t^2 Var(arm - r base)/n;
    it is bounded only when the baseline's degradation is itself significantly non-zero, else the interval is
    (-inf, inf). NaN with fewer than two pairs. Returns (share, low, high)."""
    pairs = [(b, a) for b, a in zip(base, arm) if b is not None and a is not None and np.isfinite(b) and np.isfinite(a)]
    if not pairs:
        return NAN, NAN, NAN
    x = np.array([p[0] for p in pairs], dtype=np.float64)
    y = np.array([p[1] for p in pairs], dtype=np.float64)
    n = len(x)
    share = float(1.0 - y.mean() / x.mean()) if x.mean() != 0 else NAN
    if n < 2:
        return share, NAN, NAN
    t2 = float(st.t.ppf(0.5 + level / 2, n - 1)) ** 2
    sxx, syy = x.var(ddof=1) / n, y.var(ddof=1) / n
    sxy = float(np.cov(x, y, ddof=1)[0, 1]) / n
    a = x.mean() ** 2 - t2 * sxx
    b = x.mean() * y.mean() - t2 * sxy
    c = y.mean() ** 2 - t2 * syy
    disc = b * b - a * c
    if a <= 0 or disc < 0:
        return share, -math.inf, math.inf
    lo_r, hi_r = (b - math.sqrt(disc)) / a, (b + math.sqrt(disc)) / a
    return share, float(1.0 - hi_r), float(1.0 - lo_r)
