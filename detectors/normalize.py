"""Undo cheap evasion tricks before scoring: invisible characters, homoglyphs, odd spaces.

Detectors compare token statistics; a zero-width space or a Cyrillic "о" inside an English word changes the
tokenisation completely and can push any detector's score towards "human". We map such text back to what a
reader sees, and record that we did (Score.normalized), without touching legitimate non-Latin text.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible format characters that have no business inside running text.
_ALWAYS_STRIP = {
    "\u200b",  # zero width space
    "\u2060",  # word joiner
    "\ufeff",  # zero width no-break space / BOM
    "\u00ad",  # soft hyphen
    "\u180e",  # Mongolian vowel separator (formerly a space)
    "\u2061", "\u2062", "\u2063", "\u2064",  # invisible math operators
    "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # bidi marks/embeddings
    "\u2066", "\u2067", "\u2068", "\u2069",  # bidi isolates
}
# ZWJ/ZWNJ are legitimate in Persian, Indic scripts and emoji; strip them only next to ASCII letters/digits.
_JOINERS_IN_LATIN = re.compile(r"(?<=[A-Za-z0-9])[\u200c\u200d]+|[\u200c\u200d]+(?=[A-Za-z0-9])")
_ODD_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
# The same characters one by one: `c in text` and str.replace scan at memory speed (and return at once for a
# character wider than the text's storage), where the class scan costs ~13 ns a character.
_ODD_SPACE_CHARS = "\u00a0" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"

# Cyrillic and Greek letters that render like Latin ones (Unicode confusables, Latin targets only).
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X",
    "І": "I", "Ј": "J", "Ѕ": "S", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W",
    # Greek
    "ο": "o", "ν": "v", "ρ": "p", "ι": "i", "κ": "k", "υ": "u", "α": "a",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X",
}
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLES)
# Character classes: a regex search runs in C, a Python `any(c in SET for c in text)` costs ~70 ns a character.
_ALWAYS_STRIP_RE = re.compile("[" + "".join(re.escape(c) for c in sorted(_ALWAYS_STRIP)) + "]")
_FULLWIDTH_RE = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_CONFUSABLE_RE = re.compile("[" + "".join(re.escape(c) for c in sorted(_CONFUSABLES)) + "]")
_WORD = re.compile(r"\w+")
_JOINERS = re.compile("[\u200c\u200d]")
# Every character that one of the rare steps below acts on, in one class: most texts hold none, and one scan
# (~3 ns a character) then skips them all. The joiners' look-behind alone costs ~30 ns a character.
_RARE_RE = re.compile("[" + "".join(re.escape(c) for c in sorted(_ALWAYS_STRIP | set(_CONFUSABLES)))
                      + "\u200c\u200d\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
# Fullwidth Latin letters and digits (not the CJK punctuation of the same block).
_FULLWIDTH = {c: c - 0xFEE0 for lo, hi in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
              for c in range(lo, hi + 1)}


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalpha() or ("LATIN" in unicodedata.name(ch, "") and ch.isalpha())


def _fix_homoglyphs(text: str) -> str:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return text
    latin_share = sum(_is_latin(c) for c in letters) / len(letters)

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if not any(c in _CONFUSABLES for c in word):
            return word
        mixed = any(_is_latin(c) for c in word)
        all_confusable = all(c in _CONFUSABLES or not c.isalpha() for c in word)
        # Mixed-script words are the attack's signature; a word made only of look-alikes is mapped only when the
        # text around it is overwhelmingly Latin (so quoted Russian or Greek in a Russian/Greek text is left alone).
        if mixed or (all_confusable and latin_share >= 0.9):
            return word.translate(_CONFUSABLE_TABLE)
        return word

    return _WORD.sub(fix, text)


def _odd_spaces_to_space(text: str) -> str:
    """``_ODD_SPACES.sub(" ", text)``: each character replaced by a space, one character at a time."""
    for ch in _ODD_SPACE_CHARS:
        if ch in text:
            text = text.replace(ch, " ")
    return text


def normalize_text(text: str) -> tuple[str, bool]:
    """Return (normalised text, whether anything changed).

    Steps: Unicode NFC; strip invisible format characters (zero-width space, word joiner, BOM, soft hyphen, bidi
    controls; ZWJ/ZWNJ only next to ASCII letters/digits); map unusual spaces to U+0020; map fullwidth Latin
    letters/digits to ASCII; map Cyrillic/Greek look-alikes to Latin inside mixed-script words (and in
    all-look-alike words of an otherwise Latin text). NFKC is deliberately not used: it would also rewrite
    legitimate typography ("…", ligatures, superscripts) that the language models were trained on.
    """
    out = unicodedata.normalize("NFC", text)
    rare = _RARE_RE.search(out) is not None
    if rare and _ALWAYS_STRIP_RE.search(out):
        out = _ALWAYS_STRIP_RE.sub("", out)
    if rare and _JOINERS.search(out):  # the look-around costs ~30 ns a character: only where a joiner is
        out = _JOINERS_IN_LATIN.sub("", out)
    out = _odd_spaces_to_space(out)
    if rare and _FULLWIDTH_RE.search(out):
        out = out.translate(_FULLWIDTH)
    if rare and _CONFUSABLE_RE.search(out):
        out = _fix_homoglyphs(out)
    return out, out != text
