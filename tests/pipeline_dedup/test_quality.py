"""Quality signals are computed as documented, and the policies reject with the deciding value."""

from __future__ import annotations

import pytest

from pipeline import quality
from pipeline.quality import QualityStep, quality_signals

FIELDS = ("word_count", "mean_word_length", "alpha_word_fraction", "symbol_word_ratio", "line_punct_fraction",
          "dup_line_fraction", "stop_word_count")


def test_signal_names_are_document_fields(doc_factory, at):
    doc = doc_factory("d", "x", at(2020))
    assert set(quality_signals("text")) == set(FIELDS) == set(quality.SIGNAL_FIELDS)
    assert all(hasattr(doc, f) for f in FIELDS)


def test_signals_on_a_small_text():
    text = "The cat sat.\nThe cat sat.\n#### --- 123\nAnd that is all...\n"
    s = quality_signals(text)
    # tokens: The cat sat. The cat sat. #### --- 123 And that is all... (13); '####' and '---' are symbols only
    assert s["word_count"] == 11
    assert s["mean_word_length"] == pytest.approx(sum(map(len, "The cat sat The cat sat 123 And that is all"
                                                              .split())) / 11)
    assert s["alpha_word_fraction"] == pytest.approx(10 / 13)
    assert s["symbol_word_ratio"] == pytest.approx(4 / 13)  # four '#', one '...'
    assert s["line_punct_fraction"] == pytest.approx(3 / 4)  # 'sat.', 'sat.', 'all...' end in punctuation
    assert s["dup_line_fraction"] == pytest.approx(1 / 4)
    assert s["stop_word_count"] == 4  # The, The, And, that


def test_signals_do_not_crash_on_odd_text(cc_pages):
    for text in ("", "   \n\n", "\udc80\ud800", "…" * 50, "中文没有空格"):
        s = quality_signals(text)
        assert set(s) == set(FIELDS)
    zh = next(p for p in cc_pages if p["lang"] == "zh")["text"]
    s = quality_signals(zh)
    assert s["word_count"] > 30  # one word per character, not one per sentence
    assert 1.0 <= s["mean_word_length"] < 4.0


def test_real_english_page_passes_gopher(aut_pages, doc_factory, at):
    step = QualityStep(preset="gopher")
    passed = []
    for page in aut_pages:
        doc = step.process(doc_factory(page["url"], page["text"], at(2008)))
        assert doc.word_count is not None and doc.stop_word_count is not None  # stored whatever the outcome
        if not doc.rejected:
            passed.append(doc)
        else:
            assert doc.reason in quality.QUALITY_REASONS and doc.detail
    assert 5 <= len(passed) < len(aut_pages)


@pytest.mark.parametrize("text,reason,detail_part", [
    ("word " * 20 + "the and", quality.REASON_GOPHER_WORD_COUNT, "22 words not in [50, 100000]"),
    ("a " * 60 + "the and", quality.REASON_GOPHER_MEAN_WORD_LENGTH, "not in [3, 10]"),
    ("the and with " + "#tag words " * 30, quality.REASON_GOPHER_SYMBOL_RATIO, "'#' per word"),
    ("the and with " + "words words... " * 30, quality.REASON_GOPHER_SYMBOL_RATIO, "ellipses per word"),
    ("\n".join(["- the item and more"] * 60), quality.REASON_GOPHER_BULLET_LINES, "of lines bulleted"),
    ("\n".join(["the line and it goes on and on..."] * 10 + ["the line and it stops."] * 10),
     quality.REASON_GOPHER_ELLIPSIS_LINES, "end in an ellipsis"),
    ("the and with " + "word 1234 5678 " * 30, quality.REASON_GOPHER_ALPHA_WORDS, "< 0.8"),
    ("words without any stopword " * 20, quality.REASON_GOPHER_STOP_WORDS, "0 < 2"),
])
def test_each_gopher_rule(text, reason, detail_part, doc_factory, at):
    doc = QualityStep(preset="gopher").process(doc_factory("d", text, at(2020)))
    assert doc.reason == reason
    assert detail_part in doc.detail


def test_min_words_policy(doc_factory, at):
    step = QualityStep(min_words=5)
    short = step.process(doc_factory("a", "only three words", at(2020)))
    assert short.reason == quality.REASON_MIN_WORDS and short.detail == "3 < 5"
    assert short.word_count == 3
    assert not step.process(doc_factory("b", "now there are five words", at(2020))).rejected
    assert not QualityStep().active and QualityStep(min_words=1).active


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown quality preset"):
        QualityStep(preset="c4")
