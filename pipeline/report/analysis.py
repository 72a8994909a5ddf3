"""The report's content as one JSON-able dict, from a run's manifest and ``stats/`` (and a baseline's).

Sections: funnel and inputs (manifest), provenance and languages, quality signals, dedup, detectors (flag rates
per group, the threshold), the machine-written share of post-cutoff documents (pipeline/estimators.py; overall,
by crawl, language and top hosts), the excess vocabulary, and the calibration drift check. A section that cannot
be computed says why instead of printing a number; a group smaller than ``min_group`` documents is marked
``too_small``.
"""

from __future__ import annotations

import re

from detectors.base import HIGHER_IS_MACHINE
from detectors.calibration import DEFAULT_TARGET_FPR
from pipeline.estimators import (
    ALPHA,
    Rate,
    drift_check,
    excess_share,
    mixture_lower_bound,
    tpr_corrected,
    word_bounds,
)
from pipeline.quality import QUALITY_REASONS
from pipeline.reasons import (
    REASON_DUPLICATE_EXACT,
    REASON_DUPLICATE_NEAR,
    REASON_EMPTY_TEXT,
    REASON_HTTP_STATUS,
    REASON_LANGUAGE,
    REASON_MACHINE_GENERATED,
    REASON_NON_TEXT,
    REASON_PAYLOAD_TOO_LARGE,
    REASON_UNCERTAIN,
)
from pipeline.report.load import RunData
from pipeline.settings import recorded_settings
from pipeline.stats import POST, POST_OLD, PRE, UNKNOWN, Scale, scale_from_json

MIN_GROUP = 30
TOP_HOSTS = 10
TOP_LANGUAGES = 15
MIN_WORD_DOCS = 5  # a word must be in this many post-cutoff documents to be listed

# Reject reasons in the order the pipeline applies them (extraction, content policy, language, quality, dedup,
# detectors); a reason not listed here goes after the quality ones.
REJECT_ORDER = [REASON_PAYLOAD_TOO_LARGE, REASON_NON_TEXT, REASON_HTTP_STATUS, REASON_EMPTY_TEXT, REASON_LANGUAGE,
                *QUALITY_REASONS, REASON_DUPLICATE_EXACT, REASON_DUPLICATE_NEAR, REASON_MACHINE_GENERATED,
                REASON_UNCERTAIN]

# Words that rose for reasons other than writing tools: world events, products and topics of 2020-2025. Names
# and numbers are found by rule (below); this list catches the common lower-case ones.
TOPICAL_WORDS = frozenset("""
covid coronavirus pandemic pandemics lockdown lockdowns quarantine vaccine vaccines vaccinated vaccination omicron
masks ukraine ukrainian ukrainians russia russian russians invasion war gaza israel hamas chatgpt gpt openai ai
llm llms chatbot chatbots generative inflation recession election elections climate crypto cryptocurrency bitcoin
nft nfts metaverse tiktok zoom remote hybrid streaming
""".split())
_DIGIT = re.compile(r"\d")
ALL_LANGUAGES = object()


def rows(stats: dict, name: str) -> list[dict]:
    table = stats["counts"][name]
    return [dict(zip(table["dims"] + ["n"], row)) for row in table["rows"]]


def hist(group: dict) -> dict[int, int]:
    return dict(zip(group["index"], group["count"]))


# --- funnel and inputs -------------------------------------------------------------------------------------


def reject_rank(reason: str) -> tuple[float, str]:
    if reason in REJECT_ORDER:
        return REJECT_ORDER.index(reason), reason
    return REJECT_ORDER.index(REASON_DUPLICATE_EXACT) - 0.5, reason


