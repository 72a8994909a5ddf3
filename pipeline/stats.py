"""Run statistics computed on the workers: the ``stats/`` output beside the manifest (format in docs/report.md).

What a run did, in aggregate, without reading a shard back: `lowbg curate` attaches :class:`RunStats` to the
final documents (after the machine-text decision) and its error rows; a ``CombineGlobally`` merges one
:class:`RunStatsAccumulator` per bundle and one step writes ``stats/stats.json`` and ``stats/words.json.gz``
(each under a temporary name, then renamed, before the manifest is written). `lowbg decide` rebuilds the same
accumulator from the rows it re-decides, so its ``stats/`` agree with its shards.

Contents (all mergeable, so any runner and any bundling give the same exact counts):

* counts by outcome and reason, by era (below), crawl, capture provenance and rule, content provenance,
  language, capture year, and why a detector did not score; error rows by stage and reason;
* histograms of each quality signal for curated and rejected documents, on fixed bins (:data:`SIGNAL_SCALES`);
* dedup cluster sizes of the kept copies;
* per detector, score histograms split by era, by (era, crawl), (era, language) and (era, capture year), with
  the number of documents and how many the run's own rule flags (its thresholds, per language where calibrated:
  exact, not binned). Bins are fixed and documented: fastText's P(machine) on a logit grid (step 0.01, so fine
  near 0 and 1), unbounded LM scores on a signed log grid of relative width 0.1% (:class:`SymlogScale`), fine
  enough to recompute any threshold's flag rate within one bin;
* the top post-cutoff hosts (document counts, per-detector histograms and flags);
* word document-frequencies of pre- and post-cutoff documents per language (:class:`WordTable`): the first
  :data:`WORD_CHARS` characters of every candidate document, lower-cased ``\\w+`` tokens, counted once per
  document in a Misra-Gries summary of :data:`WORD_CAPACITY` words (bounded memory, mergeable; a stored count
  is at most the true one and at most ``decrement`` below it), plus how many documents capitalise each word in
  mid-sentence (to tell names from style words) and how many contain any of the pre-registered
  :data:`MARKER_WORDS`.

Eras: ``pre_cutoff`` (captured before the cutoff), ``post_cutoff`` (captured after, content not known to be
older: the population whose machine-written share the report estimates), ``post_cutoff_old_content`` (captured
after, content seen before the cutoff via dedup or the reference index) and ``unknown``. *Candidate* documents
are those the detectors judge: kept, or rejected ``machine_generated``/``uncertain``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import json
import math
import re
import struct
from collections import Counter

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms.window import GlobalWindows

import schemas
from pipeline import quality
from pipeline.decision import ThresholdsOf, flags, thresholds_from_record
from pipeline.document import Document, ErrorRecord
from pipeline.layout import STATS_FILE, WORDS_FILE, join, open_read, write_bytes
from pipeline.provenance import POST_CUTOFF, PRE_CUTOFF, captured_pre_cutoff, human_era
from pipeline.provenance import UNKNOWN as UNKNOWN_PROVENANCE
from pipeline.reasons import REASON_MACHINE_GENERATED, REASON_UNCERTAIN

FORMAT = "lowbackground.run-stats/1"
WORDS_FORMAT = "lowbackground.run-words/1"

PRE, POST, UNKNOWN = PRE_CUTOFF, POST_CUTOFF, UNKNOWN_PROVENANCE  # eras are provenance labels (pipeline/provenance.py)
POST_OLD = "post_cutoff_old_content"  # captured after the cutoff, its content seen before it
ERAS = (PRE, POST, POST_OLD, UNKNOWN)
CANDIDATE_REASONS = frozenset({None, REASON_MACHINE_GENERATED, REASON_UNCERTAIN})

WORD_CHARS = 2000  # characters tokenised per document (~300 words, an abstract): bounded cost and length bias
WORD_CAPACITY = 20_000  # words kept per (era, language) summary
# Languages whose word frequencies are kept: the largest Common Crawl languages written with spaces between words
# (CJK and Thai would need a segmenter); "und" is a run without language ID.
WORD_LANGUAGES = frozenset({"en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "sv", "cs", "tr", "id", "und"})
HOST_CAPACITY = 200
CLUSTER_SIZE_EXACT = 1000  # larger dedup cluster sizes are rounded down to a power of two

# Style words widely reported as favoured by LLMs since 2023 (Kobak et al. 2025, "Delving into LLM-assisted
# writing in biomedical publications through excess vocabulary"; Liang et al. 2024), fixed before looking at any
# run so the share of documents containing one of them is an unselected statistic. Rare in human text on purpose:
# the rarer the markers before the cutoff, the tighter the bound they give.
MARKER_WORDS = frozenset("""
delve delves delved delving showcase showcases showcased showcasing underscore underscores underscored
underscoring intricate intricacies pivotal realm realms tapestry meticulous meticulously commendable noteworthy
multifaceted nuanced seamless seamlessly testament unwavering invaluable paramount bustling vibrant embark
embarks embarking elevate elevates elevating foster fosters fostering garner garnered garnering notably
additionally furthermore comprehensive crucial insights enhance enhances enhancing boast boasts boasting
""".split())

_WORD = re.compile(r"\w+")
_F32 = struct.Struct("<f")
# A capitalised word after a lower-case letter or a comma and one space: mid-sentence, so likely a name.
_MID_CAPS = re.compile(r"[a-z,] ([A-Z][^\W\d_]+)")


# --- fixed bins ---------------------------------------------------------------------------------------------


class Scale:
    """Fixed, documented bins: ``index(x)`` is non-decreasing in x; ``bounds(i)`` is the closed range of bin i."""

    kind = ""

    def index(self, x: float) -> int:
        raise NotImplementedError

    def bounds(self, i: int) -> tuple[float, float]:
        raise NotImplementedError

    def to_json(self) -> dict:
        return {"kind": self.kind, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


class LinearScale(Scale):
    """``bins`` equal bins on [low, high); -1 holds x < low and ``bins`` holds x >= high."""

    kind = "linear"

    def __init__(self, low: float, high: float, bins: int):
        self.low, self.high, self.bins = low, high, bins
        self._per = bins / (high - low)

    def index(self, x: float) -> int:
        if x < self.low:
            return -1
        if x >= self.high:
            return self.bins
        return min(self.bins - 1, int((x - self.low) * self._per))

    def bounds(self, i: int) -> tuple[float, float]:
        if i < 0:
            return -math.inf, self.low
        if i >= self.bins:
            return self.high, math.inf
        width = (self.high - self.low) / self.bins
        return self.low + i * width, self.low + (i + 1) * width


class Log2Scale(Scale):
    """Counts and sizes (x >= 0): ``per_octave`` bins per doubling of 1 + x; -1 holds negative values."""

    kind = "log2"

    def __init__(self, per_octave: int):
        self.per_octave = per_octave

    def index(self, x: float) -> int:
        if x < 0:
            return -1
        return int(math.log2(1 + x) * self.per_octave)

    def bounds(self, i: int) -> tuple[float, float]:
        if i < 0:
            return -math.inf, 0.0
        return 2 ** (i / self.per_octave) - 1, 2 ** ((i + 1) / self.per_octave) - 1


class LogitScale(Scale):
    """Probabilities: bins of width ``step`` in logit(p) over [-limit, limit] (P within 1e-11 of 0 or 1 resolved);
    the two end bins hold everything beyond."""

    kind = "logit"

    def __init__(self, step: float = 0.01, limit: float = 25.0):
        self.step, self.limit = step, limit
        self._n = round(limit / step)

    def index(self, x: float) -> int:
        n = self._n
        if x <= 0:
            return -n - 1
        if x >= 1:
            return n
        z = math.log(x / (1 - x))
        if z < -self.limit:
            return -n - 1
        if z >= self.limit:
            return n
        return max(-n, min(n - 1, math.floor(z / self.step)))

    def bounds(self, i: int) -> tuple[float, float]:
        n = self._n
        if i <= -n - 1:
            return -math.inf, _sigmoid(-self.limit)
        if i >= n:
            return _sigmoid(self.limit), math.inf
        return _sigmoid(i * self.step), _sigmoid((i + 1) * self.step)


class SymlogScale(Scale):
    """Unbounded scores (DDSketch-like): |x| < x_min is bin 0; otherwise bin ±k holds x_min·γ^(k-1) <= |x| <
    x_min·γ^k, so each bin's width is (γ - 1) of its value, on either side of zero; ±max_index hold the rest."""

    kind = "symlog"

    def __init__(self, x_min: float = 1e-6, gamma: float = 1.001, max_index: int = 30_000):
        self.x_min, self.gamma, self.max_index = x_min, gamma, max_index
        self._log_gamma = math.log(gamma)

    def index(self, x: float) -> int:
        a = abs(x)
        if a < self.x_min:
            return 0
        k = min(self.max_index, 1 + int(math.log(a / self.x_min) / self._log_gamma))
        return k if x > 0 else -k

    def bounds(self, i: int) -> tuple[float, float]:
        if i == 0:
            return -self.x_min, self.x_min
        k = abs(i)
        lo = self.x_min * self.gamma ** (k - 1)
        hi = math.inf if k >= self.max_index else self.x_min * self.gamma ** k
        return (lo, hi) if i > 0 else (-hi, -lo)


