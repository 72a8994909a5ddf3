"""Load causal language models safely and check that two models of a pair tokenise identically.

Security: `trust_remote_code=False` (no Python from the model repository runs) and safetensors only: a directory
holding only pickle weights (`pytorch_model.bin`, `*.pt`, `*.ckpt`) is refused, because unpickling executes
arbitrary code from the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from detectors.registry import check_safetensors_only

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


@dataclass
class LoadedLM:
    """A causal LM, its tokenizer, and how it was loaded.

    split_head: True when logits == output_embeddings(base_model(...).last_hidden_state) for this architecture
    (checked on a probe input at load time). The scorers then apply the vocabulary projection only to real
    (non-padding) positions and chunk by chunk, so the full [batch, length, vocab] logits never exist at once.
    Architectures that post-process logits (soft-capping, logit scaling) fail the probe and use full logits.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    model_id: str
    device: torch.device
    dtype: torch.dtype
    split_head: bool = False

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def context_length(self) -> int:
        cfg = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None/'auto' -> bfloat16 on GPU (what Binoculars' thresholds were set with), float32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected auto or one of {sorted(DTYPES)}") from None


def load_causal_lm(path_or_id: str, device: str | torch.device = "auto",
                   dtype: str | torch.dtype | None = None) -> LoadedLM:
    """Load a causal LM and its tokenizer from a Hugging Face id or a local directory (safetensors only)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    check_safetensors_only(path_or_id)
    try:
        model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=dt, trust_remote_code=False,
                                                     use_safetensors=True)
    except OSError as e:
        raise ValueError(f"cannot load {path_or_id!r} as a causal LM with safetensors weights: {e}") from e
    tokenizer = AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=False)
    # transformers types `PreTrainedModel.to` through a decorator mypy reads as taking a model, not a device.
    model.to(dev).eval()  # type: ignore[arg-type]
    return wrap_model(model, tokenizer, str(path_or_id))


def wrap_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, model_id: str) -> LoadedLM:
    """Wrap an already-built model (e.g. one made from a config in a benchmark) the same way load_causal_lm does."""
    model.eval()
    param = next(model.parameters())
    lm = LoadedLM(model=model, tokenizer=tokenizer, model_id=model_id, device=param.device, dtype=param.dtype)
    lm.split_head = _probe_split_head(lm)
    return lm


@torch.inference_mode()
def _probe_split_head(lm: LoadedLM) -> bool:
    base, head = getattr(lm.model, "base_model", None), lm.model.get_output_embeddings()
    if base is None or head is None or base is lm.model:
        return False
    n = min(8, lm.context_length)
    ids = torch.arange(n, device=lm.device).unsqueeze(0) % lm.vocab_size
    mask = torch.ones_like(ids)
    try:
        full = lm.model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
        split = head(base(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state).float()
    except (TypeError, AttributeError, RuntimeError):
        return False
    tol = 1e-4 if lm.dtype == torch.float32 else 2e-2
    return full.shape == split.shape and torch.allclose(full, split, atol=tol, rtol=tol)


def check_same_tokenizer(a: LoadedLM, b: LoadedLM) -> None:
    """Refuse a pair whose tokenizers differ: both scorers compare the two distributions token by token."""
    if a.model_id == b.model_id and a.tokenizer is b.tokenizer:
        return
    va, vb = a.tokenizer.get_vocab(), b.tokenizer.get_vocab()
    why = ""
    if va != vb:
        only_a = sorted(set(va.items()) - set(vb.items()))
        why = (f"vocabularies differ ({len(va)} vs {len(vb)} entries, {len(only_a)} entries of the first not in "
               f"the second, e.g. {only_a[:3]})")
    else:
        probe = "Tokenizer probe: ümlaut, 1234 numbers,  double  spaces\nand newlines. <|endoftext|>"
        ia, ib = a.tokenizer(probe)["input_ids"], b.tokenizer(probe)["input_ids"]
        if ia != ib:
            why = f"same vocabulary but different tokenisation of a probe string ({ia[:8]}... vs {ib[:8]}...)"
    if why:
        raise ValueError(
            f"models {a.model_id!r} and {b.model_id!r} do not tokenise identically: {why}. Binoculars and "
            "Fast-DetectGPT compare the two models' predictions position by position, so both models must "
            "share one tokenizer (e.g. a base model and its instruction-tuned version).")
