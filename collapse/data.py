"""Reading the corpus: the pipeline's Parquet shards or any Parquet with a `text` column.

The train / held-out split is a pure function of each document's key (its `id`, or a hash of the text when the
shards carry no `id`), so it is the same on every run, every machine and every seed, and adding shards never moves
a document from one side to the other. The web regime carves a third, calibration, side out of the same hash.

Shards inside a `lowbg curate` run folder (the run folder itself, its `curated/` folder, or a glob in it) are read
only when the run finished (`schemas.run`: a valid, balanced manifest written last); a run folder given as a whole
is read through its manifest's list of curated shards. `allow_incomplete=True` (`--allow-incomplete`) reads an
unfinished run's shards anyway. Loose Parquet files that belong to no run are read as they are.
"""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from common.hashing import unit_fraction
from schemas.run import IncompleteRun, read_finished_manifest, run_root_of


class CorpusError(ValueError):
    """The input cannot support the requested run (missing column, too little text)."""


@dataclass(frozen=True)
class Corpus:
    keys: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        """Order-independent digest of the documents, so a resumed run can tell that its input changed."""
        h = hashlib.sha256()
        for key, text in sorted(zip(self.keys, self.texts)):
            h.update(key.encode())
            h.update(b"\0")
            h.update(hashlib.sha256(text.encode()).digest())
        return h.hexdigest()


def check_finished_run(spec: str | Path, allow_incomplete: bool = False) -> tuple[Path | None, dict | None]:
    """(run folder, its manifest) when `spec` lies inside a `lowbg curate` run, else (None, None).

    Raises IncompleteRun when the run has no valid, balanced manifest, unless allow_incomplete (then the manifest
    is None)."""
    root = run_root_of(spec)
    if root is None:
        return None, None
    try:
        return root, read_finished_manifest(root)
    except IncompleteRun as e:
        if allow_incomplete:
            return root, None
        msg = str(e)
        if "--allow-incomplete" not in msg:
            msg += " (give --allow-incomplete to read it anyway)"
        raise IncompleteRun(f"--shards {spec} lies in the curate run {root}, which is not finished: {msg}") from None


def resolve_shards(spec: str | Path, allow_incomplete: bool = False) -> list[Path]:
    """A directory (every `*.parquet` below it), a glob, or one file; sorted so runs are reproducible.

    A `lowbg curate` run folder reads its curated shards only (those its manifest lists), and any path inside a
    run must belong to a finished one (see the module docstring)."""
    path = Path(spec)
    root, manifest = check_finished_run(spec, allow_incomplete)
    if root is not None and path.is_dir() and path.resolve() == root.resolve():
        listed = (manifest or {}).get("shards", {}).get("curated") if manifest else None
        if listed is not None:
            files = sorted(root / f for f in listed)
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise CorpusError(f"the manifest of {root} lists curated shards that do not exist: "
                                  f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
            if not files:
                raise CorpusError(f"the finished run {root} curated no documents (its manifest lists no shard)")
            return files
        path = root / "curated"
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    elif path.is_file():
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(str(spec), recursive=True) if Path(p).is_file())
    if not files:
        raise CorpusError(f"no Parquet files found at {spec!s}")
    return files