def funnel(manifest: dict | None) -> dict | None:
    if not manifest or not isinstance(manifest.get("counts"), dict):
        return None
    c = manifest["counts"]
    stages = [{"stage": "records in", "kind": "in", "n": c["records_in"]}]
    stages += [{"stage": f"skipped: {t}", "kind": "skipped", "n": n} for t, n in sorted(c.get("skipped", {}).items())]
    stages += [{"stage": f"error: {r}", "kind": "error", "n": n}
               for r, n in sorted(c.get("errors_by_reason", {}).items())]
    stages += [{"stage": f"rejected: {r}", "kind": "rejected", "n": n}
               for r, n in sorted(c.get("rejected_by_reason", {}).items(), key=lambda kv: reject_rank(kv[0]))]
    stages.append({"stage": "curated", "kind": "curated", "n": c["curated"]})
    total = c["records_in"] or 1
    for s in stages:
        s["share"] = s["n"] / total
    out = {"records_in": c["records_in"], "curated": c["curated"], "rejected": c["rejected"],
           "skipped": sum(c.get("skipped", {}).values()), "errors": c["errors"], "balanced": manifest.get("balanced"),
           "stages": stages}
    if manifest.get("decided_from"):
        out["decided_from"] = manifest["decided_from"]
        out["source_counts"] = manifest.get("source_counts")
    return out


def inputs(manifest: dict | None) -> list[dict]:
    if not manifest:
        return []
    return [{"path": i["path"], "size": i.get("size"), "records": i.get("records_read"),
             "documents": i.get("documents"), "errors": i.get("errors"),
             "skipped": sum((i.get("skipped") or {}).values()), "notes": list(i.get("notes") or [])}
            for i in manifest.get("inputs", [])]


# --- provenance, languages, signals, dedup ------------------------------------------------------------------


def provenance(stats: dict) -> dict:
    eras: dict[str, int] = {}
    for r in rows(stats, "outcome"):
        eras[r["era"]] = eras.get(r["era"], 0) + r["n"]
    by_crawl: dict = {}
    for r in rows(stats, "crawl"):
        entry = by_crawl.setdefault(r["crawl"], {"crawl": r["crawl"], "total": 0})
        entry[r["era"]] = entry.get(r["era"], 0) + r["n"]
        entry["total"] += r["n"]
    content = rows(stats, "content_provenance")
    old_content = [r for r in content if r["provenance"] != PRE and r["content_provenance"] == PRE]
    by_source: dict = {}
    for r in old_content:
        by_source[r["source"]] = by_source.get(r["source"], 0) + r["n"]
    years: dict = {}
    for r in rows(stats, "capture_year"):
        years.setdefault(r["year"], {"year": r["year"]})[r["provenance"]] = r["n"]
    return {"eras": eras, "by_crawl": sorted(by_crawl.values(), key=lambda e: (e["crawl"] is None, e["crawl"] or "")),
            "by_rule": rows(stats, "provenance"), "content_provenance": content,
            "post_with_old_content": {"total": sum(r["n"] for r in old_content), "by_source": by_source},
            "capture_years": sorted(years.values(), key=lambda e: (e["year"] is None, e["year"] or 0))}


def languages(stats: dict, top: int = TOP_LANGUAGES) -> dict:
    by_lang: dict = {}
    for r in rows(stats, "language"):
        e = by_lang.setdefault(r["language"], {"language": r["language"], "total": 0, "curated": 0, "rejected": 0})
        e["total"] += r["n"]
        e[r["outcome"]] += r["n"]
        e[r["era"]] = e.get(r["era"], 0) + r["n"]
    ranked = sorted(by_lang.values(), key=lambda e: (-e["total"], e["language"] is None, e["language"] or ""))
    other = ranked[top:]
    return {"top": ranked[:top], "other_languages": len(other), "other_documents": sum(e["total"] for e in other)}


def _median(h: dict[int, int], scale: Scale) -> float | None:
    total = sum(h.values())
    if not total:
        return None
    seen = 0
    for k in sorted(h):
        seen += h[k]
        if seen * 2 >= total:
            lo, hi = scale.bounds(k)
            return lo if hi == float("inf") else hi if lo == float("-inf") else (lo + hi) / 2
    return None


def signals(stats: dict) -> list[dict]:
    """The quality signals the run stored (a run computes only the groups its preset and flags ask for)."""
    out = []
    for name, s in stats["signals"].items():
        if not sum(s["curated"]["count"]) + sum(s["rejected"]["count"]):
            continue
        scale = scale_from_json(s["scale"])
        out.append({"signal": name, "scale": s["scale"],
                    **{o: {"n": sum(s[o]["count"]), "median": _median(hist(s[o]), scale), "hist": s[o]}
                       for o in ("curated", "rejected")}})
    return out


