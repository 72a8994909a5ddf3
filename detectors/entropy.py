"""Mean predictive entropy baseline (Gehrmann et al. 2019; as in fast-detect-gpt scripts/baselines.py).

score = mean over t = 0..L-2 of H(p_t) = -sum_v p_t(v) log p_t(v) (the positions that have a next token, as the
reference's logits[:, :-1]); raw entropy is LOWER for machine text, so the direction is lower_is_machine.
"""

from __future__ import annotations

import torch

from detectors.base import LOWER_IS_MACHINE
from detectors.scoring import SingleModelScorer


class Entropy(SingleModelScorer):
    name = "entropy"
    direction = LOWER_IS_MACHINE

    def token_stats(self, logits: list[torch.Tensor], labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        lp = torch.log_softmax(logits[0], dim=-1)
        has = (labels >= 0).to(lp.dtype)
        ent = -(lp.exp() * lp).sum(-1)
        return torch.stack([ent * has, has], dim=1)

    def finalize(self, sums: list[float]) -> float | None:
        return sums[0] / sums[1] if sums[1] else None
