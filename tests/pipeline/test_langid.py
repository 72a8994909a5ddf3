"""Language ID on real CC-MAIN-2020-34 pages, the language policy, and model validation at start-up."""

from __future__ import annotations

import pickle
import shutil

import pytest

from pipeline import langid
from pipeline.langid import LanguageIdentifier, LanguageModelError, LanguageStep, check_language_model
from pipeline.reasons import REASON_LANGUAGE
from pipeline.settings import LanguageSettings


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier().load()


def test_labels_the_fixture_pages(identifier, cc_pages):
    # The languages a person reads on these pages (tests/data/dedup/NOTICE.md): de, ru, zh, nl, en.
    assert {p["lang"] for p in cc_pages} == {"de", "ru", "zh", "nl", "en"}
    for page in cc_pages:
        lang, score = identifier.predict(page["text"])
        assert lang == page["lang"], (page["url"], lang, score)
        assert 0.0 < score <= 1.0


def test_newlines_and_bad_text_do_not_break_predict(identifier, cc_pages):
    nl = next(p for p in cc_pages if p["lang"] == "nl")["text"]
    assert "\n" in nl
    assert identifier.predict(nl)[0] == "nl"
    assert identifier.predict(nl.replace("\n", " ")) == identifier.predict(nl)
    assert identifier.predict(nl + " \udc80\ud800")[0] == "nl"  # lone surrogates
    assert isinstance(identifier.predict("")[0], str)


def test_step_stores_language_and_rejects_by_policy(cc_pages, doc_factory, at):
    step = LanguageStep(LanguageSettings(languages=("en", "de"), min_score=0.65))
    step.setup()
    by_lang = {}
    for page in cc_pages:
        doc = step.process(doc_factory(page["url"], page["text"], at(2020)))
        assert doc.language == page["lang"] and doc.language_score is not None
        by_lang.setdefault(page["lang"], []).append(doc)
    for doc in by_lang["ru"] + by_lang["zh"] + by_lang["nl"]:
        assert doc.reason == REASON_LANGUAGE and doc.detail == f"{doc.language} not in en,de"
    for doc in by_lang["en"] + by_lang["de"]:
        if doc.language_score >= 0.65:
            assert not doc.rejected
        else:
            assert doc.reason == REASON_LANGUAGE
            assert doc.detail == f"{doc.language} {doc.language_score:.2f} < 0.65"
    assert any(not d.rejected for d in by_lang["en"] + by_lang["de"])


def test_default_keeps_every_language_above_the_score(cc_pages, doc_factory, at):
    step = LanguageStep()  # --languages not given
    step.setup()
    docs = [step.process(doc_factory(p["url"], p["text"], at(2020))) for p in cc_pages]
    assert {d.language for d in docs if not d.rejected} >= {"de", "ru", "zh", "nl", "en"}
    for d in docs:
        assert d.rejected == (d.language_score < 0.65)


def test_step_pickles_without_the_model(cc_pages):
    step = LanguageStep(LanguageSettings(languages=("nl",)))
    step.setup()
    blob = pickle.dumps(step)
    assert len(blob) < 2000  # the 900 kB model is not in it
    clone = pickle.loads(blob)
    assert clone.identifier._model is None
    with pytest.raises(RuntimeError):
        clone.identifier.predict("text")
    clone.setup()
    assert clone.identifier.predict(cc_pages[-1]["text"])[0] == cc_pages[-1]["lang"]


def test_check_accepts_the_bundled_and_a_copied_model(tmp_path):
    assert "lid.176.ftz" in check_language_model(None)
    copy = tmp_path / "lid.ftz"
    with langid.importlib.resources.as_file(langid._bundled_ref()) as src:
        shutil.copyfile(src, copy)
    assert check_language_model(str(copy)) == str(copy)


def test_check_refuses_missing_or_corrupt_models(tmp_path):
    with pytest.raises(LanguageModelError, match="does not exist"):
        check_language_model(str(tmp_path / "nope.ftz"))
    empty = tmp_path / "empty.ftz"
    empty.write_bytes(b"")
    with pytest.raises(LanguageModelError, match="empty or truncated"):
        check_language_model(str(empty))
    text = tmp_path / "model.ftz"
    text.write_text("this is not a model\n")
    with pytest.raises(LanguageModelError, match="not a fastText model"):
        check_language_model(str(text))
    # A good header and a cut-off body: fastText itself may segfault (cut in the matrices) or loop forever (cut
    # in the dictionary). The layout walk reports both without loading.
    bundled = langid._bundled_ref().read_bytes()
    truncated = tmp_path / "truncated.ftz"
    for cut, where in ((938_000, "938000 bytes, its layout says 938013"), (900_000, "past byte 900000"),
                       (1000, "inside the dictionary")):
        truncated.write_bytes(bundled[:cut])
        with pytest.raises(LanguageModelError, match=f"truncated.*{where}"):
            check_language_model(str(truncated))
        with pytest.raises(LanguageModelError, match="truncated"):
            LanguageStep(LanguageSettings(model=str(truncated))).setup()
    padded = tmp_path / "padded.ftz"
    padded.write_bytes(bundled + b"junk")
    with pytest.raises(LanguageModelError, match="followed by unexpected bytes"):
        check_language_model(str(padded))
    with pytest.raises(LanguageModelError, match="does not exist"):
        LanguageStep(LanguageSettings(model=str(tmp_path / "nope.ftz"))).setup()


def _patched_args(field: int, value: int) -> bytes:
    data = bytearray(langid._bundled_ref().read_bytes())
    data[8 + 4 * field:12 + 4 * field] = value.to_bytes(4, "little")  # Args start after magic and version
    return bytes(data)


def test_check_loads_other_damage_out_of_process(tmp_path):
    # Damage that keeps the layout intact: the child-process load reports it, and the caller survives.
    broken = tmp_path / "broken.ftz"
    broken.write_bytes(_patched_args(8, 0))  # bucket = 0: fastText dies of SIGFPE on the first predict
    with pytest.raises(LanguageModelError, match="failed to load .exit -8"):
        check_language_model(str(broken))
    broken.write_bytes(_patched_args(6, 99))  # loss = 99
    with pytest.raises(LanguageModelError, match="Unknown loss"):
        check_language_model(str(broken))
    with pytest.raises(LanguageModelError, match="Unknown loss"):
        LanguageIdentifier(str(broken)).load()
    broken.write_bytes(langid._bundled_ref().read_bytes().replace(b"__label__", b"__lobel__"))
    with pytest.raises(LanguageModelError, match="not a language-ID model"):
        check_language_model(str(broken))


def test_a_corrupt_bundled_model_is_reported(monkeypatch):
    monkeypatch.setattr(langid, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(LanguageModelError, match="corrupt"):
        check_language_model(None)
    with pytest.raises(LanguageModelError, match="corrupt"):
        LanguageIdentifier().load()