def _as_float32(x: float) -> float:
    return _F32.unpack(_F32.pack(x))[0]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def scale_from_json(d: dict) -> Scale:
    kind = d["kind"]
    if kind == "linear":
        return LinearScale(d["low"], d["high"], d["bins"])
    if kind == "log2":
        return Log2Scale(d["per_octave"])
    if kind == "logit":
        return LogitScale(d["step"], d["limit"])
    if kind == "symlog":
        return SymlogScale(d["x_min"], d["gamma"], d["max_index"])
    raise ValueError(f"unknown bin scale {kind!r}")


PROBABILITY_DETECTORS = frozenset({"fasttext"})


_SCORE_SCALES: dict[str, Scale] = {}


def score_scale(detector: str) -> Scale:
    scale = _SCORE_SCALES.get(detector)
    if scale is None:
        scale = _SCORE_SCALES[detector] = LogitScale() if detector in PROBABILITY_DETECTORS else SymlogScale()
    return scale


_FRACTION = LinearScale(0.0, 1.0, 100)
_COUNT = Log2Scale(8)
# Bins of the signals that are not fractions in [0, 1]; every other numeric quality signal is one
# (pipeline/quality/signals.py). Flags (the C4 line markers) are counts of documents, not histograms.
_SIGNAL_SCALE_EXCEPTIONS: dict[str, Scale] = {
    "mean_word_length": LinearScale(0.0, 30.0, 120),
    "distinct_stop_words": LinearScale(0.0, 8.0, 8),
    "newline_word_ratio": LinearScale(0.0, 2.0, 100),
}


