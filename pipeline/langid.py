"""Language identification with fastText ``lid.176.ftz`` (bundled in ``pipeline/data``, CC-BY-SA-3.0).

Every document gets ``language`` and ``language_score`` (the top label and its probability on the text with
newlines replaced by spaces, as FineWeb does); a policy then rejects documents whose language is not in
``--languages`` or whose score is below ``--min-language-score`` (reason ``language``). The step's settings are
:class:`pipeline.settings.LanguageSettings`.

A truncated or corrupt model does not fail cleanly in fastText: it can crash the process or hang. So
:func:`check_language_model`, which the CLI calls before any work, verifies the bundled file's SHA-256; any
other model gets its header and layout checked (a truncated file is found without loading it) and is then
loaded once in a child process with a time limit. The same check compares ``--languages`` with the model's
labels (lid.176's 176 codes, or a custom model's own), so a code the model never outputs (``xx``, ``eng``) is
refused instead of rejecting every document. Workers load the model in ``setup()``; the loaded model is never
pickled.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.resources
import json
import mmap
import os
import struct
import subprocess
import sys
from collections.abc import Sequence

from pipeline.document import Document
from pipeline.reasons import REASON_LANGUAGE
from pipeline.settings import LanguageSettings

BUNDLED_MODEL = "lid.176.ftz"
BUNDLED_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")  # the first four bytes of every fastText .bin/.ftz
_LABEL_PREFIX = "__label__"
_CHECK_TIMEOUT_S = 120


class LanguageModelError(RuntimeError):
    """The language-ID model is missing, unreadable or not a fastText language-ID model."""


def _bundled_ref():
    return importlib.resources.files("pipeline").joinpath("data", BUNDLED_MODEL)


def _check_header(data_head: bytes, where: str) -> None:
    if len(data_head) < 8:
        raise LanguageModelError(f"language model {where} is empty or truncated ({len(data_head)} bytes)")
    if data_head[:4] != _FASTTEXT_MAGIC:
        raise LanguageModelError(f"language model {where} is not a fastText model (bad magic number)")


def _layout_size(path: str) -> tuple[int, int] | None:
    """(bytes a version-12 fastText model's headers say it has, bytes the file has); None for other versions.

    Walks the layout of fastText's ``saveModel`` (args, dictionary, input and output matrices, dense or
    product-quantized) without loading anything: a truncated file is caught here, deterministically.
    """
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 0

        def take(fmt: str) -> tuple:
            nonlocal pos
            size = struct.calcsize(fmt)
            if pos + size > len(data):
                raise LanguageModelError(f"language model {path} is truncated (its layout goes past byte {len(data)})")
            out = struct.unpack_from(fmt, data, pos)
            pos += size
            return out

        _, version = take("<ii")
        if version != 12:
            return None
        take("<12id")  # Args: 12 int32 and the sampling threshold t
        entries, _, _ = take("<3i")
        _, prune_size = take("<2q")
        for _ in range(entries):  # word bytes, NUL, int64 count, int8 type
            end = data.find(b"\0", pos)
            if end < 0:
                raise LanguageModelError(f"language model {path} is truncated (ends inside the dictionary)")
            pos = end + 1 + 9
        pos += 8 * max(prune_size, 0)

        def product_quantizer() -> None:
            nonlocal pos
            dim = take("<4i")[0]
            pos += 4 * dim * 256  # float centroids, 256 per sub-quantizer dimension

        def matrix(quantized: bool) -> None:
            nonlocal pos
            if not quantized:
                m, n = take("<2q")
                pos += 4 * m * n
                return
            (qnorm,) = take("<?")
            m, _ = take("<2q")
            codes = take("<i")[0]  # (not `pos += take(...)`: that reads pos before take() moves it)
            pos += codes
            product_quantizer()
            if qnorm:
                pos += m
                product_quantizer()

        matrix(take("<?")[0])  # input
        matrix(take("<?")[0])  # output
        return pos, len(data)


def _check_layout(path: str) -> None:
    sizes = _layout_size(path)
    if sizes is not None and sizes[0] != sizes[1]:
        want, have = sizes
        state = "truncated" if have < want else "followed by unexpected bytes"
        raise LanguageModelError(f"language model {path} is {state}: {have} bytes, its layout says {want}")


def _check_bundled() -> None:
    ref = _bundled_ref()
    if not ref.is_file():
        raise LanguageModelError(f"bundled language model pipeline/data/{BUNDLED_MODEL} is missing: "
                                 "reinstall the package or give --language-model PATH")
    digest = hashlib.sha256(ref.read_bytes()).hexdigest()
    if digest != BUNDLED_SHA256:
        raise LanguageModelError(f"bundled language model pipeline/data/{BUNDLED_MODEL} is corrupt "
                                 f"(sha256 {digest[:12]}..., expected {BUNDLED_SHA256[:12]}...)")


def _load_fasttext(path: str):
    import fasttext

    try:
        return fasttext.load_model(path)
    except (ValueError, RuntimeError) as exc:  # fastText's: "has wrong file format!", "Unknown loss", ...
        raise LanguageModelError(f"cannot load language model {path}: {exc}") from exc


class UnknownLanguage(LanguageModelError):
    """A ``--languages`` code that is not one of the language model's labels."""


