"""Supervised fastText detector: P(machine) from a linear bag-of-n-grams classifier (offline, CPU, fast).

A supervised detector learns its training corpus, including its formatting quirks. In the fast-detect-gpt sets,
for example, the human texts had their newlines removed and their quotes straightened while the machine texts kept
theirs: a classifier that sees whitespace or curly quotes scores ~0.98 AUROC in-distribution by learning that
artefact, and would flag every multi-paragraph human web page. The features are therefore built from normalised,
lower-cased word and punctuation tokens only (all whitespace is equivalent, typographic quotes are folded).
Report its figures on data from other generators/sources, split by source document (see docs/detectors.md).

fastText is trained in a fresh subprocess with one thread and a fixed seed: the fastText build we use
(fasttext-numpy2) is deterministic only for the first model trained in a process (later ones in the same process
can differ, or fail with "Encountered NaN"), so a subprocess is what makes the rebuild command reproducible.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

from detectors.base import HIGHER_IS_MACHINE, Score, unscorable
from detectors.inputs import MACHINE, LabelledText
from detectors.normalize import normalize_text

LABEL_HUMAN, LABEL_MACHINE = "__label__human", "__label__machine"
DEFAULT_MODEL_RESOURCE = "fasttext_detector.ftz"
_TOKEN = re.compile(r"\w+|[^\w\s]")
_TYPOGRAPHY_MAP = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                   "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
                   "\u2026": "...", "\u2013": "-", "\u2014": "-", "\u2212": "-"}
# Substituting the (rare) matches costs per match; str.translate with a dict table costs per character.
_TYPOGRAPHY_RE = re.compile("|".join(map(re.escape, _TYPOGRAPHY_MAP)))


def _plain_typography(text: str) -> str:
    return _TYPOGRAPHY_RE.sub(lambda m: _TYPOGRAPHY_MAP[m.group()], text)

# Hyper-parameters of the shipped model (chosen on a document-level held-out split of exp_main, see docs).
DEFAULTS = {"epoch": 15, "lr": 0.2, "dim": 32, "word_ngrams": 2, "minn": 0, "maxn": 0, "bucket": 200_000,
            "min_count": 2, "cutoff": 50_000, "seed": 0}


# Characters per token of the prefix tokenised first when the tokens are capped (~4.3 in English web text): a long
# page is tokenised only as far as the cap needs (some pages of a crawl hold 80,000 tokens, of which 4,096 count).
_PREFIX_CHARS_PER_TOKEN = 8


def _tokens(text: str, max_words: int | None) -> tuple[list[str], bool]:
    """(the first ``max_words`` tokens of ``text``, whether it has more): ``_TOKEN.findall(text)`` cut to the cap.

    With a cap, a prefix of ``text`` is tokenised first (``findall`` up to ``endpos``). Matches are found left to
    right and the pattern has no look-around, so every match of the prefix but its last (a word the prefix may cut)
    is the match of the whole text at the same index, and the last starts where the whole text's does: a prefix
    with more than ``max_words`` matches decides both the capped tokens and the truncation. Otherwise the whole
    text is tokenised, as without a cap.
    """
    if max_words:
        end = _PREFIX_CHARS_PER_TOKEN * (max_words + 1)
        if end < len(text):
            head = _TOKEN.findall(text, 0, end)
            if len(head) > max_words:
                return head[:max_words], True
    tokens = _TOKEN.findall(text)
    if max_words and len(tokens) > max_words:
        return tokens[:max_words], True
    return tokens, False


def features(text: str, max_words: int | None = None) -> tuple[list[str], bool, bool]:
    """(tokens, truncated, normalized): lower-cased word/punctuation tokens of the normalised text, the first
    ``max_words`` of them when given (``truncated``: there were more); ``normalized``: normalisation changed the
    text (anywhere in it, not only in the tokens kept).

    A long text is normalised whole (``normalized`` is about all of it), but its typography is plainened, lower-cased
    and tokenised only up to an ASCII space past which the cap needs nothing: both are per character except the
    lower-casing of a capital sigma, whose context (:func:`str.lower`'s Final_Sigma rule) runs over case-ignorable
    characters only and stops at a space, so the prefix's tokens are the first tokens of the whole text.
    """
    clean, changed = normalize_text(text)
    if max_words and _PREFIX_CHARS_PER_TOKEN * (max_words + 1) < len(clean):
        cut = clean.rfind(" ", 0, _PREFIX_CHARS_PER_TOKEN * (max_words + 1)) + 1
        if cut:
            head = _TOKEN.findall(_plain_typography(clean[:cut]).lower())
            if len(head) > max_words:
                return head[:max_words], True, changed
    tokens, truncated = _tokens(_plain_typography(clean).lower(), max_words)
    return tokens, truncated, changed


def default_model_path() -> Path:
    """Path of the shipped model file inside the installed package (a real file for editable/wheel installs)."""
    return Path(str(resources.files("detectors") / "data" / DEFAULT_MODEL_RESOURCE))


def _file_digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _model_file(model: str | os.PathLike | None, stack: ExitStack) -> tuple[Path, str]:
    """(the model file, its label): the shipped model for None."""
    if model is None:
        ref = resources.files("detectors") / "data" / DEFAULT_MODEL_RESOURCE
        path = Path(stack.enter_context(resources.as_file(ref)))
        label = f"fasttext:lowbackground/{DEFAULT_MODEL_RESOURCE}"
    else:
        path = Path(model)
        label = f"fasttext:{path.name}"
    if not path.is_file():
        raise FileNotFoundError(f"fastText model not found: {path}")
    return path, label


def fasttext_model_id(model: str | os.PathLike | None = None) -> str:
    """The model id a :class:`FastTextDetector` of this model reports, without loading it (a hash of the file)."""
    with ExitStack() as stack:
        path, label = _model_file(model, stack)
        return f"{label}@sha256:{_file_digest(path)}"


class FastTextDetector:
    """P(machine) from a fastText classifier; the shipped model by default. HIGH means machine."""

    name = "fasttext"
    direction = HIGHER_IS_MACHINE
    published_thresholds: dict[str, float] = {}

    def __init__(self, model: str | os.PathLike | None = None, max_words: int = 4096) -> None:
        import fasttext

        self.max_words = int(max_words)
        with ExitStack() as stack:
            path, label = _model_file(model, stack)
            # fastText's own binary format (no pickle); the digest binds thresholds to these exact weights.
            self.model = fasttext.load_model(str(path))
            self.model_ids = [f"{label}@sha256:{_file_digest(path)}"]
        labels = set(self.model.get_labels())
        if labels != {LABEL_HUMAN, LABEL_MACHINE}:
            raise ValueError(f"{path}: expected labels {LABEL_HUMAN}/{LABEL_MACHINE}, got {sorted(labels)}")

    def count_tokens(self, text: str) -> int:
        return min(len(text.split()), self.max_words)

    def score(self, texts: list[str]) -> list[Score]:
        results: list[Score | None] = [None] * len(texts)
        lines, where, meta = [], [], []
        for i, text in enumerate(texts):
            tokens, truncated, changed = features(text if isinstance(text, str) else "", self.max_words)
            if not tokens:
                results[i] = unscorable("empty", normalized=changed)
                continue
            lines.append(" ".join(tokens))
            where.append(i)
            meta.append((len(tokens), truncated, changed))
        if lines:
            labels, probs = self.model.predict(lines, k=-1, threshold=0.0)
            for i, (n, truncated, changed), labs, prob in zip(where, meta, labels, probs):
                # fastText reports exp(log(p + 1e-5)) in float32, so confident texts all read 1.00001 and tie at the
                # top (where a 1% FPR threshold lives). Renormalising the two reported values in float64 keeps
                # their order: p is P(machine) up to fastText's 1e-5 smoothing, strictly inside (0, 1).
                d = {lab: float(v) for lab, v in zip(labs, prob)}
                p = d.get(LABEL_MACHINE, 1e-5) / (d.get(LABEL_MACHINE, 1e-5) + d.get(LABEL_HUMAN, 1e-5))
                results[i] = Score(value=p, tokens=n, truncated=truncated, normalized=changed)
        return results  # type: ignore[return-value]


def training_lines(items: list[LabelledText], seed: int = 0) -> list[str]:
    """fastText training lines: duplicates removed, texts seen with both labels dropped, sorted (so the order of
    the input files does not matter) and shuffled with `seed`."""
    by_text: dict[str, set[int]] = {}
    for it in items:
        by_text.setdefault(it.text, set()).add(it.label)
    seen, lines = set(), []
    for it in items:
        if len(by_text[it.text]) != 1 or it.text in seen:
            continue
        seen.add(it.text)
        tokens, _, _ = features(it.text)
        if tokens:
            lines.append(f"{LABEL_MACHINE if it.label == MACHINE else LABEL_HUMAN} {' '.join(tokens)}")
    lines.sort()
    random.Random(seed).shuffle(lines)
    return lines


def train_fasttext(items: list[LabelledText], output: str | os.PathLike, *, quantize: bool = True,
                   **params) -> dict:
    """Train (and by default quantise) a fastText detector on labelled texts; write it to `output`.

    params: epoch, lr, dim, word_ngrams, minn, maxn, bucket, min_count, cutoff (vocabulary rows kept when
    quantising) and seed; defaults in DEFAULTS. Returns a summary (counts, parameters, file digest).
    """
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown fastText parameters: {sorted(unknown)}")
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    lines = training_lines(items, p["seed"])
    n_machine = sum(line.startswith(LABEL_MACHINE) for line in lines)
    if n_machine == 0 or n_machine == len(lines):
        raise ValueError("training data must contain both human and machine texts")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        job = {"train": str(train_file), "output": str(output), "quantize": quantize, **p}
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                          env.get("PYTHONPATH")]))
        proc = subprocess.run([sys.executable, "-c", "import sys, detectors.fasttext_detector as m; "
                               "m._train_here(sys.argv[1])", json.dumps(job)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"fastText training failed:\n{proc.stderr[-2000:]}")
    return {"output": str(output), "n_train": len(lines), "n_machine": n_machine, "n_human": len(lines) - n_machine,
            "params": p, "quantized": quantize, "sha256": _file_digest(output), "bytes": output.stat().st_size}


def _train_here(job_json: str) -> None:
    """Runs in a fresh process (see module docstring)."""
    import fasttext

    job = json.loads(job_json)
    model = fasttext.train_supervised(
        job["train"], epoch=job["epoch"], lr=job["lr"], dim=job["dim"], wordNgrams=job["word_ngrams"],
        minn=job["minn"], maxn=job["maxn"], bucket=job["bucket"], minCount=job["min_count"], loss="softmax",
        thread=1, seed=job["seed"], verbose=0)
    if job["quantize"]:
        # Product quantisation of the input matrix and a vocabulary cut to `cutoff` rows keep the model small.
        model.quantize(input=job["train"], qnorm=True, retrain=True, cutoff=job["cutoff"], thread=1, verbose=0)
    model.save_model(job["output"])
