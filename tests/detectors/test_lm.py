"""Model loading: safetensors only, no remote code, device/dtype choice, tokenizer-pair check."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM

from detectors.binoculars import Binoculars
from detectors.fast_detectgpt import FastDetectGPT
from detectors.lm import check_same_tokenizer, load_causal_lm, resolve_device, resolve_dtype


def test_roundtrip_through_save_pretrained(tiny):
    lm = load_causal_lm(str(tiny.observer_dir))
    assert lm.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert lm.dtype == (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    assert lm.split_head and lm.context_length == 256 and lm.vocab_size == len(lm.tokenizer)
    plain = AutoModelForCausalLM.from_pretrained(tiny.observer_dir).eval()
    ids = torch.tensor([lm.tokenizer("A sentence to compare the logits of both loads.")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(lm.model.cpu()(ids).logits, plain(ids).logits)


def test_dtype_and_device_overrides(tiny):
    lm = load_causal_lm(str(tiny.observer_dir), device="cpu", dtype="bfloat16")
    assert lm.dtype == torch.bfloat16 and next(lm.model.parameters()).dtype == torch.bfloat16
    assert resolve_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float8", torch.device("cpu"))
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_bf16_scores_close_to_fp32(tiny):
    texts = tiny.human_texts[:3]
    fp32 = Binoculars.from_pretrained(str(tiny.observer_dir), str(tiny.performer_dir), device="cpu").score(texts)
    bf16 = Binoculars.from_pretrained(str(tiny.observer_dir), str(tiny.performer_dir), device="cpu",
                                      dtype="bfloat16").score(texts)
    assert all(abs(a.value - b.value) < 0.02 for a, b in zip(fp32, bf16))


def test_pickle_only_directory_is_refused(tiny):
    with pytest.raises(ValueError, match=r"only pickle weights \(pytorch_model.bin\).*arbitrary code"):
        load_causal_lm(str(tiny.pickle_only_dir))


def test_directory_without_weights_is_refused(tiny, tmp_path):
    shutil.copy(tiny.observer_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(ValueError, match="no model weights"):
        load_causal_lm(str(tmp_path))


def test_remote_code_never_runs(tiny, tmp_path):
    """A repository asking for its own modelling code: that code is not imported (trust_remote_code=False)."""
    d = tmp_path / "remote"
    shutil.copytree(tiny.observer_dir, d)
    marker = tmp_path / "pwned"
    (d / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (d / "config.json").write_text(json.dumps(cfg))
    try:
        load_causal_lm(str(d))
    except (ValueError, OSError):
        pass  # refusing is fine too; running the code is not
    assert not marker.exists()


def test_mismatched_tokenizers_are_refused(tiny):
    with pytest.raises(ValueError, match="do not tokenise identically.*vocabularies differ"):
        Binoculars.from_pretrained(str(tiny.observer_dir), str(tiny.other_tokenizer_dir), device="cpu")
    with pytest.raises(ValueError, match="do not tokenise identically"):
        FastDetectGPT.from_pretrained(str(tiny.observer_dir), reference=str(tiny.other_tokenizer_dir), device="cpu")


def test_same_vocabulary_different_tokenisation_is_refused(tiny):
    a = load_causal_lm(str(tiny.observer_dir), device="cpu")
    b = load_causal_lm(str(tiny.performer_dir), device="cpu")
    check_same_tokenizer(a, b)  # same tokenizer: accepted
    b.tokenizer.add_bos_token = True  # same vocabulary, but now a BOS is prepended
    b.tokenizer.update_post_processor()
    if b.tokenizer("probe")["input_ids"] == a.tokenizer("probe")["input_ids"]:
        pytest.skip("this tokenizer class ignores add_bos_token")
    with pytest.raises(ValueError, match="different tokenisation"):
        check_same_tokenizer(a, b)
