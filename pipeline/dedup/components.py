"""Connected components of the near-duplicate graph as a Beam computation (no worker sees all edges).

Alternating Large-Star / Small-Star rounds (Kiveris et al., "Connected Components in MapReduce and Beyond",
SoCC 2014): each step groups the edges by node and rewires every neighbour to the smallest node it has seen;
at the fixed point every component is a star around its smallest node, which becomes its label. A Beam graph
is static, so the number of rounds is fixed when the pipeline is built. Dedup graphs are nearly stars from the
start (every bucket member is linked to the bucket's smallest member), so a handful of rounds is plenty; a
component that has not converged when the rounds run out is split, never merged wrongly (some duplicates
survive), and the ``components_unconverged`` counter of the dedup stage says so.

Each step streams a node's neighbours twice (minimum first, then the edges out) instead of holding them: a
node with 100k neighbours costs one pass of paging, not 100k ids in memory.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.reasons import DEDUP
from pipeline.steps import StageCounters

DEFAULT_ROUNDS = 8  # a chain of 40 near copies needs 6; real dup components need 1-3


def _both_ways(edge: tuple[str, str]):
    a, b = edge
    yield a, b
    yield b, a


def _canonical(edge: tuple[str, str]):
    a, b = edge
    if a != b:
        yield (a, b) if a < b else (b, a)


def _large_star(element):
    """Link every larger neighbour of ``u`` to the smallest node in ``u``'s closed neighbourhood.

    Edges come out in both directions, keyed for the next step's GroupByKey. Duplicate edges are not removed
    between steps (a Distinct per step would double the shuffles): a step emits at most one edge per incoming
    neighbour (plus one per node in Small-Star), so they cannot pile up, and the final labelling ignores them.
    """
    u, neighbours = element
    m = min(u, min(neighbours))
    for v in neighbours:
        if v > u:
            yield v, m
            yield m, v


def _small_star(element):
    """Link ``u`` and its smaller neighbours to the smallest of them."""
    u, neighbours = element
    m = min(u, min(neighbours))
    for v in neighbours:
        if v < u and v != m:
            yield v, m
            yield m, v
    if m != u:
        yield u, m
        yield m, u


class _Label(beam.DoFn):
    def __init__(self):
        self.counters = StageCounters(DEDUP)

    def process(self, element):
        u, neighbours = element
        m = min(u, min(neighbours))  # pass 1
        # At the fixed point a node is a centre (only larger neighbours) or a leaf (its one neighbour, smaller).
        if m < u and any(v != m for v in neighbours):  # pass 2 (leaves only)
            self.counters.count("components_unconverged")
        yield u, m


class ConnectedComponents(beam.PTransform):
    """PCollection[(node, node)] edges -> PCollection[(node, label)], label = smallest node of the component.

    Only nodes on some edge come out; duplicate and reversed edges are fine.
    """

    def __init__(self, rounds: int = DEFAULT_ROUNDS):
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        e = (edges
             | "Canonical" >> beam.FlatMap(_canonical)
             | "Distinct" >> beam.Distinct()
             | "BothWays" >> beam.FlatMap(_both_ways))
        for i in range(self.rounds):
            for name, fn in ((f"LargeStar{i}", _large_star), (f"SmallStar{i}", _small_star)):
                e = e | f"{name}/GroupByNode" >> beam.GroupByKey() | f"{name}/Rewire" >> beam.FlatMap(fn)
        return e | "Label/GroupByNode" >> beam.GroupByKey() | "Label/Min" >> beam.ParDo(_Label())
