"""The fastText detector's features against their definitions: the capped tokenisation (a prefix first) against
the whole text's ``\\w+|[^\\w\\s]`` matches cut to the cap, with cut points everywhere (inside words, scripts
without spaces, combining marks, surrogates, Unicode whitespace, final sigma); and the normalisation's shortcuts
(gated steps, odd spaces replaced one character at a time) against its steps run plainly."""

from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path

import pytest

from detectors import normalize
from detectors.fasttext_detector import _plain_typography, _tokens, features
from detectors.normalize import normalize_text

DATA = Path(__file__).resolve().parents[1] / "data" / "detect"
DEFINITION = re.compile(r"\w+|[^\w\s]")

EDGE_CASES = [
    "",
    " ",
    "word",
    "snake_case_name and __dunder__ 3.14159 1,000,000 e-mail@example.com",
    "ΟΔΥΣΣΕΥΣ ΚΑΙ ΑΣ.Β ΣΑΣ, σας' Σ",  # final sigma in lower(): context on both sides of a letter
    "東京都の天気は晴れです。明日も晴れるでしょう、たぶん。",  # no spaces: one long \w run per clause
    "ไม่มีช่องว่างระหว่างคำในภาษาไทย",
    "e\u0301te\u0301 cafe\u0301 n\u0303 a\u20dd",  # combining marks (NFD), an enclosing mark
    "emoji 👍🏽 family 👨\u200d👩\u200d👧 flags 🇫🇷🇩🇪 keycap 1\ufe0f\u20e3",
    "spaces\u00a0\u2002\u2003\u3000\u2028\u2029\x1c\x1d\x1e\x1f\x85\t\x0b\x0c\r\nend",
    "controls \x00\x01\x07\x7f\u200b\u200c\u200d\ufeff\u00ad inside",
    "lone surrogates \ud800 and \udfff",
    "fullwidth ＡＢＣ１２３ and ｈｅｌｌｏ，ｗｏｒｌｄ！",
    "arabic مرحبا بالعالم، كيف حالك؟ hebrew שלום עולם",
    "math ∑x² ≤ ∞ ½ ⅓ ² ³ ¹ ① Ⅻ ٣ ७",
    "quotes “curly” ‘single’ «guillemets» „low” …ellipsis — dash – en",
    "a" * 300 + " " + "b" * 5 + "!" * 50,
    "!@#$%^&*()_+-=[]{}|;':\",./<>?`~" * 8,
]


def _definition(text: str, cap: int | None) -> tuple[list[str], bool]:
    tokens = DEFINITION.findall(text)
    if cap and len(tokens) > cap:
        return tokens[:cap], True
    return tokens, False


def _bundled_texts() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("*/*.raw_data.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        texts += raw["original"] + raw["sampled"]
    return texts


def _random_texts(n: int, seed: int = 0) -> list[str]:
    alphabet = ("abcXYZ_09 ..,,!?'\"-\n\t\u00a0\u3000\u2028\x1c\x85\x00\u200b\u0301\u20dd\u03a3\u03c3\u00c9"
                "東京\u0e44\u0e21\u0645\u0631\ud800👍\ufe0f１＃½²٣")
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))) for _ in range(n)]


@pytest.mark.parametrize("cap", [None, 0, 1, 2, 3, 5, 8, 13, 64, 4096])
def test_capped_tokens_equal_the_definition_on_edge_cases(cap):
    for text in EDGE_CASES + [" ".join(EDGE_CASES) * 20]:
        for variant in (text, text.lower(), text * 7):
            assert _tokens(variant, cap) == _definition(variant, cap), (variant[:80], cap)


def test_capped_tokens_equal_the_definition_at_every_cut():
    """Every cap from 1 to 60 on random texts of the tricky characters: the prefix ends at every kind of
    character, in the middle of words and of runs of punctuation."""
    for text in _random_texts(400):
        for cap in range(1, 61):
            assert _tokens(text, cap) == _definition(text, cap), (text, cap)


