"""The quality signals, in four groups, each computed in a few C-level passes over the text.

A group is computed only when something asks for it (a preset's rules, ``--quality-signals``, ``--min-words``);
its fields are ``None`` on the row otherwise. Every value a rule compares with its threshold is one of these
fields, so a decision can be re-made from the row (:func:`pipeline.quality.rules.decide`).

``gopher-quality`` (Rae et al. 2021, appendix A, quality filters; DataTrove ``GopherQualityFilter``): one
tokenizer pass (:mod:`pipeline.quality.tokens`) and a ``splitlines`` pass.

``gopher-repetition`` (appendix A, repetition removal; DataTrove ``GopherRepetitionFilter``): duplicate
paragraphs (split on two or more newlines) and lines (split on newlines) by count and by characters, the
character fraction of the most frequent 2-, 3- and 4-gram of tokens, and the character fraction of duplicated
5- to 10-grams. Characters are counted over the whole text, as DataTrove does: a top n-gram's characters are
its tokens joined by spaces times its count; a duplicated n-gram's are its tokens' characters, each stretch
counted once (an occurrence of an n-gram seen before counts and the scan jumps past it). Each n-gram is a 64-bit
hash of its token ids, extended from the (n-1)-gram's in one numpy operation; ``np.unique`` counts them, and only
the positions of repeated 5- to 10-grams (usually none) are walked in Python. A text without a repeated 5-gram
has no repeated longer n-gram: the longer ones are not computed.

``c4`` (Raffel et al. 2020 as DataTrove's ``C4QualityFilter`` implements it): line by line, C4 drops lines with
a word over 1,000 characters, lines with fewer than 3 words, lines mentioning javascript and lines with a
cookie/terms-of-use phrase, removes Wikipedia citation marks, and (in C4 itself, not as FineWeb ran it) drops
lines that do not end in terminal punctuation. A "lorem ipsum" or a curly bracket in a line that survives the
line rules rejects the page, and so do fewer than 5 sentences in the kept lines. Both variants are stored:
``c4_sentences``/``c4_lorem_ipsum``/``c4_curly_bracket`` count the kept lines that end in terminal punctuation,
the ``*_unpunctuated`` fields the other kept lines; C4 decides on the first, FineWeb (which switched the
terminal-punctuation rule off) on the sum. Sentences are counted as spaCy's sentencizer splits a line: one, plus
one for each sentence-final ``. ! ?`` token followed by a word later in the line.

``fineweb`` (Penedo et al. 2024, DataTrove ``FineWebQualityFilter``), computed on the text after C4's line rules
without the terminal-punctuation rule, as FineWeb ran them: the fraction of non-blank lines ending in a
sentence terminal, of lines of at most 30 characters, the characters of duplicated lines over the characters
that are not newlines, and newlines per token ("list-like" documents).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import compress, count, repeat
from operator import itemgetter

import numpy as np

from pipeline.quality.tokens import HAS_LETTER, TOKEN, TOKEN_PARTS

GOPHER_QUALITY = "gopher-quality"
GOPHER_REPETITION = "gopher-repetition"
C4 = "c4"
FINEWEB = "fineweb"
GROUPS = (GOPHER_QUALITY, GOPHER_REPETITION, C4, FINEWEB)

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)

GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    GOPHER_QUALITY: ("word_count", "mean_word_length", "alpha_word_fraction", "symbol_word_ratio",
                     "bullet_line_fraction", "ellipsis_line_fraction", "distinct_stop_words"),
    GOPHER_REPETITION: ("dup_para_fraction", "dup_para_char_fraction", "dup_line_fraction", "dup_line_char_fraction",
                        *(f"top_{n}gram_char_fraction" for n in TOP_NGRAMS),
                        *(f"dup_{n}gram_char_fraction" for n in DUP_NGRAMS)),
    C4: ("c4_sentences", "c4_sentences_unpunctuated", "c4_lorem_ipsum", "c4_lorem_ipsum_unpunctuated",
         "c4_curly_bracket", "c4_curly_bracket_unpunctuated"),
    FINEWEB: ("line_punct_fraction", "short_line_fraction", "fineweb_dup_line_char_fraction", "newline_word_ratio"),
}
SIGNAL_FIELDS = tuple(f for group in GROUPS for f in GROUP_FIELDS[group])


class Tokens:
    """One tokenizer pass over a text, shared by the groups that need it."""

    def __init__(self, text: str):
        self._parts = TOKEN_PARTS.findall(text)  # per token: (letter word, digit word, symbol), two of them ""
        self.count = len(self._parts)
        self.letter_words = list(filter(None, map(itemgetter(0), self._parts)))
        self.digit_words = list(filter(None, map(itemgetter(1), self._parts)))

    @property
    def words(self) -> list[str]:
        return self.letter_words + self.digit_words

    @property
    def alpha_count(self) -> int:
        """Tokens with a letter: every letter word, and the digit words that hold one (3rd, 10km)."""
        return len(self.letter_words) + len(list(filter(None, map(HAS_LETTER, self.digit_words))))

    @property
    def all(self) -> list[str]:
        """Every token in text order."""
        return list(map("".join, self._parts))


# --- Gopher quality
GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")


def gopher_quality(text: str, toks: Tokens | None = None) -> dict:
    """word_count: words (tokens with a letter, digit or mark; symbols are not words); mean_word_length: their
    mean length; alpha_word_fraction: tokens with a letter / all tokens; symbol_word_ratio: the larger of '#'
    and ellipsis ('...', '…') counts per token; bullet_line_fraction / ellipsis_line_fraction: lines (all of
    ``splitlines``) starting with a bullet ('•', '-') / ending in an ellipsis; distinct_stop_words: how many of
    the, be, to, of, and, that, have, with occur (as lower-case words)."""
    toks = toks or Tokens(text)
    words, n_tokens = toks.words, toks.count
    n_words = len(words)
    lines = text.splitlines()
    n_lines = len(lines)
    symbols = max(text.count("#"), text.count("...") + text.count("…"))
    return {
        "word_count": n_words,
        "mean_word_length": sum(map(len, words)) / n_words if n_words else 0.0,
        "alpha_word_fraction": toks.alpha_count / n_tokens if n_tokens else 0.0,
        "symbol_word_ratio": symbols / n_tokens if n_tokens else 0.0,
        "bullet_line_fraction": (sum(map(str.startswith, map(str.lstrip, lines), repeat(_BULLETS))) / n_lines
                                 if n_lines else 0.0),
        "ellipsis_line_fraction": (sum(map(str.endswith, map(str.rstrip, lines), repeat(_ELLIPSES))) / n_lines
                                   if n_lines else 0.0),
        "distinct_stop_words": len(GOPHER_STOP_WORDS.intersection(words)),
    }


# --- Gopher repetition
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAK = re.compile(r"\n+")
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _duplicates(parts: list[str]) -> tuple[int, int]:
    """(elements repeating an earlier one, their characters)."""
    unique = set(parts)
    return len(parts) - len(unique), sum(map(len, parts)) - sum(map(len, unique))


def gopher_repetition(text: str, toks: Tokens | None = None) -> dict:
    n_chars = len(text)
    if not n_chars:
        return dict.fromkeys(GROUP_FIELDS[GOPHER_REPETITION], 0.0)
    paragraphs = _PARAGRAPH_BREAK.split(text.strip())
    dup_paras, dup_para_chars = _duplicates(paragraphs)
    lines = _LINE_BREAK.split(text)
    dup_lines, dup_line_chars = _duplicates(lines)
    out = {
        "dup_para_fraction": dup_paras / len(paragraphs),
        "dup_para_char_fraction": dup_para_chars / n_chars,
        "dup_line_fraction": dup_lines / len(lines),
        "dup_line_char_fraction": dup_line_chars / n_chars,
    }
    all_tokens = (toks or Tokens(text)).all
    vocab: dict[str, int] = {}
    ids = np.fromiter(map(vocab.setdefault, all_tokens, count(1)), np.uint64, len(all_tokens))
    ends = np.zeros(len(all_tokens) + 1, np.int64)  # characters of tokens [i, j) = ends[j] - ends[i]
    np.cumsum(np.fromiter(map(len, all_tokens), np.int64, len(all_tokens)), out=ends[1:])
    # n-gram keys: a hash of the token ids, extended by one token per n (64-bit multiply-xorshift mixing).
    out.update(dict.fromkeys(GROUP_FIELDS[GOPHER_REPETITION][4:], 0.0))  # n-grams longer than the text: none
    keys = ids
    repeated = True
    for n in range(2, min(DUP_NGRAMS[-1], len(ids)) + 1):
        keys = keys[:len(ids) - n + 1] * _MIX + ids[n - 1:]
        keys ^= keys >> np.uint64(31)
        if n in TOP_NGRAMS:
            out[f"top_{n}gram_char_fraction"] = _top_ngram_chars(keys, ends, n) / n_chars
        if n in DUP_NGRAMS:
            # A repeated n-gram contains a repeated (n-1)-gram: once none repeats, no longer one does.
            chars = _duplicated_ngram_chars(keys, ends, n) if repeated else 0
            repeated = chars > 0
            out[f"dup_{n}gram_char_fraction"] = chars / n_chars
    return out


def _top_ngram_chars(keys: np.ndarray, ends: np.ndarray, n: int) -> int:
    """Characters of the most frequent n-gram (its tokens joined by spaces) times its count; among equally
    frequent n-grams, the one that occurs first (as ``Counter.most_common`` orders them in DataTrove)."""
    _, first, times = np.unique(keys, return_index=True, return_counts=True)
    top = times.max()
    i = int(first[times == top].min())
    return int(ends[i + n] - ends[i] + n - 1) * int(top)


def _duplicated_ngram_chars(keys: np.ndarray, ends: np.ndarray, n: int) -> int:
    """Characters in n-grams that repeat an n-gram seen earlier in a left-to-right scan that jumps past each
    repeat (so overlapping repeats count once), as DataTrove's ``find_all_duplicate``."""
    _, inverse, times = np.unique(keys, return_inverse=True, return_counts=True)
    positions = np.flatnonzero(times[inverse] > 1)
    if not len(positions):
        return 0
    # Only n-grams occurring more than once can be hits; the scan meets the others as new wherever they are.
    seen: set[int] = set()
    chars = resume = 0
    for i, key in zip(positions.tolist(), keys[positions].tolist()):
        if i < resume:
            continue  # inside the previous repeat: skipped, and not remembered
        if key in seen:
            chars += int(ends[i + n] - ends[i])
            resume = i + n
        else:
            seen.add(key)
    return chars


