"""How each generation's training data is built from the real data and the samples of earlier generations.

Generation 0 always trains on the real training data. For t >= 1, with S_s the samples of generation s's model:
  replace               S_{t-1}                                   (Shumailov et al. 2024)
  accumulate            real + S_0 + ... + S_{t-1}                (Gerstgrasser et al. 2024)
  accumulate-subsample  accumulate, subsampled to len(real) without replacement
  mix                   round(F * n) fresh real items + (n - round(F * n)) items of S_{t-1}, n = len(S_{t-1})
  web                   a filtered crawl of real items and earlier samples: see collapse.web (WebRegime)
Items are texts for the LMs and numbers or token ids for the oracles: the same code serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CLASSIC_REGIMES = ("replace", "accumulate", "accumulate-subsample", "mix")
REGIMES = (*CLASSIC_REGIMES, "web")


def concat(parts: Sequence[Sequence]) -> Sequence:
    if parts and all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    out: list = []
    for p in parts:
        out.extend(p)
    return out


def take(items: Sequence, idx: np.ndarray) -> Sequence:
    if isinstance(items, np.ndarray):
        return items[idx]
    return [items[i] for i in idx.tolist()]


@dataclass(frozen=True)
class Regime:
    name: str = "replace"
    real_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.name == "web":
            raise ValueError("the web regime is collapse.web.WebRegime (it needs a contamination schedule)")
        if self.name not in CLASSIC_REGIMES:
            raise ValueError(f"unknown regime {self.name!r}; choose one of {', '.join(REGIMES)}")
        if self.name == "mix" and not 0.0 <= self.real_fraction <= 1.0:
            raise ValueError(f"--real-fraction must be in [0, 1], got {self.real_fraction}")
        if self.name != "mix" and self.real_fraction:
            raise ValueError(f"--real-fraction applies to the mix regime only, not {self.name!r}")

    @property
    def label(self) -> str:
        return f"mix-{self.real_fraction:g}" if self.name == "mix" else self.name

    def training_data(self, real: Sequence, samples: Sequence[Sequence], rng: np.random.Generator) -> Sequence:
        """Training data of generation len(samples), given the samples of every earlier generation."""
        if not samples:
            return real
        if self.name == "replace":
            return samples[-1]
        if self.name == "accumulate":
            return concat([real, *samples])
        if self.name == "accumulate-subsample":
            pool = concat([real, *samples])
            return take(pool, np.sort(rng.choice(len(pool), size=len(real), replace=False)))
        last = samples[-1]
        n_real = min(int(round(self.real_fraction * len(last))), len(real))
        real_part = take(real, np.sort(rng.choice(len(real), size=n_real, replace=False)))
        synth_part = take(last, np.sort(rng.choice(len(last), size=len(last) - n_real, replace=False)))
        return concat([real_part, synth_part])
