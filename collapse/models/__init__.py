"""Models behind one interface: fit(texts), sample(n, prompts=None), log_prob(texts).

The torch-based models (gpt, hf) are imported lazily by the protocol so that an n-gram run never loads torch.
"""

from collapse.models.base import (
    EmptyTrainingData,
    LanguageModel,
    LogProb,
    NonFiniteLoss,
    SamplingOptions,
    SavedModel,
)
from collapse.models.ngram import NGramModel

__all__ = [
    "EmptyTrainingData",
    "LanguageModel",
    "LogProb",
    "NGramModel",
    "NonFiniteLoss",
    "SamplingOptions",
    "SavedModel",
]