def dedup(stats: dict) -> dict:
    sizes = stats["dedup"]["cluster_sizes"]
    removed: dict = {}
    for r in rows(stats, "outcome"):
        if r["reason"] in (REASON_DUPLICATE_EXACT, REASON_DUPLICATE_NEAR):
            removed.setdefault(r["reason"], {})[r["era"]] = r["n"]
    kept = sum(sizes["count"])
    with_copies = sum(c for s, c in zip(sizes["size"], sizes["count"]) if s > 1)
    return {"kept_with_cluster_size": kept, "kept_with_copies": with_copies, "removed": removed,
            "cluster_sizes": sizes, "exact_up_to": stats["dedup"].get("sizes_exact_up_to")}


# --- detectors ----------------------------------------------------------------------------------------------


def _groups(det: dict, by: str) -> list[dict]:
    return [g for g in det["groups"] if g["by"] == by]


def _rate(g: dict) -> dict:
    return Rate.exact(g["flagged"], g["n"]).to_json()


def thresholds_of(run: RunData) -> dict:
    return (run.manifest or {}).get("thresholds") or (run.stats or {}).get("thresholds") or {}


def detector_section(run: RunData, name: str) -> dict:
    det = run.require_stats()["detectors"][name]
    entry = thresholds_of(run).get(name) or {}
    out = {"detector": name, "direction": det.get("direction") or entry.get("direction"), "scale": det["scale"],
           "threshold": entry.get("threshold"), "threshold_ci": entry.get("ci"), "source": entry.get("source"),
           "target_fpr": entry.get("target_fpr"), "n_human": entry.get("n_human"), "models": entry.get("models"),
           "language_thresholds": entry.get("languages") or {}, "note": entry.get("note")}
    out["by_era"] = [{"era": g["era"], **_rate(g)} for g in _groups(det, "era")]
    out["by_crawl"] = [{"era": g["era"], "crawl": g["crawl"], **_rate(g)} for g in _groups(det, "era+crawl")]
    out["by_language"] = sorted(({"era": g["era"], "language": g["language"], **_rate(g)}
                                 for g in _groups(det, "era+language")), key=lambda r: (-r["n"], str(r["language"])))
    out["not_scored"] = [r for r in rows(run.require_stats(), "not_scored") if r["detector"] == name]
    if out["threshold"] is None:
        out["flag_note"] = "no threshold: nothing was flagged; flag rates are 0 by construction"
    return out


def _era_hist(det: dict, era: str) -> tuple[dict[int, int], dict | None]:
    for g in _groups(det, "era"):
        if g["era"] == era:
            return hist(g), g
    return {}, None


def beyond_range(h: dict[int, int], threshold: float, direction: str, scale: Scale) -> tuple[int, int]:
    """(certainly flagged, possibly flagged) at ``threshold`` from a histogram: a bin holding the threshold may
    hold documents on either side."""
    definite = possible = 0
    for k, c in h.items():
        lo, hi = scale.bounds(k)
        if direction == HIGHER_IS_MACHINE:
            definite += c if lo > threshold else 0
            possible += c if hi > threshold else 0
        else:
            definite += c if hi < threshold else 0
            possible += c if lo < threshold else 0
    return definite, possible


def _same_rule(a: dict, b: dict) -> bool:
    def rule(e: dict):
        return e.get("threshold"), sorted((k, v.get("threshold")) for k, v in (e.get("languages") or {}).items())
    return bool(a) and bool(b) and rule(a) == rule(b)


