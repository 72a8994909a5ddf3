"""The harness's own n-gram model as a zero-shot detector: detectors.base.Detector over an NGramModel.

This is the white-box case, the easy one: the detector scores candidates with the very model (generation 0's, or
the previous generation's) whose samples it is asked to find, so it knows the generator's exact next-token
distributions. Real detectors score text from generators they have never seen; do not read these figures as theirs.

The statistics are the detectors library's, computed exactly from the n-gram's next-token distributions p_t at
every predicted position t (each token of the text and the end of the document, as `NGramModel.log_prob` scores):
  likelihood      mean_t log p_t(x_t)                                              higher is machine
  logrank         -mean_t log rank_t(x_t), rank = 1 + #{v : p_t(v) > p_t(x_t)}      higher is machine
  entropy         mean_t H(p_t)                                                    lower is machine
  lrr             -mean_t log p_t(x_t) / mean_t log rank_t(x_t)                    higher is machine
  fast-detectgpt  (sum_t log p_t(x_t) - sum_t mu_t) / sqrt(sum_t var_t), mu_t and var_t the mean and variance of
                  log p_t(X) for X ~ p_t (the analytic one-model criterion)         higher is machine
Texts are normalised as the library's scorers normalise them (detectors.normalize). No torch, no Beam.
"""

from __future__ import annotations

import math

import numpy as np

from collapse.models.ngram import NGramModel
from detectors.base import HIGHER_IS_MACHINE, LOWER_IS_MACHINE, Score, estimate_tokens, unscorable
from detectors.normalize import normalize_text

STATISTICS = {"likelihood": HIGHER_IS_MACHINE, "logrank": HIGHER_IS_MACHINE, "entropy": LOWER_IS_MACHINE,
              "lrr": HIGHER_IS_MACHINE, "fast-detectgpt": HIGHER_IS_MACHINE}


