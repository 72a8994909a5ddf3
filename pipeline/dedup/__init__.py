"""Exact and near dedup with provenance-aware survivors, and reference-corpus matching.

Entry point for the pipeline builder: :class:`Dedup` (``Dedup(settings.dedup)``); see
:mod:`pipeline.dedup.beam_dedup` for the contract. ``lowbg index build|extend`` is :func:`index_main`
(:mod:`pipeline.dedup.index_build`).
"""

from pipeline.dedup.beam_dedup import Dedup, ExactDedup, NearDedup, ReferenceMatch
from pipeline.dedup.minhash import MinHasher, optimal_bands
from pipeline.dedup.normalize import normalize_text, text_hash, word_shingles
from pipeline.dedup.reference import IndexReader, ReferenceIndexError, check_reference_index, index_main

__all__ = [
    "Dedup", "ExactDedup", "NearDedup", "ReferenceMatch", "MinHasher", "optimal_bands",
    "normalize_text", "text_hash", "word_shingles", "ReferenceIndexError", "IndexReader",
    "check_reference_index", "index_main",
]
