"""Any Hugging Face causal LM, fine-tuned afresh from the same checkpoint at every generation (the paper's setup).

Shumailov et al. fine-tune OPT-125m on wikitext2 in 64-token blocks, then generate the next 64 tokens from each
training block (5-way beam search, or sampling) to make the next generation's data. Defaults follow that:
`--model hf:facebook/opt-125m --block-size 64 --max-new-tokens 64 --prompt-tokens 64 --beams 5 --epochs 5`.
Loading never runs repository code (trust_remote_code=False) and reads safetensors weights only.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from collapse.models.base import SamplingOptions
from collapse.models.causal import CausalLM, TrainOptions

PAPER_TRAIN = TrainOptions(epochs=5, lr=5e-5, batch_size=16, block_size=64, warmup=0.0, weight_decay=0.0)


def load_pretrained(path_or_id: str | Path, device: str = "auto"):
    model = AutoModelForCausalLM.from_pretrained(str(path_or_id), trust_remote_code=False, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(str(path_or_id), trust_remote_code=False)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


class HFModel(CausalLM):
    name = "hf"

    def __init__(self, path_or_id: str | Path, train: TrainOptions | None = None,
                 sampling: SamplingOptions | None = None, seed: int = 0, device: str = "auto") -> None:
        torch.manual_seed(seed)
        model, tok = load_pretrained(path_or_id, device)
        super().__init__(model, tok, train or PAPER_TRAIN, sampling, seed, device)
        self.source = str(path_or_id)

    @classmethod
    def load(cls, path: str | Path, sampling: SamplingOptions | None = None, seed: int = 0,
             device: str = "auto", train: TrainOptions | None = None) -> CausalLM:
        model, tok = load_pretrained(path, device)
        return CausalLM(model, tok, train or PAPER_TRAIN, sampling, seed, device)
