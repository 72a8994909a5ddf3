"""Dedup on real pages with planted exact and near copies on both sides of the cutoff.

Every planted cluster states its copies (capture time, exact or near); the test derives what must happen from
the survivor rule (earliest capture, missing times last, then lowest id) and checks the pipeline did it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random

import pytest

from pipeline.dedup import Dedup, ExactDedup, NearDedup
from pipeline.dedup.normalize import text_hash, word_shingles
from pipeline.reasons import REASON_DUPLICATE_EXACT, REASON_DUPLICATE_NEAR
from pipeline.settings import DedupSettings

CUTOFF = dt.datetime(2022, 11, 30, tzinfo=dt.UTC)


def _jaccard(a: str, b: str) -> float:
    x, y = set(word_shingles(a, 5)), set(word_shingles(b, 5))
    return len(x & y) / len(x | y)


def distinct_pages(pages: list[dict], min_words: int, max_jaccard: float = 0.3) -> list[str]:
    """Real page texts, no two of which are similar (the fixture crawl has natural duplicates)."""
    kept: list[str] = []
    for p in pages:
        text = p["text"]
        if len(word_shingles(text, 5)) >= min_words and all(_jaccard(text, k) < max_jaccard for k in kept):
            kept.append(text)
    return kept


@dataclasses.dataclass
class Planted:
    docs: list  # Document
    clusters: list[list[str]]  # ids of the documents that must end up together
    near_ids: set[str]  # documents whose text differs from the cluster's original


def plant(pages: list[str], doc_factory, mutator, at) -> Planted:
    rng = random.Random(20)
    docs, clusters, near = [], [], set()

    def add(cluster: list[str], doc_id: str, text: str, when, near_copy: bool = False, **kw):
        docs.append(doc_factory(doc_id, text, when, **kw))
        cluster.append(doc_id)
        if near_copy:
            near.add(doc_id)

    it = iter(pages)
    # A: exact copies before and after the cutoff -> the 2020 capture survives, content pre-cutoff (self)
    a, t = [], next(it)
    add(a, "a-2024", t, at(2024, 5))
    add(a, "a-2020", t, at(2020, 3))
    add(a, "a-2021", t, at(2021, 7))
    clusters.append(a)
    # B: two post-cutoff exact copies and a pre-cutoff near copy -> the near copy survives
    b, t = [], next(it)
    add(b, "b-2023", t, at(2023, 1))
    add(b, "b-2024", t, at(2024, 2))
    add(b, "b-2019-near", mutator(t, 2, rng), at(2019, 6), near_copy=True)
    clusters.append(b)
    # C: everything after the cutoff -> earliest survives, content post-cutoff
    c, t = [], next(it)
    add(c, "c-2023-feb", t, at(2023, 2))
    add(c, "c-2024-near", mutator(t, 1, rng), at(2024, 1), near_copy=True)
    add(c, "c-2023-jun", t, at(2023, 6))
    clusters.append(c)
    # D: same capture time -> lowest id; a near copy of the near copy joins through the component
    d, t = [], next(it)
    add(d, "d-y", t, at(2021, 4))
    add(d, "d-x", t, at(2021, 4))
    n1 = mutator(t, 1, rng)
    add(d, "d-z-near", n1, at(2022, 1), near_copy=True)
    add(d, "d-w-near2", mutator(n1, 1, rng), at(2025, 1), near_copy=True)
    clusters.append(d)
    # E: no capture time sorts last; pre-cutoff evidence from a copy's provenance label -> source 'cluster'
    e, t = [], next(it)
    add(e, "e-none", t, None, provenance="pre_cutoff")
    add(e, "e-2024", t, at(2024, 8))
    clusters.append(e)
    # F: two copies without capture time -> lowest id, provenance unknown
    f, t = [], next(it)
    add(f, "f-2", t, None)
    add(f, "f-1", t.upper(), None)  # same normalised text
    clusters.append(f)
    # singletons
    for i, t in enumerate(it):
        add(s := [], f"s-{i}", t, at(2018 + i % 8, 1 + i % 12))
        clusters.append(s)
    return Planted(docs, clusters, near)


def expected_survivor(docs_by_id: dict, ids: list[str]) -> str:
    return min(ids, key=lambda i: (docs_by_id[i].warc_date is None, docs_by_id[i].warc_date or CUTOFF, i))


@pytest.fixture(scope="module")
def pages(aut_pages, cc_pages) -> list[str]:
    return distinct_pages(aut_pages + cc_pages, min_words=40)


def test_planted_copies_keep_the_earliest_and_name_it(pages, doc_factory, mutator, at, run):
    assert len(pages) >= 12
    planted = plant(pages[:14], doc_factory, mutator, at)
    inputs = planted.docs
    out, counters = run(inputs, NearDedup())

    assert sorted(d.id for d in out) == sorted(d.id for d in inputs)  # every document exactly once
    got = {d.id: d for d in out}
    by_id = {d.id: d for d in inputs}
    losers = 0
    for ids in planted.clusters:
        survivor = expected_survivor(by_id, ids)
        s = got[survivor]
        assert not s.rejected, (survivor, s.reason, s.detail)
        assert s.dup_cluster_size == len(ids)
        assert s.text_hash == text_hash(s.text)
        dates = [by_id[i].warc_date for i in ids if by_id[i].warc_date is not None]
        assert s.first_seen == (min(dates) if dates else None)
        pre = [i for i in ids if by_id[i].provenance == "pre_cutoff"]
        if survivor in pre:
            assert (s.content_provenance, s.content_provenance_source) == ("pre_cutoff", "self")
        elif pre:
            assert (s.content_provenance, s.content_provenance_source) == ("pre_cutoff", "cluster")
        else:
            assert (s.content_provenance, s.content_provenance_source) == (s.provenance, "self")
        for i in ids:
            if i == survivor:
                continue
            loser = got[i]
            losers += 1
            assert loser.duplicate_of == survivor
            same_text = text_hash(loser.text) == text_hash(s.text)
            assert loser.reason == (REASON_DUPLICATE_EXACT if same_text else REASON_DUPLICATE_NEAR)
            assert survivor in loser.detail
    assert counters["rejected_duplicate_exact"] + counters["rejected_duplicate_near"] == losers
    assert counters["kept"] == len(planted.clusters)

    # the example: a 2024 capture of a page first seen in 2020 (cluster A, through its survivor)
    a2020 = got["a-2020"]
    assert (a2020.provenance, a2020.content_provenance, a2020.first_seen) == ("pre_cutoff", "pre_cutoff", at(2020, 3))
    assert got["a-2024"].duplicate_of == "a-2020"
    # exact copies of a document that lost near dedup point at the kept one, as near duplicates of it
    assert got["b-2023"].duplicate_of == got["b-2024"].duplicate_of == "b-2019-near"
    assert got["b-2023"].reason == REASON_DUPLICATE_NEAR
    e = got["e-2024"]
    assert (e.provenance, e.content_provenance, e.content_provenance_source) == ("post_cutoff", "pre_cutoff",
                                                                                  "cluster")


def test_join_through_disk_gives_what_the_shuffle_gives(pages, doc_factory, mutator, at, run, tmp_path,
                                                        monkeypatch):
    """Decisions put on documents through sorted runs on disk (``spill_dir``, what `lowbg curate` does) and through
    a CoGroupByKey by id: the same documents, decisions and counters, and no run left behind. A run per document
    (a 1-byte spill buffer), so the merge join meets many runs per bucket."""
    from pipeline.dedup import beam_dedup

    planted = plant(pages[:14], doc_factory, mutator, at)
    shuffle, shuffle_counters = run(planted.docs, NearDedup())
    spill = tmp_path / "spill"
    monkeypatch.setattr(beam_dedup, "JOIN_SPILL_BYTES", 1)
    disk, disk_counters = run(planted.docs, NearDedup(spill_dir=str(spill)))

    assert sorted(disk, key=lambda d: d.id) == sorted(shuffle, key=lambda d: d.id)
    assert any(d.rejected for d in disk) and any(not d.rejected for d in disk)
    assert disk_counters == shuffle_counters
    assert spill.is_dir() and not list(spill.iterdir())  # runs were written there, and deleted


def test_exact_mode_leaves_near_copies(pages, doc_factory, mutator, at, run):
    planted = plant(pages[:8], doc_factory, mutator, at)
    settings = DedupSettings(mode="exact")
    out, _ = run(planted.docs, Dedup(settings))
    got = {d.id: d for d in out}
    assert not any(d.reason == REASON_DUPLICATE_NEAR for d in out)
    for i in planted.near_ids:
        assert not got[i].rejected and got[i].dup_cluster_size == 1
    assert got["a-2024"].duplicate_of == got["a-2021"].duplicate_of == "a-2020"
    assert got["b-2024"].duplicate_of == "b-2023" and got["b-2023"].dup_cluster_size == 2
    assert got["f-2"].duplicate_of == "f-1"


def test_no_dedup_annotates_each_document_from_itself(pages, doc_factory, at, run):
    docs = [doc_factory("x1", pages[0], at(2020)), doc_factory("x2", pages[0], at(2024)),
            doc_factory("x3", pages[1], None)]
    settings = DedupSettings(mode="none")
    out, _ = run(docs, Dedup(settings))
    got = {d.id: d for d in out}
    assert len(out) == len(docs) and not any(d.rejected for d in out)
    assert (got["x1"].first_seen, got["x1"].content_provenance, got["x1"].content_provenance_source) == (
        at(2020), "pre_cutoff", "self")
    assert (got["x2"].first_seen, got["x2"].content_provenance) == (at(2024), "post_cutoff")
    assert got["x3"].first_seen is None and got["x3"].content_provenance == "unknown"
    assert got["x1"].dup_cluster_size is None


def test_bad_input(pages, doc_factory, at, run):
    zh = "这是一个没有空格的中文句子，用来测试近似去重的分词方法是否正常工作。" * 3
    docs = [
        doc_factory("blank-1", " \n\t ", at(2020)),  # empty after normalisation: not a cluster of blanks
        doc_factory("blank-2", "\u3000\n", at(2021)),
        doc_factory("short-1", "Three words only", at(2024)),  # shorter than one shingle
        doc_factory("short-2", "three WORDS only", at(2023)),  # ... but an exact copy
        doc_factory("short-3", "three words indeed", at(2019)),  # ... not a near copy: no shingles
        doc_factory("bad-1", pages[2] + " \udc80\udcff", at(2022)),  # lone surrogates (non-UTF-8 remnants)
        doc_factory("bad-2", pages[2] + " \udc80\udcff", at(2021)),
        doc_factory("cjk-1", zh, at(2020)),
        doc_factory("cjk-2", zh + "附加", at(2024)),  # CJK: a character per word, so a near copy
    ]
    out, counters = run(docs, NearDedup())
    got = {d.id: d for d in out}
    assert len(out) == len(docs)
    assert not got["blank-1"].rejected and not got["blank-2"].rejected
    assert got["blank-1"].text_hash is None and got["blank-1"].dup_cluster_size == 1
    assert got["short-1"].duplicate_of == "short-2" and got["short-1"].reason == REASON_DUPLICATE_EXACT
    assert not got["short-3"].rejected
    assert got["bad-1"].duplicate_of == "bad-2"
    assert got["cjk-2"].duplicate_of == "cjk-1" and got["cjk-2"].reason == REASON_DUPLICATE_NEAR
    assert counters["empty_normalised_text"] == 2
    assert counters["no_shingles"] == 3


def test_exact_dedup_alone_on_natural_duplicates(aut_pages, doc_factory, at, run):
    # The 2008 crawl has pages whose extracted text is identical (error pages under different URLs).
    docs = [doc_factory(f"p{i:03d}", p["text"], at(2008, 4, 30), url=p["url"]) for i, p in enumerate(aut_pages)]
    groups: dict[str, list[str]] = {}
    for d in docs:
        groups.setdefault(text_hash(d.text), []).append(d.id)
    assert max(map(len, groups.values())) > 2
    out, counters = run(docs, ExactDedup())
    got = {d.id: d for d in out}
    for ids in groups.values():
        keep = min(ids)
        assert got[keep].dup_cluster_size == len(ids) and not got[keep].rejected
        assert all(got[i].duplicate_of == keep for i in ids if i != keep)
    assert counters["rejected_duplicate_exact"] == sum(len(v) - 1 for v in groups.values())
    assert counters.get("rejected_duplicate_near", 0) == 0


def test_components_match_union_find(run):
    import apache_beam as beam

    from pipeline.dedup.components import ConnectedComponents

    rng = random.Random(5)
    nodes = [f"n{i:03d}" for i in range(300)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(220)]
    edges += [(f"c{i:03d}", f"c{i + 1:03d}") for i in range(100)]  # a long chain, worst case for star rounds
    edges += [("hub", f"h{i:04d}") for i in range(500)]  # a high-degree star
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    want = {}
    for n in set(itertools.chain.from_iterable(edges)):
        want[n] = min(m for m in parent if find(m) == find(n))

    class Run(beam.PTransform):
        def __init__(self, **kw):
            super().__init__()
            self.kw = kw

        def expand(self, pcoll):
            return pcoll | "ToEdges" >> beam.Map(lambda e: e) | "CC" >> ConnectedComponents(**self.kw)

    out, counters = run(edges, Run())
    assert dict(out) == want
    assert counters.get("components_unconverged", 0) == 0
    # Too few rounds for the chain: components split (counted), never merged across true components.
    out, counters = run(edges, Run(rounds=1))
    assert counters["components_unconverged"] > 0
    labels = dict(out)
    assert labels.keys() == want.keys() and labels != want
    assert all(want[n] == want[label] for n, label in labels.items())


def test_near_without_exact_first(pages, doc_factory, mutator, at, run):
    rng = random.Random(8)
    text = pages[3]
    docs = [doc_factory("n-2020", text, at(2020)), doc_factory("n-2024", text, at(2024)),
            doc_factory("n-2019-near", mutator(text, 1, rng), at(2019)), doc_factory("other", pages[4], at(2024))]
    out, counters = run(docs, NearDedup(exact_first=False))
    got = {d.id: d for d in out}
    assert got["n-2019-near"].dup_cluster_size == 3 and not got["other"].rejected
    assert got["n-2020"].duplicate_of == got["n-2024"].duplicate_of == "n-2019-near"
    assert got["n-2020"].reason == got["n-2024"].reason == REASON_DUPLICATE_NEAR
    assert counters["near_verified"] >= 2
