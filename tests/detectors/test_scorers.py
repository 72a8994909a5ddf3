"""Zero-shot scorers against an independent, unbatched computation from the raw logits of tiny models."""

from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from detectors.base import HIGHER_IS_MACHINE, LOWER_IS_MACHINE, machine_oriented
from detectors.binoculars import Binoculars
from detectors.entropy import Entropy
from detectors.evaluation import auroc
from detectors.fast_detectgpt import FastDetectGPT
from detectors.likelihood import Likelihood
from detectors.lm import load_causal_lm
from detectors.logrank import LogRank
from detectors.lrr import LRR

TOL = 1e-4


@pytest.fixture(scope="module")
def lms(tiny):
    return {"observer": load_causal_lm(str(tiny.observer_dir), device="cpu"),
            "performer": load_causal_lm(str(tiny.performer_dir), device="cpu")}


@pytest.fixture(scope="module")
def raw(tiny):
    """Plain transformers objects, loaded independently of detectors.lm."""
    tok = AutoTokenizer.from_pretrained(tiny.tokenizer_dir)
    models = {name: AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
              for name, d in (("observer", tiny.observer_dir), ("performer", tiny.performer_dir))}
    return tok, models


@pytest.fixture(scope="module")
def texts(tiny):
    long_text = " ".join(tiny.human_texts[:6])  # far beyond the 256-token context
    return tiny.human_texts[:6] + tiny.machine_texts[:4] + ["Short one.", long_text]


def logits_of(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].double()


def ids_of(tok, text: str, max_length: int) -> list[int]:
    return tok(text, truncation=True, max_length=max_length)["input_ids"]


# -- independent formulas, written from the papers' reference code (one text, no batching, float64) ----------
def ref_binoculars(obs, perf, ids, pad_id):
    ids_t = torch.tensor(ids)
    ppl = F.cross_entropy(perf[:-1], ids_t[1:])  # performer, shifted
    x_ent = -(torch.softmax(obs, -1) * torch.log_softmax(perf, -1)).sum(-1)  # all positions, not shifted
    keep = ids_t != pad_id
    return (ppl / x_ent[keep].mean()).item()


def ref_fdg(ref_logits, score_logits, ids):
    labels = torch.tensor(ids[1:]).unsqueeze(-1)
    lp = torch.log_softmax(score_logits[:-1], -1)
    q = torch.softmax(ref_logits[:-1], -1)
    ll = lp.gather(-1, labels).squeeze(-1)
    mu = (q * lp).sum(-1)
    var = (q * lp.square()).sum(-1) - mu.square()
    return ((ll.sum() - mu.sum()) / var.sum().sqrt()).item()


def ref_likelihood(logits, ids):
    return torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).mean().item()


def ref_logrank_mean(logits, ids):
    order = logits[:-1].argsort(-1, descending=True)
    ranks = (order == torch.tensor(ids[1:]).unsqueeze(-1)).nonzero()[:, -1].double() + 1
    return ranks.log().mean().item()


def ref_entropy(logits):
    lp = torch.log_softmax(logits[:-1], -1)
    return (-(lp.exp() * lp).sum(-1)).mean().item()


def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b))


def test_binoculars_matches_reference_formula(lms, raw, texts):
    tok, models = raw
    det = Binoculars(lms["observer"], lms["performer"])
    assert det.max_length == 256  # the reference's 512, capped by these models' 256-position context
    scores = det.score(texts)
    for text, s in zip(texts, scores):
        ids = ids_of(tok, text, 256)
        expected = ref_binoculars(logits_of(models["observer"], ids), logits_of(models["performer"], ids), ids,
                                  tok.eos_token_id)
        assert s.tokens == len(ids)
        assert s.truncated == (len(tok(text)["input_ids"]) > 256)
        assert close(s.value, expected), (text[:40], s.value, expected)
    assert scores[-1].truncated and not scores[-2].truncated


def test_binoculars_excludes_pad_token_only_from_cross_perplexity(lms, raw, tiny):
    """A literal end-of-text token inside a text: in the perplexity mean, out of the cross-perplexity mean."""
    tok, models = raw
    text = "<|endoftext|><|endoftext|>".join(t[:30] for t in tiny.human_texts[:8])
    ids = ids_of(tok, text, 256)
    assert ids.count(tok.eos_token_id) == 14
    expected = ref_binoculars(logits_of(models["observer"], ids), logits_of(models["performer"], ids), ids,
                              tok.eos_token_id)
    no_mask = ref_binoculars(logits_of(models["observer"], ids), logits_of(models["performer"], ids), ids, -1)
    got = Binoculars(lms["observer"], lms["performer"]).score([text])[0].value
    assert close(got, expected) and not close(got, no_mask)


def test_fast_detectgpt_two_models_and_one_model(lms, raw, texts):
    tok, models = raw
    two = FastDetectGPT(lms["performer"], reference=lms["observer"]).score(texts)
    one = FastDetectGPT(lms["performer"]).score(texts)
    for text, s2, s1 in zip(texts, two, one):
        ids = ids_of(tok, text, 256)
        perf, obs = logits_of(models["performer"], ids), logits_of(models["observer"], ids)
        assert close(s2.value, ref_fdg(obs, perf, ids))
        assert close(s1.value, ref_fdg(perf, perf, ids))


