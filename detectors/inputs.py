"""Reading texts and labelled sets, with errors that name the file and line, and source-document grouping."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.hashing import unit_fraction

HUMAN, MACHINE = 0, 1
_LABELS = {"human": HUMAN, "original": HUMAN, "real": HUMAN, "0": HUMAN, "false": HUMAN,
           "machine": MACHINE, "sampled": MACHINE, "ai": MACHINE, "llm": MACHINE, "generated": MACHINE,
           "fake": MACHINE, "1": MACHINE, "true": MACHINE}


class InputError(ValueError):
    """Bad input, with the file and (1-based) line it came from."""


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: int  # HUMAN (0) or MACHINE (1)
    doc: str  # source-document key: texts with the same key never go to different sides of a split
    source: str  # file it came from


def doc_key(text: str) -> str:
    """Key of a text's source document: its first 40 characters, whitespace-collapsed and case-folded.

    In the fast-detect-gpt sets the machine text continues the first 30 tokens of the human text, and the same
    human document reappears (differently truncated) across generators and across exp_main / exp_gpt3to4; all
    those copies share their opening, so splitting on this key keeps a document and its continuations together.
    """
    return " ".join(text.split())[:40].casefold()


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; InputError naming the line on bad UTF-8 or JSON."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{path}: line {lineno} is not valid UTF-8 ({e.reason} at byte {e.start}: "
                                 f"{raw[e.start:e.start + 4]!r})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: line {lineno} is not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}: line {lineno} is not a JSON object")
            yield lineno, obj


def read_texts(path: str | os.PathLike, field: str = "text") -> Iterator[tuple[int, dict, str]]:
    """(line number, object, text) for a JSONL file with a string `field` on every line."""
    for lineno, obj in read_jsonl(path):
        text = obj.get(field)
        if not isinstance(text, str):
            raise InputError(f"{path}: line {lineno} has no string field {field!r}")
        yield lineno, obj, text


def _label(value, path, lineno) -> int:
    key = str(value).strip().lower()
    if key not in _LABELS:
        raise InputError(f"{path}: line {lineno}: unknown label {value!r} (use human/machine or 0/1)")
    return _LABELS[key]


def load_labelled(path: str | os.PathLike) -> list[LabelledText]:
    """Labelled texts from fast-detect-gpt's `{"original": [...], "sampled": [...]}` JSON or from JSONL lines with
    `text` and `label` (human/machine, 0/1) and optionally `doc` (source-document id; default doc_key(text))."""
    p = Path(path)
    source = p.name
    with open(p, "rb") as f:
        head = f.read(1 << 16).lstrip()
    if head.startswith(b"{") and b'"original"' in head and p.suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path}: not a valid UTF-8 JSON file ({e})") from None
        if not isinstance(data.get("original"), list) or not isinstance(data.get("sampled"), list):
            raise InputError(f"{path}: expected {{'original': [...], 'sampled': [...]}}")
        items = []
        for human, machine in zip(data["original"], data["sampled"]):
            key = doc_key(human)  # a pair shares its human text's document
            items.append(LabelledText(human, HUMAN, key, source))
            items.append(LabelledText(machine, MACHINE, key, source))
        return items
    items = []
    for lineno, obj, text in read_texts(p):
        if "label" not in obj:
            raise InputError(f"{path}: line {lineno} has no 'label'")
        doc = obj.get("doc", obj.get("doc_id"))
        items.append(LabelledText(text, _label(obj["label"], path, lineno),
                                  str(doc) if doc is not None else doc_key(text), source))
    return items


def in_holdout(doc: str, fraction: float, seed: int = 0) -> bool:
    """Deterministic document-level split: a document is held out iff its salted hash falls below `fraction`."""
    return unit_fraction(doc, salt=f"{seed}:", algorithm="sha256") < fraction
