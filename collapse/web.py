"""The contaminated-web regime: every generation trains on a filtered crawl that fills with model output.

Generation 0 trains on n real documents: the pre-cutoff web. For t >= 1 the crawl offers N = round(f * n) candidate
documents (f = `--crawl-factor`, default 1): K_t = round((1 - c_t) * N) real documents and N - K_t samples written by
the models of earlier generations, where c_t is the contamination schedule (`--contamination 0.3` for every
generation, or one value per generation: `0.1,0.2,0.35,0.5,0.5`). The web keeps old model output: with
`--synthetic-from all` the samples are drawn from every earlier generation's, with `last` from generation t-1's only.
Empty samples are never candidates (a crawl holds no empty page; when fewer non-empty samples exist than the schedule
asks for, the crawl holds those there are). A filter (collapse.filters) then decides which
candidates are kept, and the training data is the kept candidates, subsampled without replacement to the budget n
when more than n are kept. With f = 1 the training set shrinks by what the filter removes; with f > 1 the crawl is
larger than the budget and a filter's false positives cost real documents that the finite pool has to supply.

Real documents come from a finite pool of P documents (the real training side, `--real-pool` caps it):
  reuse    every generation draws its K_t real candidates afresh from the whole pool, as `mix` draws them, so they
           recur across generations; needs n <= P and K_t <= P
  consume  a real document enters at most one generation (the crawl's human documents are new each time, and the
           pool runs low); needs n + K_1 + ... + K_T <= P
Generation 0's documents are the first n of a per-seed permutation of the pool. None of this depends on the filter,
so every arm of an experiment sees the same real candidates for a seed, and generation 0 is the same in all arms.
Items are texts for the language models and numbers for the exact oracles: the same code serves both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collapse.regimes import take

SYNTHETIC_FROM = ("all", "last")
REAL_POOL_USES = ("reuse", "consume")
NAN = float("nan")


class ScheduleError(ValueError):
    """A contamination schedule or pool the run cannot follow; the message names the arithmetic."""


def parse_contamination(spec: str | float | Sequence[float]) -> list[float]:
    """'0.3' or '0.1,0.2,0.35' (or numbers) -> a list of shares in [0, 1]."""
    if isinstance(spec, int | float):
        values = [float(spec)]
    elif isinstance(spec, str):
        try:
            values = [float(x) for x in spec.split(",") if x.strip()]
        except ValueError:
            raise ScheduleError(f"--contamination {spec!r}: expected a share or a comma-separated list of shares, "
                                "e.g. 0.3 or 0.1,0.2,0.35,0.5,0.5") from None
    else:
        values = [float(x) for x in spec]
    if not values:
        raise ScheduleError("--contamination is empty: give a share (0.3) or one per generation (0.1,0.2,0.35)")
    bad = [v for v in values if not (0.0 <= v <= 1.0) or math.isnan(v)]
    if bad:
        raise ScheduleError(f"--contamination shares must lie in [0, 1], got {bad[0]}")
    return values


def _is_empty(item: Any) -> bool:
    return isinstance(item, str) and not item.strip()


@dataclass
class Pool:
    """Generation t's candidates: the items, which of them are model output, and where each came from."""

    items: list
    synthetic: np.ndarray  # bool
    origin: np.ndarray  # int64: -1 for a real document, else the generation whose model wrote it
    source: list[str]  # a real document's key, or "gen{g}:{index}" for a sample
    contamination: float = 0.0

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Decision:
    """What a filter did to a pool: keep[i] is False for a removed candidate (flagged, or unscorable)."""

    keep: np.ndarray
    scores: np.ndarray | None = None  # the detector's raw values, NaN where a text could not be scored
    unscored: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Selection:
    """A web generation's pool, the filter's decision on it and the candidates that became training data."""

    pool: Pool
    decision: Decision
    train_index: np.ndarray  # indices into pool.items, in training order
    real_pool_left: int | None = None  # consume: pool documents never yet offered; reuse: None

    def metrics(self) -> dict[str, float]:
        """The filter's figures from the pool's known labels (one row of metrics.parquet gets these)."""
        syn = self.pool.synthetic
        real = ~syn
        removed = ~self.decision.keep
        trained = np.zeros(len(self.pool), dtype=bool)
        trained[self.train_index] = True
        n_train = int(trained.sum())
        applied = self.decision.info.get("applied", True)  # generation 0 is never filtered
        row: dict[str, float] = {
            "contamination": float(self.pool.contamination),
            "pool_docs": len(self.pool),
            "pool_real": int(real.sum()),
            "pool_synthetic": int(syn.sum()),
            "filter_removed_real": int((removed & real).sum()),
            "filter_removed_synthetic": int((removed & syn).sum()),
            "filter_tpr": float(removed[syn].mean()) if syn.any() else NAN,
            "filter_fpr": float(removed[real].mean()) if real.any() else NAN,
            "filter_unscored": int(self.decision.unscored.sum()) if self.decision.unscored is not None else 0,
            "train_real": int((trained & real).sum()),
            "train_synthetic": int((trained & syn).sum()),
            "train_synthetic_share": float((trained & syn).sum() / n_train) if n_train else NAN,
            "filter_auroc": NAN,
        }
        if self.real_pool_left is not None:
            row["real_pool_left"] = self.real_pool_left
        scores, direction = self.decision.scores, self.decision.info.get("direction")
        if scores is not None and direction is not None and syn.any() and real.any():
            from detectors.base import machine_oriented
            from detectors.evaluation import auroc

            ok = np.isfinite(scores)
            oriented = np.array([machine_oriented(float(v), direction) if f else NAN for v, f in zip(scores, ok)])
            if (ok & syn).any() and (ok & real).any():
                row["filter_auroc"] = auroc(oriented[ok & real], oriented[ok & syn])
        if not applied:
            for key in ("filter_removed_real", "filter_removed_synthetic", "filter_tpr", "filter_fpr",
                        "filter_unscored"):
                row[key] = NAN
        for key in ("threshold", "seconds", "texts_scored", "n_calibration"):
            if key in self.decision.info:
                row[f"filter_{key}"] = self.decision.info[key]
        return row


