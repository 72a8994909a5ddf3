"""Write (or --check) deploy/dataflow/metadata.json, the Flex Template spec, from the `lowbg curate` parser.

    python deploy/dataflow/make_metadata.py          # rewrite metadata.json after changing the CLI
    python deploy/dataflow/make_metadata.py --check  # exit 1 when metadata.json is stale

tests/deploy checks the committed file against the parser, so adding a CLI option without regenerating fails CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # launcher.py sits next to this file

from launcher import LIST_SEPARATOR, TemplateParam, curate_parameters  # noqa: E402

METADATA_PATH = Path(__file__).resolve().parent / "metadata.json"
TEMPLATE_NAME = "lowbg curate"
TEMPLATE_DESCRIPTION = (
    "Curate human-written documents from Common Crawl WARC/WET files into Parquet shards with provenance "
    "(lowbackground). Each parameter is the `lowbg curate` option of the same name with '-' written '_'."
)


def _show(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _label(p: TemplateParam) -> str:
    return p.flag.lstrip("-").replace("-", " ").capitalize()


def _help(p: TemplateParam) -> str:
    text = p.help or f"Same as `lowbg curate {p.flag}`."
    text = text[0].upper() + text[1:]
    if not text.endswith("."):
        text += "."
    if p.kind == "list":
        text += f" Several values: separate them with '{LIST_SEPARATOR}'."
    elif p.kind == "switch":
        text += " true or false (default false)."
    if p.choices:
        text += " One of: " + ", ".join(p.choices) + "."
    if p.kind != "switch" and p.default not in (None, "", [], ()) and "default" not in p.help.lower():
        text += f" Default: {_show(p.default)}."
    return text


def _regexes(p: TemplateParam) -> list[str]:
    # Checked by Dataflow before the launcher VM starts: a typo fails in seconds, not minutes.
    if p.kind == "switch":
        return ["^(true|false)$"]
    if p.choices:
        return ["^(" + "|".join(p.choices) + ")$"]
    return []


def parameter_metadata(p: TemplateParam) -> dict:
    entry: dict = {"name": p.name, "label": _label(p), "helpText": _help(p), "isOptional": not p.required}
    regexes = _regexes(p)
    if regexes:
        entry["regexes"] = regexes
    return entry


def build_metadata(params: list[TemplateParam] | None = None) -> dict:
    params = curate_parameters() if params is None else params
    return {
        "name": TEMPLATE_NAME,
        "description": TEMPLATE_DESCRIPTION,
        "parameters": [parameter_metadata(p) for p in params],
    }


def render(metadata: dict) -> str:
    return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when metadata.json differs from the parser")
    args = ap.parse_args(argv)
    text = render(build_metadata())
    if args.check:
        current = METADATA_PATH.read_text(encoding="utf-8") if METADATA_PATH.exists() else ""
        if current != text:
            print(f"{METADATA_PATH} is stale: run python deploy/dataflow/make_metadata.py", file=sys.stderr)
            return 1
        return 0
    METADATA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {METADATA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
