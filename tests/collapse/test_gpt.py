"""GPT-2 from scratch and a fine-tuned Hugging Face causal LM, on CPU at toy sizes, no network."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from collapse.cli import main
from collapse.models.base import NonFiniteLoss, SamplingOptions
from collapse.models.causal import TrainOptions
from collapse.models.gpt import GPTModel, wrap_tokenizer
from collapse.models.hf import HFModel
from collapse.protocol import RunConfig, load_model
from collapse.tokenizer import train_tokenizer


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores shared with other test runs: one torch thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok(human_texts):
    return train_tokenizer(human_texts[:200], 384)


def test_gpt_runs_three_generations_with_metrics_and_plots(human_parquet, tmp_path):
    out = tmp_path / "gpt"
    rc = main(["run", "--shards", str(human_parquet), "--model", "gpt", "--gpt-size", "toy", "--max-docs", "150",
               "--generations", "2", "--seeds", "1", "--sample-size", "40", "--max-steps", "30",
               "--max-new-tokens", "48", "--output", str(out), "--no-progress"])
    assert rc == 0
    rows = pq.read_table(out / "metrics.parquet").to_pylist()
    assert [r["generation"] for r in rows] == [0, 1, 2] and all(r["status"] == "ok" for r in rows)
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    for r in rows:
        assert 1 < r["heldout_ppl"] < len(vocab)  # trained: better than uniform over the vocabulary
        assert math.isfinite(r["gen0_ppl_on_samples"]) and r["sample_words"] > 0
        assert r["train_steps"] == 30 and r["train_loss"] < math.log(len(vocab))
    for name in ("report.md", "ppl_ratio.png", "gen0_ppl_hist.png", "diversity.png", "support.png"):
        assert (out / name).stat().st_size > 1000, name
    model_dir = out / "seed_0" / "gen_000" / "model"
    files = {p.name for p in model_dir.iterdir()}
    assert "model.safetensors" in files and not {f for f in files if f.endswith((".bin", ".pt", ".pkl"))}
    # The saved generation-0 model scores the held-out text exactly as during the run.
    cfg = RunConfig(**json.loads((out / "config.json").read_text())["options"])
    model = load_model(cfg, model_dir, SamplingOptions(), 0)
    texts = pq.read_table(out / "seed_0" / "gen_001" / "samples.parquet").to_pylist()
    lp = model.log_prob([t["text"] for t in texts])
    per = np.exp(-lp.nats / lp.tokens)
    assert np.allclose(per, [t["gen0_ppl"] for t in texts], rtol=1e-4)


def test_log_prob_windows_and_batching(tok, human_texts):
    m = GPTModel(tok, "toy", TrainOptions(max_steps=5, score_batch_size=3), seed=0, device="cpu")
    m.fit(human_texts[:40])
    short, long_ = "The cat sat on the mat.", human_texts[100]
    ids = m.framed([short])[0]
    with torch.no_grad():
        logits = m.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, :-1]
    direct = torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:])[:, None]).sum().item()
    lp = m.log_prob([short])
    assert lp.tokens[0] == len(ids) - 1 and lp.nats[0] == pytest.approx(direct, rel=1e-5)
    n_long = len(m.framed([long_])[0])
    assert n_long > 2 * m.max_len  # spans several windows
    texts = [short, long_, human_texts[101][:50], ""]
    together = m.log_prob(texts)
    alone = [m.log_prob([t]) for t in texts]
    assert together.tokens[1] == n_long - 1 and together.tokens[3] == 1  # every token predicted once
    assert np.allclose(together.nats, [a.nats[0] for a in alone], rtol=1e-5)  # padding changes nothing


def test_sampling_batched_prompted_and_beam(tok, human_texts):
    m = GPTModel(tok, "toy", TrainOptions(max_steps=20, sample_batch_size=8),
                 SamplingOptions(max_new_tokens=12, prompt_tokens=8), seed=0, device="cpu")
    m.fit(human_texts[:40])
    out = m.sample(10)
    longest = max(len(t) for t in tok.get_vocab())  # bytes of the longest token; a byte decodes to <= 1 char
    assert len(out) == 10 and len(set(out)) == 10 and all(len(t) <= 12 * longest for t in out)
    m.sampling = SamplingOptions(max_new_tokens=0)
    assert m.sample(3) == ["", "", ""]
    m.sampling = SamplingOptions(max_new_tokens=12, prompt_tokens=8)
    prompted = m.sample(3, prompts=human_texts[:3])
    assert len(prompted) == 3
    m.sampling = SamplingOptions(max_new_tokens=12, num_beams=3, prompt_tokens=8)
    beams = m.sample(2, prompts=human_texts[:2])
    assert beams == m.sample(2, prompts=human_texts[:2])  # beam search is deterministic


def test_nan_loss_is_detected(tok, human_texts):
    m = GPTModel(tok, "toy", TrainOptions(max_steps=10, lr=float("inf")), seed=0, device="cpu")
    with pytest.raises(NonFiniteLoss, match=r"training loss is nan at step \d+ of 10"):
        m.fit(human_texts[:20])


@pytest.fixture()
def tiny_pretrained(tok, tmp_path):
    """A tiny GPT-2 checkpoint on disk, as a stand-in for a hub model id (no network in tests)."""
    hf_tok = wrap_tokenizer(tok)
    cfg = GPT2Config(vocab_size=len(hf_tok), n_layer=1, n_head=2, n_embd=32, n_positions=64,
                     bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id)
    torch.manual_seed(0)
    path = tmp_path / "tiny-gpt2"
    GPT2LMHeadModel(cfg).save_pretrained(path)
    hf_tok.save_pretrained(path)
    return path


def test_hf_fine_tune_protocol_from_a_local_checkpoint(human_parquet, tiny_pretrained, tmp_path):
    out = tmp_path / "hf"
    cfg = RunConfig(shards=str(human_parquet), model=f"hf:{tiny_pretrained}", max_docs=120, generations=1,
                    seeds=1, sample_size=12, block_size=32, max_steps=8, beams=2, max_new_tokens=16,
                    prompt_tokens=16, progress=False)
    assert cfg.prompt_source == "real"  # the paper: continue blocks of the real training data
    from collapse.protocol import run

    rows = run(cfg, out, log=lambda *a: None).to_pylist()
    assert [r["generation"] for r in rows] == [0, 1] and all(math.isfinite(r["heldout_ppl"]) for r in rows)
    samples = pq.read_table(out / "seed_0" / "gen_000" / "samples.parquet").column("text").to_pylist()
    assert len(samples) == 12 and sum(len(s) > 0 for s in samples) >= 6
    assert (out / "seed_0" / "gen_001" / "model" / "model.safetensors").exists()
    assert not (out / "tokenizer.json").exists()  # the checkpoint's own tokenizer is used


def test_hf_loader_refuses_pickle_only_checkpoints(tiny_pretrained, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for f in tiny_pretrained.iterdir():
        if f.name != "model.safetensors":
            (pickled / f.name).write_bytes(f.read_bytes())
    torch.save({"junk": torch.zeros(1)}, pickled / "pytorch_model.bin")  # never loaded: safetensors only
    with pytest.raises(OSError):
        HFModel(pickled, device="cpu")
    assert HFModel(tiny_pretrained, device="cpu").max_len == 64


def test_gpt_web_arm_filters_with_the_libraries_scorer_over_generation_zero(human_parquet, tmp_path):
    """--model gpt: the white-box filter is the detectors library's own FastDetectGPT over the harness's model."""
    from collapse.data import load_corpus
    from detectors.fast_detectgpt import FastDetectGPT
    from detectors.lm import wrap_model

    out = tmp_path / "gptweb"
    rc = main(["run", "--shards", str(human_parquet), "--model", "gpt", "--gpt-size", "toy", "--max-docs", "400",
               "--regime", "web", "--contamination", "0.5", "--generations", "1", "--seeds", "1",
               "--sample-size", "40", "--max-steps", "30", "--max-new-tokens", "48", "--target-fpr", "0.05",
               "--filter", "detector:fast-detectgpt:gen0", "--output", str(out), "--no-progress"])
    assert rc == 0
    row = pq.read_table(out / "metrics.parquet").to_pylist()[1]
    assert 0 <= row["filter_tpr"] <= 1 and 0 <= row["filter_fpr"] <= 1 and row["pool_synthetic"] == 20
    decision = json.loads((out / "seed_0" / "gen_001" / "filter.json").read_text())
    assert decision["detector"] == "fast-detectgpt" and decision["models"][0].startswith("collapse-gpt:seed_0/gen_000")
    # recompute the saved scores independently: the library's scorer over the saved generation-0 model
    cfg = RunConfig(**json.loads((out / "config.json").read_text())["options"])
    model = load_model(cfg, out / "seed_0" / "gen_000" / "model", SamplingOptions(), 0)
    scorer = FastDetectGPT(wrap_model(model.model, model.tok, "check"))
    corpus = load_corpus(human_parquet, max_docs=400)
    text = dict(zip(corpus.keys, corpus.texts))
    samples = pq.read_table(out / "seed_0" / "gen_000" / "samples.parquet").column("text").to_pylist()
    pool = pq.read_table(out / "seed_0" / "gen_001" / "pool.parquet").to_pylist()
    texts = [samples[int(p["source"].split(":")[1])] if p["synthetic"] else text[p["source"]] for p in pool]
    got = [s.value for s in scorer.score(texts)]
    assert np.allclose([np.nan if v is None else v for v in got], [p["score"] for p in pool], equal_nan=True,
                       rtol=1e-4, atol=1e-5)
    threshold = decision["threshold"]
    assert [p["kept"] for p in pool] == [bool(np.isfinite(p["score"]) and p["score"] <= threshold) for p in pool]
