"""Collapse harness: is this data safe to train on, generation after generation?

Reproduces the protocol of Shumailov et al. (Nature 2024): train a model on the data, sample a corpus of the same
size from it, train the next model on that, and measure what the models forget. The web regime (collapse.web) puts
a filter (collapse.filters: none, oracle, or any detectors-library scorer calibrated on held-out real text) between a
contaminated crawl and the training data, and `lowbg collapse web` (collapse.experiment) measures what each filter
buys. A plain library plus CLI (`lowbg collapse run | web | compare | report`); it reads Parquet with a `text` column
and never imports Beam.
"""

from collapse.data import Corpus, CorpusError, load_corpus, resolve_shards, split_corpus
from collapse.filters import FilterError, build_filter, parse_filter
from collapse.loop import Generation, evolve
from collapse.models.base import EmptyTrainingData, LanguageModel, LogProb, NonFiniteLoss, SamplingOptions
from collapse.models.ngram import NGramModel
from collapse.protocol import ConfigMismatch, RunConfig, collect_metrics, run
from collapse.regimes import REGIMES, Regime
from collapse.web import ScheduleError, WebRegime

__all__ = [
    "REGIMES",
    "ConfigMismatch",
    "Corpus",
    "CorpusError",
    "EmptyTrainingData",
    "FilterError",
    "Generation",
    "LanguageModel",
    "LogProb",
    "NGramModel",
    "NonFiniteLoss",
    "Regime",
    "RunConfig",
    "SamplingOptions",
    "ScheduleError",
    "WebRegime",
    "build_filter",
    "collect_metrics",
    "evolve",
    "load_corpus",
    "parse_filter",
    "resolve_shards",
    "run",
    "split_corpus",
]
