"""Quality signals stored on every row, and the published rule sets (presets) that turn them into reject reasons.

Contract: :class:`QualityStep` computes the signal groups that the preset, ``--quality-signals`` and
``--min-words`` ask for (:mod:`pipeline.quality.signals`), stores each value on the document (fields of the
groups not computed stay ``None``), then applies ``--min-words`` and the preset's rules in order; the first
failed rule rejects the document with its reason code (``quality_<rule>``) and a detail naming the value and the
threshold. The decision is :func:`pipeline.quality.rules.decide` over the stored values, so ``lowbg decide`` can
re-make it from a row. Presets that include C4 (``c4``, ``fineweb``) rewrite the text of a document they keep
to the lines C4 keeps, as C4 and FineWeb do; rejected documents keep their text.

Presets (thresholds: DataTrove 0.10.1's defaults, which follow the papers; see ``rules.py``):

- ``gopher-quality``: Rae et al. 2021 appendix A quality filters;
- ``gopher-repetition``: appendix A repetition removal (table A1);
- ``gopher``: both, in the paper's order;
- ``c4``: Raffel et al. 2020 as DataTrove's ``C4QualityFilter`` implements it;
- ``fineweb``: Penedo et al. 2024's combination as FineWeb ran it: Gopher repetition, Gopher quality, C4 without
  the terminal-punctuation line rule, then FineWeb's own filters.

What is always stored: nothing beyond what the run asks for. Each group costs a pass over every document: on
the benchmark corpus' pages (~10,000 characters of text), in CPU time per page, the Gopher quality group costs
1.2-2.5 ms, the ``gopher`` preset 2.5-3.8 ms, ``c4`` 0.8-1.1 ms and ``fineweb`` 4.4-6.9 ms, against 2.6-2.8 ms to
read and extract the page (BENCHMARKS.md, ``bench/peer_datatrove.py``). Issue 12 makes the spine's speed a contract:
signals that no decision or report uses are not computed. So the active preset's groups are stored (every value
its rules compare, so ``lowbg decide`` can re-make or re-tune the decision), ``--min-words`` adds the Gopher
quality group (its word count), and ``--quality-signals`` adds groups for a later ``lowbg decide`` with another
preset (``--quality-signals all`` for an exploratory run). With the default preset (``none``) the step does
nothing.

Words are tokens of :mod:`pipeline.quality.tokens`: a regex tokenizer that splits punctuation off words the way
spaCy's English tokenizer (DataTrove's) does, at the cost of one ``re`` pass. Like Gopher, C4 and FineWeb the
rules are calibrated for English (the stop-word rule rejects most other languages): combine them with
``--languages en``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.document import Document
from pipeline.quality.rules import PRESETS, QUALITY_REASONS, REASON_MIN_WORDS, MissingSignal, Preset, Rule, decide
from pipeline.quality.signals import GOPHER_QUALITY as GOPHER_QUALITY_SIGNALS
from pipeline.quality.signals import GROUP_FIELDS, GROUPS, SIGNAL_FIELDS, compute

__all__ = ["GROUPS", "PRESETS", "QUALITY_REASONS", "REASON_MIN_WORDS", "SIGNAL_FIELDS", "MissingSignal", "Preset",
           "QualityStep", "QualitySettings", "Rule", "decide", "quality_decision", "quality_signals"]

def quality_signals(text: str, groups: tuple[str, ...] | frozenset[str] = GROUPS) -> dict:
    """The signals of ``groups`` (default: all four), keyed by their Document field names."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown signal groups {sorted(unknown)}; expected some of {GROUPS}")
    return compute(text or "", frozenset(groups)).signals


@dataclass(frozen=True)
class QualitySettings:
    """The quality stage's settings (one of :mod:`pipeline.settings`' stages; defined here, with the presets it
    checks against): a preset, extra signal groups to store, an optional minimum word count."""

    preset: str = "none"
    signals: tuple[str, ...] = ()
    min_words: int | None = None

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"unknown quality preset {self.preset!r}; expected one of {sorted(PRESETS)}")
        unknown = set(self.signals) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown quality signal groups {sorted(unknown)}; expected some of {GROUPS}")

    @property
    def groups(self) -> frozenset[str]:
        """Every group computed: the preset's, the extra ones, and the word count's when --min-words is set."""
        extra = {GOPHER_QUALITY_SIGNALS} if self.min_words is not None else set()
        return PRESETS[self.preset].groups | set(self.signals) | extra


def quality_decision(values, settings: QualitySettings) -> tuple[str, str] | None:
    """``--min-words``, then the preset's rules, over stored signals (a Document, a row or a signals dict):
    None when kept, else (reason, detail). What :class:`QualityStep` applies and `lowbg decide` re-applies;
    :class:`MissingSignal` when a value it needs was not stored."""
    get = values.get if isinstance(values, Mapping) else lambda name: getattr(values, name, None)
    if settings.min_words is not None:
        words = get("word_count")
        if words is None:
            raise MissingSignal(f"{REASON_MIN_WORDS} needs word_count, which this row does not hold (the run did "
                                "not compute it: see --quality-signals)")
        if words < settings.min_words:
            return REASON_MIN_WORDS, f"{words} < {settings.min_words}"
    preset = PRESETS[settings.preset]
    if not preset.rules:
        return None
    return decide(values if isinstance(values, Mapping) else {f: get(f) for f in SIGNAL_FIELDS}, preset)


class QualityStep:
    """Store the quality signals, then apply ``--min-words`` and the preset's rules, in that order."""

    name = "quality"

    def __init__(self, settings: QualitySettings = QualitySettings()):
        self.settings = settings
        self.preset: Preset = PRESETS[settings.preset]
        self.min_words = settings.min_words
        self.groups = settings.groups
        self.fields = tuple(f for g in GROUPS if g in self.groups for f in GROUP_FIELDS[g])

    @property
    def active(self) -> bool:
        """True when something is computed or decided (with ``none`` and no signals the step is a no-op)."""
        return bool(self.groups) or self.min_words is not None

    def setup(self) -> None:
        pass

    def process(self, doc: Document) -> Document:
        if not self.groups:
            return doc
        computed = compute(doc.text or "", self.groups)
        for field, value in computed.signals.items():
            setattr(doc, field, value)
        failed = quality_decision(computed.signals, self.settings)
        if failed:
            return doc.reject(*failed)
        if self.preset.c4_terminal_punct_rule is not None and computed.c4 is not None:
            doc.text = computed.c4.kept_text(self.preset.c4_terminal_punct_rule)
        return doc
