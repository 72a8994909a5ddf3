"""Exact oracles run through the harness's own generation loop (collapse.loop.evolve) over >= 1000 chains.

Every statistical check is a z-test at |z| < 4 on 2000 chains; the power checks show that the same test rejects a
formula that is off by one generation, so the bound is tight enough not to pass by luck.
"""

from __future__ import annotations

import numpy as np
import pytest

from collapse.loop import evolve
from collapse.metrics import words
from collapse.oracles import (
    CategoricalModel,
    GaussianModel,
    expected_heterozygosity,
    gaussian_moments,
    log_variance_walk,
    singleton_loss_probability,
)
from collapse.regimes import Regime

CHAINS = 2000
N = 20
GENS = 10


def z_mean(x: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """z of the sample mean over chains (axis 0) against the expected value, per generation."""
    return (x.mean(axis=0) - expected) / (x.std(axis=0, ddof=1) / np.sqrt(x.shape[0]))


def gaussian_chains(regime: str, estimator: str, fit_variance: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fitted (mu, var) of generations 0..GENS for CHAINS chains, truth N(0, 1)."""
    mu = np.empty((CHAINS, GENS + 1))
    var = np.empty((CHAINS, GENS + 1))
    for c in range(CHAINS):
        real = np.random.default_rng([12345, c]).normal(0.0, 1.0, N)
        make = lambda g, rng: GaussianModel(rng, estimator, fit_variance)  # noqa: B023
        for gen in evolve(real, make, Regime(regime), GENS, N, seed=c):
            mu[c, gen.index], var[c, gen.index] = gen.model.mu, gen.model.var
    return mu, var


@pytest.mark.parametrize("regime", ["replace", "accumulate"])
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_gaussian_variance_and_mean_drift(regime, estimator):
    mu, var = gaussian_chains(regime, estimator)
    exact = gaussian_moments(N, GENS, regime, estimator)
    assert np.all(np.abs(z_mean(var, exact["var"])) < 4), z_mean(var, exact["var"])
    # Var(mu_g) with the true mean 0 known: mean of mu^2 is an unbiased estimate of it.
    assert np.all(np.abs(z_mean(mu**2, exact["var_mu"])) < 4), z_mean(mu**2, exact["var_mu"])
    if regime == "replace" and estimator == "mle":
        # The paper's closed form, and the power of the test: one generation off is rejected.
        t = np.arange(GENS + 1) + 1
        assert np.allclose(exact["var"], ((N - 1) / N) ** t)
        assert np.max(np.abs(z_mean(var, ((N - 1) / N) ** (t - 1)))) > 4
        assert np.allclose(exact["var_mu"], 1 - ((N - 1) / N) ** t)  # sum of a geometric series
    if regime == "replace" and estimator == "unbiased":
        assert np.allclose(exact["var"], 1.0)  # unbiased in expectation ...
        assert np.allclose(exact["var_mu"], (np.arange(GENS + 1) + 1) / N)  # ... while the mean random-walks
    if regime == "accumulate":
        # Variance stays bounded away from zero: the product of the per-generation factors converges.
        assert exact["var"][-1] > 0.9 * exact["var"][0]
        assert np.max(np.abs(z_mean(var, ((N - 1) / N) ** (np.arange(GENS + 1) + 1)))) > 4


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_log_variance_is_a_random_walk_with_known_steps(estimator):
    _, var = gaussian_chains("replace", estimator)
    walk = log_variance_walk(N, GENS, estimator)
    log_var = np.log(var)
    assert np.all(np.abs(z_mean(log_var, walk["mean"])) < 4)
    # Variance of log s2_g: z-test of the mean squared deviation from the known mean.
    dev2 = (log_var - walk["mean"]) ** 2
    assert np.all(np.abs(z_mean(dev2, walk["var"])) < 4)
    # Steps: i.i.d. with the known moments, uncorrelated with the previous step.
    steps = np.diff(log_var, axis=1)
    assert np.all(np.abs(z_mean(steps, np.full(GENS, walk["step_mean"]))) < 4)
    assert np.all(np.abs(z_mean((steps - walk["step_mean"]) ** 2, np.full(GENS, walk["step_var"]))) < 4)
    r = np.array([np.corrcoef(steps[:, g], steps[:, g + 1])[0, 1] for g in range(GENS - 1)])
    assert np.all(np.abs(r) * np.sqrt(CHAINS) < 4)
    # Even the unbiased estimator collapses: the walk drifts down, so s2 -> 0 almost surely.
    assert walk["step_mean"] < 0
    assert np.median(var[:, -1]) < np.median(var[:, 0])


def test_known_variance_mean_error_is_linear_under_replace_and_bounded_under_accumulate():
    rep, _ = gaussian_chains("replace", "mle", fit_variance=False)
    acc, _ = gaussian_chains("accumulate", "mle", fit_variance=False)
    g = np.arange(GENS + 1) + 1
    exact_rep = gaussian_moments(N, GENS, "replace", fit_variance=False)["var_mu"]
    exact_acc = gaussian_moments(N, GENS, "accumulate", fit_variance=False)["var_mu"]
    assert np.allclose(exact_rep, g / N)
    assert np.allclose(exact_acc, np.cumsum(1.0 / g**2) / N)  # < pi^2 / (6 N) for ever
    assert np.all(np.abs(z_mean(rep**2, exact_rep)) < 4)
    assert np.all(np.abs(z_mean(acc**2, exact_acc)) < 4)


@pytest.fixture(scope="module")
def real_tokens(human_texts) -> np.ndarray:
    """The first M word tokens of the real corpus, as ids: a Zipfian sample with many singletons."""
    toks = [w for t in human_texts[:10] for w in words(t)][:400]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(toks))}
    return np.array([vocab[w] for w in toks], dtype=np.int64)


def categorical_chains(real: np.ndarray, regime: str):
    het = np.empty((CHAINS, GENS + 1))
    supports = []
    for c in range(CHAINS):
        chain = []
        for gen in evolve(real, lambda g, rng: CategoricalModel(rng), Regime(regime), GENS, len(real), seed=c):
            het[c, gen.index] = gen.model.heterozygosity
            chain.append(set(gen.model.types.tolist()))
        supports.append(chain)
    return het, supports


def test_wright_fisher_heterozygosity_and_support_under_replace(real_tokens):
    m = len(real_tokens)
    het, supports = categorical_chains(real_tokens, "replace")
    h0 = het[0, 0]
    assert np.all(het[:, 0] == h0)  # generation 0 is fitted on the same real data in every chain
    exact = expected_heterozygosity(h0, m, GENS, "replace")
    assert np.allclose(exact, h0 * (1 - 1 / m) ** np.arange(GENS + 1))
    assert np.all(np.abs(z_mean(het[:, 1:], exact[1:])) < 4)
    assert np.max(np.abs(z_mean(het[:, 1:], h0 * (1 - 1 / m) ** np.arange(GENS)))) > 4  # power
    # Support never grows: every type of generation g+1 was in generation g (all chains, all generations).
    for chain in supports:
        for a, b in zip(chain, chain[1:]):
            assert b <= a
    assert np.mean([len(chain[-1]) for chain in supports]) < len(supports[0][0])


def test_singleton_is_lost_in_one_step_with_probability_1_minus_1_over_m_to_the_m(real_tokens):
    m = len(real_tokens)
    types, counts = np.unique(real_tokens, return_counts=True)
    singletons = set(types[counts == 1].tolist())
    assert len(singletons) > 50
    lost = np.empty(CHAINS)
    for c in range(CHAINS):
        gen1 = next(g for g in evolve(real_tokens, lambda g, rng: CategoricalModel(rng), Regime("replace"), 1, m, c)
                    if g.index == 1)
        lost[c] = len(singletons - set(gen1.model.types.tolist())) / len(singletons)
    p = singleton_loss_probability(m)
    assert abs(p - np.exp(-1)) < 0.01
    z = (lost.mean() - p) / (lost.std(ddof=1) / np.sqrt(CHAINS))
    assert abs(z) < 4, z


def test_accumulate_keeps_generation_zero_support_and_slows_heterozygosity_loss(real_tokens):
    m = len(real_tokens)
    het, supports = categorical_chains(real_tokens, "accumulate")
    exact = expected_heterozygosity(het[0, 0], m, GENS, "accumulate")
    assert np.all(np.abs(z_mean(het[:, 1:], exact[1:])) < 4)
    assert exact[-1] > expected_heterozygosity(het[0, 0], m, GENS, "replace")[-1]
    for chain in supports:
        for g, s in enumerate(chain):
            assert s >= chain[0]  # never below generation 0's support
            if g:
                assert s >= chain[g - 1]