def _signal_scale(field: pa.Field) -> Scale | None:
    if pa.types.is_boolean(field.type):
        return None
    if field.name in _SIGNAL_SCALE_EXCEPTIONS:
        return _SIGNAL_SCALE_EXCEPTIONS[field.name]
    return _COUNT if pa.types.is_integer(field.type) else _FRACTION


SIGNAL_SCALES: dict[str, Scale] = {"language_score": _FRACTION} | {
    name: scale for name in quality.SIGNAL_FIELDS
    if (scale := _signal_scale(schemas.CURATED_SCHEMA.field(name))) is not None}

# Signals stored as float32 in the shards: binned as stored, so `lowbg decide` (which reads them back) and anyone
# recomputing a histogram from the shards get the same bins as the pipeline.
FLOAT32_SIGNALS = frozenset(f.name for f in schemas.CURATED_SCHEMA if str(f.type) == "float")

# Count tables: name -> the dimensions of their keys (documented in docs/report.md).
COUNT_TABLES = {
    "outcome": ("era", "outcome", "reason"),
    "crawl": ("crawl", "era", "outcome"),
    "provenance": ("provenance", "rule"),
    "content_provenance": ("provenance", "content_provenance", "source"),
    "language": ("language", "era", "outcome"),
    "capture_year": ("year", "provenance"),
    "not_scored": ("detector", "reason"),
    "nonfinite_scores": ("detector",),
}
SCORE_GROUPS = (("era",), ("era", "crawl"), ("era", "language"), ("era", "year"))


