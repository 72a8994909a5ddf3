"""A small GPT-2 trained from scratch on each generation's data, over the run's tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from collapse.models.base import SamplingOptions
from collapse.models.causal import CausalLM, TrainOptions
from collapse.tokenizer import EOS

# n_positions doubles as the training block size: positions beyond it would never be trained.
SIZES: dict[str, dict[str, int]] = {
    "toy": {"n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 64},
    "tiny": {"n_layer": 2, "n_head": 2, "n_embd": 64, "n_positions": 128},
    "small": {"n_layer": 4, "n_head": 4, "n_embd": 128, "n_positions": 256},  # CPU default: minutes per generation
    "base": {"n_layer": 6, "n_head": 8, "n_embd": 384, "n_positions": 512},  # GPU
}


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS)


class GPTModel(CausalLM):
    name = "gpt"

    def __init__(self, tokenizer: Tokenizer, size: str = "small", train: TrainOptions | None = None,
                 sampling: SamplingOptions | None = None, seed: int = 0, device: str = "auto") -> None:
        if size not in SIZES:
            raise ValueError(f"unknown GPT size {size!r}; choose one of {', '.join(SIZES)}")
        hf_tok = wrap_tokenizer(tokenizer)
        cfg = GPT2Config(vocab_size=len(hf_tok), bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
                         pad_token_id=hf_tok.pad_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                         **SIZES[size])
        torch.manual_seed(seed)  # the initial weights are part of the seed's draw
        train = train or TrainOptions()
        super().__init__(GPT2LMHeadModel(cfg), hf_tok, train, sampling, seed, device)

    @classmethod
    def load(cls, path: str | Path, sampling: SamplingOptions | None = None, seed: int = 0,
             device: str = "auto", train: TrainOptions | None = None) -> CausalLM:
        model = GPT2LMHeadModel.from_pretrained(str(path), use_safetensors=True)
        tok = PreTrainedTokenizerFast.from_pretrained(str(path))
        return CausalLM(model, tok, train, sampling, seed, device)