@dataclass(frozen=True)
class WebRegime:
    contamination: tuple[float, ...]  # c_1..c_T, or one value for every generation
    crawl_factor: float = 1.0
    synthetic_from: str = "all"
    real_pool_use: str = "reuse"
    name: str = "web"

    def __post_init__(self) -> None:
        if not self.contamination:
            raise ScheduleError("the web regime needs a contamination schedule (--contamination)")
        if self.synthetic_from not in SYNTHETIC_FROM:
            raise ScheduleError(f"--synthetic-from must be one of {', '.join(SYNTHETIC_FROM)}, "
                                f"got {self.synthetic_from!r}")
        if self.real_pool_use not in REAL_POOL_USES:
            raise ScheduleError(f"--real-pool-use must be one of {', '.join(REAL_POOL_USES)}, "
                                f"got {self.real_pool_use!r}")
        if not self.crawl_factor >= 1.0 or math.isinf(self.crawl_factor):
            raise ScheduleError(f"--crawl-factor must be a finite number >= 1, got {self.crawl_factor}")

    @property
    def label(self) -> str:
        return "web"

    # ---- the schedule ----------------------------------------------------------------------------------------
    def schedule(self, generations: int) -> list[float]:
        """c_1..c_T for T = generations (a single value repeats)."""
        if len(self.contamination) == 1:
            return [self.contamination[0]] * generations
        if len(self.contamination) != generations:
            raise ScheduleError(
                f"--contamination gives {len(self.contamination)} shares "
                f"({','.join(f'{c:g}' for c in self.contamination)}) for --generations {generations}: give one share "
                "per generation after generation 0, or a single share for all")
        return list(self.contamination)

    def at(self, g: int) -> float:
        return 0.0 if g == 0 else (self.contamination[0] if len(self.contamination) == 1 else self.contamination[g - 1])

    def candidates_per_generation(self, n: int) -> int:
        return int(round(self.crawl_factor * n))

    def real_candidates(self, g: int, n: int) -> int:
        """K_g: the real documents in generation g's crawl (n at generation 0)."""
        return n if g == 0 else int(round((1.0 - self.at(g)) * self.candidates_per_generation(n)))

    # ---- what a pool of P documents supports -----------------------------------------------------------------
    def problems(self, n: int, pool_size: int, generations: int) -> list[str]:
        """Why n documents per generation do not fit a pool of pool_size under this schedule (empty: they fit)."""
        sched = self.schedule(generations)
        N = self.candidates_per_generation(n)
        ks = [self.real_candidates(g, n) for g in range(1, generations + 1)]
        out = []
        if n > pool_size:
            out.append(f"generation 0 trains on {n} real documents but the real pool holds {pool_size}")
        if self.real_pool_use == "consume":
            need = n + sum(ks)
            if need > pool_size:
                terms = " + ".join(str(k) for k in [n, *ks])
                out.append(f"--real-pool-use consume needs n + K_1 + ... + K_{generations} = {terms} = {need} real "
                           f"documents (K_t = round((1 - c_t) * {N})), but the real pool holds {pool_size}")
        else:
            worst = max(ks, default=0)
            if worst > pool_size:
                g = ks.index(worst) + 1
                out.append(f"generation {g} draws K_{g} = round((1 - {sched[g - 1]:g}) * {N}) = {worst} real "
                           f"documents but the real pool holds {pool_size}")
        for g, c in enumerate(sched, start=1):
            need = N - ks[g - 1]
            have = n if self.synthetic_from == "last" else g * n
            if need > have:
                src = "generation t-1's" if self.synthetic_from == "last" else f"the {g} earlier generations'"
                out.append(f"generation {g} needs {N} - {ks[g - 1]} = {need} synthetic candidates (c_{g} = {c:g}) "
                           f"but {src} samples number {have} ({n} per generation)")
                break
        return out

    def largest_budget(self, pool_size: int, generations: int, at_most: int | None = None) -> int:
        """The largest n (documents per generation) that the pool supports, 0 if none."""
        hi = min(pool_size, at_most) if at_most else pool_size
        for n in range(hi, 0, -1):
            if not self.problems(n, pool_size, generations):
                return n
        return 0

    def check(self, n: int, pool_size: int, generations: int, where: str) -> None:
        """Refuse a budget the pool cannot supply, with the arithmetic."""
        issues = self.problems(n, pool_size, generations)
        if issues:
            best = self.largest_budget(pool_size, generations)
            hint = (f"use --sample-size <= {best}" if best >= 8 else "add shards") + (
                ", --real-pool-use reuse" if self.real_pool_use == "consume" else "") + (
                ", a lower --crawl-factor" if self.crawl_factor > 1 else "") + " or a larger pool"
            raise ScheduleError(f"the real pool is too small for the schedule at {n} documents per generation: "
                                f"{'; '.join(issues)} ({where}); {hint}")

    # ---- one generation --------------------------------------------------------------------------------------
    @staticmethod
    def permutation(seed: int, pool_size: int) -> np.ndarray:
        """The seed's order of the pool: generation 0 takes its first n; consume hands out the rest in turn.
        Its stream differs from every generation's (which are default_rng([seed, g]))."""
        return np.random.default_rng([seed, 0, 0x3EB]).permutation(pool_size)

    def candidates(self, real: Sequence, keys: Sequence[str], samples: Sequence[Sequence], seed: int, n: int,
                   rng: np.random.Generator) -> tuple[Pool, int | None]:
        """Generation len(samples)'s crawl, shuffled; and, under consume, how many pool documents are left after it."""
        g = len(samples)
        perm = self.permutation(seed, len(real))
        k = self.real_candidates(g, n)
        if g == 0:
            real_idx = perm[:n]
        elif self.real_pool_use == "consume":
            start = n + sum(self.real_candidates(s, n) for s in range(1, g))
            real_idx = perm[start: start + k]
            if len(real_idx) < k:  # checked before generation 0; a resumed run with another pool lands here
                raise ScheduleError(f"generation {g} needs {k} unused real documents; the pool has {len(real_idx)} "
                                    "left")
        else:
            real_idx = np.sort(rng.choice(len(real), size=k, replace=False))
        left = None
        if self.real_pool_use == "consume":
            left = len(real) - (n + sum(self.real_candidates(s, n) for s in range(1, g + 1)))
        items = list(take(real, real_idx))
        source = [str(keys[i]) for i in real_idx.tolist()]
        origin = [-1] * len(items)
        if g > 0:
            gens = range(g) if self.synthetic_from == "all" else [g - 1]
            avail = [(s, i) for s in gens for i in range(len(samples[s])) if not _is_empty(samples[s][i])]
            # Empty samples are no web page: when the models wrote fewer non-empty texts than the schedule asks,
            # the crawl holds what there is (pool_synthetic records it).
            m = min(self.candidates_per_generation(n) - k, len(avail))
            for j in np.sort(rng.choice(len(avail), size=m, replace=False)).tolist():
                s, i = avail[j]
                items.append(samples[s][i])
                source.append(f"gen{s}:{i}")
                origin.append(s)
        order = rng.permutation(len(items))
        pool = Pool(items=[items[i] for i in order.tolist()],
                    synthetic=np.array([origin[i] >= 0 for i in order.tolist()], dtype=bool),
                    origin=np.array([origin[i] for i in order.tolist()], dtype=np.int64),
                    source=[source[i] for i in order.tolist()], contamination=self.at(g))
        return pool, left

    @staticmethod
    def training_index(keep: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """The kept candidates, subsampled without replacement to the budget n when more are kept."""
        idx = np.nonzero(keep)[0]
        if len(idx) > n:
            idx = np.sort(rng.choice(idx, size=n, replace=False))
        return idx


def keep_all(pool: Pool) -> Decision:
    """Generation 0's decision: the pre-cutoff web is trained on unfiltered."""
    return Decision(keep=np.ones(len(pool), dtype=bool), info={"applied": False})
