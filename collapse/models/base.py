"""The one interface every model of the harness implements: the LMs and the exact oracles alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


class LogProb(NamedTuple):
    """Per text: total log-probability in nats, and the number of predicted tokens (end-of-document included)."""

    nats: np.ndarray
    tokens: np.ndarray


class NonFiniteLoss(RuntimeError):
    """Training or scoring produced NaN/inf: the protocol stops that seed with this reason and keeps the others."""


class EmptyTrainingData(RuntimeError):
    """A generation's training data holds no tokens (e.g. the previous generation sampled only empty texts)."""


@dataclass(frozen=True)
class SamplingOptions:
    """How a model writes the next generation's corpus.

    temperature / top_p: nucleus sampling; num_beams > 1: beam search (causal LMs only, deterministic);
    max_new_tokens: cap per sample; prompt_tokens: how much of a prompt text is kept as the prompt.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    num_beams: int = 1
    max_new_tokens: int = 256
    prompt_tokens: int = 64

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_beams < 1 or self.max_new_tokens < 0 or self.prompt_tokens < 1:
            raise ValueError(f"invalid sampling options {asdict(self)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class LanguageModel(Protocol):
    """fit on a corpus, sample a corpus, score a corpus. Items are texts for LMs, numbers/tokens for oracles."""

    def fit(self, texts: Sequence) -> None: ...

    def sample(self, n: int, prompts: Sequence | None = None) -> Sequence: ...

    def log_prob(self, texts: Sequence) -> LogProb: ...


@runtime_checkable
class SavedModel(LanguageModel, Protocol):
    """An LM the protocol can checkpoint per generation (safetensors / npz, never pickle)."""

    def save(self, path: str | Path) -> None: ...

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray: ...


def check_finite(value: float, what: str) -> float:
    if not np.isfinite(value):
        raise NonFiniteLoss(f"{what} is {value}")
    return value
