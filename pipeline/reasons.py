"""Every reason code a run can write, in one registry: the stage that owns it, what it means, how it is decided.

A reason code is a stable identifier users filter on (the ``reason`` column of the rejected and errors shards,
the manifest's ``rejected_by_reason`` and ``errors_by_reason``); the free-text ``detail`` or ``message`` beside it
says more. Each code belongs to the stage that decides it (:data:`STAGES`, in pipeline order), and the manifest
checks every code it counts against this registry: an unknown one fails the run's balance check
(:func:`unknown_reasons`), on writing and on reading a run.

Rejections say how they can be revisited (``redecide``):

* ``policy``: a policy over values stored on the row; `lowbg decide` can re-make it under other settings
  (language, ``--min-words``, the quality presets, machine text);
* ``kept``: decided from the record or the whole run (content, dedup, decoding): `lowbg decide` keeps it as it
  was (dedup needs every copy of a text, which a re-split of the rows cannot see whole).

The quality codes are the rules' own (:mod:`pipeline.quality.rules`), registered here with their stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.quality.rules import PRESETS, REASON_MIN_WORDS

# Stages in pipeline order (the names of their counters' namespaces and of the ``stage`` of their error rows
# where they write one; a detector's scoring stage is ``score:<detector>``).
READ, EXTRACT, CONTENT, LANGUAGE, QUALITY, DEDUP, SCORE, DECISION = (
    "read", "extract", "content_policy", "language", "quality", "dedup", "score", "decision")
STAGES = (READ, EXTRACT, CONTENT, LANGUAGE, QUALITY, DEDUP, SCORE, DECISION)
LIST_STAGE = "list"  # the ``stage`` of the error row of an input pattern that cannot be listed (part of read)

REJECTED, ERROR = "rejected", "error"
POLICY, KEPT_AS_DECIDED = "policy", "kept"


@dataclass(frozen=True)
class Reason:
    code: str
    outcome: str  # REJECTED or ERROR
    stages: tuple[str, ...]  # the stage(s) that decide it (of STAGES): one for every rejection
    meaning: str
    redecide: str | None = None  # rejections: POLICY (re-made by `lowbg decide`) or KEPT_AS_DECIDED

    @property
    def stage(self) -> str:
        """The (first) stage that owns the code."""
        return self.stages[0]


def _rejection(code: str, stage: str, meaning: str, redecide: str = KEPT_AS_DECIDED) -> Reason:
    return Reason(code, REJECTED, (stage,), meaning, redecide)


def _error(code: str, stages: str | tuple[str, ...], meaning: str) -> Reason:
    return Reason(code, ERROR, stages if isinstance(stages, tuple) else (stages,), meaning)


# --- rejections, in pipeline order -----------------------------------------------------------------------------
# decided while reading a record (its HTTP response, or the response's body, does not decode), applied when the
# record becomes a document
REASON_BAD_HTTP = "bad_http_response"
REASON_BAD_TRANSFER_ENCODING = "bad_transfer_encoding"
REASON_BAD_CONTENT_ENCODING = "bad_content_encoding"
REASON_UNSUPPORTED_CONTENT_ENCODING = "unsupported_content_encoding"
REASON_PAYLOAD_TOO_LARGE = "payload_too_large"
REASON_NON_TEXT = "non_text_payload"
REASON_HTTP_STATUS = "http_status"
REASON_EMPTY_TEXT = "empty_text"
REASON_LANGUAGE = "language"
REASON_DUPLICATE_EXACT = "duplicate_exact"
REASON_DUPLICATE_NEAR = "duplicate_near"
REASON_MACHINE_GENERATED = "machine_generated"
REASON_UNCERTAIN = "uncertain"

# --- errors -------------------------------------------------------------------------------------------------
ERROR_OPEN = "open_failed"
ERROR_EMPTY_FILE = "empty_file"
ERROR_NOT_AN_ARCHIVE = "not_an_archive"
ERROR_BAD_GZIP = "bad_gzip"
ERROR_TRUNCATED = "truncated_record"
ERROR_BAD_HEADER = "bad_record_header"
ERROR_BAD_LENGTH = "bad_content_length"
ERROR_LENGTH_MISMATCH = "content_length_mismatch"
ERROR_DIGEST = "digest_mismatch"
ERROR_DUPLICATE_RECORD = "duplicate_record"
ERROR_PARSE = "record_parse_failed"
ERROR_STEP = "step_failed"
ERROR_SCORING = "scoring_failed"

_QUALITY_RULES = {r.reason: r for p in PRESETS.values() for r in p.rules}

REASONS: tuple[Reason, ...] = (
    _rejection(REASON_BAD_HTTP, EXTRACT, "no HTTP status line, or a status that is not a 3-digit code"),
    _rejection(REASON_BAD_TRANSFER_ENCODING, EXTRACT, "chunked framing that does not parse"),
    _rejection(REASON_BAD_CONTENT_ENCODING, EXTRACT, "a gzip, deflate or br body that does not decompress"),
    _rejection(REASON_UNSUPPORTED_CONTENT_ENCODING, EXTRACT, "compress, zstd, or br without brotli installed"),
    _rejection(REASON_PAYLOAD_TOO_LARGE, EXTRACT, "larger than --max-payload-bytes after HTTP decoding"),
    _rejection(REASON_NON_TEXT, EXTRACT, "a payload that is neither HTML nor plain text"),
    _rejection(REASON_HTTP_STATUS, CONTENT, "not a successful capture (HTTP status outside 2xx)"),
    _rejection(REASON_EMPTY_TEXT, CONTENT, "no text after extraction"),
    _rejection(REASON_LANGUAGE, LANGUAGE, "language not in --languages, or its score below --min-language-score",
               POLICY),
    _rejection(REASON_MIN_WORDS, QUALITY, "fewer words than --min-words", POLICY),
    *(_rejection(code, QUALITY, f"quality rule: {rule.label}", POLICY) for code, rule in _QUALITY_RULES.items()),
    _rejection(REASON_DUPLICATE_EXACT, DEDUP, "the same normalised text as an earlier capture (duplicate_of)"),
    _rejection(REASON_DUPLICATE_NEAR, DEDUP, "a near copy (MinHash) of an earlier capture (duplicate_of)"),
    _rejection(REASON_MACHINE_GENERATED, DECISION, "post-cutoff text the deciding detector flags at the run's "
               "threshold", POLICY),
    _rejection(REASON_UNCERTAIN, DECISION, "no usable detector score, with --on-uncertain reject", POLICY),
    _error(ERROR_OPEN, READ, "an input that cannot be opened or listed, or a pattern that matches no file"),
    _error(ERROR_EMPTY_FILE, READ, "an empty file, or empty after decompression"),
    _error(ERROR_NOT_AN_ARCHIVE, READ, "an input that is not WARC, WET or ARC (CDX, HTML, text...)"),
    _error(ERROR_BAD_GZIP, READ, "CRC or length check, deflate data error, member cut short, bytes between members"),
    _error(ERROR_TRUNCATED, READ, "the file or member ends before the header or the Content-Length does"),
    _error(ERROR_BAD_HEADER, READ, "bytes where a record header should be that are not one"),
    _error(ERROR_BAD_LENGTH, READ, "Content-Length missing, not a number, or negative"),
    _error(ERROR_LENGTH_MISMATCH, READ, "the block does not end where Content-Length says"),
    _error(ERROR_DIGEST, READ, "WARC-Block-Digest or WARC-Payload-Digest does not match the bytes"),
    _error(ERROR_DUPLICATE_RECORD, READ, "a WARC-Record-ID already read in the same file"),
    _error(ERROR_PARSE, (READ, EXTRACT), "a record the reader or the extractor failed on"),
    _error(ERROR_STEP, (CONTENT, LANGUAGE, QUALITY), "a per-document step (content policy, language, quality) raised"),
    _error(ERROR_SCORING, SCORE, "a detector batch raised"),
)
REJECT_REASONS: dict[str, Reason] = {r.code: r for r in REASONS if r.outcome == REJECTED}
ERROR_REASONS: dict[str, Reason] = {r.code: r for r in REASONS if r.outcome == ERROR}
REJECT_ORDER: tuple[str, ...] = tuple(sorted(REJECT_REASONS, key=lambda c: STAGES.index(REJECT_REASONS[c].stage)))
# Reasons `lowbg decide` can re-make from stored values, and those it keeps as they were.
REDECIDABLE = frozenset(c for c, r in REJECT_REASONS.items() if r.redecide == POLICY)


class UnknownReason(ValueError):
    """A reason code that is not in the registry (a bug where it is raised: every stage uses registered codes)."""


def check_reason(code: str, outcome: str) -> str:
    """``code`` itself, or :class:`UnknownReason` when it is not a registered code of this outcome."""
    if code not in (REJECT_REASONS if outcome == REJECTED else ERROR_REASONS):
        raise UnknownReason(f"{code!r} is not a registered {outcome} reason (pipeline/reasons.py)")
    return code


def unknown_reasons(rejected: Iterable[str], errors: Iterable[str]) -> list[str]:
    """The codes among a run's counts that the registry does not know, as ``outcome:code``."""
    return sorted([f"rejected:{c}" for c in rejected if c not in REJECT_REASONS]
                  + [f"error:{c}" for c in errors if c not in ERROR_REASONS])


def known_reasons() -> tuple[frozenset[str], frozenset[str]]:
    """(reject codes, error codes): what :func:`schemas.run.check_manifest` is given to check a run's counts."""
    return frozenset(REJECT_REASONS), frozenset(ERROR_REASONS)
