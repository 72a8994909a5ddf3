"""The generation loop shared by the language models and the exact oracles.

Each generation draws from its own random stream `default_rng([seed, generation])`, so a run resumed at
generation g (given the saved samples of generations < g) makes exactly the draws an uninterrupted run makes.
Under the web regime (collapse.web) a generation's training data is a crawl of real documents and earlier samples,
passed through `select` (the filter) before training; the draws are made in a fixed order (the crawl, then the
subsample to the budget, then the model's seed), so every arm of an experiment sees the same crawl for a seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from collapse.models.base import EmptyTrainingData, LanguageModel
from collapse.regimes import Regime
from collapse.web import Decision, Pool, Selection, WebRegime, keep_all

ModelFactory = Callable[[int, np.random.Generator], LanguageModel]
PromptSource = Callable[[int, Sequence, np.random.Generator], Sequence | None]
Select = Callable[[int, Pool], Decision]


@dataclass
class Generation:
    index: int
    train: Sequence
    model: LanguageModel
    samples: Sequence
    selection: Selection | None = None  # web regime: the crawl, the filter's decision, what was trained on


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
    select: Select | None = None,
    keys: Sequence[str] | None = None,
) -> Iterator[Generation]:
    """Yield generations len(history) .. generations (generation 0 trains on `real`).

    history: the samples of generations already done (a resumed run). make_model(g, rng) builds generation g's
    untrained model; prompts(g, train, rng) gives the prompts for its samples, or None for unconditional sampling.
    Web regime: `real` is the real pool (with `keys`), `sample_size` the budget n, and select(g, pool) the filter's
    decision on generation g's crawl (g >= 1; generation 0 is the unfiltered pre-cutoff web).
    """
    samples = list(history)
    for g in range(len(samples), generations + 1):
        rng = generation_rng(seed, g)
        selection = None
        if isinstance(regime, WebRegime):
            pool, left = regime.candidates(real, keys if keys is not None else [str(i) for i in range(len(real))],
                                           samples, seed, sample_size, rng)
            decision = select(g, pool) if select is not None and g > 0 else keep_all(pool)
            index = regime.training_index(decision.keep, sample_size, rng)
            selection = Selection(pool, decision, index, left)
            train = [pool.items[i] for i in index.tolist()]
            if len(index) == 0:
                raise EmptyTrainingData(f"generation {g}'s filter kept none of its {len(pool)} candidates")
        else:
            train = regime.training_data(real, samples, rng)
        if is_empty(train):
            raise EmptyTrainingData(
                f"generation {g} has no training tokens: generation {g - 1} sampled {len(samples[-1])} empty items"
            )
        model = make_model(g, rng)
        model.fit(train)
        out = model.sample(sample_size, prompts(g, train, rng) if prompts else None)
        samples.append(out)
        yield Generation(g, train, model, out, selection)
