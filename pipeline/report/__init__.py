"""`lowbg report`: what a run did, and how much of its post-cutoff crawl is machine-written.

    lowbg report RUN                          # RUN/report/index.html, report.md, report.json
    lowbg report RUN --baseline PRE_RUN       # human reference distributions from another run's pre-cutoff pages
    lowbg report RUN_A RUN_B ... --output DIR # runs side by side
    lowbg report RUN --tpr binoculars=0.83,0.79,0.87   # adds the TPR-corrected estimate

Reads each run's ``manifest.json`` and ``stats/`` only (never a shard), through Beam's FileSystems, and refuses a
run that is not finished (no valid manifest, see :mod:`schemas.run`) unless ``--allow-incomplete``. Writes one
self-contained HTML file (inline CSS, PNG figures as data URIs, no script, no network), its Markdown twin and
the numbers as JSON, each atomically. Contents and formats: docs/report.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

from common.cli import ArgumentParser, positive_int, run_command
from common.flags import add_flag
from pipeline.layout import REPORT_DIR, join, write_bytes
from pipeline.report.analysis import MIN_GROUP, TOP_HOSTS, analyse, compare
from pipeline.report.load import RunData, load_run
from pipeline.report.render import Doc, html_page, markdown_page, render_compare, render_run

REPORT_FORMAT = "lowbackground.report/1"
FILES = ("index.html", "report.md", "report.json")


def parse_tpr(value: str) -> tuple[str | None, float, tuple[float, float] | None]:
    """``[DETECTOR=]TPR[,LOW,HIGH]`` -> (detector or None, tpr, (low, high) or None)."""
    name, _, rest = value.rpartition("=")
    try:
        parts = [float(x) for x in rest.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected [DETECTOR=]TPR[,LOW,HIGH], got {value!r}") from exc
    if len(parts) not in (1, 3) or not all(0 < x <= 1 for x in parts):
        raise argparse.ArgumentTypeError(f"expected a TPR in (0, 1] and optionally its interval: {value!r}")
    ci = (parts[1], parts[2]) if len(parts) == 3 else None
    if ci and not ci[0] <= parts[0] <= ci[1]:
        raise argparse.ArgumentTypeError(f"the TPR must lie within its interval: {value!r}")
    return (name or None), parts[0], ci


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="lowbg report", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN", help="output folder(s) of `lowbg curate` or `lowbg decide`")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="where to write the report (default RUN/report; required with several runs)")
    p.add_argument("--baseline", default=None, metavar="PRE_RUN",
                   help="a run whose pre-cutoff documents give the human reference (for post-cutoff-only crawls)")
    p.add_argument("--tpr", action="append", type=parse_tpr, default=[], metavar="[DETECTOR=]TPR[,LOW,HIGH]",
                   help="the detector's true-positive rate at this run's threshold (e.g. from lowbg detect "
                   "evaluate), with its 95%% interval; without DETECTOR it applies to the headline detector")
    p.add_argument("--min-group", type=positive_int, default=MIN_GROUP,
                   help=f"fewest documents for an estimate in a group (default {MIN_GROUP})")
    p.add_argument("--top-hosts", type=positive_int, default=TOP_HOSTS,
                   help=f"hosts in the share table (default {TOP_HOSTS})")
    p.add_argument("--note", default=None, metavar="TEXT",
                   help="a sentence shown at the top of the report (what this run is, e.g. a constructed test crawl)")
    add_flag(p, "--allow-incomplete")
    return p


def write_report(folder: str, html_text: str, md_text: str, data: dict) -> list[str]:
    payload = {"format": REPORT_FORMAT, "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               **data}
    return [write_bytes(join(folder, "report.json"), json.dumps(payload, indent=1, default=str,
                                                                allow_nan=False).encode()),
            write_bytes(join(folder, "report.md"), md_text.encode()),
            write_bytes(join(folder, "index.html"), html_text.encode())]


def report(runs: list[str], output: str | None = None, baseline: str | None = None, tprs: dict | None = None,
           min_group: int = MIN_GROUP, top_hosts: int = TOP_HOSTS, allow_incomplete: bool = False,
           note: str | None = None) -> list[str]:
    """Write the report of one run (or a comparison of several); returns the paths written."""
    if len(runs) > 1 and not output:
        raise ValueError("several runs need --output DIR (where the side-by-side report goes)")
    loaded: list[RunData] = [load_run(r, allow_incomplete) for r in runs]
    base = load_run(baseline, allow_incomplete) if baseline else None
    analyses = [analyse(r, base, tprs, min_group, top_hosts) for r in loaded]
    for a in analyses:
        a["about"] = note
    doc = Doc()
    if len(loaded) == 1:
        render_run(doc, analyses[0], loaded[0], base or loaded[0])
        title = f"lowbackground report: {analyses[0]['label']}"
        data = analyses[0]
    else:
        comparison = compare(analyses)
        comparison["about"] = note
        render_compare(doc, comparison)
        title = f"lowbackground: {len(loaded)} runs side by side"
        data = {"comparison": comparison, "runs": analyses}
    folder = output or join(runs[0], REPORT_DIR)
    return write_report(folder, html_page(doc, title), markdown_page(doc), _json_safe(data))


def _json_safe(value):
    """Report JSON without NaN/Infinity (not JSON): non-finite numbers become null."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.runs) > 1 and not args.output:
        parser.error("several runs need --output DIR")
    tprs = {}
    for name, value, ci in args.tpr:
        tprs[name] = (value, ci)
    paths = report(args.runs, args.output, args.baseline, tprs, args.min_group, args.top_hosts,
                   args.allow_incomplete, args.note)
    for path in paths:
        print(path)
    return 0


def main(argv: list[str]) -> int:
    """``lowbg report RUN ...``: one line and exit 2 on bad usage or a run that is not finished (see
    :mod:`common.cli`)."""
    return run_command("lowbg report", lambda: _main(argv))
