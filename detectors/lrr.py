"""Log-Likelihood Log-Rank Ratio (DetectLLM, Su et al. 2023; as in fast-detect-gpt scripts/detect_llm.py).

score = -mean_t log p(x_{t+1}) / mean_t log rank_t over t = 0..L-2; HIGH means machine. Undefined (Score.reason
"degenerate") when every token has rank 1.
"""

from __future__ import annotations

import torch

from detectors.base import HIGHER_IS_MACHINE
from detectors.logrank import log_ranks
from detectors.scoring import SingleModelScorer, label_log_probs


class LRR(SingleModelScorer):
    name = "lrr"
    direction = HIGHER_IS_MACHINE

    def token_stats(self, logits: list[torch.Tensor], labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ll, _ = label_log_probs(torch.log_softmax(logits[0], dim=-1), labels)
        lr, _ = log_ranks(logits[0], labels)
        return torch.stack([ll, lr], dim=1)

    def finalize(self, sums: list[float]) -> float | None:
        ll, lr = sums
        return -ll / lr if lr > 0 else None
