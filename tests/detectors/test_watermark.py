"""Green-list watermark: text generated with the scheme's logits processor is detected, other text is not."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import norm
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from detectors.watermark import GreenList, GreenListLogitsProcessor, WatermarkDetector, seeding_scheme


@pytest.fixture(scope="module")
def generated(tiny):
    tok = AutoTokenizer.from_pretrained(tiny.tokenizer_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny.observer_dir).eval()
    vocab = model.config.vocab_size
    prompts = torch.tensor([tok(t)["input_ids"][:6] for t in tiny.human_texts[40:46]])

    def sample(processor):
        torch.manual_seed(7)
        with torch.inference_mode():
            out = model.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=True, top_k=0,
                                 max_new_tokens=150, pad_token_id=tok.eos_token_id, eos_token_id=None,
                                 logits_processor=LogitsProcessorList([processor] if processor else []))
        return tok.batch_decode(out[:, prompts.shape[1]:], skip_special_tokens=True)

    marked = sample(GreenListLogitsProcessor(vocab, gamma=0.25, delta=2.0, seeding_scheme="simple_1"))
    plain = sample(None)
    return tok, vocab, marked, plain


def test_watermarked_text_is_detected_and_other_text_is_not(generated, tiny):
    tok, vocab, marked, plain = generated
    det = WatermarkDetector(tok, vocab_size=vocab, gamma=0.25, seeding_scheme="simple_1")
    for r in det.test(marked):
        assert r.z > 4, r
        assert r.p_value == pytest.approx(norm.sf(r.z)) and r.p_value < 1e-4
    for r in det.test(plain + tiny.human_texts[:6]):
        assert abs(r.z) < 3, r
    # The right scheme with the wrong key sees no watermark.
    wrong_key = WatermarkDetector(tok, vocab_size=vocab, gamma=0.25, hash_key=12345)
    assert all(abs(r.z) < 3 for r in wrong_key.test(marked))


def test_z_formula_and_repeated_ngrams(generated):
    tok, vocab, marked, _ = generated
    det = WatermarkDetector(tok, vocab_size=vocab, gamma=0.25, ignore_repeated_ngrams=False)
    ids = det.token_ids(marked[0])
    green = GreenList(vocab, 0.25, "simple_1")
    g = sum(int((green.ids(ids[:i]) == ids[i]).any()) for i in range(1, len(ids)))
    r = det.test([marked[0]])[0]
    assert (r.green, r.scored) == (g, len(ids) - 1)
    assert r.z == pytest.approx((g - 0.25 * (len(ids) - 1)) / ((len(ids) - 1) * 0.25 * 0.75) ** 0.5)
    # A phrase repeated many times counts once per distinct bigram when repeats are ignored.
    text = " the same words again" * 40
    counted = det.test([text])[0]
    unique = WatermarkDetector(tok, vocab_size=vocab).test([text])[0]
    assert unique.scored < counted.scored / 10


def test_seeding_schemes_and_bad_input(generated):
    tok, vocab, _, _ = generated
    assert seeding_scheme("lefthash") == ("additive_prf", 1, False, 15485863)
    assert seeding_scheme("ff-minhash_prf-4-False-7") == ("minhash_prf", 4, False, 7)
    with pytest.raises(ValueError):
        seeding_scheme("nope")
    # simple_1 seeds with hash_key * previous token, as the reference's _seed_rng.
    rng = torch.Generator().manual_seed(15485863 * 42)
    expected = torch.randperm(vocab, generator=rng)[: int(vocab * 0.25)]
    assert torch.equal(GreenList(vocab, 0.25, "simple_1").ids([42]), expected)
    det = WatermarkDetector(tok, vocab_size=vocab, seeding_scheme="minhash")
    out = det.score(["", "a", "a few more words than four here"])
    assert [s.reason for s in out[:2]] == ["empty", "too_short"] and out[2].value is not None
