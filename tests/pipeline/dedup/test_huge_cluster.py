"""A boilerplate page repeated 20,000 times (plus near variants) resolves to one survivor.

Nothing in the design keeps a cluster in one list (grouped values are streamed twice), so 100k copies differ
from 20k only in time; the DirectRunner used here does hold each group in memory, so the test stays at 20k.
"""

from __future__ import annotations

import datetime as dt
import random

import apache_beam as beam

from pipeline.dedup import NearDedup

COPIES = 20_000
VARIANTS = 200


def test_twenty_thousand_copies_one_survivor(aut_pages, doc_factory, mutator, run):
    boiler = next(p["text"] for p in aut_pages if 250 <= len(p["text"].split()) <= 400)
    others = [p["text"] for p in aut_pages if p["text"] != boiler and len(p["text"].split()) > 100][:20]
    rng = random.Random(9)
    variants = [mutator(boiler, 1, rng) for _ in range(VARIANTS)]
    start = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)

    def when(i: int) -> dt.datetime:  # spread over ten years; copy 12345 is the earliest of all
        return start + dt.timedelta(minutes=1 + (i * 7919) % (10 * 365 * 24 * 60)) if i != 12345 else start

    class Source(beam.PTransform):
        """Documents made inside the pipeline: a 20k-element Create payload would dwarf the test."""

        def expand(self, seeds):
            def make(i: int):
                if i < COPIES:
                    return doc_factory(f"copy-{i:05d}", boiler, when(i))
                if i < COPIES + VARIANTS:
                    return doc_factory(f"variant-{i:05d}", variants[i - COPIES], when(i))
                return doc_factory(f"other-{i:05d}", others[i - COPIES - VARIANTS], when(i))

            return seeds | "Make" >> beam.Map(make) | "Dedup" >> NearDedup()

    total = COPIES + VARIANTS + len(others)
    out, counters = run(list(range(total)), Source())
    assert len(out) == total
    kept = [d for d in out if not d.rejected]
    survivor = next(d for d in kept if d.text == boiler or d.id.startswith("variant"))
    assert survivor.id == "copy-12345" and survivor.first_seen == start
    assert survivor.dup_cluster_size == COPIES + VARIANTS
    assert len(kept) == 1 + len(others)
    assert all(d.duplicate_of == "copy-12345" for d in out if d.rejected)
    assert counters["rejected_duplicate_exact"] == COPIES - 1
    assert counters["rejected_duplicate_near"] == VARIANTS