# --- C4
MAX_WORD_LENGTH = 1000
MIN_WORDS_PER_LINE = 3
_C4_END_PUNCT = (".", "?", "!", '"', "'")
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# spaCy's sentencizer's sentence-final marks (its default punct_chars) other than '.', which is handled apart.
_TERMINALS = (
    "!?\u0589\u061f\u06d4\u0700-\u0702\u07f9\u0964\u0965\u104a\u104b\u1362\u1367\u1368\u166e\u1735\u1736"
    "\u1803\u1809\u1944\u1945\u1aa8-\u1aab\u1b5a\u1b5b\u1b5e\u1b5f\u1c3b\u1c3c\u1c7e\u1c7f\u203c\u203d"
    "\u2047-\u2049\u2e2e\u2e3c\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7\ua876\ua877\ua8ce\ua8cf\ua92f\ua9c8"
    "\ua9c9\uaa5d-\uaa5f\uaaf0\uaaf1\uabeb\ufe52\ufe56\ufe57\uff01\uff0e\uff1f\uff61\U00010a56\U00010a57"
    "\U00011047\U00011048\U000110be-\U000110c1\U00011141-\U00011143\U000111c5\U000111c6\U000111cd"
    "\U000111de\U000111df\U00011238\U00011239\U0001123b\U0001123c\U000112a9\U0001144b\U0001144c\U000115c2"
    "\U000115c3\U000115c9-\U000115d7\U00011641\U00011642\U0001173c-\U0001173e\U00011a42\U00011a43"
    "\U00011a9b\U00011a9c\U00011c41\U00011c42\U00016a6e\U00016a6f\U00016af5\U00016b37\U00016b38\U00016b44"
    "\U0001bc9f\U0001da88"
)
# spaCy keeps these with their period: no sentence ends there
_ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Mt", "Jr", "Sr", "Inc", "Ltd", "Co", "Corp", "Bros", "vs",
                  "Gov", "Gen", "Sen", "Rep", "Rev", "Capt", "Col", "Lt", "Sgt", "Jan", "Feb", "Mar", "Apr", "Jun",
                  "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec")
