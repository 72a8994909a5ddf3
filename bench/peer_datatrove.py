"""Peer benchmark: lowbackground against DataTrove on the same corpus, in the same run.

    python bench/peer_datatrove.py [--records 8000] [--files 4] [--skip-without-index] [--quality-only]

DataTrove (``PEER_VERSION``, pinned with the packages its steps need) is installed into a virtualenv of its own,
outside the repository and not a dependency of this project: ``$LOWBG_PEER_VENV``, else
``$XDG_CACHE_HOME/lowbackground/peer-datatrove-<version>`` (``~/.cache/...``), created on first use and reused
while its pinned requirements are unchanged. This file runs twice: under the project's Python (the driver and our
side) and under the peer's (``--peer-side``: imports only DataTrove, its dependencies and the standard library).
``--skip-without-index`` (what ``make bench`` passes) prints why and exits 0 when the venv is missing and no
package index answers.

Both sides read the corpus of ``bench/ingest.py`` (real pages of the bundled fixtures, words reshuffled, every
record labelled ``charset=utf-8`` as many servers do whatever the bytes are), one process, one worker each:

1. read + extract: ``lowbg curate`` spine (``--dedup none --skip-language-id --detectors none``) vs DataTrove's
   ``WarcReader`` -> an extractor running resiliparse with our exact parameters (DataTrove runs extractors in its
   sandbox subprocess, as it always does) -> ``ParquetWriter``;
2. + language ID + Gopher: ``--languages en --quality-preset gopher`` vs ``LanguageFilter(en, 0.65)`` with the
   same lid.176 model (the bundled one, handed to DataTrove's fastText wrapper) -> ``GopherQualityFilter`` ->
   ``GopherRepetitionFilter`` (DataTrove tokenises with spaCy), removed documents to exclusion writers as our
   rejected shards;
3. + MinHash dedup: ``--dedup near`` (exact, then MinHash 128 permutations at Jaccard 0.8, 5-word shingles, in
   the same Beam job) vs stage 2 writing its output, then DataTrove's four MinHash stages (signatures, buckets,
   clusters, filter; its default 14 x 8 hashes, 5-gram shingles of normalised words).

Each stage prints records/s (records in / wall time, start-up included) and CPU time per record (user + system,
of the process and the children it waited for; steadier than wall time on a shared machine) for both sides,
the ratios, peak RSS of the largest process of each run (``wait4``), kept documents, and for stages 2-3 how the
kept sets differ and why (per document, by WARC-Record-ID: our reject reason against DataTrove's filter). The
plain warcio + resiliparse loop of bench/ingest.py is measured in the same run as the floor. ``--quality-only``
runs only the rule comparison: DataTrove's Gopher, C4 and FineWeb filters and our presets on the same extracted
texts (the WARC fixtures' pages, and a sample of the corpus), decision by decision, with CPU time per text.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_VERSION = "0.10.1"
PEER_REQUIREMENTS = [
    f"datatrove[io,processing]=={PEER_VERSION}",
    "spacy==3.8.18",  # DataTrove's English word tokenizer (spacy.blank("en"): no model download)
    "numpy==2.4.6",
    "fasttext-numpy2-wheel==0.9.2",  # what datatrove[processing] installs for its LanguageFilter
]
# Packages whose version must equal ours (same extraction, same reader): filled in from this environment.
SAME_AS_OURS = ("resiliparse", "warcio")
LID_MODEL = ROOT / "pipeline" / "data" / "lid.176.ftz"
EXTRACT_PARAMS = dict(main_content=True, alt_texts=False, links=False, form_fields=False, noscript=False,
                      list_bullets=True, preserve_formatting=True)  # pipeline/extract.py's html_to_text
MARKER = "lowbg-peer-requirements.txt"


# ------------------------------------------------------------------------------------------------ peer side


def _uuid(record_id: str) -> str:
    return record_id.strip("<>").removeprefix("urn:uuid:").lower()


def peer_pipeline(stage: int, corpus: str, out: str, model: str) -> None:
    """Run stage 1, 2 or 3 with DataTrove (called under the peer's Python)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors.base import BaseExtractor
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter, LanguageFilter
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.lid import FT176LID

    class Resiliparse(BaseExtractor):
        name = "resiliparse (lowbackground's parameters)"

        def __init__(self, timeout: float = 1.0):
            super().__init__(timeout)

        def extract(self, text: str) -> str:
            from resiliparse.extract.html2text import extract_plain_text
            return extract_plain_text(text, **EXTRACT_PARAMS)

    class BundledLid(FT176LID):  # the model file we ship, instead of a download from fbaipublicfiles
        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText
                self._model = _FastText(model)
            return self._model

    def removed(name: str) -> JsonlWriter:
        return JsonlWriter(f"{out}/removed/{name}")

    steps = [WarcReader(corpus, glob_pattern="*.warc.gz"), Resiliparse()]
    if stage >= 2:
        language = LanguageFilter(languages=["en"], language_threshold=0.65, exclusion_writer=removed("language"))
        language.model = BundledLid(["en"])
        steps += [language, GopherQualityFilter(exclusion_writer=removed("gopher_quality")),
                  GopherRepetitionFilter(exclusion_writer=removed("gopher_repetition"))]
    steps.append(ParquetWriter(f"{out}/kept"))
    LocalPipelineExecutor(steps, tasks=1, workers=1, logging_dir=f"{out}/logs/main").run()
    if stage < 3:
        return
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.readers import ParquetReader
    config = MinhashConfig()
    runs = [
        [ParquetReader(f"{out}/kept"), MinhashDedupSignature(f"{out}/mh/sigs", config=config)],
        [MinhashDedupBuckets(f"{out}/mh/sigs", f"{out}/mh/buckets", config=config)],
        [MinhashDedupCluster(f"{out}/mh/buckets", f"{out}/mh/remove_ids", config=config)],
        [ParquetReader(f"{out}/kept"), MinhashDedupFilter(f"{out}/mh/remove_ids", exclusion_writer=removed("minhash")),
         ParquetWriter(f"{out}/deduped")],
    ]
    for i, steps in enumerate(runs):
        tasks = config.num_buckets if i == 1 else 1  # buckets are processed one task per bucket, in this process
        LocalPipelineExecutor(steps, tasks=tasks, workers=1, logging_dir=f"{out}/logs/minhash{i}").run()


def peer_quality(texts_path: str, out_path: str) -> None:
    """DataTrove's decisions on the given texts: each filter alone, C4 as FineWeb ran it, and FineWeb's chain."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    def verdict(step, text: str) -> tuple[str | None, str]:
        doc = Document(text=text, id="x")
        result = step.filter(doc)
        ok = result if isinstance(result, bool) else result[0]
        return (None if ok else (result[1] if isinstance(result, tuple) else "dropped")), doc.text

    quality, repetition = GopherQualityFilter(), GopherRepetitionFilter()
    c4, c4_fineweb, fineweb = C4QualityFilter(), C4QualityFilter(filter_no_terminal_punct=False), FineWebQualityFilter()
    verdict(quality, "warm up the tokenizer")
    results, seconds = [], Counter()

    def timed_verdict(key: str, step, text: str) -> tuple[str | None, str]:
        start = time.process_time()
        out = verdict(step, text)
        seconds[key] += time.process_time() - start
        return out

    with open(texts_path, encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            text = item["text"]
            q = timed_verdict("gopher-quality", quality, text)[0]
            r = timed_verdict("gopher-repetition", repetition, text)[0]
            c = timed_verdict("c4", c4, text)[0]
            cf, kept = timed_verdict("fineweb", c4_fineweb, text)
            fw = timed_verdict("fineweb", fineweb, kept)[0] if kept.strip() else "empty"
            results.append({"id": item["id"], "gopher-quality": q, "gopher-repetition": r, "gopher": q or r,
                            "c4": c, "fineweb": r or q or cf or fw})
    # Every filter runs on every text here (no early exit): the time a preset costs when all of its rules run.
    seconds["gopher"] = seconds["gopher-quality"] + seconds["gopher-repetition"]
    seconds["fineweb"] += seconds["gopher"]
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"results": results, "seconds": seconds}, fh)


# ------------------------------------------------------------------------------------------ the peer's venv


def venv_dir() -> Path:
    if os.environ.get("LOWBG_PEER_VENV"):
        return Path(os.environ["LOWBG_PEER_VENV"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "lowbackground" / f"peer-datatrove-{PEER_VERSION}"


def requirements() -> list[str]:
    from importlib.metadata import version
    return PEER_REQUIREMENTS + [f"{name}=={version(name)}" for name in SAME_AS_OURS]


def index_reachable(python: str) -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        try:
            probe = subprocess.run([python, "-m", "pip", "download", "--no-deps", "--quiet", "-d", scratch,
                                    f"datatrove=={PEER_VERSION}"], capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            return False
    return probe.returncode == 0


def ensure_venv(skip_without_index: bool) -> Path | None:
    """The peer's Python, created and filled on first use; None when it cannot be (and we may skip)."""
    folder = venv_dir()
    python = folder / "bin" / "python"
    wanted = "\n".join(requirements()) + "\n"
    marker = folder / MARKER
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    if skip_without_index and not index_reachable(sys.executable):
        return None
    print(f"installing DataTrove {PEER_VERSION} into {folder} (once; reused by later runs)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements()], check=True)
    marker.write_text(wanted)
    return python


# ---------------------------------------------------------------------------------------------- our side


def timed(argv: list[str], log: Path, cwd: Path = ROOT) -> tuple[float, float, int]:
    """Run a command; (wall seconds, CPU seconds, peak RSS in bytes of its largest process), from wait4: the
    child and the descendants it waited for (DataTrove's extractor sandbox, Beam's worker threads)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {proc.returncode}; log {log}:\n{tail}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # Linux reports KiB


OUR_STAGES = {
    1: ["--dedup", "none", "--skip-language-id"],
    2: ["--dedup", "none", "--languages", "en", "--min-language-score", "0.65", "--quality-preset", "gopher"],
    3: ["--dedup", "near", "--languages", "en", "--min-language-score", "0.65", "--quality-preset", "gopher"],
}
STAGE_NAMES = {1: "read + extract", 2: "+ language ID + Gopher", 3: "+ MinHash dedup"}


def run_ours(stage: int, corpus: Path, out: Path) -> tuple[float, float, int]:
    argv = [sys.executable, "-m", "pipeline.cli", "curate", "--input", str(corpus / "*.warc.gz"), "--output",
            str(out), "--overwrite", "--detectors", "none", "--direct_running_mode=in_memory",
            "--direct_num_workers=1", *OUR_STAGES[stage]]
    return timed(argv, out.parent / f"ours-{stage}.log")


def run_peer(python: Path, stage: int, corpus: Path, out: Path) -> tuple[float, float, int]:
    argv = [str(python), str(Path(__file__).resolve()), "--peer-side", "pipeline", "--stage", str(stage),
            "--corpus", str(corpus), "--out", str(out), "--model", str(LID_MODEL)]
    return timed(argv, out.parent / f"peer-{stage}.log", cwd=out.parent)


def our_outcomes(out: Path) -> dict[str, str]:
    """document id -> 'kept' or the reject reason, from the shards."""
    import schemas
    outcome = {}
    for kind in ("curated", "rejected"):
        for path in sorted((out / kind).glob("*.parquet")):
            table = schemas.read_shard(str(path), kind)
            reasons = table.column("reason").to_pylist() if kind == "rejected" else None
            for i, doc_id in enumerate(table.column("id").to_pylist()):
                outcome[doc_id] = "kept" if reasons is None else reasons[i]
    return outcome


def peer_outcomes(out: Path, final: str) -> dict[str, str]:
    import pyarrow.parquet as pq
    outcome = {}
    for folder in sorted((out / "removed").glob("*")):
        for path in folder.glob("*.jsonl.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    doc = json.loads(line)
                    reason = doc.get("metadata", {}).get("filter_reason") or folder.name
                    outcome[_uuid(doc["id"])] = f"{folder.name}:{reason}" if reason != folder.name else folder.name
    for path in sorted((out / final).glob("*.parquet")):
        for doc_id in pq.read_table(path, columns=["id"]).column("id").to_pylist():
            outcome[_uuid(doc_id)] = "kept"
    return outcome


def compare(ours: dict[str, str], theirs: dict[str, str], record_ids: set[str], top: int = 8) -> None:
    both = sum(1 for i in record_ids if ours.get(i) == "kept" and theirs.get(i) == "kept")
    only_ours = Counter(theirs.get(i, "its reader or extractor (MIME sniffed by libmagic, undecodable, empty text)")
                        for i in record_ids if ours.get(i) == "kept" and theirs.get(i) != "kept")
    only_theirs = Counter(ours.get(i, "(missing)") for i in record_ids
                          if theirs.get(i) == "kept" and ours.get(i) != "kept")
    print(f"    kept by both {both}; only by us {sum(only_ours.values())}; only by DataTrove "
          f"{sum(only_theirs.values())}")
    for label, counts in (("kept by us, dropped by DataTrove at", only_ours),
                          ("kept by DataTrove, rejected by us as", only_theirs)):
        for reason, n in counts.most_common(top):
            print(f"      {label} {reason}: {n}")


def record_ids(paths: list[Path]) -> set[str]:
    from warcio.archiveiterator import ArchiveIterator
    ids = set()
    for path in paths:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "response":
                    ids.add(_uuid(record.rec_headers.get_header("WARC-Record-ID")))
    return ids


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def benchmark(python: Path, args) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import build_corpus, plain_loop
    work = Path(tempfile.mkdtemp(prefix="lowbg-peer-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        paths = build_corpus(corpus, args.records, args.files)
        ids = record_ids(paths)
        print(f"corpus: {args.records} HTML records in {args.files} files "
              f"({sum(p.stat().st_size for p in paths) / 1e6:.1f} MB gzip); load average before: {load()}")
        start, cpu = time.perf_counter(), time.process_time()
        n_plain = plain_loop(paths)
        floor, floor_cpu = args.records / (time.perf_counter() - start), time.process_time() - cpu
        print(f"plain warcio + resiliparse loop (the floor): {floor:.0f} records/s, "
              f"{floor_cpu / args.records * 1e3:.2f} CPU-ms/record ({n_plain} documents)")
        for stage in (1, 2, 3):
            ours_out, peer_out = work / f"ours-{stage}", work / f"peer-{stage}"
            ours_s, ours_cpu, ours_rss = run_ours(stage, corpus, ours_out)
            peer_s, peer_cpu, peer_rss = run_peer(python, stage, corpus, peer_out)
            ours_rate, peer_rate = args.records / ours_s, args.records / peer_s
            ours_kept = our_outcomes(ours_out)
            theirs = peer_outcomes(peer_out, "deduped" if stage == 3 else "kept")
            print(f"[{stage}] {STAGE_NAMES[stage]}: wall: ours {ours_rate:.0f} records/s ({ours_rate / floor:.2f}x "
                  f"the floor), DataTrove {peer_rate:.0f} records/s ({peer_rate / floor:.2f}x) -> ours/DataTrove "
                  f"{ours_rate / peer_rate:.2f}x; CPU: ours {ours_cpu / args.records * 1e3:.2f} ms/record, "
                  f"DataTrove {peer_cpu / args.records * 1e3:.2f} -> {peer_cpu / ours_cpu:.2f}x less here; peak "
                  f"RSS ours {mb(ours_rss)}, DataTrove {mb(peer_rss)}; kept ours "
                  f"{sum(v == 'kept' for v in ours_kept.values())}, DataTrove "
                  f"{sum(v == 'kept' for v in theirs.values())} (load {load()})", flush=True)
            compare(ours_kept, theirs, ids)
        if args.quality_sample:
            quality_agreement(python, work, corpus_paths=paths, sample=args.quality_sample)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"DataTrove {PEER_VERSION}; load average after: {load()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------- rule-by-rule agreement


def fixture_texts() -> list[dict]:
    """Our extraction of every HTML/text document of the WARC fixtures (their real pages)."""
    import datetime as dt

    from pipeline.extract import record_to_document
    from pipeline.warc_reader import WarcFileReader, WarcRecord
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    texts = []
    for path in sorted((ROOT / "tests/data/warc").glob("*.warc*")):
        for item in WarcFileReader(str(path), lambda p: open(p, "rb")):
            if isinstance(item, WarcRecord):
                doc = record_to_document(item, now, now, "bench")
                if not doc.rejected and doc.text.strip():
                    texts.append({"id": f"{path.name}:{item.offset}", "text": doc.text})
    return texts


def corpus_texts(paths: list[Path], limit: int) -> list[dict]:
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import extracted_texts
    return [{"id": f"corpus:{i}", "text": t} for i, t in enumerate(extracted_texts(paths, limit)) if t.strip()]


def quality_agreement(python: Path, work: Path, corpus_paths: list[Path] | None = None, sample: int = 0) -> None:
    import re

    from pipeline.quality import PRESETS, decide, quality_signals
    from pipeline.quality.tokens import CJK
    presets = ("gopher-quality", "gopher-repetition", "gopher", "c4", "fineweb")
    sets = {"WARC fixtures": fixture_texts()}
    if corpus_paths and sample:
        sets[f"benchmark corpus ({sample} records)"] = corpus_texts(corpus_paths, sample)
    cjk = re.compile(f"[{CJK}]")
    for name, texts in sets.items():
        path = work / "texts.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for item in texts:
                fh.write(json.dumps(item) + "\n")
        subprocess.run([str(python), str(Path(__file__).resolve()), "--peer-side", "quality", "--texts", str(path),
                        "--out", str(work / "peer-quality.json")], check=True, capture_output=True)
        peer = json.loads((work / "peer-quality.json").read_text())
        theirs = {r["id"]: r for r in peer["results"]}
        ours = {item["id"]: quality_signals(item["text"]) for item in texts}
        print(f"quality rules on the {name}: {len(texts)} texts, "
              f"{sum(len(t['text']) for t in texts) / len(texts):,.0f} characters on average")
        for preset in presets:  # time: the preset's signals and decision, per text, against DataTrove's filters
            groups = PRESETS[preset].groups
            start = time.process_time()
            for item in texts:
                decide(quality_signals(item["text"], groups), preset)
            mine_ms = (time.process_time() - start) / len(texts) * 1e3
            peer_ms = peer["seconds"][preset] / len(texts) * 1e3
            print(f"    {preset:18s} {mine_ms:6.2f} CPU-ms/text here, DataTrove {peer_ms:6.2f}: "
                  f"{peer_ms / mine_ms:.1f}x less here")
        for preset in presets:
            for subset, keep in (("all", lambda t: True), ("no CJK", lambda t: not cjk.search(t))):
                chosen = [item for item in texts if keep(item["text"])]
                agree, flips = 0, Counter()
                for item in chosen:
                    mine = decide(ours[item["id"]], preset)
                    peer = theirs[item["id"]][preset]
                    if (mine is None) == (peer is None):
                        agree += 1
                    else:
                        flips[f"{mine[0] if mine else 'kept'} vs DataTrove {peer or 'kept'}"] += 1
                detail = "; ".join(f"{k}: {v}" for k, v in flips.most_common(3))
                print(f"    {preset:18s} {subset:7s} same decision on {agree}/{len(chosen)} "
                      f"({agree / max(1, len(chosen)):.1%}){'; ' + detail if detail else ''}")


# ------------------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=8000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--quality-sample", type=int, default=2000,
                        help="corpus records for the rule-by-rule comparison (0: fixtures only)")
    parser.add_argument("--quality-only", action="store_true", help="only the rule-by-rule comparison")
    parser.add_argument("--skip-without-index", action="store_true",
                        help="exit 0 with a note when the peer venv is missing and no package index answers")
    parser.add_argument("--peer-side", choices=["pipeline", "quality"], help=argparse.SUPPRESS)
    parser.add_argument("--stage", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_side == "pipeline":
        peer_pipeline(args.stage, args.corpus, args.out, args.model)
        return 0
    if args.peer_side == "quality":
        peer_quality(args.texts, args.out)
        return 0
    sys.path.insert(0, str(ROOT))
    python = ensure_venv(args.skip_without_index)
    if python is None:
        print(f"peer benchmark skipped: no DataTrove venv at {venv_dir()} and no package index reachable")
        return 0
    print(f"peer: DataTrove {PEER_VERSION} in {venv_dir()} "
          f"(requirements sha1 {hashlib.sha1(chr(10).join(requirements()).encode()).hexdigest()[:10]})")
    if args.quality_only:
        work = Path(tempfile.mkdtemp(prefix="lowbg-peer-quality-"))
        try:
            paths = None
            if args.quality_sample:
                sys.path.insert(0, str(ROOT / "bench"))
                from ingest import build_corpus
                (work / "corpus").mkdir()
                paths = build_corpus(work / "corpus", args.quality_sample, 1)
            quality_agreement(python, work, paths, args.quality_sample)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    benchmark(python, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
