"""The small interface every detector implements, and the result type it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

HIGHER_IS_MACHINE = "higher_is_machine"
LOWER_IS_MACHINE = "lower_is_machine"
DIRECTIONS = (HIGHER_IS_MACHINE, LOWER_IS_MACHINE)
DEFAULT_MAX_TOKENS = 8192  # padded tokens per forward pass of the LM detectors (detectors.scoring batches by it)


@dataclass(frozen=True)
class Score:
    """One text's score.

    value: the detector's statistic, or None when the text cannot be scored (then `reason` says why:
        "empty" for empty/whitespace-only text, "too_short" for fewer tokens than the detector needs,
        "degenerate" when the formula is undefined, e.g. LRR with every token at rank 1).
    tokens: tokens actually scored (after truncation); words for fastText.
    truncated: the text was longer than the detector's context and only its beginning was scored.
    normalized: the text was changed by `detectors.normalize.normalize_text` (zero-width characters,
        homoglyphs, odd spaces) before scoring.
    """

    value: float | None
    tokens: int
    truncated: bool
    reason: str | None = None
    normalized: bool = False


@runtime_checkable
class Detector(Protocol):
    """What the pipeline relies on. Build one with `detectors.registry.build_detector(name, **options)`.

    name: CLI name ("binoculars", "fast-detectgpt", "likelihood", "logrank", "entropy", "lrr", "fasttext",
        "watermark").
    direction: HIGHER_IS_MACHINE or LOWER_IS_MACHINE: how to read `Score.value`.
    model_ids: what produced the scores (model ids/paths, or the fastText model's file and hash); thresholds
        are only valid for the same detector and model_ids.
    published_thresholds: thresholds published with the method, keyed by name ({} when none apply to these models).
    """

    name: str
    direction: str
    model_ids: list[str]
    published_thresholds: dict[str, float]

    def score(self, texts: list[str]) -> list[Score]:
        """Scores in input order, one per text; never raises for bad text (see Score.reason)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Cheap estimate of the cost of scoring `text` (tokens, capped at the context), for weighting batches."""
        ...


def unscorable(reason: str, tokens: int = 0, truncated: bool = False, normalized: bool = False) -> Score:
    return Score(value=None, tokens=tokens, truncated=truncated, reason=reason, normalized=normalized)


def machine_oriented(value: float, direction: str) -> float:
    """Turn a score into one where higher always means machine (used by evaluation and plots)."""
    if direction == HIGHER_IS_MACHINE:
        return value
    if direction == LOWER_IS_MACHINE:
        return -value
    raise ValueError(f"unknown direction {direction!r}; expected one of {DIRECTIONS}")


def estimate_tokens(text: str, cap: int | None = None) -> int:
    # ~4 bytes of UTF-8 per BPE token for English; good enough to weight batches without tokenising.
    n = len(text.encode("utf-8", errors="replace")) // 4 + 1 if text.strip() else 0
    return min(n, cap) if cap else n