class Reference:
    """Where the human (pre-cutoff) distributions come from: this run, or a baseline run."""

    def __init__(self, run: RunData, baseline: RunData | None):
        self.run, self.baseline = run, baseline
        self.source = baseline or run
        self.kind = "baseline" if baseline else "this run"

    def describe(self) -> dict:
        if self.baseline:
            return {"kind": "baseline", "path": self.baseline.path,
                    "note": f"human reference distributions (detector scores, word frequencies, capture years) are "
                            f"the pre-cutoff documents of the baseline run {self.baseline.path}, not this run's: "
                            "the estimates assume the human part of this crawl looks like that baseline's pages"}
        return {"kind": "this run", "path": self.run.path,
                "note": "human reference distributions are this run's own pre-cutoff documents"}

    def detector(self, name: str) -> tuple[dict | None, str | None]:
        """The reference's stats for detector ``name`` (None and why when unusable)."""
        stats = self.source.stats
        if stats is None:
            return None, f"the baseline {self.source.path} has no stats/"
        det = stats["detectors"].get(name)
        if det is None:
            return None, f"{self.kind} has no scores of detector {name}"
        if self.baseline:
            mine = (thresholds_of(self.run).get(name) or {}).get("models")
            theirs = (thresholds_of(self.baseline).get(name) or {}).get("models")
            if mine and theirs and list(mine) != list(theirs):
                return None, (f"the baseline scored {name} with models {theirs}, this run with {mine}: scores of "
                              "different models are not on one scale")
            if det["scale"] != self.run.require_stats()["detectors"][name]["scale"]:
                return None, "the baseline's score bins differ from this run's"
        return det, None

    def fpr(self, name: str, det_ref: dict, entry: dict, scale: Scale, direction: str,
            language: str | None | object = ALL_LANGUAGES) -> Rate | None:
        """The reference's flag rate under this run's rule (all its pre-cutoff documents, or one language's):
        exact when the reference used the same rule, a range from its histograms otherwise."""
        groups = {g["language"]: g for g in _groups(det_ref, "era+language") if g["era"] == PRE}
        if language is not ALL_LANGUAGES:
            groups = {language: groups[language]} if language in groups else {}
        if not groups:
            return None
        n = sum(g["n"] for g in groups.values())
        if self.baseline is None or _same_rule(entry, thresholds_of(self.baseline).get(name) or {}):
            return Rate.exact(sum(g["flagged"] for g in groups.values()), n)
        lo = hi = 0
        for lang, g in groups.items():
            t = ((entry.get("languages") or {}).get(lang) or entry)["threshold"]
            d, p = beyond_range(hist(g), t, direction, scale)
            lo, hi = lo + d, hi + p
        return Rate(lo, hi, n)


def _cut_value(scale: Scale, cut: int | None, direction: str) -> float | None:
    if cut is None:
        return None
    lo, hi = scale.bounds(cut)
    return lo if direction == HIGHER_IS_MACHINE else hi


def estimates(f: Rate, e: Rate | None, post_hist: dict[int, int], human_hist: dict[int, int], direction: str,
              scale: Scale, tpr: tuple[float, tuple[float, float] | None] | None, min_group: int) -> dict:
    """(a), (b) and (c) for one group, or why not."""
    if f.n < min_group:
        return {"n_post": f.n, "too_small": f"{f.n} post-cutoff documents scored (fewer than {min_group})"}
    n_human = sum(human_hist.values())
    if e is None or e.n < min_group or n_human < min_group:
        have = e.n if e is not None else n_human
        return {"n_post": f.n, "too_small": f"{have} human reference documents (fewer than {min_group})"}
    out = {"n_post": f.n, "n_reference": e.n, "a_excess": excess_share(f, e)}
    b = mixture_lower_bound(post_hist, human_hist, direction)
    b["cut_value"] = _cut_value(scale, b.get("cut"), direction)
    out["b_mixture"] = b
    if tpr is not None:
        out["c_tpr"] = tpr_corrected(f, e, tpr[0], tpr[1])
    return out


