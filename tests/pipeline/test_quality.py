"""QualityStep on real pages: what it stores, when it rejects, and that a stored row decides the same way."""

from __future__ import annotations

import pytest

from pipeline import quality
from pipeline.quality import QualitySettings, QualityStep, quality_signals
from pipeline.quality.signals import GROUP_FIELDS, GROUPS, c4_lines

GOPHER_QUALITY_FIELDS = ("word_count", "mean_word_length", "alpha_word_fraction", "symbol_word_ratio",
                         "bullet_line_fraction", "ellipsis_line_fraction", "distinct_stop_words")


def test_signal_names_are_document_fields(doc_factory, at):
    doc = doc_factory("d", "x", at(2020))
    assert set(quality_signals("text")) == set(quality.SIGNAL_FIELDS)
    assert GROUP_FIELDS["gopher-quality"] == GOPHER_QUALITY_FIELDS
    assert all(hasattr(doc, f) and getattr(doc, f) is None for f in quality.SIGNAL_FIELDS)


def test_gopher_quality_signals_on_a_small_text():
    text = "The cat sat.\nThe cat sat.\n#### --- 123\nAnd that is all...\n"
    s = quality_signals(text, ["gopher-quality"])
    # tokens: The cat sat . The cat sat . # # # # --- 123 And that is all ... (19); words: the 10 with a letter
    # or digit; '####' is four symbol tokens, as spaCy splits it
    assert s["word_count"] == 11
    assert s["mean_word_length"] == pytest.approx(sum(map(len, "The cat sat The cat sat 123 And that is all"
                                                              .split())) / 11)
    assert s["alpha_word_fraction"] == pytest.approx(10 / 19)
    assert s["symbol_word_ratio"] == pytest.approx(4 / 19)  # four '#', one '...'
    assert s["bullet_line_fraction"] == 0.0  # '####' is no bullet, '---' is not at a line start
    assert s["ellipsis_line_fraction"] == pytest.approx(1 / 4)
    assert s["distinct_stop_words"] == 1  # 'that'; 'The' and 'And' are capitalised (DataTrove is case-sensitive)


def test_stop_words_are_distinct_and_lower_case():
    # Gopher: "at least two of the following English words"; DataTrove counts distinct, case-sensitive words.
    assert quality_signals("the the the the", ["gopher-quality"])["distinct_stop_words"] == 1
    assert quality_signals("The And THE", ["gopher-quality"])["distinct_stop_words"] == 0
    assert quality_signals("that's the way, and with it", ["gopher-quality"])["distinct_stop_words"] == 4


def test_signals_do_not_crash_on_odd_text(cc_pages):
    for text in ("", "   \n\n", "\udc80\ud800", "…" * 50, "中文没有空格", "a", "{" * 3000, "x" * 5000):
        s = quality_signals(text)
        assert set(s) == set(quality.SIGNAL_FIELDS)
    zh = next(p for p in cc_pages if p["lang"] == "zh")["text"]
    s = quality_signals(zh, ["gopher-quality"])
    assert s["word_count"] > 30  # one word per character, not one per sentence
    assert 1.0 <= s["mean_word_length"] < 4.0


def test_only_the_groups_asked_for_are_computed(doc_factory, at):
    text = "The cat sat on the mat and that was that. " * 20
    none = QualityStep().process(doc_factory("a", text, at(2020)))
    assert all(getattr(none, f) is None for f in quality.SIGNAL_FIELDS) and not QualityStep().active
    c4 = QualityStep(QualitySettings(preset="c4")).process(doc_factory("b", text, at(2020)))
    assert all(getattr(c4, f) is not None for f in GROUP_FIELDS["c4"])
    assert all(getattr(c4, f) is None for g in GROUPS if g != "c4" for f in GROUP_FIELDS[g])
    # --min-words needs the word count
    words = QualityStep(QualitySettings(min_words=3)).process(doc_factory("c", text, at(2020)))
    assert all(getattr(words, f) is not None for f in GOPHER_QUALITY_FIELDS)
    extra = QualityStep(QualitySettings(signals=("gopher-repetition",))).process(doc_factory("d", text, at(2020)))
    assert extra.dup_10gram_char_fraction is not None and extra.word_count is None and not extra.rejected


def test_real_english_pages_under_each_preset(aut_pages, doc_factory, at):
    for preset in ("gopher-quality", "gopher", "c4", "fineweb"):
        step = QualityStep(QualitySettings(preset=preset))
        passed = []
        for page in aut_pages:
            doc = step.process(doc_factory(page["url"], page["text"], at(2008)))
            assert all(getattr(doc, f) is not None for g in step.groups for f in GROUP_FIELDS[g])
            if doc.rejected:
                assert doc.reason in quality.QUALITY_REASONS and doc.detail
                assert doc.text == page["text"]  # a rejected document keeps its text
            else:
                passed.append(doc)
        assert 1 <= len(passed) < len(aut_pages), preset


def test_c4_presets_rewrite_kept_text_to_c4_lines(doc_factory, at):
    body = "\n".join(f"Sentence number {i} is here and it ends well." for i in range(6))
    text = (f"Menu\nHome | About\n{body}\nPlease enable JavaScript to view the comments.\n"
            "Read our privacy policy now.\na line without an end mark")
    c4 = QualityStep(QualitySettings(preset="c4")).process(doc_factory("a", text, at(2020)))
    assert not c4.rejected and c4.text == body
    fineweb = QualityStep(QualitySettings(preset="fineweb")).process(doc_factory("b", text, at(2020)))
    assert fineweb.c4_sentences == 6 and fineweb.c4_sentences_unpunctuated == 2  # 'Home | About', the last line
    # FineWeb's C4 keeps lines without an end mark, but not the short, javascript or policy ones.
    assert c4_lines(text).kept_text(terminal_punct_rule=False) == f"Home | About\n{body}\na line without an end mark"


def test_min_words_policy(doc_factory, at):
    step = QualityStep(QualitySettings(min_words=5))
    short = step.process(doc_factory("a", "only three words", at(2020)))
    assert short.reason == quality.REASON_MIN_WORDS and short.detail == "3 < 5"
    assert short.word_count == 3
    assert not step.process(doc_factory("b", "now there are five words", at(2020))).rejected
    assert not QualityStep().active and QualityStep(QualitySettings(min_words=1)).active


def test_unknown_preset_or_group_is_refused():
    with pytest.raises(ValueError, match="unknown quality preset"):
        QualityStep(QualitySettings(preset="refinedweb"))
    with pytest.raises(ValueError, match="unknown quality signal groups"):
        QualityStep(QualitySettings(signals=("dolma",)))