# A sentence boundary: a terminal token (a '.' that is not part of '...', a number, a dotted abbreviation, an
# initial or a common abbreviation) followed, on the same line and past punctuation only, by a word. Each branch
# starts with the character it consumes, so the regex engine skips every other position at C speed.
_SENTENCE_BREAK = re.compile(
    f"(?:[{_TERMINALS}]|\\.(?<!\\.\\.)(?!\\.)(?<!\\b[^\\W\\d_]\\.)"
    + "".join(f"(?<!\\b{a}\\.)" for a in _ABBREVIATIONS)
    + "(?:(?!\\w)|(?<=[a-z]\\.)(?=[A-Z])))"
    f"(?=[^\\w\\n{_TERMINALS}.]*[^\\W_])")


@dataclass(frozen=True)
class C4Lines:
    """What C4's line rules make of a text: the signals, and the text of the lines each variant keeps."""

    signals: dict
    kept_punctuated: list[str]  # kept lines that end in terminal punctuation (C4 keeps only these)
    kept_mask: list[bool]  # over all lines: kept by the rules other than terminal punctuation
    lines: list[str]  # all lines, stripped, citations removed

    def kept_text(self, terminal_punct_rule: bool) -> str:
        if terminal_punct_rule:
            return "\n".join(self.kept_punctuated).strip()
        return "\n".join(compress(self.lines, self.kept_mask)).strip()