def machine_share(run: RunData, ref: Reference, name: str, tpr, min_group: int, top_hosts: int) -> dict:
    det = run.require_stats()["detectors"][name]
    entry = thresholds_of(run).get(name) or {}
    direction = det.get("direction") or entry.get("direction")
    scale = scale_from_json(det["scale"])
    base = {"detector": name, "tpr": {"value": tpr[0], "ci": list(tpr[1]) if tpr[1] else None} if tpr else None}
    if entry.get("threshold") is None or direction is None:
        return {**base, "unavailable": f"{name} has no threshold in this run: no flag rate to correct"}
    det_ref, why = ref.detector(name)
    if det_ref is None:
        return {**base, "unavailable": why}
    human_hist, human_group = _era_hist(det_ref, PRE)
    if human_group is None:
        return {**base, "unavailable": (
            f"{ref.kind} has no pre-cutoff documents scored by {name}: give --baseline PRE_RUN (a run over "
            "pre-cutoff pages scored with the same detector and models) for a human reference")}
    e_all = ref.fpr(name, det_ref, entry, scale, direction)
    post_hist, post_group = _era_hist(det, POST)
    if post_group is None:
        return {**base, "unavailable": f"no post-cutoff documents (new content) were scored by {name}"}
    out: dict = {**base, "fpr_exact": e_all.exact_count if e_all is not None else None, "overall": estimates(
        Rate.exact(post_group["flagged"], post_group["n"]), e_all, post_hist, human_hist, direction, scale, tpr,
        min_group)}
    out["by_crawl"] = [{"crawl": g["crawl"], **estimates(Rate.exact(g["flagged"], g["n"]), e_all, hist(g), human_hist,
                                                        direction, scale, tpr, min_group)}
                       for g in _groups(det, "era+crawl") if g["era"] == POST]
    ref_by_lang = {g["language"]: g for g in _groups(det_ref, "era+language") if g["era"] == PRE}
    by_language = []
    for g in sorted((g for g in _groups(det, "era+language") if g["era"] == POST), key=lambda g: -g["n"]):
        ref_g = ref_by_lang.get(g["language"])
        e_lang = ref.fpr(name, det_ref, entry, scale, direction, g["language"]) if ref_g else None
        row = {"language": g["language"], **estimates(Rate.exact(g["flagged"], g["n"]), e_lang, hist(g),
                                                      hist(ref_g) if ref_g else {}, direction, scale, tpr, min_group)}
        by_language.append(row)
    out["by_language"] = by_language
    hosts = []
    for h in run.require_stats()["hosts"]["rows"]:
        g = h["detectors"].get(name)
        if g is None:
            continue
        hosts.append({"host": h["host"], "documents": h["documents"], **estimates(
            Rate.exact(g["flagged"], g["n"]), e_all, hist(g), human_hist, direction, scale, tpr, min_group)})
        if len(hosts) >= top_hosts:
            break
    out["by_host"] = hosts
    host_stats = run.require_stats()["hosts"]
    out["hosts_note"] = (f"top hosts by post-cutoff documents; hosts outside the top {host_stats['capacity']} "
                         f"of a partial aggregate were dropped ({host_stats['dropped_documents']} documents)")
    return out


def drift(run: RunData, ref: Reference, name: str, min_group: int) -> dict:
    det_ref, why = ref.detector(name)
    entry = thresholds_of(run).get(name) or {}
    if det_ref is None:
        return {"detector": name, "unavailable": why}
    direction = det_ref.get("direction") or entry.get("direction")
    if direction is None:
        return {"detector": name, "unavailable": "the detector's direction is not recorded (no thresholds entry)"}
    recorded = recorded_settings((run.manifest or {}).get("options")).get("decision", {})
    target = entry.get("target_fpr") or recorded.get("target_fpr") or DEFAULT_TARGET_FPR
    by_year = {g["year"]: hist(g) for g in _groups(det_ref, "era+year") if g["era"] == PRE and g["year"] is not None}
    out = {"detector": name, **drift_check(by_year, direction, target, min_group)}
    if "cut" in out:
        out["cut_value"] = _cut_value(scale_from_json(det_ref["scale"]), out["cut"], direction)
        out["reference"] = ref.kind
    return out


# --- words --------------------------------------------------------------------------------------------------


def classify_word(word: str, documents: int, capitalised: int) -> tuple[str, str]:
    """('style' | 'topical', why). Topical: numbers, names (capitalised mid-sentence in at least half the documents
    that contain the word), and a fixed list of event and topic words; everything else counts as style."""
    if _DIGIT.search(word):
        return "topical", "number or year"
    if documents and capitalised * 2 >= documents:
        return "topical", "name (capitalised mid-sentence)"
    if word in TOPICAL_WORDS:
        return "topical", "event or topic word"
    return "style", ""


def _words_table(words: dict | None, era: str, language: str) -> dict | None:
    for t in (words or {}).get("tables", []):
        if t["era"] == era and t["language"] == language:
            return t
    return None


