"""Mean log-likelihood baseline (Solaiman et al. 2019; as in fast-detect-gpt scripts/baselines.py).

score = mean over t = 0..L-2 of log p(x_{t+1} | x_<=t); HIGH means machine.
"""

from __future__ import annotations

import torch

from detectors.base import HIGHER_IS_MACHINE
from detectors.scoring import SingleModelScorer, label_log_probs


class Likelihood(SingleModelScorer):
    name = "likelihood"
    direction = HIGHER_IS_MACHINE

    def token_stats(self, logits: list[torch.Tensor], labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ll, has = label_log_probs(torch.log_softmax(logits[0], dim=-1), labels)
        return torch.stack([ll, has], dim=1)

    def finalize(self, sums: list[float]) -> float | None:
        return sums[0] / sums[1] if sums[1] else None