def text_key(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_row_filters(specs: list[str] | tuple[str, ...] | None) -> dict[str, set[str]]:
    """`COLUMN=VALUE[|VALUE...]` (e.g. `provenance=pre_cutoff`) -> {column: allowed values}; filters AND together."""
    out: dict[str, set[str]] = {}
    for spec in specs or ():
        column, sep, values = spec.partition("=")
        column = column.strip()
        allowed = {v.strip() for v in values.split("|") if v.strip()}
        if not sep or not column or not allowed:
            raise CorpusError(f"--real-filter {spec!r}: expected COLUMN=VALUE[|VALUE...], e.g. provenance=pre_cutoff")
        out[column] = out[column] & allowed if column in out else allowed
    return out


def load_corpus(
    shards: str | Path | list[Path], text_column: str = "text", id_column: str = "id", max_docs: int | None = None,
    row_filters: dict[str, set[str]] | None = None,
) -> Corpus:
    """Non-empty texts of the shards, keyed by `id` when the shards have one, else by a hash of the text.

    row_filters: keep only rows whose column values are among the allowed ones (see parse_row_filters), e.g. the
    pre-cutoff documents of a curate run's shards: what capture dates alone certify as human-written."""
    files = shards if isinstance(shards, list) else resolve_shards(shards)
    row_filters = row_filters or {}
    keys: list[str] = []
    texts: list[str] = []
    for f in files:
        names = pq.read_schema(f).names
        if text_column not in names:
            raise CorpusError(f"{f} has no {text_column!r} column (columns: {', '.join(names)})")
        absent = [c for c in row_filters if c not in names]
        if absent:
            raise CorpusError(f"{f} has no {absent[0]!r} column for --real-filter (columns: {', '.join(names)})")
        columns = [text_column] + ([id_column] if id_column in names else [])
        columns += [c for c in row_filters if c not in columns]
        table = pq.read_table(f, columns=columns)
        col_text = table.column(text_column).to_pylist()
        col_id = table.column(id_column).to_pylist() if id_column in names else [None] * len(col_text)
        keep = [True] * len(col_text)
        for c, allowed in row_filters.items():
            keep = [k and (v is not None and str(v) in allowed) for k, v in zip(keep, table.column(c).to_pylist())]
        for key, text, wanted in zip(col_id, col_text, keep):
            if not wanted or not text or not text.strip():
                continue
            keys.append(str(key) if key is not None else text_key(text))
            texts.append(text)
            if max_docs is not None and len(texts) >= max_docs:
                return Corpus(keys, texts)
    return Corpus(keys, texts)


def _unit(key: str, salt: str) -> float:
    """A fixed uniform draw per document: sha256(salt + key) as a fraction (:mod:`common.hashing`)."""
    return unit_fraction(key, salt=salt, algorithm="sha256")


def heldout_mask(keys: list[str], heldout_fraction: float) -> list[bool]:
    """True for held-out documents: the first 8 bytes of sha256(key) as a fraction of 2**64."""
    return [_unit(key, "heldout:") < heldout_fraction for key in keys]


def _subset(corpus: Corpus, mask: list[bool]) -> Corpus:
    return Corpus([k for k, m in zip(corpus.keys, mask) if m], [t for t, m in zip(corpus.texts, mask) if m])


def split_corpus(corpus: Corpus, heldout_fraction: float = 0.1) -> tuple[Corpus, Corpus]:
    """Deterministic (train, held-out) split by document key; held-out text is never trained on."""
    if not 0.0 < heldout_fraction < 1.0:
        raise CorpusError(f"heldout fraction must be in (0, 1), got {heldout_fraction}")
    mask = heldout_mask(corpus.keys, heldout_fraction)
    return _subset(corpus, [not m for m in mask]), _subset(corpus, mask)


def split_three(corpus: Corpus, heldout_fraction: float, calibration_fraction: float
                ) -> tuple[Corpus, Corpus, Corpus]:
    """(train, calibration, held-out) by document key, for the web regime.

    The held-out side is exactly `split_corpus`'s (the same draw u < heldout_fraction); the calibration side is
    the next `calibration_fraction` of the same draw. Both are whole source documents, so a detector's threshold
    is set, and perplexity measured, on documents no generation ever trains on."""
    if not 0.0 < calibration_fraction < 1.0 or heldout_fraction + calibration_fraction >= 1.0:
        raise CorpusError(f"--calibration-fraction must be in (0, 1) with --heldout-fraction + "
                          f"--calibration-fraction < 1, got {calibration_fraction} and {heldout_fraction}")
    train, held = split_corpus(corpus, heldout_fraction)
    u = [_unit(k, "heldout:") for k in train.keys]
    cal = [x < heldout_fraction + calibration_fraction for x in u]
    return _subset(train, [not m for m in cal]), _subset(train, cal), held


def pool_order(keys: list[str]) -> list[int]:
    """A seed-independent order of documents (by a salted hash of the key): `--real-pool N` keeps the first N, so
    a smaller pool is always a subset of a larger one and every seed and arm sees the same finite pool."""
    return sorted(range(len(keys)), key=lambda i: (_unit(keys[i], "pool:"), keys[i]))


def check_sizes(n_docs: int, train: Corpus, heldout: Corpus, sample_size: int, min_train: int = 8,
                min_heldout: int = 2) -> None:
    """Refuse runs the corpus cannot support, naming the numbers."""
    where = f"the shards hold {n_docs} non-empty documents: {len(train)} for training and {len(heldout)} held out"
    if len(train) < min_train:
        raise CorpusError(f"too little text: {where}; need at least {min_train} training documents")
    if len(heldout) < min_heldout:
        raise CorpusError(
            f"too little text: {where}; need at least {min_heldout} held-out documents (raise --heldout-fraction "
            "or add shards)"
        )
    if sample_size > len(train):
        raise CorpusError(
            f"too little text for the requested sample size: --sample-size {sample_size} but {where}; "
            f"use --sample-size <= {len(train)} or add shards"
        )
    if sample_size < 1:
        raise CorpusError(f"--sample-size must be at least 1, got {sample_size}")