def vocabulary_for(pre: dict, post: dict, markers: list[str], alpha: float = ALPHA) -> dict:
    n_pre, n_post, d_pre = pre["documents"], post["documents"], pre["df_decrement"]
    pre_words = {w: (n, caps) for w, n, caps in pre["words"]}
    found = []
    for w, sp, caps_p in post["words"]:
        if sp < MIN_WORD_DOCS:
            break  # sorted by count
        if not 2 <= len(w) <= 40 or "_" in w:
            continue
        sq, caps_q = pre_words.get(w, (0, 0))
        kind, why = classify_word(w, sp + sq, caps_p + caps_q)
        p, q = sp / n_post, sq / n_pre
        found.append({"word": w, "post_docs": sp, "pre_docs": sq, "post_df": p, "pre_df": q, "excess": p - q,
                      "ratio": p / q if q > 0 else None, "kind": kind, "why": why, "marker": w in markers})
    # Per word, the 95% bound (each word on its own: what ranks the list, by evidence rather than by noise), and
    # the bound simultaneous over every word that could have been picked (at least the summary's capacity).
    m = max(len(found), post.get("capacity") or 0, 1)
    post_counts = [r["post_docs"] for r in found]
    pre_high = [r["pre_docs"] + d_pre for r in found]
    own = word_bounds(post_counts, n_post, pre_high, n_pre, alpha / 2)
    simultaneous = word_bounds(post_counts, n_post, pre_high, n_pre, alpha / (2 * m))
    for r, b, s in zip(found, own, simultaneous):
        r["lower_bound"], r["simultaneous_bound"] = float(b), float(s)
    found.sort(key=lambda r: (-r["lower_bound"], -r["excess"], r["word"]))
    style = [r for r in found if r["kind"] == "style"]
    topical = [r for r in found if r["kind"] == "topical"]
    best = max(style, key=lambda r: r["simultaneous_bound"], default=None)
    single = {"lower_bound": max(0.0, best["simultaneous_bound"]) if best else 0.0,
              "word": best["word"] if best else None, "words_tested": m,
              "note": "simultaneous 95% lower bound over all listed words (Bonferroni)"}
    marker = excess_share(Rate.exact(post["marker_documents"], n_post), Rate.exact(pre["marker_documents"], n_pre))
    return {"n_pre": n_pre, "n_post": n_post, "pre_decrement": d_pre, "post_decrement": post["df_decrement"],
            "style": style[:25], "topical": topical[:15], "risen_words": len([r for r in found if r["excess"] > 0]),
            "single_word_bound": single, "marker_bound": marker,
            "scatter": [{"word": r["word"], "pre_df": r["pre_df"], "post_df": r["post_df"], "kind": r["kind"]}
                        for r in sorted(found, key=lambda r: -r["post_docs"])[:600]]}


def vocabulary(run: RunData, ref: Reference, min_group: int) -> dict:
    if run.words is None:
        return {"unavailable": "no word frequencies in this run's stats/"}
    ref_words = ref.source.words
    if ref_words is None:
        return {"unavailable": f"no word frequencies in {ref.kind}'s stats/"}
    markers = (run.stats or {}).get("words", {}).get("markers", [])
    per_language, skipped = [], []
    for post in sorted((t for t in run.words["tables"] if t["era"] == POST), key=lambda t: -t["documents"]):
        lang = post["language"]
        pre = _words_table(ref_words, PRE, lang)
        if post["documents"] < min_group or pre is None or pre["documents"] < min_group:
            skipped.append({"language": lang, "post_documents": post["documents"],
                            "pre_documents": pre["documents"] if pre else 0,
                            "too_small": f"needs at least {min_group} pre- and post-cutoff documents"})
            continue
        post = {**post, "capacity": run.words.get("capacity")}
        per_language.append({"language": lang, **vocabulary_for(pre, post, markers)})
    if not per_language:
        return {"unavailable": "no language has enough pre- and post-cutoff documents for word frequencies",
                "too_small": skipped}
    return {"languages": per_language, "too_small": skipped, "markers": markers,
            "chars": run.words.get("chars"), "capacity": run.words.get("capacity"),
            "reference": ref.kind}


# --- the whole report ---------------------------------------------------------------------------------------


