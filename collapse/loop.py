"""The generation loop shared by the language models and the exact oracles.

Each generation draws from its own random stream `default_rng([seed, generation])`, so a run resumed at
generation g (given the saved samples of generations < g) makes exactly the draws an uninterrupted run makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from collapse.models.base import EmptyTrainingData, LanguageModel
from collapse.regimes import Regime

ModelFactory = Callable[[int, np.random.Generator], LanguageModel]
PromptSource = Callable[[int, Sequence, np.random.Generator], Sequence | None]


@dataclass
class Generation:
    index: int
    train: Sequence
    model: LanguageModel
    samples: Sequence


def generation_rng(seed: int, generation: int) -> np.random.Generator:
    return np.random.default_rng([seed, generation])


def evolve(
    real: Sequence,
    make_model: ModelFactory,
    regime: Regime,
    generations: int,
    sample_size: int,
    seed: int,
    history: Sequence[Sequence] = (),
    prompts: PromptSource | None = None,
    is_empty: Callable[[Sequence], bool] = lambda data: len(data) == 0,
) -> Iterator[Generation]:
    """Yield generations len(history) .. generations (generation 0 trains on `real`).

    history: the samples of generations already done (a resumed run). make_model(g, rng) builds generation g's
    untrained model; prompts(g, train, rng) gives the prompts for its samples, or None for unconditional sampling.
    """
    samples = list(history)
    for g in range(len(samples), generations + 1):
        rng = generation_rng(seed, g)
        train = regime.training_data(real, samples, rng)
        if is_empty(train):
            raise EmptyTrainingData(
                f"generation {g} has no training tokens: generation {g - 1} sampled {len(samples[-1])} empty items"
            )
        model = make_model(g, rng)
        model.fit(train)
        out = model.sample(sample_size, prompts(g, train, rng) if prompts else None)
        samples.append(out)
        yield Generation(g, train, model, out)
