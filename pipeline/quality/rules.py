"""Quality rules and presets: decisions over stored signals, one reason code per rule.

A :class:`Rule` compares one signal (or the sum of a few) with its published threshold; a :class:`Preset` is an
ordered list of rules, the signal groups they read, and whether C4's line filter rewrites the text of the
documents it keeps. :func:`decide` applies a preset to a mapping of signals: the step calls it on the values it
has just computed and stored, and ``lowbg decide`` can call it on a row read back from a shard, so a decision is
always re-made from stored values.

Thresholds and comparisons are DataTrove 0.10.1's defaults (the code FineWeb's paper points to), which follow
the papers: a document is rejected when a ``max`` signal is *above* its threshold or a ``min`` signal is *below*
it; a value equal to the threshold passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.quality.signals import C4, DUP_NGRAMS, FINEWEB, GOPHER_QUALITY, GOPHER_REPETITION, TOP_NGRAMS

REASON_MIN_WORDS = "quality_min_words"


@dataclass(frozen=True)
class Rule:
    """Reject when the signal (the sum of ``signals``) is < ``min`` or > ``max``; flags are signals with max 0."""

    reason: str
    signals: tuple[str, ...]
    label: str
    min: float | None = None
    max: float | None = None

    def check(self, values: Mapping) -> tuple[str, str] | None:
        parts = [values.get(name) for name in self.signals]
        if any(part is None for part in parts):
            missing = [n for n, p in zip(self.signals, parts) if p is None]
            raise MissingSignal(f"{self.reason} needs {', '.join(missing)}, which this row does not hold (the run "
                                f"did not compute them: see --quality-signals)")
        value = sum(part for part in parts if part is not None)
        if self.min is not None and value < self.min:
            return self.reason, f"{self.label} {_show(value)} < {_show(self.min)}"
        if self.max is not None and value > self.max:
            return self.reason, f"{self.label} {_show(value)} > {_show(self.max)}"
        return None


class MissingSignal(ValueError):
    """A rule was asked to decide on a signal the row does not hold."""


def _show(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(int(value))


def _rule(reason: str, signal: str | tuple[str, ...], label: str, **bound: float) -> Rule:
    return Rule(f"quality_{reason}", (signal,) if isinstance(signal, str) else signal, label, **bound)


# Rae et al. 2021, appendix A, "quality filters": between 50 and 100,000 words, mean word length 3 to 10, at
# most 0.1 '#' or ellipses per word, at most 90% of lines starting with a bullet and 30% ending in an ellipsis,
# at least 80% of words with a letter, at least two of the eight stop words.
GOPHER_QUALITY_RULES = (
    _rule("gopher_word_count", "word_count", "words", min=50, max=100_000),
    _rule("gopher_mean_word_length", "mean_word_length", "mean word length", min=3, max=10),
    _rule("gopher_symbol_word_ratio", "symbol_word_ratio", "'#' or ellipses per word", max=0.1),
    _rule("gopher_bullet_lines", "bullet_line_fraction", "lines starting with a bullet", max=0.9),
    _rule("gopher_ellipsis_lines", "ellipsis_line_fraction", "lines ending in an ellipsis", max=0.3),
    _rule("gopher_alpha_words", "alpha_word_fraction", "words with a letter", min=0.8),
    _rule("gopher_stop_words", "distinct_stop_words", "distinct stop words", min=2),
)

# Rae et al. 2021, appendix A, table A1 (repetition removal), in DataTrove's order.
GOPHER_REPETITION_RULES = (
    _rule("gopher_dup_para_fraction", "dup_para_fraction", "duplicate paragraphs", max=0.3),
    _rule("gopher_dup_para_char_fraction", "dup_para_char_fraction", "characters in duplicate paragraphs", max=0.2),
    _rule("gopher_dup_line_fraction", "dup_line_fraction", "duplicate lines", max=0.3),
    _rule("gopher_dup_line_char_fraction", "dup_line_char_fraction", "characters in duplicate lines", max=0.2),
    *(_rule(f"gopher_top_{n}gram", f"top_{n}gram_char_fraction", f"characters in the top {n}-gram", max=limit)
      for n, limit in zip(TOP_NGRAMS, (0.2, 0.18, 0.16))),
    *(_rule(f"gopher_dup_{n}gram", f"dup_{n}gram_char_fraction", f"characters in duplicate {n}-grams", max=limit)
      for n, limit in zip(DUP_NGRAMS, (0.15, 0.14, 0.13, 0.12, 0.11, 0.10))),
)

# Raffel et al. 2020 as DataTrove's C4QualityFilter runs it (its defaults: at least 5 sentences in the kept
# lines, lines of at least 3 words; the C4 paper says 3 sentences and 5 words, TFDS's c4_utils likewise).
C4_RULES = (
    _rule("c4_lorem_ipsum", "c4_lorem_ipsum", "'lorem ipsum' in a kept line", max=0),
    _rule("c4_curly_bracket", "c4_curly_bracket", "curly bracket in a kept line", max=0),
    _rule("c4_min_sentences", "c4_sentences", "sentences in kept lines", min=5),
)
# FineWeb runs C4 without the terminal-punctuation line rule: every kept line counts.
C4_RULES_WITHOUT_TERMINAL_PUNCT = (
    _rule("c4_lorem_ipsum", ("c4_lorem_ipsum", "c4_lorem_ipsum_unpunctuated"), "'lorem ipsum' in a kept line",
          max=0),
    _rule("c4_curly_bracket", ("c4_curly_bracket", "c4_curly_bracket_unpunctuated"),
          "curly bracket in a kept line", max=0),
    _rule("c4_min_sentences", ("c4_sentences", "c4_sentences_unpunctuated"), "sentences in kept lines", min=5),
)

# Penedo et al. 2024 (FineWeb), DataTrove's FineWebQualityFilter defaults: at least 12% of lines ending in a
# sentence terminal, at most 67% of lines of <= 30 characters, at most 1% of characters in duplicate lines (the
# paper's text says 10%; the released code that built the dataset, examples/fineweb.py, uses 0.01), at most 0.3
# newlines per word.
FINEWEB_RULES = (
    _rule("fineweb_line_punct", "line_punct_fraction", "lines ending in punctuation", min=0.12),
    _rule("fineweb_short_lines", "short_line_fraction", "lines of <= 30 characters", max=0.67),
    _rule("fineweb_dup_line_chars", "fineweb_dup_line_char_fraction", "characters in duplicate lines", max=0.01),
    _rule("fineweb_list_lines", "newline_word_ratio", "newlines per word", max=0.3),
)


@dataclass(frozen=True)
class Preset:
    name: str
    rules: tuple[Rule, ...]
    groups: frozenset[str]
    # C4's line filter rewrites a kept document's text to the lines it keeps: None (no rewrite), True (C4's
    # variant: only lines ending in terminal punctuation) or False (FineWeb's: without that rule).
    c4_terminal_punct_rule: bool | None = None
    description: str = ""


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("none", (), frozenset(), description="no rules"),
    Preset("gopher-quality", GOPHER_QUALITY_RULES, frozenset({GOPHER_QUALITY}),
           description="Gopher quality filters (Rae et al. 2021)"),
    Preset("gopher-repetition", GOPHER_REPETITION_RULES, frozenset({GOPHER_REPETITION}),
           description="Gopher repetition removal (Rae et al. 2021)"),
    Preset("gopher", GOPHER_QUALITY_RULES + GOPHER_REPETITION_RULES, frozenset({GOPHER_QUALITY, GOPHER_REPETITION}),
           description="Gopher quality filters, then repetition removal, as the paper orders them"),
    Preset("c4", C4_RULES, frozenset({C4}), c4_terminal_punct_rule=True,
           description="C4 (Raffel et al. 2020) as DataTrove implements it; rewrites kept text to C4's lines"),
    Preset("fineweb", GOPHER_REPETITION_RULES + GOPHER_QUALITY_RULES + C4_RULES_WITHOUT_TERMINAL_PUNCT + FINEWEB_RULES,
           frozenset({GOPHER_REPETITION, GOPHER_QUALITY, C4, FINEWEB}), c4_terminal_punct_rule=False,
           description="FineWeb (Penedo et al. 2024): Gopher repetition, Gopher quality, C4 without its "
                       "terminal-punctuation rule, FineWeb's filters, in that order; rewrites kept text to C4's lines"),
)}

QUALITY_REASONS = (REASON_MIN_WORDS, *dict.fromkeys(r.reason for p in PRESETS.values() for r in p.rules))


def decide(values: Mapping, preset: Preset | str) -> tuple[str, str] | None:
    """The first rule of ``preset`` that ``values`` (a row or a signals dict) fails, as (reason, detail)."""
    if isinstance(preset, str):
        preset = PRESETS[preset]
    for rule in preset.rules:
        failed = rule.check(values)
        if failed:
            return failed
    return None