def test_capped_tokens_equal_the_definition_on_the_bundled_texts():
    texts = _bundled_texts()
    assert len(texts) > 100
    long_text = " ".join(texts)  # far longer than the prefix of the detector's cap
    for text in texts + [long_text]:
        for cap in (1, 7, 50, 200, 4096):
            assert _tokens(text, cap) == _definition(text, cap)


def test_features_cap_the_tokens_of_the_whole_normalised_text():
    """``normalized`` is about the whole text, also past the tokens kept; the kept tokens are the definition's."""
    tail_change = "plain words " * 2000 + "wh\u200bat"  # the only change sits far past the cap
    for text in [tail_change, *EDGE_CASES, *_bundled_texts()[:50]]:
        clean, changed = normalize_text(text)
        expected = _definition(_plain_typography(clean).lower(), 100)
        assert features(text, 100) == (*expected, changed)
    assert features(tail_change, 100)[1:] == (True, True)


def test_features_of_a_prefix_equal_those_of_the_whole_text():
    """The cap's prefix is cut at a space: capital sigmas (lower-cased by their context), case-ignorable marks and
    quotes, typography that expands ("\u2026" -> "..."), at every cap."""
    sigma = ["ΟΔΥΣΣΕΥΣ ΚΑΙ ΑΣ.Β ΣΑΣ, σας' Σ", "ΑΣ\u0301 Β ΑΣ' x ΑΣ\u00ad\u0301 Σ:Σ Α Σ \u2026 ΑΣ\u2019Β Σ"]
    texts = sigma + [t * 3 for t in sigma] + _random_texts(300, seed=2) + EDGE_CASES
    for text in texts:
        clean, changed = normalize_text(text)
        plain = _plain_typography(clean).lower()
        for cap in range(1, 40):
            assert features(text, cap) == (*_definition(plain, cap), changed), (text, cap)
    # A capital sigma whose context crosses wherever a prefix could end: a long first word ending in it, then
    # case-ignorable characters, then a capital letter (lower-cased "σ" in the whole text, "ς" if cut before it).
    for cap in (1, 2, 5, 17):
        for length in range(2, 12 * (cap + 2)):
            for ignorable in ("'", ".", "\u0301", ":\u0301'"):
                text = "Α" * length + "Σ" + ignorable + "Β" + " ΓΔ" * (cap + 3)
                plain = _plain_typography(normalize_text(text)[0]).lower()
                assert features(text, cap)[:2] == _definition(plain, cap), (length, ignorable, cap)


def _normalize_by_definition(text: str) -> tuple[str, bool]:
    """normalize_text's steps without its shortcuts (each rare step gated only by its own class's search, every
    scan a regex): what the shortcuts must not change."""
    out = unicodedata.normalize("NFC", text)
    out = normalize._ALWAYS_STRIP_RE.sub("", out)
    out = normalize._JOINERS_IN_LATIN.sub("", out)
    out = normalize._ODD_SPACES.sub(" ", out)
    out = out.translate(normalize._FULLWIDTH)
    if normalize._CONFUSABLE_RE.search(out):
        out = normalize._fix_homoglyphs(out)
    return out, out != text


def test_odd_spaces_are_the_class_of_the_regex():
    every = "".join(map(chr, range(0x110000)))
    assert normalize._odd_spaces_to_space(every) == normalize._ODD_SPACES.sub(" ", every)


def test_normalize_equals_its_definition():
    joiners = ["a\u200db", "\u200c\u200dx", "مي\u200cخواهم", "👨\u200d👩", "ok\u00a0\u2009\u3000done",
               "ｈｉ\u200bthere"]
    for text in EDGE_CASES + joiners + _random_texts(300, seed=1) + _bundled_texts()[:200]:
        assert normalize.normalize_text(text) == _normalize_by_definition(text), text[:80]
