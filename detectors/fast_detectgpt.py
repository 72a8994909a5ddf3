"""Fast-DetectGPT, analytic sampling discrepancy (Bao et al. 2024, ICLR), as in the reference implementation
github.com/baoguangsheng/fast-detect-gpt, scripts/fast_detect_gpt.py (`get_sampling_discrepancy_analytic`).

For a text x_1..x_L (scoring tokenizer, special tokens included, no padding), at each position t = 0..L-2 with
next token x_{t+1}: lp_t = log_softmax(scoring_logits[t]), q_t = softmax(reference_logits[t]),
    ll_t = lp_t[x_{t+1}],  mu_t = sum_v q_t(v) lp_t(v),  var_t = sum_v q_t(v) lp_t(v)^2 - mu_t^2
and score = (sum_t ll_t - sum_t mu_t) / sqrt(sum_t var_t); HIGH means machine. "reference" is the sampling model
(GPT-J-6B in the paper's two-model setting) and "scoring" the model whose log-probabilities are tested
(GPT-Neo-2.7B); the one-model variant uses the scoring model for both. When the two output layers differ in size,
both are cut to the smaller vocabulary (as the reference does). Texts longer than the models' context are truncated
(the reference does not truncate; its texts are short).
"""

from __future__ import annotations

import math

import torch

from detectors.base import HIGHER_IS_MACHINE
from detectors.lm import LoadedLM
from detectors.scoring import LMScorer, label_log_probs, load_models


class FastDetectGPT(LMScorer):
    name = "fast-detectgpt"
    direction = HIGHER_IS_MACHINE

    def __init__(self, scoring: LoadedLM, reference: LoadedLM | None = None, **kwargs) -> None:
        # Model order inside the engine: [scoring] or [scoring, reference]; model_ids lists reference first,
        # following the reference code's "<reference>_<scoring>" naming.
        lms = [scoring] if reference is None or reference is scoring else [scoring, reference]
        self.two_models = len(lms) == 2
        super().__init__(lms, **kwargs)
        self.model_ids = [lm.model_id for lm in reversed(lms)]

    @classmethod
    def from_pretrained(cls, scoring: str, reference: str | None = None, device: str = "auto",
                        dtype: str | None = None, **kwargs) -> FastDetectGPT:
        ids = [scoring] if reference is None or reference == scoring else [scoring, reference]
        lms = load_models(ids, device, dtype)
        return cls(lms[0], lms[1] if len(lms) > 1 else None, **kwargs)

    def token_stats(self, logits: list[torch.Tensor], labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        lp = torch.log_softmax(logits[0], dim=-1)
        q = torch.softmax(logits[1], dim=-1) if self.two_models else lp.exp()
        ll, has = label_log_probs(lp, labels)
        mu = (q * lp).sum(-1)
        var = (q * lp.square()).sum(-1) - mu.square()
        return torch.stack([ll, mu * has, var * has], dim=1)

    def finalize(self, sums: list[float]) -> float | None:
        ll, mu, var = sums
        if var <= 0:
            return None
        return (ll - mu) / math.sqrt(var)