class NGramDetector:
    """A Detector (detectors.base) over a fitted NGramModel; `model_id` names the model for the thresholds file."""

    published_thresholds: dict[str, float] = {}

    def __init__(self, model: NGramModel, statistic: str, model_id: str, min_tokens: int = 2,
                 max_length: int | None = None, chunk_elements: int = 1 << 22) -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"the n-gram white-box detector computes {', '.join(STATISTICS)}, not {statistic!r}")
        self.model = model
        self.name = statistic
        self.direction = STATISTICS[statistic]
        self.model_ids = [model_id]
        self.min_tokens = max(2, int(min_tokens))
        self.max_length = max_length
        self.chunk_elements = chunk_elements

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text, self.max_length)

    def score(self, texts: list[str]) -> list[Score]:
        results: list[Score | None] = [None] * len(texts)
        work, prepared, flags = [], [], []
        for i, text in enumerate(texts):
            norm, changed = normalize_text(text if isinstance(text, str) else "")
            if not norm.strip():
                results[i] = unscorable("empty", normalized=changed)
            else:
                work.append(i)
                prepared.append(norm)
                flags.append(changed)
        if work:
            ids = self.model.encode(prepared)
            truncated = [bool(self.max_length and len(x) > self.max_length) for x in ids]
            if self.max_length:
                ids = [x[: self.max_length] for x in ids]
            values = self._statistic(ids)
            for j, i in enumerate(work):
                tokens = len(ids[j]) + 1  # + the end of the document, which is predicted too
                if tokens < self.min_tokens:
                    results[i] = unscorable("too_short", tokens, truncated[j], flags[j])
                elif not math.isfinite(values[j]):
                    results[i] = unscorable("degenerate", tokens, truncated[j], flags[j])
                else:
                    results[i] = Score(value=float(values[j]), tokens=tokens, truncated=truncated[j],
                                       normalized=flags[j])
        return results  # type: ignore[return-value]

    # ---- the statistics, vectorised over every position of every text --------------------------------------------
    def _statistic(self, ids: list[np.ndarray]) -> np.ndarray:
        m = self.model
        stream, pos, doc = m._stream(ids)
        n_docs = len(ids)
        ll = np.log(m._prob(m._gram_keys(stream, pos)))
        count = np.bincount(doc, minlength=n_docs).astype(np.float64)
        sum_ll = np.bincount(doc, weights=ll, minlength=n_docs)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "likelihood":
                return sum_ll / count
            if self.name in ("logrank", "lrr"):
                sum_lr = np.bincount(doc, weights=self._log_ranks(stream, pos), minlength=n_docs)
                return -sum_lr / count if self.name == "logrank" else np.where(sum_lr > 0, -sum_ll / sum_lr, np.nan)
            mu, var = self._moments(stream, pos)
            if self.name == "entropy":
                return np.bincount(doc, weights=-mu, minlength=n_docs) / count
            sum_mu = np.bincount(doc, weights=mu, minlength=n_docs)
            sum_var = np.bincount(doc, weights=var, minlength=n_docs)
            return np.where(sum_var > 0, (sum_ll - sum_mu) / np.sqrt(sum_var), np.nan)

    def _history_keys(self, stream: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
        """The last `width` tokens before each position as one int64 key (0 when width is 0)."""
        key = np.zeros(len(pos), dtype=np.int64)
        for j in range(width, 0, -1):
            key = key * self.model.V + stream[pos - j]
        return key

    @staticmethod
    def _key_rows(keys: np.ndarray, width: int, V: int) -> np.ndarray:
        """int64 keys back to (rows x width) token histories, as next_token_probs takes them."""
        rows = np.zeros((len(keys), width), dtype=np.int64)
        k = keys.copy()
        for j in range(width - 1, -1, -1):
            rows[:, j] = k % V
            k //= V
        return rows

    def _moments(self, stream: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per position: mu = sum_v p log p (= -entropy) and var = sum_v p (log p)^2 - mu^2 of the next-token
        distribution p, exactly, in time linear in the seen continuations rather than in V per position.

        At the top order k with a seen context h, interpolated Kneser-Ney gives p(w) = a(w) + lam * q(w), where
        a(w) = max(c(h w) - D, 0) / c(h) is non-zero only on the seen continuations S(h), lam = D N1+(h .) / c(h),
        and q = P_{k-1}(. | h'), h' the last k-2 tokens. Off S(h), p = lam q, so with H1 = sum q log q and
        H2 = sum q (log q)^2 over the whole vocabulary (dense, once per distinct h': at most V^(k-2) of them):
            sum p log p      = sum_S [p log p - lam q log(lam q)] + lam (log lam + H1)
            sum p (log p)^2  = sum_S [p (log p)^2 - lam q log(lam q)^2] + lam (log^2 lam + 2 log lam H1 + H2)
        and where h was never seen, p = q and the moments are H1, H2."""
        m = self.model
        k, V = m.order, m.V
        top = m.levels[k - 1]
        # dense lower-order moments, once per distinct h'
        low_keys = self._history_keys(stream, pos, k - 2) if k >= 2 else np.zeros(len(pos), dtype=np.int64)
        low_uniq, low_inv = np.unique(low_keys, return_inverse=True)
        h1 = np.empty(len(low_uniq))
        h2 = np.empty(len(low_uniq))
        rows = max(1, self.chunk_elements // V)
        for a in range(0, len(low_uniq), rows):
            q = m.next_token_probs(self._key_rows(low_uniq[a: a + rows], max(k - 2, 0), V), orders=k - 1)
            logq = np.log(q)
            h1[a: a + rows] = (q * logq).sum(axis=1)
            h2[a: a + rows] = (q * logq * logq).sum(axis=1)
        mu = h1[low_inv.ravel()]
        m2 = h2[low_inv.ravel()]
        # sparse top-order correction, once per distinct seen context h
        ctx = self._history_keys(stream, pos, k - 1) if k >= 2 else np.zeros(len(pos), dtype=np.int64)
        ci, cf = _find_sorted(top.ctx_keys, ctx)
        if cf.any():
            uc, uinv = np.unique(ci[cf], return_inverse=True)
            starts, ends = top.ctx_start[uc], top.ctx_end[uc]
            lengths = ends - starts
            owner = np.repeat(np.arange(len(uc)), lengths)
            gi = np.repeat(starts, lengths) + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths,
                                                                                      lengths))
            gram = top.keys[gi]
            total = top.ctx_total[uc]
            lam = top.discount * top.ctx_types[uc] / total
            lower_grams = [gram % V**j for j in range(1, k)]
            q = m._prob(lower_grams, orders=k - 1) if k >= 2 else np.full(len(gram), 1.0 / V)
            lq = lam[owner] * q
            p = np.maximum(top.counts[gi] - top.discount, 0.0) / total[owner] + lq
            logp, loglq = np.log(p), np.log(lq)
            c1 = np.bincount(owner, weights=p * logp - lq * loglq, minlength=len(uc))
            c2 = np.bincount(owner, weights=p * logp * logp - lq * loglq * loglq, minlength=len(uc))
            # the lower-order moments of each context's h' (h' = the last k-2 tokens of h)
            low_of_ctx = np.searchsorted(low_uniq, top.ctx_keys[uc] % V ** max(k - 2, 0) if k >= 2 else
                                         np.zeros(len(uc), dtype=np.int64))
            H1, H2 = h1[low_of_ctx], h2[low_of_ctx]
            log_lam = np.log(lam)
            mu_c = c1 + lam * (log_lam + H1)
            m2_c = c2 + lam * (log_lam**2 + 2 * log_lam * H1 + H2)
            seen = np.nonzero(cf)[0]
            mu[seen] = mu_c[uinv.ravel()]
            m2[seen] = m2_c[uinv.ravel()]
        return mu, np.maximum(m2 - mu**2, 0.0)

    def _log_ranks(self, stream: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """log rank of the observed token among the full next-token distribution, dense once per distinct history
        (a chunk of histories at a time to bound memory)."""
        m = self.model
        width = max(m.order - 1, 1)
        keys = self._history_keys(stream, pos, width)
        uniq, inverse = np.unique(keys, return_inverse=True)
        inverse = inverse.ravel()
        by_hist = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[by_hist], np.arange(len(uniq) + 1))
        out = np.zeros(len(pos))
        rows = max(1, self.chunk_elements // m.V)
        for start in range(0, len(uniq), rows):
            stop = min(start + rows, len(uniq))
            p = m.next_token_probs(self._key_rows(uniq[start:stop], width, m.V))
            at = by_hist[bounds[start]: bounds[stop]]  # the positions whose history is in this chunk
            for a in range(0, len(at), rows):  # a [positions, V] comparison, a chunk at a time
                sub = at[a: a + rows]
                r = inverse[sub] - start
                px = p[r, stream[pos[sub]]]
                out[sub] = np.log1p((p[r] > px[:, None] * (1 + 1e-12)).sum(axis=1))
        return out


def _find_sorted(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), dtype=np.int64), np.zeros(len(queries), dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return idx, sorted_keys[idx] == queries
