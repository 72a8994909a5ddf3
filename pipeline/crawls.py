"""Which Common Crawl crawl a file belongs to, and that crawl's capture window.

Sources, strongest first: the ``isPartOf`` field of the file's warcinfo record, the ``crawl-data/CC-MAIN-YYYY-WW/``
part of its path, then the capture timestamp in a Common Crawl file name, matched against the crawl table. Both
file-name schemes are understood: ``CC-MAIN-20200808165417-20200808195417-00395.warc.gz`` (since 2016-50) and the
older ``CC-MAIN-20140820021320-00000-ip-10-180-136-8.ec2.internal.warc.gz``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources

_CRAWL_IN_PATH = re.compile(r"(?:^|/)(CC-MAIN-\d{4}-\d{2}|CC-MAIN-\d{4}-\d{4}|CC-MAIN-\d{4})(?:/|$)")
_CRAWL_ID = re.compile(r"^CC-MAIN-\d{4}(?:-\d{2}|-\d{4})?$")
# CC-MAIN-<segment start>-<segment end>-<serial> (modern) or CC-MAIN-<segment start>-<serial>-<host> (pre-2017).
_CC_FILE_NAME = re.compile(r"CC-MAIN-(\d{14})-(?:\d{14}-)?\d{5}")


@dataclass(frozen=True)
class Crawl:
    id: str
    start: dt.datetime | None
    end: dt.datetime | None


def _utc(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


@functools.cache
def crawl_table() -> dict[str, Crawl]:
    """Common Crawl's crawls by id, from the bundled copy of collinfo.json."""
    text = resources.files("pipeline").joinpath("data/cc_crawls.jsonl").read_text(encoding="utf-8")
    table = {}
    for line in text.splitlines():
        row = json.loads(line)
        table[row["id"]] = Crawl(row["id"], _utc(row["from"]), _utc(row["to"]))
    return table


def crawl_by_id(crawl_id: str | None) -> Crawl | None:
    if not crawl_id:
        return None
    known = crawl_table().get(crawl_id)
    if known:
        return known
    return Crawl(crawl_id, None, None) if _CRAWL_ID.match(crawl_id) else None


def crawl_from_is_part_of(is_part_of: str | None) -> Crawl | None:
    """The crawl named by a warcinfo ``isPartOf`` (Common Crawl writes the bare crawl id there)."""
    if not is_part_of:
        return None
    return crawl_by_id(is_part_of.strip())


def crawl_from_path(path: str) -> tuple[Crawl | None, str | None]:
    """The crawl a Common Crawl path or file name belongs to, with the rule that found it."""
    match = _CRAWL_IN_PATH.search(path)
    if match:
        crawl = crawl_by_id(match.group(1))
        if crawl:
            return crawl, "path"
    name = path.rsplit("/", 1)[-1]
    match = _CC_FILE_NAME.search(name)
    if match:
        stamp = dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
        crawl = crawl_containing(stamp)
        if crawl:
            return crawl, "file_name"
    return None, None


def crawl_containing(moment: dt.datetime, slack: dt.timedelta = dt.timedelta(days=1)) -> Crawl | None:
    """The crawl whose capture window (widened by ``slack``) contains ``moment``."""
    for crawl in crawl_table().values():
        if crawl.start and crawl.end and crawl.start - slack <= moment <= crawl.end + slack:
            return crawl
    return None
