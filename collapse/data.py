"""Reading the corpus: the pipeline's Parquet shards or any Parquet with a `text` column.

The train / held-out split is a pure function of each document's key (its `id`, or a hash of the text when the
shards carry no `id`), so it is the same on every run, every machine and every seed, and adding shards never moves
a document from one side to the other.
"""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq


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


def resolve_shards(spec: str | Path) -> list[Path]:
    """A directory (every `*.parquet` below it), a glob, or one file; sorted so runs are reproducible."""
    path = Path(spec)
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


def load_corpus(
    shards: str | Path | list[Path], text_column: str = "text", id_column: str = "id", max_docs: int | None = None
) -> Corpus:
    """Non-empty texts of the shards, keyed by `id` when the shards have one, else by a hash of the text."""
    files = shards if isinstance(shards, list) else resolve_shards(shards)
    keys: list[str] = []
    texts: list[str] = []
    for f in files:
        names = pq.read_schema(f).names
        if text_column not in names:
            raise CorpusError(f"{f} has no {text_column!r} column (columns: {', '.join(names)})")
        columns = [text_column] + ([id_column] if id_column in names else [])
        table = pq.read_table(f, columns=columns)
        col_text = table.column(text_column).to_pylist()
        col_id = table.column(id_column).to_pylist() if id_column in names else [None] * len(col_text)
        for key, text in zip(col_id, col_text):
            if not text or not text.strip():
                continue
            keys.append(str(key) if key is not None else text_key(text))
            texts.append(text)
            if max_docs is not None and len(texts) >= max_docs:
                return Corpus(keys, texts)
    return Corpus(keys, texts)


def heldout_mask(keys: list[str], heldout_fraction: float) -> list[bool]:
    """True for held-out documents: the first 8 bytes of sha256(key) as a fraction of 2**64."""
    out = []
    for key in keys:
        u = int.from_bytes(hashlib.sha256(("heldout:" + key).encode()).digest()[:8], "big") / 2.0**64
        out.append(u < heldout_fraction)
    return out


def split_corpus(corpus: Corpus, heldout_fraction: float = 0.1) -> tuple[Corpus, Corpus]:
    """Deterministic (train, held-out) split by document key; held-out text is never trained on."""
    if not 0.0 < heldout_fraction < 1.0:
        raise CorpusError(f"heldout fraction must be in (0, 1), got {heldout_fraction}")
    mask = heldout_mask(corpus.keys, heldout_fraction)
    train = Corpus([k for k, m in zip(corpus.keys, mask) if not m], [t for t, m in zip(corpus.texts, mask) if not m])
    held = Corpus([k for k, m in zip(corpus.keys, mask) if m], [t for t, m in zip(corpus.texts, mask) if m])
    return train, held


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