def era_of(doc: Document) -> str:
    if captured_pre_cutoff(doc):
        return PRE
    if doc.provenance == POST:
        return POST_OLD if human_era(doc) else POST
    return UNKNOWN


# --- bounded summaries ---------------------------------------------------------------------------------------


def prune_counter(counter: Counter, capacity: int) -> int:
    """Misra-Gries step: subtract the (capacity+1)-th largest count from every entry, drop those left <= 0, and
    return what was subtracted (the most any stored count can be below the true one grows by it)."""
    if len(counter) <= capacity:
        return 0
    cut = heapq.nlargest(capacity + 1, counter.values())[-1]
    kept = {w: c - cut for w, c in counter.items() if c > cut}
    counter.clear()
    counter.update(kept)
    return cut


class WordTable:
    """Document frequencies of one (era, language): a Misra-Gries summary of the words, one count per document."""

    __slots__ = ("documents", "marker_documents", "df", "caps", "df_decrement", "caps_decrement")

    def __init__(self):
        self.documents = 0
        self.marker_documents = 0
        self.df: Counter = Counter()
        self.caps: Counter = Counter()
        self.df_decrement = 0
        self.caps_decrement = 0

    def add(self, text: str) -> None:
        head = text[:WORD_CHARS]
        words = set(_WORD.findall(head.lower()))
        self.documents += 1
        if not words.isdisjoint(MARKER_WORDS):
            self.marker_documents += 1
        self.df.update(words)
        caps = _MID_CAPS.findall(head)
        if caps:
            self.caps.update({w.lower() for w in caps})
        self._bound(2 * WORD_CAPACITY)

    def _bound(self, limit: int) -> None:
        if len(self.df) > limit:
            self.df_decrement += prune_counter(self.df, WORD_CAPACITY)
        if len(self.caps) > limit:
            self.caps_decrement += prune_counter(self.caps, WORD_CAPACITY)

    def merge(self, other: WordTable) -> None:
        self.documents += other.documents
        self.marker_documents += other.marker_documents
        self.df.update(other.df)
        self.caps.update(other.caps)
        self.df_decrement += other.df_decrement
        self.caps_decrement += other.caps_decrement
        self._bound(2 * WORD_CAPACITY)

    def to_json(self, era: str, language: str) -> dict:
        self._bound(WORD_CAPACITY)
        words = sorted(self.df.items(), key=lambda kv: (-kv[1], kv[0]))
        return {"era": era, "language": language, "documents": self.documents,
                "marker_documents": self.marker_documents, "df_decrement": self.df_decrement,
                "caps_decrement": self.caps_decrement,
                "words": [[w, n, self.caps.get(w, 0)] for w, n in words]}


def _new_score_group() -> list:
    return [0, 0, Counter()]  # documents, flagged by the run's rule, histogram


def _merge_score_group(a: list, b: list) -> None:
    a[0] += b[0]
    a[1] += b[1]
    a[2].update(b[2])


