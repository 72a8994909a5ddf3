"""Models whose recursive retraining has exact, closed-form behaviour: tests of the harness machinery.

Both models implement the harness interface (fit / sample / log_prob) and run on `collapse.loop.evolve`, the same
generation loop as the language models, with the same regimes. Indexing follows the harness: generation g's model
is fitted on generation g's data; generation 0's data are n draws from the true distribution, so the paper's
"generation t" (t = 0 is the truth) is harness generation g = t - 1.

Gaussian (fit the mean and, optionally, the variance on n points; sample n points):
  replace, MLE:        E[s2_g] = s0^2 ((n-1)/n)^(g+1)  (Shumailov et al. 2024, Sec. 3)
  replace:             log s2_g = log s0^2 + sum of g+1 i.i.d. steps log(chi2_{n-1} / d), d = n (MLE) or n-1,
                       step mean psi((n-1)/2) + log 2 - log d, step variance psi'((n-1)/2)
  replace, accumulate: E[SS_{g+1}] = a_g E[SS_g], with SS the sum of squares about the mean of the N_g points
                       trained on and a_g = (n-1)/d(N_g) (replace) or 1 + (n-1 + N_g/(N_g+n))/d(N_g) (accumulate),
                       since the new points' scatter adds (n-1) s2_g in expectation and their mean's offset adds
                       N_g/(N_g+n) s2_g. Var(mu_{g+1}) = Var(mu_g) + w_g^2 E[s2_g]/n, w_g = 1 (replace) or
                       n/(N_g+n) (accumulate): martingale increments, so the variances add.
Categorical (unigram MLE on the tokens, sample as many tokens) is Wright-Fisher resampling:
  replace:    E[H_{g+1} | p_g] = (1 - 1/M) H_g with H = 1 - sum p^2; a singleton is lost in one step with
              probability (1 - 1/M)^M; the support never grows.
  accumulate: E[H_{g+1} | p_g] = (1 - n/(N_g+n)^2) H_g; the support never shrinks below generation 0's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import digamma, polygamma

from collapse.models.base import LogProb

ESTIMATORS = ("mle", "unbiased")


class GaussianModel:
    """1-D Gaussian: MLE (divide by N) or unbiased (N - 1) variance; fit_variance=False keeps sigma fixed."""

    name = "gaussian"

    def __init__(self, rng: np.random.Generator, estimator: str = "mle", fit_variance: bool = True,
                 sigma: float = 1.0) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self.rng, self.estimator, self.fit_variance = rng, estimator, fit_variance
        self.mu, self.var = 0.0, sigma**2

    def fit(self, x: Sequence[float]) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.mu = float(x.mean())
        if self.fit_variance:
            self.var = float(x.var(ddof=0 if self.estimator == "mle" else 1))

    def sample(self, n: int, prompts: Sequence | None = None) -> np.ndarray:
        return self.rng.normal(self.mu, np.sqrt(self.var), size=n)

    def log_prob(self, x: Sequence[float]) -> LogProb:
        x = np.asarray(x, dtype=np.float64)
        nats = -0.5 * (np.log(2 * np.pi * self.var) + (x - self.mu) ** 2 / self.var)
        return LogProb(nats, np.ones(len(x), dtype=np.int64))


class CategoricalModel:
    """Unigram MLE over token ids: p = counts / M. Sampling n tokens is one Wright-Fisher step."""

    name = "categorical"

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.types = np.zeros(0, dtype=np.int64)
        self.p = np.zeros(0)

    def fit(self, tokens: Sequence[int]) -> None:
        self.types, counts = np.unique(np.asarray(tokens, dtype=np.int64), return_counts=True)
        self.p = counts / counts.sum()

    def sample(self, n: int, prompts: Sequence | None = None) -> np.ndarray:
        return self.types[np.minimum(np.searchsorted(np.cumsum(self.p), self.rng.random(n), side="right"),
                                     len(self.types) - 1)]

    def log_prob(self, tokens: Sequence[int]) -> LogProb:
        tokens = np.asarray(tokens, dtype=np.int64)
        idx = np.minimum(np.searchsorted(self.types, tokens), len(self.types) - 1)
        with np.errstate(divide="ignore"):
            nats = np.where(self.types[idx] == tokens, np.log(self.p[idx]), -np.inf)
        return LogProb(nats, np.ones(len(tokens), dtype=np.int64))

    @property
    def heterozygosity(self) -> float:
        return float(1.0 - np.sum(self.p**2))


def _sizes(n: int, generations: int, regime: str) -> np.ndarray:
    if regime not in ("replace", "accumulate"):
        raise ValueError(f"closed forms exist for replace and accumulate, not {regime!r}")
    g = np.arange(generations + 1)
    return np.full(generations + 1, n) if regime == "replace" else n * (g + 1)


def gaussian_moments(n: int, generations: int, regime: str = "replace", estimator: str = "mle",
                     sigma0: float = 1.0, fit_variance: bool = True) -> dict[str, np.ndarray]:
    """Exact E[s2_g] and Var(mu_g) of generations 0..generations, n real points and n samples per generation."""
    N = _sizes(n, generations, regime)
    div = N - (1 if estimator == "unbiased" else 0)
    e_var = np.empty(generations + 1)
    var_mu = np.empty(generations + 1)
    ss = (n - 1) * sigma0**2  # E[SS_0] of the n real points
    vm = sigma0**2 / n
    for g in range(generations + 1):
        e_var[g] = ss / div[g] if fit_variance else sigma0**2
        var_mu[g] = vm
        w = 1.0 if regime == "replace" else n / (N[g] + n)
        vm = vm + w**2 * e_var[g] / n
        if fit_variance:
            gain = (n - 1) / div[g] if regime == "replace" else 1 + (n - 1 + N[g] / (N[g] + n)) / div[g]
            ss = ss * gain
    return {"var": e_var, "var_mu": var_mu}


def log_variance_walk(n: int, generations: int, estimator: str = "mle",
                      sigma0: float = 1.0) -> dict[str, np.ndarray | float]:
    """Replace regime: mean and variance of log s2_g, and the moments of one i.i.d. step of the walk."""
    d = n if estimator == "mle" else n - 1
    step_mean = float(digamma((n - 1) / 2) + np.log(2.0) - np.log(d))
    step_var = float(polygamma(1, (n - 1) / 2))
    steps = np.arange(1, generations + 2)
    return {"mean": np.log(sigma0**2) + steps * step_mean, "var": steps * step_var,
            "step_mean": step_mean, "step_var": step_var}


def expected_heterozygosity(h0: float, m: int, generations: int, regime: str = "replace") -> np.ndarray:
    """E[1 - sum p_g^2] for generations 0..generations, M tokens of real data and M sampled per generation."""
    N = _sizes(m, generations, regime)
    out = np.empty(generations + 1)
    h = h0
    for g in range(generations + 1):
        out[g] = h
        h = h * ((1 - 1 / m) if regime == "replace" else (1 - m / (N[g] + m) ** 2))
    return out


def singleton_loss_probability(m: int) -> float:
    """P(a type seen once among M tokens is absent from the M tokens resampled from them) = (1 - 1/M)^M."""
    return (1 - 1 / m) ** m
