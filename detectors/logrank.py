"""Log-rank baseline (GLTR, Gehrmann et al. 2019; as in fast-detect-gpt scripts/baselines.py `get_logrank`).

rank_t = 1 + number of vocabulary entries with a strictly larger logit than the next token x_{t+1};
score = -mean_t log(rank_t) (the reference's sign), so HIGH means machine. The reference ranks with argsort, which
orders exact ties arbitrarily; counting strictly larger logits gives tied tokens their best rank.
"""

from __future__ import annotations

import torch

from detectors.base import HIGHER_IS_MACHINE
from detectors.scoring import SingleModelScorer


def log_ranks(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log rank of the label with 0 where there is no label, mask of positions with a label)."""
    has = labels >= 0
    target = logits.gather(-1, labels.clamp(min=0).unsqueeze(-1))
    rank = (logits > target).sum(-1).to(logits.dtype) + 1
    return torch.where(has, rank.log(), torch.zeros_like(rank)), has.to(logits.dtype)


class LogRank(SingleModelScorer):
    name = "logrank"
    direction = HIGHER_IS_MACHINE

    def token_stats(self, logits: list[torch.Tensor], labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        lr, has = log_ranks(logits[0], labels)
        return torch.stack([lr, has], dim=1)

    def finalize(self, sums: list[float]) -> float | None:
        return -sums[0] / sums[1] if sums[1] else None