class RunStatsAccumulator:
    """Everything in ``stats/``, accumulated one document (or error row) at a time and merged across bundles."""

    def __init__(self):
        self.documents = 0
        self.counts: dict[str, Counter] = {name: Counter() for name in COUNT_TABLES}
        self.errors: Counter = Counter()
        self.signals: dict[tuple[str, str], Counter] = {}
        self.cluster_sizes: Counter = Counter()
        self.scores: dict[tuple, list] = {}
        self.hosts: dict[str, list] = {}  # host -> [documents, {detector: score group}]
        self.hosts_dropped = 0
        self.words: dict[tuple[str, str], WordTable] = {}

    # adding

    def add(self, element) -> None:
        item, flags = element
        if isinstance(item, ErrorRecord):
            self.errors[(item.stage, item.reason)] += 1
        else:
            self.add_document(item, flags or {})

    def add_document(self, doc: Document, flags: dict[str, bool]) -> None:
        self.documents += 1
        era = era_of(doc)
        outcome = "rejected" if doc.reason is not None else "curated"
        language = doc.language
        year = doc.warc_date.year if doc.warc_date is not None else None
        counts = self.counts
        counts["outcome"][(era, outcome, doc.reason)] += 1
        counts["crawl"][(doc.crawl_id, era, outcome)] += 1
        counts["provenance"][(doc.provenance, doc.provenance_rule)] += 1
        counts["content_provenance"][(doc.provenance, doc.content_provenance, doc.content_provenance_source)] += 1
        counts["language"][(language, era, outcome)] += 1
        counts["capture_year"][(year, doc.provenance)] += 1
        if doc.not_scored_reason:
            for part in doc.not_scored_reason.split(";"):
                detector, _, why = part.partition(":")
                counts["not_scored"][(detector, why)] += 1

        for name, scale in SIGNAL_SCALES.items():
            value = getattr(doc, name)
            if value is not None:
                if name in FLOAT32_SIGNALS:
                    value = _as_float32(value)
                signal_key = (name, outcome)
                hist = self.signals.get(signal_key)
                if hist is None:
                    hist = self.signals[signal_key] = Counter()
                hist[scale.index(value)] += 1
        if doc.dup_cluster_size is not None:
            size = doc.dup_cluster_size
            self.cluster_sizes[size if size <= CLUSTER_SIZE_EXACT else 2 ** int(math.log2(size))] += 1

        candidate = doc.reason in CANDIDATE_REASONS
        host_entry = None
        if candidate and era == POST:
            host = doc.url_host or ""
            host_entry = self.hosts.get(host)
            if host_entry is None:
                host_entry = self.hosts[host] = [0, {}]
            host_entry[0] += 1
        for s in doc.scores:
            value = s.value
            if value is None:
                continue
            detector = s.detector
            if not math.isfinite(value):
                counts["nonfinite_scores"][(detector,)] += 1
                continue
            index = score_scale(detector).index(value)
            flagged = int(flags.get(detector, False))
            for score_key in ((detector, 0, era), (detector, 1, era, doc.crawl_id), (detector, 2, era, language),
                              (detector, 3, era, year)):
                group = self.scores.get(score_key)
                if group is None:
                    group = self.scores[score_key] = _new_score_group()
                group[0] += 1
                group[1] += flagged
                group[2][index] += 1
            if host_entry is not None:
                group = host_entry[1].get(detector)
                if group is None:
                    group = host_entry[1][detector] = _new_score_group()
                group[0] += 1
                group[1] += flagged
                group[2][index] += 1
        if len(self.hosts) > 2 * HOST_CAPACITY:
            self._prune_hosts(HOST_CAPACITY)

        if candidate and era in (PRE, POST) and doc.text:
            words_key = (era, language or "und")
            if words_key[1] in WORD_LANGUAGES:
                words = self.words.get(words_key)
                if words is None:
                    words = self.words[words_key] = WordTable()
                words.add(doc.text)

    def _prune_hosts(self, capacity: int) -> None:
        ranked = sorted(self.hosts.items(), key=lambda kv: (-kv[1][0], kv[0]))
        for _, entry in ranked[capacity:]:
            self.hosts_dropped += entry[0]
        self.hosts = dict(ranked[:capacity])

    # merging

    def merge(self, other: RunStatsAccumulator) -> RunStatsAccumulator:
        self.documents += other.documents
        for name, table in other.counts.items():
            self.counts[name].update(table)
        self.errors.update(other.errors)
        for key, hist in other.signals.items():
            self.signals.setdefault(key, Counter()).update(hist)
        self.cluster_sizes.update(other.cluster_sizes)
        for key, group in other.scores.items():
            if key in self.scores:
                _merge_score_group(self.scores[key], group)
            else:
                self.scores[key] = group
        for host, (n, detectors) in other.hosts.items():
            mine = self.hosts.get(host)
            if mine is None:
                self.hosts[host] = [n, detectors]
                continue
            mine[0] += n
            for detector, group in detectors.items():
                if detector in mine[1]:
                    _merge_score_group(mine[1][detector], group)
                else:
                    mine[1][detector] = group
        self.hosts_dropped += other.hosts_dropped
        if len(self.hosts) > 2 * HOST_CAPACITY:
            self._prune_hosts(HOST_CAPACITY)
        for words_key, words in other.words.items():
            if words_key in self.words:
                self.words[words_key].merge(words)
            else:
                self.words[words_key] = words
        return self

    # state (a local run's workers hand their partial statistics to the launcher: JSON, never a pickle)

    def to_state(self) -> dict:
        """Everything this accumulator holds, unpruned, as JSON (:meth:`from_state` reads it back equal)."""
        def pairs(counter: Counter) -> list:
            return [[list(k) if isinstance(k, tuple) else k, n] for k, n in counter.items()]

        def group(g: list) -> list:
            return [g[0], g[1], pairs(g[2])]

        return {
            "documents": self.documents,
            "counts": {name: pairs(table) for name, table in self.counts.items()},
            "errors": pairs(self.errors),
            "signals": [[list(k), pairs(h)] for k, h in self.signals.items()],
            "cluster_sizes": pairs(self.cluster_sizes),
            "scores": [[list(k), group(g)] for k, g in self.scores.items()],
            "hosts": [[h, n, {d: group(g) for d, g in per.items()}] for h, (n, per) in self.hosts.items()],
            "hosts_dropped": self.hosts_dropped,
            "words": [[list(k), {name: getattr(t, name) if not isinstance(getattr(t, name), Counter)
                                 else pairs(getattr(t, name)) for name in WordTable.__slots__}]
                      for k, t in self.words.items()],
        }

    @classmethod
    def from_state(cls, state: dict) -> RunStatsAccumulator:
        def counter(items: list) -> Counter:
            return Counter({tuple(k) if isinstance(k, list) else k: n for k, n in items})

        def group(g: list) -> list:
            return [g[0], g[1], counter(g[2])]

        acc = cls()
        acc.documents = state["documents"]
        for name, items in state["counts"].items():
            acc.counts[name] = counter(items)
        acc.errors = counter(state["errors"])
        acc.signals = {tuple(k): counter(h) for k, h in state["signals"]}
        acc.cluster_sizes = counter(state["cluster_sizes"])
        acc.scores = {tuple(k): group(g) for k, g in state["scores"]}
        acc.hosts = {h: [n, {d: group(g) for d, g in per.items()}] for h, n, per in state["hosts"]}
        acc.hosts_dropped = state["hosts_dropped"]
        for key, fields in state["words"]:
            table = acc.words[tuple(key)] = WordTable()
            for name, value in fields.items():
                setattr(table, name, counter(value) if isinstance(value, list) else value)
        return acc

    # output

    def to_json(self, run: dict, thresholds: dict | None, written_by: str) -> tuple[dict, dict]:
        """(stats.json, words.json) documents: deterministic (sorted) whatever the order documents came in."""
        self._prune_hosts(HOST_CAPACITY)
        detectors: dict[str, dict] = {}
        dims_of = {i: dims for i, dims in enumerate(SCORE_GROUPS)}
        for key in sorted(self.scores, key=_sort_key):
            detector, which, *values = key
            n, flagged, hist = self.scores[key]
            entry = detectors.setdefault(detector, _detector_header(detector, thresholds))
            entry["groups"].append({"by": "+".join(dims_of[which]), **dict(zip(dims_of[which], values)),
                                    "n": n, "flagged": flagged, **_hist_json(hist)})
        hosts = []
        for host, (n, per_detector) in sorted(self.hosts.items(), key=lambda kv: (-kv[1][0], kv[0])):
            hosts.append({"host": host, "documents": n, "detectors": {
                d: {"n": g[0], "flagged": g[1], **_hist_json(g[2])} for d, g in sorted(per_detector.items())}})
        stats = {
            "format": FORMAT,
            "written_by": written_by,
            "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "pipeline_version": schemas.package_version(),
            "schema_version": schemas.SCHEMA_VERSION,
            "run": run,
            "documents": self.documents,
            "eras": list(ERAS),
            "counts": {name: {"dims": list(COUNT_TABLES[name]),
                              "rows": [[*k, n] for k, n in sorted(table.items(), key=_sort_key_item)]}
                       for name, table in self.counts.items()},
            "errors": {"dims": ["stage", "reason"],
                       "rows": [[*k, n] for k, n in sorted(self.errors.items(), key=_sort_key_item)]},
            "signals": {name: {"scale": scale.to_json(),
                               **{outcome: _hist_json(self.signals.get((name, outcome), Counter()))
                                  for outcome in ("curated", "rejected")}}
                        for name, scale in SIGNAL_SCALES.items()},
            "dedup": {"cluster_sizes": {"size": sorted(self.cluster_sizes),
                                        "count": [self.cluster_sizes[s] for s in sorted(self.cluster_sizes)]},
                      "sizes_exact_up_to": CLUSTER_SIZE_EXACT},
            "thresholds": thresholds or {},
            "detectors": detectors,
            "hosts": {"capacity": HOST_CAPACITY, "dropped_documents": self.hosts_dropped, "rows": hosts},
            "words": {"file": WORDS_FILE, "capacity": WORD_CAPACITY, "chars": WORD_CHARS,
                      "languages": sorted(WORD_LANGUAGES), "markers": sorted(MARKER_WORDS),
                      "tables": [{"era": e, "language": lang, "documents": t.documents,
                                  "marker_documents": t.marker_documents}
                                 for (e, lang), t in sorted(self.words.items())]},
        }
        words = {"format": WORDS_FORMAT, "capacity": WORD_CAPACITY, "chars": WORD_CHARS,
                 "tables": [t.to_json(e, lang) for (e, lang), t in sorted(self.words.items())]}
        return stats, words


