"""Capture-time provenance: was this copy captured before the cutoff?

The deciding evidence is the record's own capture time (WARC-Date; for WET/WAT conversion records that is the
original capture, not the extraction run). When it is missing or unparseable, the crawl's capture window decides
if it lies wholly on one side of the cutoff (CC-MAIN-2022-49 straddles ChatGPT's release, so its records need
their own dates). HTTP ``Date`` and ``Last-Modified`` are recorded as weak evidence and never override either.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re

from pipeline.crawls import Crawl

PRE_CUTOFF = "pre_cutoff"
POST_CUTOFF = "post_cutoff"
UNKNOWN = "unknown"
DEFAULT_CUTOFF = dt.datetime(2022, 11, 30, tzinfo=dt.UTC)  # ChatGPT's public release


def captured_pre_cutoff(doc) -> bool:
    """This copy was captured before the cutoff (its ``provenance``, set by :func:`classify` from its own capture
    time or its crawl's window). What dedup takes as pre-cutoff evidence and calibration as human text."""
    return doc.provenance == PRE_CUTOFF


def human_era(doc) -> bool:
    """The text is known to predate the cutoff: captured before it, or the same content was seen before it
    (``content_provenance``: a pre-cutoff copy in the run, or a match in the reference index). The machine-text
    decision and the language-model detectors leave such documents alone."""
    return doc.provenance == PRE_CUTOFF or doc.content_provenance == PRE_CUTOFF

RULE_WARC_DATE = "warc_date"
RULE_CRAWL_WINDOW = "crawl_window"
RULE_NO_CAPTURE_TIME = "no_capture_time"

# W3C-DTF as the WARC standard requires, at any of its precisions, with optional fractional seconds.
_W3C_DTF = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2}))?)?)?$"
)
_EARLIEST_PLAUSIBLE = dt.datetime(1991, 1, 1, tzinfo=dt.UTC)  # the first web page


class DateError(ValueError):
    pass


def parse_warc_date(raw: str | None, now: dt.datetime | None = None) -> dt.datetime:
    """Parse a WARC-Date strictly; raise DateError with the reason when it cannot be trusted."""
    if raw is None or not raw.strip():
        raise DateError("WARC-Date missing")
    text = raw.strip()
    m = _W3C_DTF.match(text)
    if not m:
        raise DateError(f"WARC-Date not W3C-DTF: {text!r}")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    try:
        value = dt.datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                            int(second or 0), int((frac or "0").ljust(6, "0")[:6]))
    except ValueError as exc:
        raise DateError(f"WARC-Date out of range: {text!r} ({exc})") from exc
    offset = dt.timedelta(0)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    value = (value - offset).replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    if not _EARLIEST_PLAUSIBLE <= value <= now + dt.timedelta(days=1):
        raise DateError(f"WARC-Date implausible: {text!r}")
    return value


def parse_http_date(raw: str | None) -> dt.datetime | None:
    """Parse an HTTP date (RFC 9110, with the obsolete forms); None when absent or invalid (weak evidence)."""
    if not raw:
        return None
    try:
        value = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def classify(warc_date: dt.datetime | None, date_error: str | None, crawl: Crawl | None,
             cutoff: dt.datetime) -> tuple[str, str, str | None]:
    """Return (provenance, rule, detail) for one record."""
    if warc_date is not None:
        label = PRE_CUTOFF if warc_date < cutoff else POST_CUTOFF
        detail = None
        if crawl and crawl.start and crawl.end and not (
            crawl.start - dt.timedelta(days=1) <= warc_date <= crawl.end + dt.timedelta(days=1)
        ):
            detail = f"WARC-Date outside the {crawl.id} capture window"
        return label, RULE_WARC_DATE, detail
    if crawl and crawl.start and crawl.end:
        if crawl.end < cutoff:
            return PRE_CUTOFF, RULE_CRAWL_WINDOW, f"{date_error}; {crawl.id} ended before the cutoff"
        if crawl.start >= cutoff:
            return POST_CUTOFF, RULE_CRAWL_WINDOW, f"{date_error}; {crawl.id} started after the cutoff"
        return UNKNOWN, RULE_NO_CAPTURE_TIME, f"{date_error}; {crawl.id} capture window straddles the cutoff"
    return UNKNOWN, RULE_NO_CAPTURE_TIME, date_error