def check_languages(languages: Sequence[str], labels: Sequence[str], model: str) -> None:
    """Refuse language codes the model never outputs, naming the closest label of each."""
    known = set(labels)
    for code in languages:
        if code in known:
            continue
        lower = code.lower()
        base = lower.replace("_", "-").split("-")[0]  # zh-CN, pt_BR: lid.176 has the language only
        close = [c for c in (lower, base) if c in known][:1] or difflib.get_close_matches(lower, sorted(known), 3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UnknownLanguage(f"--languages {code!r} is not a label of the language model {model} "
                              f"({len(known)} labels, e.g. {', '.join(sorted(known)[:5])}){hint}")


def _labels(model) -> list[str]:
    return [label.removeprefix(_LABEL_PREFIX) for label in model.get_labels()]


def check_language_model(path: str | None, languages: Sequence[str] | None = None) -> str:
    """Validate the model that ``--language-model`` names (None: the bundled one) before any work starts, and
    that every code in ``languages`` is one of its labels.

    Returns a short description for the run manifest; raises :class:`LanguageModelError` (:class:`UnknownLanguage`
    for a code the model does not know) with a clear message.
    """
    if path is None:
        _check_bundled()
        if languages:  # the file's digest was just verified: safe to load here
            with importlib.resources.as_file(_bundled_ref()) as bundled:
                check_languages(languages, _labels(_load_fasttext(str(bundled))), f"bundled {BUNDLED_MODEL}")
        return f"bundled {BUNDLED_MODEL} (sha256 {BUNDLED_SHA256[:12]})"
    if not os.path.isfile(path):
        raise LanguageModelError(f"language model {path} does not exist or is not a file")
    try:
        with open(path, "rb") as fh:
            _check_header(fh.read(8), path)
        _check_layout(path)
    except OSError as exc:
        raise LanguageModelError(f"cannot read language model {path}: {exc}") from exc
    # Damage the layout walk cannot see can still segfault or hang fastText: load it once out of process.
    probe = ("import json, sys, fasttext; m = fasttext.load_model(sys.argv[1]); "
             "labels, _ = m.predict('language identification probe'); "
             f"ok = bool(labels) and labels[0].startswith({_LABEL_PREFIX!r}); "
             "print(json.dumps(m.get_labels()) if ok else ''); sys.exit(0 if ok else 3)")
    try:
        done = subprocess.run([sys.executable, "-c", probe, path], capture_output=True, text=True,
                              timeout=_CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise LanguageModelError(f"language model {path} did not load within {_CHECK_TIMEOUT_S}s: corrupt?") from exc
    if done.returncode == 3:
        raise LanguageModelError(f"{path} is a fastText model but not a language-ID model (no {_LABEL_PREFIX} labels)")
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise LanguageModelError(f"language model {path} failed to load (exit {done.returncode}): {tail}")
    if languages:
        try:
            labels = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError) as exc:
            raise LanguageModelError(f"language model {path}: could not read its labels") from exc
        check_languages(languages, [label.removeprefix(_LABEL_PREFIX) for label in labels], path)
    return os.path.abspath(path)


class LanguageIdentifier:
    """fastText language ID: ``predict(text) -> (language, score)``. Call ``load()`` before ``predict``."""

    def __init__(self, model_path: str | None = None):
        self.model_path = model_path
        self._model = None

    def load(self) -> LanguageIdentifier:
        if self._model is None:
            if self.model_path is None:
                _check_bundled()
                with importlib.resources.as_file(_bundled_ref()) as path:
                    self._model = _load_fasttext(str(path))
            else:
                if not os.path.isfile(self.model_path):
                    raise LanguageModelError(f"language model {self.model_path} does not exist or is not a file")
                with open(self.model_path, "rb") as fh:
                    _check_header(fh.read(8), self.model_path)
                _check_layout(self.model_path)
                self._model = _load_fasttext(self.model_path)
        return self

    def __getstate__(self) -> dict:
        # Beam pickles the steps that hold us: ship the path, never the model.
        return {"model_path": self.model_path, "_model": None}

    def predict(self, text: str) -> tuple[str, float]:
        if self._model is None:
            raise RuntimeError("LanguageIdentifier.predict() before load()")
        line = text.replace("\n", " ")  # fastText predicts one line at a time
        try:
            labels, probs = self._model.predict(line, k=1)
        except (UnicodeEncodeError, TypeError):  # lone surrogates (lenient decoder): pybind11 refuses the str
            line = line.encode("utf-8", "replace").decode("utf-8")
            labels, probs = self._model.predict(line, k=1)
        # fastText's softmax can come out a hair above 1.0
        return labels[0].removeprefix(_LABEL_PREFIX), min(float(probs[0]), 1.0)


def language_decision(language: str | None, score: float | None,
                      settings: LanguageSettings) -> tuple[str, str] | None:
    """The language policy over a document's stored ``language`` and ``language_score``: None when kept, else
    (``language``, detail). What :class:`LanguageStep` applies, and `lowbg decide` re-applies from a row."""
    languages, min_score = settings.languages, settings.min_score
    if languages is not None and language not in languages:
        return REASON_LANGUAGE, f"{language} not in {','.join(languages)}"
    if score is not None and score < min_score:
        return REASON_LANGUAGE, f"{language} {score:.2f} < {min_score:.2f}"
    return None


class LanguageStep:
    """Store language/language_score; reject (``language``) outside ``languages`` or below ``min_score``."""

    name = "language"

    def __init__(self, settings: LanguageSettings = LanguageSettings()):
        self.settings = settings
        self.identifier = LanguageIdentifier(settings.model)

    def setup(self) -> None:
        self.identifier.load()

    def process(self, doc: Document) -> Document:
        lang, score = self.identifier.predict(doc.text or "")
        doc.language, doc.language_score = lang, score
        rejected = language_decision(lang, score, self.settings)
        return doc.reject(*rejected) if rejected else doc
