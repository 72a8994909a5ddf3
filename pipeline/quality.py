"""Quality signals (scores stored on every row) and the policies that turn them into reject reasons.

:func:`quality_signals` is a pure function of the text. Words are whitespace-separated tokens, except that
each CJK/kana character is a word of its own (so Chinese text gets meaningful counts instead of one "word"
per sentence); "non-symbol" words are those with a character outside punctuation, and their length is
measured with surrounding punctuation stripped (close to the tokeniser DataTrove gives the Gopher filter).

Line fractions of the signals count non-empty lines; the Gopher bullet/ellipsis line rules count every line,
as DataTrove does. The ``gopher`` preset reproduces the quality rules of Rae et al. 2021 (Gopher, appendix A) with the
thresholds of DataTrove's ``GopherQualityFilter``. Like Gopher and FineWeb, it is calibrated for English
(the stop-word rule rejects most other languages); combine it with ``--languages en``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from itertools import repeat

from pipeline.document import Document

REASON_MIN_WORDS = "quality_min_words"
REASON_GOPHER_WORD_COUNT = "quality_gopher_word_count"
REASON_GOPHER_MEAN_WORD_LENGTH = "quality_gopher_mean_word_length"
REASON_GOPHER_SYMBOL_RATIO = "quality_gopher_symbol_word_ratio"
REASON_GOPHER_BULLET_LINES = "quality_gopher_bullet_lines"
REASON_GOPHER_ELLIPSIS_LINES = "quality_gopher_ellipsis_lines"
REASON_GOPHER_ALPHA_WORDS = "quality_gopher_alpha_words"
REASON_GOPHER_STOP_WORDS = "quality_gopher_stop_words"
QUALITY_REASONS = (REASON_MIN_WORDS, REASON_GOPHER_WORD_COUNT, REASON_GOPHER_MEAN_WORD_LENGTH,
                   REASON_GOPHER_SYMBOL_RATIO, REASON_GOPHER_BULLET_LINES, REASON_GOPHER_ELLIPSIS_LINES,
                   REASON_GOPHER_ALPHA_WORDS, REASON_GOPHER_STOP_WORDS)

SIGNAL_FIELDS = ("word_count", "mean_word_length", "alpha_word_fraction", "symbol_word_ratio",
                 "line_punct_fraction", "dup_line_fraction", "stop_word_count")

GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
# ASCII punctuation and symbols plus the common Unicode ones (quotes, dashes, bullets, CJK punctuation).
_PUNCT = string.punctuation + "“”‘’«»‹›„‚–—―…·•‣◦▪■□●○★☆→←©®™°±×÷¡¿§¶、。，．！？：；（）【】《》〈〉「」『』"
_TERMINAL_PUNCT = tuple(".!?\"'”’»)…。！？")
_BULLETS = ("•", "-")  # Gopher's (and DataTrove's) bullet marks
_ELLIPSES = ("...", "…")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")  # whitespace-separated, but a CJK character is a token
_CJK_RE = re.compile(f"[{_CJK}]")
# Whole-text counts for whitespace-tokenised (non-CJK) text, one regex pass instead of a call per token:
# tokens holding a letter, and tokens that are a Gopher stop word once surrounding punctuation is stripped.
_ALPHA_TOKEN_RE = re.compile(r"(?<!\S)(?=[^\s]*?[^\W\d_])\S+")
_STOP_TOKEN_RE = re.compile(
    f"(?<!\\S)[{re.escape(_PUNCT)}]*(?:{'|'.join(sorted(GOPHER_STOP_WORDS))})[{re.escape(_PUNCT)}]*(?!\\S)",
    re.IGNORECASE)
_HAS_LETTER = re.compile(r"[^\W\d_]").search  # a letter: word characters that are not digits or '_'


@dataclass(frozen=True)
class _Parsed:
    signals: dict
    bullet_line_fraction: float
    ellipsis_line_fraction: float
    hash_ratio: float
    ellipsis_ratio: float


def _parse(text: str) -> _Parsed:
    # C-level map/filter throughout: this runs on every document, and per-token generators cost 5x more.
    cjk = _CJK_RE.search(text) is not None
    tokens = _TOKEN_RE.findall(text) if cjk else text.split()
    core = list(filter(None, map(str.strip, tokens, repeat(_PUNCT))))  # non-symbol words, punctuation stripped
    n_tokens = len(tokens)
    all_lines = text.splitlines()  # DataTrove's line ratios count every line, empty ones too
    n_all = len(all_lines)
    lines = list(filter(None, map(str.strip, all_lines)))
    n_lines = len(lines)
    hash_ratio = text.count("#") / n_tokens if n_tokens else 0.0
    ellipsis_ratio = (text.count("...") + text.count("…")) / n_tokens if n_tokens else 0.0
    dup_lines = n_lines - len(set(lines))  # lines that repeat an earlier line
    signals = {
        "word_count": len(core),
        "mean_word_length": sum(map(len, core)) / len(core) if core else 0.0,
        "alpha_word_fraction": (len(list(filter(None, map(_HAS_LETTER, tokens)))) if cjk else
                                len(_ALPHA_TOKEN_RE.findall(text))) / n_tokens if n_tokens else 0.0,
        "symbol_word_ratio": max(hash_ratio, ellipsis_ratio),
        "line_punct_fraction": sum(map(str.endswith, lines, repeat(_TERMINAL_PUNCT))) / n_lines if n_lines else 0.0,
        "dup_line_fraction": dup_lines / n_lines if n_lines else 0.0,
        "stop_word_count": sum(map(GOPHER_STOP_WORDS.__contains__, map(str.lower, core))) if cjk else
        len(_STOP_TOKEN_RE.findall(text)),
    }
    bullets = sum(map(str.startswith, map(str.lstrip, all_lines), repeat(_BULLETS)))
    ellipses = sum(map(str.endswith, map(str.rstrip, all_lines), repeat(_ELLIPSES)))
    return _Parsed(
        signals=signals,
        bullet_line_fraction=bullets / n_all if n_all else 0.0,
        ellipsis_line_fraction=ellipses / n_all if n_all else 0.0,
        hash_ratio=hash_ratio,
        ellipsis_ratio=ellipsis_ratio,
    )


def quality_signals(text: str) -> dict:
    """The seven signals, keyed by their Document field names.

    word_count: non-symbol words; mean_word_length: their mean length; alpha_word_fraction: tokens with a
    letter / tokens; symbol_word_ratio: max('#' count, '...'/'…' count) / tokens;
    line_punct_fraction: non-empty lines ending in terminal punctuation; dup_line_fraction: non-empty lines
    that repeat an earlier line; stop_word_count: words among Gopher's eight stop words.
    """
    return dict(_parse(text).signals)


@dataclass(frozen=True)
class GopherRules:
    """Rae et al. 2021, appendix A, with DataTrove ``GopherQualityFilter``'s defaults."""

    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines: float = 0.9
    max_ellipsis_lines: float = 0.3
    min_alpha_words: float = 0.8
    min_stop_words: int = 2

    def check(self, p: _Parsed) -> tuple[str, str] | None:
        s = p.signals
        if not self.min_words <= s["word_count"] <= self.max_words:
            return REASON_GOPHER_WORD_COUNT, f"{s['word_count']} words not in [{self.min_words}, {self.max_words}]"
        mwl = s["mean_word_length"]
        if not self.min_mean_word_length <= mwl <= self.max_mean_word_length:
            return (REASON_GOPHER_MEAN_WORD_LENGTH,
                    f"{mwl:.2f} not in [{self.min_mean_word_length:g}, {self.max_mean_word_length:g}]")
        if p.hash_ratio > self.max_symbol_word_ratio:
            return REASON_GOPHER_SYMBOL_RATIO, f"'#' per word {p.hash_ratio:.3f} > {self.max_symbol_word_ratio:g}"
        if p.ellipsis_ratio > self.max_symbol_word_ratio:
            return (REASON_GOPHER_SYMBOL_RATIO,
                    f"ellipses per word {p.ellipsis_ratio:.3f} > {self.max_symbol_word_ratio:g}")
        if p.bullet_line_fraction > self.max_bullet_lines:
            return (REASON_GOPHER_BULLET_LINES,
                    f"{p.bullet_line_fraction:.2f} of lines bulleted > {self.max_bullet_lines:g}")
        if p.ellipsis_line_fraction > self.max_ellipsis_lines:
            return (REASON_GOPHER_ELLIPSIS_LINES,
                    f"{p.ellipsis_line_fraction:.2f} of lines end in an ellipsis > {self.max_ellipsis_lines:g}")
        if s["alpha_word_fraction"] < self.min_alpha_words:
            return REASON_GOPHER_ALPHA_WORDS, f"{s['alpha_word_fraction']:.2f} < {self.min_alpha_words:g}"
        if s["stop_word_count"] < self.min_stop_words:
            return REASON_GOPHER_STOP_WORDS, f"{s['stop_word_count']} < {self.min_stop_words}"
        return None


PRESETS = {"none": None, "gopher": GopherRules()}


class QualityStep:
    """Store the seven signals on every document, then apply ``--min-words`` and the preset, in that order."""

    name = "quality"

    def __init__(self, min_words: int | None = None, preset: str = "none"):
        if preset not in PRESETS:
            raise ValueError(f"unknown quality preset {preset!r}; expected one of {sorted(PRESETS)}")
        self.min_words = min_words
        self.preset = preset
        self.rules = PRESETS[preset]

    @classmethod
    def from_options(cls, args) -> QualityStep:
        return cls(args.min_words, args.quality_preset)

    @property
    def active(self) -> bool:
        """False when no policy is set (the signals are still worth storing)."""
        return self.min_words is not None or self.rules is not None

    def setup(self) -> None:
        pass

    def process(self, doc: Document) -> Document:
        parsed = _parse(doc.text or "")
        for field, value in parsed.signals.items():
            setattr(doc, field, value)
        if self.min_words is not None and parsed.signals["word_count"] < self.min_words:
            return doc.reject(REASON_MIN_WORDS, f"{parsed.signals['word_count']} < {self.min_words}")
        if self.rules is not None:
            failed = self.rules.check(parsed)
            if failed:
                doc.reject(*failed)
        return doc