def _sentences(lines: list[str]) -> int:
    return len(lines) + len(_SENTENCE_BREAK.findall("\n".join(lines))) if lines else 0


def c4_lines(text: str) -> C4Lines:
    stripped = list(map(str.strip, text.splitlines()))
    n = len(stripped)
    ok = [len(words) >= MIN_WORDS_PER_LINE for words in map(str.split, stripped)]
    if max(map(len, text.split()), default=0) > MAX_WORD_LENGTH:  # rare: only then find the lines that hold one
        ok = list(map(bool.__and__, ok, (max(map(len, line.split()), default=0) <= MAX_WORD_LENGTH
                                         for line in stripped)))
    # Citation marks go after the word count, and before the punctuation check (a trailing mark leaves its
    # space behind: "... end. [1]" no longer ends in punctuation, as in DataTrove).
    lines = list(map(_CITATION.sub, repeat(""), stripped)) if "[" in text else stripped
    punct = [line.endswith(_C4_END_PUNCT) and not line.endswith("...") for line in lines]
    lowered = text.lower()
    no = [False] * n
    lorem = list(map(str.__contains__, map(str.lower, lines), repeat("lorem ipsum"))) if "lorem ipsum" in lowered \
        else no
    script = list(map(str.__contains__, map(str.lower, lines), repeat("javascript"))) if "javascript" in lowered \
        else no
    curly = list(map(str.__contains__, lines, repeat("{"))) if "{" in text else no
    if any(map(lowered.__contains__, _POLICY_PHRASES)):
        policy = [any(map(line.__contains__, _POLICY_PHRASES)) for line in map(str.lower, lines)]
    else:
        policy = no
    # C4's order per line: long word, punctuation, too few words, lorem ipsum (page), javascript, curly
    # bracket (page), policy; a line that passes all is kept.
    lorem_hit = list(map(bool.__and__, ok, lorem))
    curly_hit = [o and c and not s for o, c, s in zip(ok, curly, script)] if curly is not no else no
    kept = [o and not (s or p) for o, s, p in zip(ok, script, policy)]
    kept_punctuated = list(compress(lines, map(bool.__and__, kept, punct)))
    kept_other = list(compress(lines, [k and not p for k, p in zip(kept, punct)]))
    signals = {
        "c4_sentences": _sentences(kept_punctuated),
        "c4_sentences_unpunctuated": _sentences(kept_other),
        "c4_lorem_ipsum": any(map(bool.__and__, lorem_hit, punct)),
        "c4_lorem_ipsum_unpunctuated": any(h and not p for h, p in zip(lorem_hit, punct)),
        "c4_curly_bracket": any(map(bool.__and__, curly_hit, punct)),
        "c4_curly_bracket_unpunctuated": any(h and not p for h, p in zip(curly_hit, punct)),
    }
    return C4Lines(signals, kept_punctuated, kept, lines)