def _detector_header(detector: str, thresholds: dict | None) -> dict:
    entry = (thresholds or {}).get(detector) or {}
    return {"scale": score_scale(detector).to_json(), "direction": entry.get("direction"), "groups": []}


def _none_last(value) -> tuple:
    return (value is None, "" if value is None else (value if isinstance(value, str) else f"{value:020}"))


def _sort_key(key: tuple) -> tuple:
    return tuple(_none_last(v) for v in key)


def _sort_key_item(item: tuple) -> tuple:
    return _sort_key(item[0])


def _hist_json(hist: Counter) -> dict:
    index = sorted(hist)
    return {"index": index, "count": [hist[i] for i in index]}


# --- Beam ---------------------------------------------------------------------------------------------------


class _PartialStats(beam.DoFn):
    """Documents (with their flags under the run's thresholds: :func:`pipeline.decision.flags`, the decision's
    rule) or ErrorRecords -> one partial accumulator per bundle, emitted when the bundle finishes.

    The first half of a combine without its shuffle: a ``CombineGlobally`` per input costs eight transforms, a
    GroupByKey and an empty-input default each, which Beam translates and the local runner schedules as stages of
    their own; only ``CombineStats`` shuffles, and it carries the partials alone."""

    def __init__(self):
        self.thresholds_of = ThresholdsOf()
        self.accumulator: RunStatsAccumulator | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "accumulator": None}

    def start_bundle(self):
        self.accumulator = RunStatsAccumulator()

    def process(self, item: Document | ErrorRecord, record: dict | None = None):
        assert self.accumulator is not None, "start_bundle() makes the accumulator"
        if isinstance(item, ErrorRecord):
            self.accumulator.add((item, None))
        else:
            self.accumulator.add_document(item, flags(item, self.thresholds_of(record)))
        return ()

    def finish_bundle(self):
        accumulator, self.accumulator = self.accumulator, None
        if accumulator is not None and (accumulator.documents or accumulator.errors):
            yield GlobalWindows.windowed_value_at_end_of_window(accumulator)