def headline_detector(run: RunData) -> str | None:
    if not run.stats or not run.stats["detectors"]:
        return None
    best, best_n = None, -1
    order = list(thresholds_of(run)) or list(run.stats["detectors"])
    for name in order:
        det = run.stats["detectors"].get(name)
        if det is None:
            continue
        _, g = _era_hist(det, POST)
        n = g["n"] if g else 0
        if n >= best_n:  # ties go to the later detector in cascade order
            best, best_n = name, n
    return best


def analyse(run: RunData, baseline: RunData | None = None, tprs: dict | None = None, min_group: int = MIN_GROUP,
            top_hosts: int = TOP_HOSTS) -> dict:
    tprs = tprs or {}
    ref = Reference(run, baseline)
    notes = list(run.notes) + [f"baseline: {n}" for n in (baseline.notes if baseline else [])]
    out: dict = {"run": run.path, "label": run.label, "notes": notes, "reference": ref.describe(),
           "min_group": min_group, "funnel": funnel(run.manifest), "inputs": inputs(run.manifest),
           "cutoff": recorded_settings((run.manifest or {}).get("options")).get("provenance", {}).get("cutoff"),
           "stats": run.stats is not None}
    if run.manifest is None:
        out["notes"].append("no manifest: no funnel and no inputs")
    if run.stats is None:
        return out
    headline = headline_detector(run)
    out["headline_detector"] = headline
    out["provenance"] = provenance(run.stats)
    out["languages"] = languages(run.stats)
    out["signals"] = signals(run.stats)
    out["dedup"] = dedup(run.stats)
    out["detectors"] = [detector_section(run, name) for name in run.stats["detectors"]]
    shares, drifts = [], []
    for name in run.stats["detectors"]:
        tpr = tprs.get(name) or (tprs.get(None) if name == headline else None)
        shares.append(machine_share(run, ref, name, tpr, min_group, top_hosts))
        drifts.append(drift(run, ref, name, min_group))
    unused = [k for k in tprs if k is not None and k not in run.stats["detectors"]]
    if unused:
        out["notes"].append(f"--tpr given for detector(s) this run did not use: {', '.join(unused)}")
    out["machine_share"] = shares
    out["drift"] = drifts
    out["vocabulary"] = vocabulary(run, ref, min_group)
    if not run.stats["detectors"]:
        out["notes"].append("this run used no detector (--detectors none): no detector, share or drift sections; "
                            "the excess vocabulary needs none")
    return out


def _overall(analysis: dict, name: str | None) -> dict | None:
    for s in analysis.get("machine_share", []):
        if s["detector"] == name:
            return s.get("overall") or {"unavailable": s.get("unavailable")}
    return None


def compare(analyses: list[dict]) -> dict:
    """Runs side by side: funnel, shares, and the machine-written estimates of each."""
    runs = []
    for a in analyses:
        f = a.get("funnel") or {}
        eras = (a.get("provenance") or {}).get("eras", {})
        total = sum(eras.values()) or 1
        vocab = a.get("vocabulary") or {}
        first_lang = (vocab.get("languages") or [None])[0]
        runs.append({
            "run": a["run"], "label": a["label"], "stats": a["stats"], "notes": a["notes"],
            "funnel": {k: f.get(k) for k in ("records_in", "curated", "rejected", "skipped", "errors", "balanced")},
            "rejected_by_reason": {s["stage"].split(": ", 1)[1]: s["n"] for s in f.get("stages", [])
                                   if s["kind"] == "rejected"},
            "eras": {e: {"n": n, "share": n / total} for e, n in eras.items()},
            "top_languages": [(lang["language"], lang["total"])
                              for lang in (a.get("languages") or {}).get("top", [])[:5]],
            "headline_detector": a.get("headline_detector"),
            "estimates": _overall(a, a.get("headline_detector")),
            "vocabulary": ({"language": first_lang["language"], "marker_bound": first_lang["marker_bound"],
                            "single_word_bound": first_lang["single_word_bound"]} if first_lang else
                           {"unavailable": vocab.get("unavailable")}),
        })
    return {"runs": runs, "reasons": sorted({r for run in runs for r in run["rejected_by_reason"]},
                                            key=reject_rank)}


ERA_LABELS = {PRE: "pre-cutoff", POST: "post-cutoff (new content)", POST_OLD: "post-cutoff, older content",
              UNKNOWN: "unknown"}