# --- FineWeb
SHORT_LINE_CHARS = 30
# Unicode Sentence_Terminal characters (the set of DataTrove's TERMINAL_PUNCTUATION): FineWeb's line ends.
_STERM = (
    "!.?\u0589\u061d-\u061f\u06d4\u0700-\u0702\u07f9\u0837\u0839\u083d\u083e\u0964\u0965\u104a\u104b"
    "\u1362\u1367\u1368\u166e\u1735\u1736\u17d4-\u17d6\u17d9\u17da\u1803\u1809\u1944\u1945\u1aa8-\u1aab"
    "\u1b5a\u1b5b\u1b5e\u1b5f\u1b7d\u1b7e\u1c3b\u1c3c\u1c7e\u1c7f\u203c\u203d\u2047-\u2049\u2e2e\u2e3c"
    "\u2e53\u2e54\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7\ua876\ua877\ua8ce\ua8cf\ua92f\ua9c8\ua9c9\uaa5d-"
    "\uaa5f\uaaf0\uaaf1\uabeb\ufe52\ufe56\ufe57\uff01\uff0e\uff1f\uff61\U00010a56\U00010a57\U00010f55-"
    "\U00010f59\U00010f86-\U00010f89\U00011047\U00011048\U000110be-\U000110c1\U00011141-\U00011143"
    "\U000111c5\U000111c6\U000111cd\U000111de\U000111df\U00011238\U00011239\U0001123b\U0001123c\U000112a9"
    "\U0001144b\U0001144c\U000115c2\U000115c3\U000115c9-\U000115d7\U00011641\U00011642\U0001173c-"
    "\U0001173e\U00011944\U00011946\U00011a42\U00011a43\U00011a9b\U00011a9c\U00011c41\U00011c42\U00011ef7"
    "\U00011ef8\U00011f43\U00011f44\U00016a6e\U00016a6f\U00016af5\U00016b37\U00016b38\U00016b44\U00016e98"
    "\U0001bc9f\U0001da88"
)
_STERM_CHARS = frozenset(re.findall(f"[{_STERM}]", "".join(map(chr, range(0x20000)))))


def fineweb(text: str) -> dict:
    """On the text after C4's line rules (FineWeb's variant); all zero when no non-blank line is left."""
    lines = [line for line in text.split("\n") if not line.isspace() and line]
    n = len(lines)
    if not n:
        return dict.fromkeys(GROUP_FIELDS[FINEWEB], 0.0)
    chars = len(text) - text.count("\n")
    n_tokens = len(TOKEN.findall(text))
    return {
        "line_punct_fraction": sum(map(_STERM_CHARS.__contains__, map(itemgetter(-1), lines))) / n,
        "short_line_fraction": sum(map(SHORT_LINE_CHARS.__ge__, map(len, lines))) / n,
        "fineweb_dup_line_char_fraction": _duplicates(lines)[1] / chars if chars else 0.0,
        "newline_word_ratio": text.count("\n") / n_tokens if n_tokens else 0.0,
    }


@dataclass
class Computed:
    """The signals of the groups asked for, and C4's line view when it was computed."""

    signals: dict
    c4: C4Lines | None = None


def compute(text: str, groups: frozenset[str]) -> Computed:
    signals: dict = {}
    toks = Tokens(text) if GOPHER_QUALITY in groups or GOPHER_REPETITION in groups else None
    if GOPHER_QUALITY in groups:
        signals.update(gopher_quality(text, toks))
    if GOPHER_REPETITION in groups:
        signals.update(gopher_repetition(text, toks))
    lines = None
    if C4 in groups or FINEWEB in groups:
        lines = c4_lines(text)
        if C4 in groups:
            signals.update(lines.signals)
        if FINEWEB in groups:
            signals.update(fineweb(lines.kept_text(terminal_punct_rule=False)))
    return Computed(signals, lines)