class MergeStatsFn(beam.CombineFn):
    """Partial accumulators (one per input of :class:`RunStats`) merged into one."""

    def create_accumulator(self) -> RunStatsAccumulator:
        return RunStatsAccumulator()

    def add_input(self, accumulator: RunStatsAccumulator, element: RunStatsAccumulator) -> RunStatsAccumulator:
        return accumulator.merge(element)

    def merge_accumulators(self, accumulators) -> RunStatsAccumulator:
        accumulators = iter(accumulators)
        first = next(accumulators)
        for other in accumulators:
            first.merge(other)
        return first

    def extract_output(self, accumulator: RunStatsAccumulator) -> RunStatsAccumulator:
        return accumulator


class RunStats(beam.PTransform):
    """{'documents': final Documents, 'errors': ErrorRecords} -> writes ``stats/`` under ``output``; several inputs
    of a kind are given as ``documents0``, ``documents1``, ... (``errors0``, ...).

    Each input is combined on its own into a partial accumulator and only the accumulators are flattened and
    merged: a Flatten of the documents themselves would hold every document of the run in memory on Beam's local
    runner (a Flatten is materialised there). ``thresholds``: the run's thresholds as a PCollection holding one
    dict (from CalibrateAndDecide), or None when the run has no detectors; documents are flagged with the same
    rule as the decision.
    """

    def __init__(self, output: str, run: dict, thresholds=None, write_state: bool = False):
        super().__init__()
        self.output, self.run, self.thresholds, self.write_state = output, run, thresholds, write_state

    def expand(self, pcolls):
        side = beam.pvalue.AsSingleton(self.thresholds) if self.thresholds is not None else None
        partials = [documents | f"DocumentStats{i}" >> beam.ParDo(_PartialStats(), side)
                    for i, documents in enumerate(_inputs(pcolls, "documents"))]
        partials += [errors | f"ErrorStats{i}" >> beam.ParDo(_PartialStats())
                     for i, errors in enumerate(_inputs(pcolls, "errors"))]
        merged = (partials
                  | "StatsInputs" >> beam.Flatten()
                  | "CombineStats" >> beam.CombineGlobally(MergeStatsFn()))
        if self.write_state:  # a worker of a local run (pipeline.local_run): the launcher merges the states
            _ = merged | "WriteStatsState" >> beam.Map(write_state, self.output)
        return merged | "WriteStats" >> beam.Map(_write_from_accumulator, self.output, self.run, side)


