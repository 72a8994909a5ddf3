"""Means over seeds with Student-t confidence intervals, and Welch intervals for differences between runs."""

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
