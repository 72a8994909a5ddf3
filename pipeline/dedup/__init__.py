"""Exact and near dedup with provenance-aware survivors, and reference-corpus matching.

Entry point for the pipeline builder: :class:`Dedup` (``Dedup(settings.dedup)``); see
:mod:`pipeline.dedup.beam_dedup` for the contract. ``lowbg index build`` is :func:`index_main`.
"""

from pipeline.dedup.beam_dedup import Dedup, ExactDedup, NearDedup, ReferenceMatch
from pipeline.dedup.minhash import MinHasher, optimal_bands
from pipeline.dedup.normalize import normalize_text, text_hash, word_shingles
from pipeline.dedup.reference import (
    ReferenceIndexError,
    build_reference_index,
    check_reference_index,
    index_main,
)

__all__ = [
    "Dedup", "ExactDedup", "NearDedup", "ReferenceMatch", "MinHasher", "optimal_bands",
    "normalize_text", "text_hash", "word_shingles", "ReferenceIndexError", "build_reference_index",
    "check_reference_index", "index_main",
]