def _inputs(pcolls: dict, kind: str) -> list:
    """The inputs of one kind: ``kind`` itself, or ``kind0``, ``kind1``, ... (Beam takes a flat dict of inputs)."""
    if kind in pcolls:
        return [pcolls[kind]]
    return [pcolls[f"{kind}{i}"] for i in range(sum(1 for k in pcolls if k.startswith(kind)))]


def _write_from_accumulator(acc: RunStatsAccumulator, output: str, run: dict, thresholds: dict | None) -> str:
    stats, words = acc.to_json(run, thresholds, "lowbg curate")
    write_stats(output, stats, words)
    return join(output, STATS_FILE)


# --- files --------------------------------------------------------------------------------------------------


def write_stats(output: str, stats: dict, words: dict) -> None:
    """Write ``stats/words.json.gz`` then ``stats/stats.json`` (each atomically; stats.json, which names the words
    file, last)."""
    words_bytes = gzip.compress(json.dumps(words, sort_keys=True).encode(), mtime=0)
    write_bytes(join(output, WORDS_FILE), words_bytes)
    stats_bytes = json.dumps(stats, indent=1, sort_keys=True, default=str).encode()
    write_bytes(join(output, STATS_FILE), stats_bytes)


STATE_FILE = "stats/.state.json.gz"  # a local run's worker only: its partial statistics, for the launcher


def write_state(acc: RunStatsAccumulator, output: str) -> str:
    path = join(output, STATE_FILE)
    write_bytes(path, gzip.compress(json.dumps(acc.to_state()).encode(), mtime=0))
    return path


def read_state(output: str) -> RunStatsAccumulator:
    with open_read(join(output, STATE_FILE)) as fh:
        return RunStatsAccumulator.from_state(json.loads(gzip.decompress(fh.read())))


def stats_of_documents(documents, thresholds: dict | None) -> RunStatsAccumulator:
    """The accumulator over Documents outside Beam (tests, benchmarks); ``thresholds``: the run's record."""
    acc = RunStatsAccumulator()
    typed = thresholds_from_record(thresholds)
    for doc in documents:
        acc.add_document(doc, flags(doc, typed))
    return acc
