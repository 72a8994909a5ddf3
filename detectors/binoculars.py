"""Binoculars (Hans et al. 2024, "Spotting LLMs With Binoculars"), with the reference implementation's conventions.

score = log-perplexity / log-cross-perplexity; LOW means machine. Conventions of the reference code
(github.com/ahans30/Binoculars, binoculars/detector.py and metrics.py), kept so that its published thresholds
(0.9015 best F1, 0.8536 low FPR, for observer tiiuae/falcon-7b and performer tiiuae/falcon-7b-instruct in bf16)
mean the same thing here:

1. Tokenisation: the observer's tokenizer with its special tokens, truncated to 512 tokens (`max_token_observed`).
2. Perplexity term: the PERFORMER's logits. Mean over positions t = 0..L-2 of the cross-entropy of
   performer_logits[t] against token t+1 (logits shifted left, labels shifted right), masked with the attention
   mask of the label position.
3. Cross-perplexity term: at every position t = 0..L-1 (NOT shifted: the last position, which predicts past the end
   of the text, is included), the cross-entropy -sum_v softmax(observer_logits[t])_v * log_softmax(performer_logits
   [t])_v, i.e. the performer's log-probabilities weighted by the observer's probabilities. The mean excludes
   positions whose token equals the pad token id (the reference's padding mask is `input_ids != pad_token_id`, with
   pad = eos when the tokenizer has none), so a literal end-of-text token inside a text is left out of this mean
   but not out of the perplexity mean.
4. Temperature 1, mean (not median) aggregation.

We compute each text as the reference computes a single unpadded text; padding within our batches is masked out
exactly. Our softmaxes run in fp32 on the model's (bf16 on GPU) logits; the reference runs them in the logits'
dtype, which can differ in the third decimal.
"""

from __future__ import annotations

import torch

from detectors.base import LOWER_IS_MACHINE
from detectors.lm import LoadedLM
from detectors.registry import published_thresholds
from detectors.scoring import LMScorer, load_models


class Binoculars(LMScorer):
    name = "binoculars"
    direction = LOWER_IS_MACHINE

    def __init__(self, observer: LoadedLM, performer: LoadedLM, *, max_length: int = 512, **kwargs) -> None:
        super().__init__([observer, performer], max_length=max_length, **kwargs)
        tok = observer.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.pad_token_id = -1 if pad is None else int(pad)  # -1 never matches a token: nothing excluded
        self.published_thresholds = published_thresholds(self.name, self.model_ids)

    @classmethod
    def from_pretrained(cls, observer: str, performer: str, device: str = "auto", dtype: str | None = None,
                        **kwargs) -> Binoculars:
        obs, perf = load_models([observer, performer], device, dtype)
        return cls(obs, perf, **kwargs)

    def token_stats(self, logits: list[torch.Tensor], labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        observer, performer = logits
        # log_softmax(performer) = performer - logsumexp(performer); with sum_v softmax(observer)_v = 1 both terms
        # follow without materialising the performer's log-probabilities:
        #   nll_t  = lse_t - performer[t, x_{t+1}]
        #   xent_t = -sum_v p_obs(v) (performer(v) - lse_t) = lse_t - sum_v p_obs(v) performer(v)
        lse = torch.logsumexp(performer, dim=-1)
        has_label = labels >= 0
        target = performer.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        nll = torch.where(has_label, lse - target, torch.zeros_like(lse))
        x_ent = lse - torch.linalg.vecdot(torch.softmax(observer, dim=-1), performer)
        keep = (ids != self.pad_token_id).to(x_ent.dtype)
        return torch.stack([nll, has_label.to(x_ent.dtype), x_ent * keep, keep], dim=1)

    def finalize(self, sums: list[float]) -> float | None:
        nll, n_labels, x_ent, n_kept = sums
        if n_labels == 0 or n_kept == 0 or x_ent == 0:
            return None
        return (nll / n_labels) / (x_ent / n_kept)