def test_baselines_match_reference_formulas(lms, raw, texts):
    tok, models = raw
    lm = lms["performer"]
    got = {cls.name: cls(lm).score(texts) for cls in (Likelihood, LogRank, Entropy, LRR)}
    for i, text in enumerate(texts):
        ids = ids_of(tok, text, 256)
        logits = logits_of(models["performer"], ids)
        ll, lr = ref_likelihood(logits, ids), ref_logrank_mean(logits, ids)
        assert close(got["likelihood"][i].value, ll)
        assert close(got["logrank"][i].value, -lr)
        assert close(got["entropy"][i].value, ref_entropy(logits))
        assert close(got["lrr"][i].value, -ll / lr)


def test_batching_order_and_chunking_do_not_change_scores(lms, texts):
    ref = Binoculars(lms["observer"], lms["performer"], max_tokens=100_000).score(texts)
    perm = list(range(len(texts)))
    random.Random(0).shuffle(perm)
    for kwargs in ({"max_tokens": 256}, {"max_tokens": 700}, {"chunk_elements": 3 * 1024}):
        shuffled = Binoculars(lms["observer"], lms["performer"], **kwargs).score([texts[i] for i in perm])
        for j, i in enumerate(perm):
            assert abs(shuffled[j].value - ref[i].value) < 1e-5
            assert shuffled[j].tokens == ref[i].tokens and shuffled[j].truncated == ref[i].truncated


def test_full_logits_fallback_gives_the_same_scores(lms, texts):
    """Architectures whose logits cannot be split from the body (soft-capping...) use the full-logits path."""
    assert lms["observer"].split_head and lms["performer"].split_head
    split = FastDetectGPT(lms["performer"], reference=lms["observer"]).score(texts)
    obs, perf = copy.copy(lms["observer"]), copy.copy(lms["performer"])
    obs.split_head = perf.split_head = False
    full = FastDetectGPT(perf, reference=obs).score(texts)
    assert all(abs(a.value - b.value) < 1e-5 for a, b in zip(split, full))


@pytest.mark.parametrize("cls,direction", [(Binoculars, LOWER_IS_MACHINE), (FastDetectGPT, HIGHER_IS_MACHINE),
                                           (Likelihood, HIGHER_IS_MACHINE), (LogRank, HIGHER_IS_MACHINE),
                                           (Entropy, LOWER_IS_MACHINE), (LRR, HIGHER_IS_MACHINE)])
def test_direction_separates_sampled_from_human_text(cls, direction, lms, tiny):
    """Text sampled from the performer scores as more machine-like than held-out human text."""
    det = cls(lms["observer"], lms["performer"]) if cls is Binoculars else cls(lms["performer"])
    assert det.direction == direction
    human = [machine_oriented(s.value, det.direction) for s in det.score(tiny.human_texts[:40])]
    machine = [machine_oriented(s.value, det.direction) for s in det.score(tiny.machine_texts)]
    cold = [machine_oriented(s.value, det.direction) for s in det.score(tiny.cold_machine_texts)]
    assert auroc(human, machine) > 0.9
    assert auroc(human, cold) > 0.9


def test_bad_inputs_never_raise(lms, tiny):
    det = Binoculars(lms["observer"], lms["performer"])
    clean = tiny.human_texts[3]
    zero_width = clean.replace(" ", " \u200b", 10)
    homoglyph = clean.replace("e", "\u0435", 5)  # Cyrillic e inside Latin words
    out = det.score(["", "  \n\t ", "A", clean, zero_width, homoglyph, "\u200b\u200b"])
    assert [s.reason for s in out[:3]] == ["empty", "empty", "too_short"]
    assert all(s.value is None for s in out[:3]) and out[2].tokens == 1
    assert not out[3].normalized and out[4].normalized and out[5].normalized
    assert out[4].value == pytest.approx(out[3].value, abs=1e-6)
    assert out[5].value == pytest.approx(out[3].value, abs=1e-6)
    assert out[6].reason == "empty" and out[6].normalized


def test_published_thresholds_only_for_the_falcon_pair(lms):
    assert Binoculars(lms["observer"], lms["performer"]).published_thresholds == {}
    from detectors.registry import published_thresholds

    falcon = published_thresholds("binoculars", ["tiiuae/falcon-7b", "tiiuae/falcon-7b-instruct"])
    assert falcon["accuracy"] == pytest.approx(0.9015, abs=1e-4)
    assert falcon["low-fpr"] == pytest.approx(0.8536, abs=1e-4)


@pytest.mark.parametrize("cls", [FastDetectGPT, Likelihood, LogRank, Entropy, LRR])
def test_other_scorers_are_batch_and_order_invariant(cls, lms, texts):
    make = (lambda **kw: cls(lms["performer"], lms["observer"], **kw)) if cls is FastDetectGPT else \
        (lambda **kw: cls(lms["performer"], **kw))
    ref = make(max_tokens=100_000).score(texts)
    rev = make(max_tokens=300, chunk_elements=5 * 1024).score(texts[::-1])[::-1]
    assert all(abs(a.value - b.value) < 1e-5 for a, b in zip(ref, rev))
