"""Word tokenisation for the quality signals: one compiled regex, close to spaCy's English tokenizer.

The published rules count "words" as their reference implementation tokenised them: Gopher (Rae et al. 2021)
does not say how; C4 splits lines on whitespace; FineWeb ran DataTrove, whose English word tokenizer is spaCy's
(``spacy.blank("en")``, NLTK's Treebank tokenizer before mid-2024). Both split punctuation off words, so a
sentence-final period is a word of its own and counts in the denominators of the Gopher ratios (alphabetic
words, '#' and ellipsis per word) and in FineWeb's newline-per-word ratio: plain whitespace splitting moves those
ratios by 10-15% and flips decisions near the thresholds. spaCy itself costs ~10x a regex pass.

So a token here is, in order of precedence (one ``re`` pass, no Python loop per token):

- a URL (``www.``, or ``scheme://`` after a word, glued ones too: ``forhttp://...``), without trailing
  punctuation;
- a word: letters, digits and combining marks, joined through ``& @ _``, an apostrophe (``o'clock``), a period
  (``node.js``, ``3.14``, ``e.g``; not between a lower-case and an upper-case letter, ``end.Start``), a
  ``, : /`` between digits (``1,000``, ``9:30``, ``1/2``) and a hyphen between a letter and a digit
  (``COVID-19``); other hyphens split (``e-mail`` is three tokens, as in spaCy), except a trailing one
  (``hyphen-``). A final period stays on when
  the last segment is a single letter (``J.``, ``e.g.``, ``U.S.A.``), as spaCy's exceptions keep them;
- a CJK ideograph or kana: one token per character (spaCy would make a whole unspaced run one token: the
  published rules are for English, and per-character counts keep the signals meaningful for CJK text);
- an English clitic split off its word, as spaCy and the Treebank tokenizer do: ``don't`` is two words, ``don``
  and ``'t`` (spaCy: ``do``, ``n't``: the same count and the same characters);
- a run of periods (``...``) or of hyphens (``--``), else any other non-space character on its own (``!!!`` is
  three tokens, as in spaCy).

Known differences from spaCy: spaCy keeps some abbreviations whole (``Mr.``, ``Inc.``: one token here plus a
period), leaves XML-like strings (``a></b``) and slash-led paths (``/track``) whole, splits digits from units
(``10km``) and ``cannot``/``gonna``. On the WARC fixtures' English pages the token counts agree to 0.5% overall
(median page: equal); the decisions each preset takes on them are compared in ``bench/peer_datatrove.py``.
"""

from __future__ import annotations

import re
import unicodedata


def _mark_class() -> str:
    """Combining marks (Mn/Mc/Me) of the BMP as a character class body: ``\\w`` does not include them, and
    without them an Indic or Thai word would be cut at every vowel sign."""
    ranges, start = [], None
    for code in range(0x10000):
        is_mark = unicodedata.category(chr(code))[0] == "M"
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            ranges.append((start, code - 1))
            start = None
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and CJK ideographs
_MARKS = _mark_class()
# One character class per repeated unit: a group alternation per character would cost 2-3x the whole pass.
_W = f"[^\\W_{CJK}]"  # letter or digit (combining marks continue a word below), not '_', not CJK
_LETTER = f"[^\\W\\d_{CJK}]"
_JOIN = (f"(?:[&@_]|['’](?!(?:[tTsSmMdD]|ll|LL|re|RE|ve|VE)(?!{_W}))|(?<![a-z])\\.|\\.(?![A-Z])"
         f"|(?<=\\d)[,:/](?=\\d)|(?<={_LETTER})-(?=\\d))")
_URL_END = "(?=[.,;:!?'\")\\]}>]*(?:\\s|$))"  # a URL stops before trailing punctuation
_WORD_TAIL = (f"(?:{_JOIN}{_W}+|[{_MARKS}]+{_W}*)*"
              f"(?:(?<={_LETTER})(?<!\\w\\w)\\.(?![\\w.])"  # J. e.g. U.S.A.: a one-letter last segment keeps its period
              f"|-(?!\\S)"  # a trailing hyphen (hyphen- ated) stays on the word
              f"|://[^\\s]+?{_URL_END})?")  # scheme://... (also glued to a word: forhttp://...)
# Words that hold a letter for sure (URLs, words starting with a letter, CJK characters, clitics) and words that
# start with a digit (mostly numbers): separate groups, so the alphabetic-word count needs no per-word test.
LETTER_WORD_PATTERN = (
    f"www\\.[^\\s]+?{_URL_END}"
    f"|{_LETTER}{_W}*{_WORD_TAIL}"
    f"|[{CJK}]"
    f"|['’](?<={_W}['’])(?:[tTsSmMdD]|ll|LL|re|RE|ve|VE)(?!{_W})"
)
DIGIT_WORD_PATTERN = f"\\d{_W}*{_WORD_TAIL}"
SYMBOL_PATTERN = r"\.{2,}|-{2,}|\S"

# findall() gives one 3-tuple per token, (letter word, "", "") or ("", digit word, "") or ("", "", symbol): the
# three kinds counted from one pass.
TOKEN_PARTS = re.compile(f"({LETTER_WORD_PATTERN})|({DIGIT_WORD_PATTERN})|({SYMBOL_PATTERN})")
TOKEN = re.compile(f"{LETTER_WORD_PATTERN}|{DIGIT_WORD_PATTERN}|{SYMBOL_PATTERN}")
HAS_LETTER = re.compile("[^\\W\\d_]").search


def tokens(text: str) -> list[str]:
    """Every token, words and symbols, in text order."""
    return TOKEN.findall(text)
