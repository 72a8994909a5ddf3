"""Each preset's rules against the published rule, on hand-made texts just below, at and just above each threshold.

For every rule the text is built so that its signal takes a value computed by hand here (not by the code under
test); the test checks the signal, then the rule's decision as the preset holds it. Thresholds and comparisons
are the papers' as DataTrove 0.10.1 implements them: a value equal to the threshold passes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import schemas
from pipeline.document import Document
from pipeline.quality import PRESETS, MissingSignal, QualitySettings, QualityStep, decide, quality_signals
from pipeline.quality.rules import Rule

DEDUP_DATA = Path(__file__).resolve().parents[1] / "data" / "dedup"

# The published thresholds, written out again: (rule reason, min, max).
PUBLISHED = {
    "gopher-quality": [
        ("gopher_word_count", 50, 100_000), ("gopher_mean_word_length", 3, 10),
        ("gopher_symbol_word_ratio", None, 0.1), ("gopher_bullet_lines", None, 0.9),
        ("gopher_ellipsis_lines", None, 0.3), ("gopher_alpha_words", 0.8, None), ("gopher_stop_words", 2, None)],
    "gopher-repetition": [
        ("gopher_dup_para_fraction", None, 0.3), ("gopher_dup_para_char_fraction", None, 0.2),
        ("gopher_dup_line_fraction", None, 0.3), ("gopher_dup_line_char_fraction", None, 0.2),
        ("gopher_top_2gram", None, 0.2), ("gopher_top_3gram", None, 0.18), ("gopher_top_4gram", None, 0.16),
        ("gopher_dup_5gram", None, 0.15), ("gopher_dup_6gram", None, 0.14), ("gopher_dup_7gram", None, 0.13),
        ("gopher_dup_8gram", None, 0.12), ("gopher_dup_9gram", None, 0.11), ("gopher_dup_10gram", None, 0.10)],
    "c4": [("c4_lorem_ipsum", None, 0), ("c4_curly_bracket", None, 0), ("c4_min_sentences", 5, None)],
    "fineweb-own": [("fineweb_line_punct", 0.12, None), ("fineweb_short_lines", None, 0.67),
                    ("fineweb_dup_line_chars", None, 0.01), ("fineweb_list_lines", None, 0.3)],
}


def _table(name: str) -> list[tuple]:
    return [(f"quality_{reason}", low, high) for reason, low, high in PUBLISHED[name]]


def test_presets_hold_the_published_rules_in_the_published_order():
    def rules(preset):
        return [(r.reason, r.min, r.max) for r in PRESETS[preset].rules]
    assert rules("gopher-quality") == _table("gopher-quality")
    assert rules("gopher-repetition") == _table("gopher-repetition")
    assert rules("gopher") == _table("gopher-quality") + _table("gopher-repetition")  # the paper's order
    assert rules("c4") == _table("c4")
    # FineWeb's pipeline: Gopher repetition, Gopher quality, C4 (no terminal-punctuation rule), FineWeb's own.
    assert rules("fineweb") == (_table("gopher-repetition") + _table("gopher-quality") + _table("c4")
                                + _table("fineweb-own"))
    assert PRESETS["c4"].c4_terminal_punct_rule is True and PRESETS["fineweb"].c4_terminal_punct_rule is False
    assert rules("none") == []


def rule_in(preset: str, reason: str) -> Rule:
    found = [r for r in PRESETS[preset].rules if r.reason == f"quality_{reason}"]
    assert len(found) == 1, (preset, reason)
    return found[0]


def presets_with(reason: str) -> list[str]:
    return [name for name, p in PRESETS.items() if any(r.reason == f"quality_{reason}" for r in p.rules)]


def words(n: int, length: int = 5, prefix: str = "q") -> list[str]:
    """n distinct words of exactly ``length`` letters (prefix + a fixed-width base-26 number; no stop word)."""
    width = length - len(prefix)
    assert 26 ** width >= n
    out = []
    for i in range(n):
        digits = []
        for _ in range(width):
            i, d = divmod(i, 26)
            digits.append("abcdefghijklmnopqrstuvwxyz"[d])
        out.append(prefix + "".join(reversed(digits)))
    return out


def pad_to(text: str, length: int) -> str:
    """Append distinct filler words (repeating nothing) until ``text`` is exactly ``length`` characters."""
    fillers = iter(words(20_000, 6, prefix="zf"))
    while length - len(text) > 14:
        text += " " + next(fillers)
    rest = length - len(text) - 1  # one space, then a last word of `rest` characters
    assert rest >= 2, (len(text), length)
    text += " zy" + "w" * (rest - 2)
    assert len(text) == length
    return text


def check(preset: str, reason: str, signal: str, texts: dict, groups: tuple[str, ...]) -> None:
    """texts: {expected signal value: (text, expected to fail)}, for each of below / at / above. The rule is
    checked as every preset that holds it has it."""
    assert preset in presets_with(reason)
    for expected_value, (text, fails) in texts.items():
        signals = quality_signals(text, groups)
        assert signals[signal] == pytest.approx(expected_value, abs=1e-12), (reason, expected_value, signals[signal])
        for name in presets_with(reason):
            outcome = rule_in(name, reason).check(signals)
            assert (outcome is not None) == fails, (name, reason, expected_value)
            if fails:
                assert outcome[0] == f"quality_{reason}" and outcome[1]


GQ = ("gopher-quality",)
GR = ("gopher-repetition",)


# ------------------------------------------------------------------------------------------- Gopher quality


def test_gopher_word_count_bounds():
    check("gopher-quality", "gopher_word_count", "word_count", {
        49: (" ".join(words(49)), True), 50: (" ".join(words(50)), False), 51: (" ".join(words(51)), False)}, GQ)
    check("gopher", "gopher_word_count", "word_count", {
        99_999: ("abc " * 99_999, False), 100_000: ("abc " * 100_000, False), 100_001: ("abc " * 100_001, True)}, GQ)


def test_gopher_word_count_ignores_symbol_tokens():
    s = quality_signals(" ".join(words(49)) + " ### , . ! -- ...", GQ)
    assert s["word_count"] == 49


def test_gopher_mean_word_length_bounds():
    def text(lengths):
        return " ".join("x" * n for n in lengths)
    check("gopher-quality", "gopher_mean_word_length", "mean_word_length", {
        2.99: (text([3] * 99 + [2]), True), 3.0: (text([3] * 100), False), 3.01: (text([3] * 99 + [4]), False)}, GQ)
    check("gopher", "gopher_mean_word_length", "mean_word_length", {
        9.99: (text([10] * 99 + [9]), False), 10.0: (text([10] * 100), False),
        10.01: (text([10] * 99 + [11]), True)}, GQ)


@pytest.mark.parametrize("symbol", ["#", "...", "…"])
def test_gopher_symbol_word_ratio(symbol):
    def text(k):  # 100 tokens, k of them the symbol
        return " ".join(["word"] * (100 - k) + [symbol] * k)
    check("gopher-quality", "gopher_symbol_word_ratio", "symbol_word_ratio", {
        0.09: (text(9), False), 0.10: (text(10), False), 0.11: (text(11), True)}, GQ)


@pytest.mark.parametrize("bullet", ["- ", "• ", "  -"])
def test_gopher_bullet_lines(bullet):
    def text(k):  # 100 lines, k starting with a bullet (after leading space)
        return "\n".join([f"{bullet}item {i}" for i in range(k)] + [f"plain line {i}" for i in range(100 - k)])
    check("gopher-quality", "gopher_bullet_lines", "bullet_line_fraction", {
        0.89: (text(89), False), 0.90: (text(90), False), 0.91: (text(91), True)}, GQ)


@pytest.mark.parametrize("ellipsis", ["...", "…", "... "])
def test_gopher_ellipsis_lines(ellipsis):
    def text(k):
        return "\n".join([f"a line that trails off{ellipsis}" for _ in range(k)] + ["a full line."] * (100 - k))
    check("gopher-quality", "gopher_ellipsis_lines", "ellipsis_line_fraction", {
        0.29: (text(29), False), 0.30: (text(30), False), 0.31: (text(31), True)}, GQ)


def test_gopher_alpha_words():
    def text(k):  # 100 tokens, k with a letter; the others numbers or symbols
        return " ".join(["word"] * k + ["1984"] * (100 - k - 5) + ["%"] * 5)
    check("gopher-quality", "gopher_alpha_words", "alpha_word_fraction", {
        0.79: (text(79), True), 0.80: (text(80), False), 0.81: (text(81), False)}, GQ)
    # spaCy-like tokens: the period and comma are tokens without a letter, so they count against the fraction.
    assert quality_signals("Yes, it is.", GQ)["alpha_word_fraction"] == pytest.approx(3 / 5)


def test_gopher_stop_words():
    check("gopher-quality", "gopher_stop_words", "distinct_stop_words", {
        1: ("the cat sat on the mat", True), 2: ("the cat and the mat", False),
        3: ("the cat and the mat with a hat", False)}, GQ)


# ---------------------------------------------------------------------------------------- Gopher repetition


def test_gopher_dup_para_fraction():
    def text(k):  # 100 paragraphs, k repeating the first
        return "\n\n".join(["the same paragraph"] * (k + 1) + [f"paragraph {w}" for w in words(99 - k)])
    check("gopher-repetition", "gopher_dup_para_fraction", "dup_para_fraction", {
        0.29: (text(29), False), 0.30: (text(30), False), 0.31: (text(31), True)}, GR)


def test_gopher_dup_para_char_fraction():
    para = "abcde fghij klmno pq"  # 20 characters, twice: 20 duplicated characters
    def text(length):
        return pad_to(f"{para}\n\n{para}\n\nfiller", length)
    check("gopher-repetition", "gopher_dup_para_char_fraction", "dup_para_char_fraction", {
        20 / 101: (text(101), False), 0.2: (text(100), False), 20 / 99: (text(99), True)}, GR)


def test_gopher_dup_line_fraction():
    def text(k):
        return "\n".join(["the same line"] * (k + 1) + [f"line {w}" for w in words(99 - k)])
    check("gopher-repetition", "gopher_dup_line_fraction", "dup_line_fraction", {
        0.29: (text(29), False), 0.30: (text(30), False), 0.31: (text(31), True)}, GR)
    # Gopher splits lines on runs of newlines: blank lines are no lines.
    assert quality_signals("a b\n\n\nc d\n\n\n\ne f", GR)["dup_line_fraction"] == 0.0


def test_gopher_dup_line_char_fraction():
    line = "abcde fghij klmno pq"
    def text(length):
        return pad_to(f"{line}\n{line}\nfiller", length)
    check("gopher-repetition", "gopher_dup_line_char_fraction", "dup_line_char_fraction", {
        20 / 101: (text(101), False), 0.2: (text(100), False), 20 / 99: (text(99), True)}, GR)


@pytest.mark.parametrize("n,limit,times,length", [(2, 0.2, 4, 100), (3, 0.18, 9, 400), (4, 0.16, 16, 1100)])
def test_gopher_top_ngram(n, limit, times, length):
    gram = ["aa", "bb", "cc", "dd"][:n]  # joined by spaces: 3n - 1 characters, `times` times
    chars = (3 * n - 1) * times
    assert chars / length == pytest.approx(limit)
    def text(total):
        return pad_to(" ".join(gram * times), total)
    check("gopher-repetition", f"gopher_top_{n}gram", f"top_{n}gram_char_fraction", {
        chars / (length + 1): (text(length + 1), False), limit: (text(length), False),
        chars / (length - 1): (text(length - 1), True)}, GR)


def test_top_ngram_counts_the_most_frequent_even_when_nothing_repeats():
    # DataTrove (and the paper's "most common n-gram") counts the first n-gram once when all are unique: a very
    # short text fails the top-2-gram rule.
    assert quality_signals("lonely words", GR)["top_2gram_char_fraction"] == 1.0
    assert quality_signals("three lonely words", GR)["top_2gram_char_fraction"] == pytest.approx(12 / 18)


# n distinct tokens whose lengths add up to limit * 100 characters: repeated once, they duplicate that many.
DUP_GRAMS = {
    5: (0.15, ["aaa", "bbb", "ccc", "ddd", "eee"]),
    6: (0.14, ["ab", "cd", "ef", "gh", "ijk", "lmn"]),
    7: (0.13, ["a", "b", "c", "de", "fg", "hij", "klm"]),
    8: (0.12, ["a", "b", "c", "d", "ef", "gh", "ij", "kl"]),
    9: (0.11, ["a", "b", "c", "d", "e", "f", "g", "hi", "jk"]),
    10: (0.10, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]),
}


@pytest.mark.parametrize("n", sorted(DUP_GRAMS))
def test_gopher_duplicate_ngrams(n):
    limit, gram = DUP_GRAMS[n]
    chars = sum(map(len, gram))
    assert len(gram) == n and len(set(gram)) == n and chars == round(limit * 100)
    def text(total):
        return pad_to(" ".join(gram + gram), total)
    check("gopher-repetition", f"gopher_dup_{n}gram", f"dup_{n}gram_char_fraction", {
        chars / 101: (text(101), False), limit: (text(100), False), chars / 99: (text(99), True)}, GR)


def test_duplicate_ngram_scan_counts_overlapping_repeats_once():
    # "a b c d e" then "a b c d e" again then "b c d e f": the scan counts the second copy (5 chars), jumps past
    # it, then meets "b c d e f" as new. Tokens "x" make no repeats.
    text = "a b c d e a b c d e b c d e f"
    assert quality_signals(text, GR)["dup_5gram_char_fraction"] == pytest.approx(5 / len(text))
    # Three copies back to back: the second and the third count.
    text = "a b c d e a b c d e a b c d e"
    assert quality_signals(text, GR)["dup_5gram_char_fraction"] == pytest.approx(10 / len(text))
    assert quality_signals(text, GR)["dup_6gram_char_fraction"] == pytest.approx(6 / len(text))  # a b c d e a


# ------------------------------------------------------------------------------------------------------ C4

C4 = ("c4",)


def sentences_text(punctuated: int, unpunctuated: int = 0) -> str:
    lines = [f"This is sentence number {w} of the text." for w in words(punctuated)]
    lines += [f"this line has no end mark {w}" for w in words(unpunctuated, prefix="u")]
    return "\n".join(lines)


def test_c4_min_sentences():
    check("c4", "c4_min_sentences", "c4_sentences", {
        4: (sentences_text(4), True), 5: (sentences_text(5), False), 6: (sentences_text(6), False)}, C4)


def test_fineweb_counts_the_sentences_of_lines_without_end_mark():
    rule = rule_in("fineweb", "c4_min_sentences")
    for punctuated, unpunctuated, fails in [(3, 1, True), (4, 1, False), (5, 1, False)]:
        s = quality_signals(sentences_text(punctuated, unpunctuated), C4)
        assert (s["c4_sentences"], s["c4_sentences_unpunctuated"]) == (punctuated, unpunctuated)
        assert (rule.check(s) is not None) == fails
        assert (rule_in("c4", "c4_min_sentences").check(s) is not None) == (punctuated < 5)


@pytest.mark.parametrize("line,sentences", [
    ("Yes! No? Maybe so.", 3),
    ("Mr. Smith went to Washington with Dr. Jones.", 1),
    ("It costs 3.14 dollars, e.g. in the U.S. today.", 1),
    ("He said \"stop.\" Then he left.", 2),
    ("Wait... what happened here.", 1),
    ("The end.Then a new one starts.", 2),
    ("Really?! Yes indeed.", 2),
])
def test_c4_sentence_count_follows_spacys_sentencizer(line, sentences):
    assert quality_signals(line, C4)["c4_sentences"] == sentences


def test_c4_lorem_ipsum_and_curly_bracket_only_in_lines_c4_keeps():
    base = sentences_text(5)
    cases = [
        ("Lorem ipsum dolor sit amet.", "c4_lorem_ipsum", True, True),
        ("Lorem ipsum.", "c4_lorem_ipsum", False, False),  # two words: dropped before the check
        ("lorem ipsum dolor sit amet", "c4_lorem_ipsum", False, True),  # no end mark: C4 drops it, FineWeb not
        ("Use the {name} field here.", "c4_curly_bracket", True, True),
        ("var x = {a: 1};", "c4_curly_bracket", False, True),
        ("Turn on JavaScript for {this} page.", "c4_curly_bracket", False, False),  # a javascript line goes first
        ("{a}", "c4_curly_bracket", False, False),
    ]
    for line, reason, c4_fails, fineweb_fails in cases:
        text = f"{base}\n{line}"
        assert (rule_in("c4", reason).check(quality_signals(text, C4)) is not None) == c4_fails, line
        assert (rule_in("fineweb", reason).check(quality_signals(text, C4)) is not None) == fineweb_fails, line


def test_c4_line_rules_shape_the_kept_text(doc_factory_pipeline):
    body = sentences_text(5)
    long_ok, long_bad = "x" * 1000, "y" * 1001
    text = "\n".join([
        body, "Two words.", "Now three words.", f"A word of {long_ok} characters.",
        f"A word of {long_bad} characters.", "Read our Terms of Use today.", "Please enable JavaScript now.",
        "Wikipedia says so.[1] And more [citation needed] here.", "A line ending in a mark. [2]",
        "A line with no end mark", 'She answered "I will come."', "Quoted words end here'", "Ends in a colon:",
    ])
    doc = QualityStep(QualitySettings(preset="c4")).process(doc_factory_pipeline(text))
    assert not doc.rejected
    assert doc.text.split("\n") == [
        *body.split("\n"), "Now three words.", f"A word of {long_ok} characters.",
        "Wikipedia says so. And more  here.",
        # DataTrove strips a line before removing citations: "... mark. [2]" keeps its space and loses the rule
        'She answered "I will come."', "Quoted words end here'",  # C4's end marks include both quotes
    ]
    fineweb_lines = QualityStep(QualitySettings(preset="fineweb")).process(doc_factory_pipeline(text))
    # "A line ending in a mark. ", "A line with no end mark", "Ends in a colon:"
    assert fineweb_lines.c4_sentences_unpunctuated == 3


# ------------------------------------------------------------------------------------------------- FineWeb

FW = ("fineweb",)


def test_fineweb_line_punct():
    def text(k):  # 100 kept lines (3+ words each), k ending in a sentence terminal
        return "\n".join([f"line {w} ends." for w in words(k)] + [f"line {w} open" for w in words(100 - k, prefix="o")])
    check("fineweb", "fineweb_line_punct", "line_punct_fraction", {
        0.11: (text(11), True), 0.12: (text(12), False), 0.13: (text(13), False)}, FW)
    # Sentence terminals only: a closing quote after the period is not one (DataTrove's TERMINAL_PUNCTUATION).
    assert quality_signals('he said "yes."\nsome words here', FW)["line_punct_fraction"] == 0.0
    assert quality_signals("これは 文 です。\nsome words here", FW)["line_punct_fraction"] == 0.5


def test_fineweb_short_lines():
    short, long_ = "a b " + "c" * 26, "a b " + "c" * 27  # 30 and 31 characters
    assert (len(short), len(long_)) == (30, 31)
    def text(k):
        return "\n".join([f"{short[:-5]}{w}" for w in words(k)] + [f"{long_[:-5]}{w}" for w in words(100 - k)])
    check("fineweb", "fineweb_short_lines", "short_line_fraction", {
        0.66: (text(66), False), 0.67: (text(67), False), 0.68: (text(68), True)}, FW)


def test_fineweb_dup_line_chars():
    dup = "aa bb cccc"  # 10 characters, twice
    def text(chars):  # `chars` characters that are not newlines, in lines of three words
        lines = [dup, dup]
        fillers = iter(words(1000, 6, prefix="zq"))
        total = 20
        while chars - total > 40:
            lines.append(f"{next(fillers)} {next(fillers)} {next(fillers)}")  # 20 characters
            total += 20
        rest = chars - total  # 21..40 characters in one last line of three words
        lines.append(f"zz yy {'w' * (rest - 6)}")
        text = "\n".join(lines)
        assert len(text.replace("\n", "")) == chars
        return text
    check("fineweb", "fineweb_dup_line_chars", "fineweb_dup_line_char_fraction", {
        10 / 1001: (text(1001), False), 0.01: (text(1000), False), 10 / 999: (text(999), True)}, FW)


def test_fineweb_list_lines():
    def text(lines, tokens):  # newlines per token: (lines - 1) / tokens; each line three words at least
        rows = [f"aa{i} bb{i} cc{i}" for i in range(lines)]
        rows[0] += " dd" * (tokens - 3 * lines)
        return "\n".join(rows)
    check("fineweb", "fineweb_list_lines", "newline_word_ratio", {
        9 / 31: (text(10, 31), False), 0.3: (text(10, 30), False), 10 / 33: (text(11, 33), True)}, FW)


def test_fineweb_signals_are_on_the_text_after_c4_lines():
    # The two short lines are dropped by C4 (fewer than 3 words) before FineWeb's filters look at the text.
    text = "Menu\nHome\n" + sentences_text(5)
    assert quality_signals(text, FW)["short_line_fraction"] == 0.0


# ----------------------------------------------------------------------------------- presets on whole pages


def test_first_failing_rule_in_preset_order_decides():
    # Fails both a Gopher quality rule (too few words) and a repetition rule (top 2-gram).
    text = "the cat and the cat and the cat"
    assert decide(quality_signals(text), "gopher")[0] == "quality_gopher_word_count"  # quality first (paper)
    assert decide(quality_signals(text), "fineweb")[0] == "quality_gopher_top_2gram"  # repetition first (FineWeb)


def test_a_rule_without_its_signal_refuses_to_decide():
    row = {f: None for f in quality_signals("")}
    with pytest.raises(MissingSignal, match="quality_gopher_word_count needs word_count"):
        decide(row, "gopher")
    assert decide(row, "none") is None


def _real_pages() -> list[str]:
    texts = []
    for name in ("aut-2008.jsonl", "cc-main-2020-34.jsonl"):
        with open(DEDUP_DATA / name, encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh]
    return texts


@pytest.fixture
def doc_factory_pipeline():
    counter = iter(range(10**6))

    def make(text: str) -> Document:
        return Document(id=f"d{next(counter)}", warc_file="t.warc.gz", text=text)
    return make


@pytest.mark.parametrize("preset", ["gopher", "c4", "fineweb"])
def test_a_stored_row_decides_as_the_step_did(preset, tmp_path):
    """Every signal a rule reads is on the row: written to a shard and read back, the preset decides the same."""
    step = QualityStep(QualitySettings(preset=preset))
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    docs = [step.process(Document(id=f"d{i}", warc_file="t.warc.gz", text=t, processed_at=when))
            for i, t in enumerate(_real_pages())]
    reasons = {d.reason for d in docs}
    assert None in reasons and len(reasons) >= 2, reasons  # kept ones and rejected ones on real pages
    kept, rejected = [d for d in docs if not d.rejected], [d for d in docs if d.rejected]
    for kind, group in (("curated", kept), ("rejected", rejected)):
        path = tmp_path / f"{kind}.parquet"
        schemas.write_shard([d.to_row() for d in group], kind, str(path))
        for row, doc in zip(schemas.read_shard(str(path), kind).to_pylist(), group, strict=True):
            assert (decide(row, preset) or (None, None)) == (doc.reason, doc.detail), doc.id


def test_command_line_quality_flags():
    from pipeline.options import parse_curate_args
    from pipeline.quality.signals import GROUPS
    base = ["--input", "in.warc.gz", "--output", "out"]
    args = parse_curate_args(base + ["--quality-preset", "c4", "--quality-signals", "gopher-repetition,fineweb"])
    step = QualityStep(args.quality)
    assert step.preset.name == "c4" and step.groups == {"c4", "gopher-repetition", "fineweb"}
    assert QualityStep(parse_curate_args(base + ["--quality-signals", "all"]).quality).groups == set(GROUPS)
    default = QualityStep(parse_curate_args(base).quality)
    assert default.groups == frozenset() and not default.active
    with pytest.raises(SystemExit):
        parse_curate_args(base + ["--quality-signals", "dolma"])
    with pytest.raises(SystemExit):
        parse_curate_args(base + ["--quality-preset", "refinedweb"])
