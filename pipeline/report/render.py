"""HTML (one self-contained file: inline CSS, PNG figures as data URIs, no script, no network) and Markdown.

Every string that can come from a page or an input (URLs, hosts, words, crawl ids, paths, languages, notes) goes
through :func:`esc` (HTML) or :func:`md` (Markdown); the HTML also carries a Content-Security-Policy that allows
no script and no network, so even a missed escape could not run anything or fetch anything.
"""

from __future__ import annotations

import base64
import html
import math

from pipeline.report import figures
from pipeline.report.analysis import ERA_LABELS, hist
from pipeline.report.load import RunData
from pipeline.stats import POST, POST_OLD, PRE, UNKNOWN

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin-top:1.3em}table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em;margin:.5em 0}
.small{font-size:.85em;color:#555}.headline{background:#eef6ff;border-left:4px solid #1f77b4;padding:.6em .9em}
code{background:#f4f4f4;padding:0 .2em}nav a{margin-right:.8em}
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def md(value) -> str:
    """Markdown-safe text: no raw HTML, no table breaks, no links or emphasis from the data."""
    s = "" if value is None else str(value)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ").replace("\r", " ")
    for ch in "\\`*_[]|#!":
        s = s.replace(ch, "\\" + ch)
    return s


def pct(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def interval(ci, digits: int = 1) -> str:
    if not ci or ci[0] is None:
        return "–"
    return f"[{pct(ci[0], digits)}, {pct(ci[1], digits)}]"


def num(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.6g}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def label(value, none: str = "(none)") -> str:
    return none if value is None else str(value)


ASSUMPTIONS = {
    "a": ("(a) Excess flag rate, (f_post − FPR) / (1 − FPR): a lower bound on the machine-written share whatever "
          "the detector's true-positive rate, because a machine-written page is flagged at most always. It assumes "
          "the human part of the post-cutoff crawl is flagged at the rate the human reference (pre-cutoff pages) "
          "is; if human writing itself drifted toward higher scores, it overstates. Interval: Clopper–Pearson on "
          "both rates, combined conservatively."),
    "b": ("(b) Mixture-proportion lower bound (Blanchard, Lee & Scott 2010): the post-cutoff score distribution is "
          "(1 − π)·human + π·machine with the human one taken from the reference, so at every threshold the human "
          "side can hold at most its human share; the best threshold gives the bound. DKW bands on both empirical "
          "distributions hold for all thresholds at once, so this is a valid 95% lower confidence bound (not a "
          "selected one); it assumes the same human distribution as (a) and nothing about the machine one."),
    "c": ("(c) TPR-corrected estimate, (f_post − FPR) / (TPR − FPR): a point estimate with a 95% interval, "
          "available only when you give the detector's true-positive rate at this run's threshold (--tpr). It "
          "assumes that TPR holds for this crawl's machine text (generators, genres, lengths); a TPR measured on "
          "other generators makes it wrong in either direction."),
}
VOCAB_TEXT = (
    "Excess vocabulary (Kobak et al. 2025): words whose document frequency rose from pre- to post-cutoff pages. "
    "For a word (or set of words) used by a share q of human documents and by at most all machine-processed "
    "ones, the post-cutoff frequency p gives the bound (p − q)/(1 − q) on the share of machine-processed "
    "documents, with no detector and no GPU. Topical words rise for other reasons and are set apart: words with a "
    "digit (numbers, years), names (capitalised mid-sentence in at least half the documents containing them), "
    "and a fixed list of event and topic words (covid, ukraine, chatgpt, ...); the rest are called style words. "
    "The rule cannot see topical common nouns, so read the style list with that in mind. Two bounds are given: "
    "the pre-registered marker set (a fixed list of LLM-favoured style words, chosen before looking at any run: "
    "the share of documents containing any of them, so nothing is selected on the data), and the best single "
    "style word (simultaneous over all words tested, Bonferroni). Both assume human usage of these words did not "
    "change between the two periods.")
DRIFT_TEXT = (
    "The thresholds hold their false-positive rate on post-cutoff human text only if human scores do not drift. "
    "Pre-cutoff documents are split by capture year; the threshold calibrated (on the bins, same rule as the "
    "pipeline) on all older years is applied to the newest year. Its false-positive rate there, with a "
    "Clopper–Pearson interval, says how far the run's thresholds can be trusted one period ahead; the "
    "Kolmogorov–Smirnov distance compares the two score distributions (on the bins: a lower bound of the "
    "unbinned one).")


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _table(headers: list[str], rows: list[list], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f'<th class="n">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="n">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(md(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


class Doc:
    """Builds the HTML and the Markdown side by side, so both say the same."""

    def __init__(self):
        self.html: list[str] = []
        self.md: list[str] = []

    def h(self, level: int, text: str, anchor: str | None = None) -> None:
        ident = f' id="{esc(anchor)}"' if anchor else ""
        self.html.append(f"<h{level}{ident}>{esc(text)}</h{level}>")
        self.md.append("\n" + "#" * level + " " + md(text) + "\n")

    def p(self, text: str, cls: str | None = None) -> None:
        c = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{c}>{esc(text)}</p>")
        self.md.append(("> " if cls in ("note", "headline") else "") + md(text) + "\n")

    def table(self, headers: list[str], rows: list[list], numeric: set[int] | None = None) -> None:
        self.html.append(_table(headers, rows, numeric))
        self.md.append(_md_table(headers, rows) + "\n")

    def figure(self, png: bytes, alt: str, caption: str) -> None:
        self.html.append(_img(png, alt, caption))
        self.md.append(f"*Figure: {md(caption)} (in index.html)*\n")

    def raw_html(self, fragment: str) -> None:
        self.html.append(fragment)


def _estimate_cells(e: dict) -> list[str]:
    if "too_small" in e:
        return [f"too small: {e['too_small']}", "", "", ""]
    a, b, c = e["a_excess"], e["b_mixture"], e.get("c_tpr")
    if c is None:
        c_text = "no --tpr"
    elif "unavailable" in c:
        c_text = c["unavailable"]
    else:
        c_text = f"{pct(c['estimate'])} {interval(c['ci'])}"
    return [f"{pct(a['f_post']['rate'])} of {num(e['n_post'])}",
            f"{pct(a['estimate'])} {interval(a['ci'])}",
            f"≥ {pct(b['lower_bound'])} (plug-in {pct(b['estimate'])})", c_text]


ESTIMATE_HEADERS = ["flagged post-cutoff", "(a) excess flag rate, 95% CI", "(b) mixture bound (95%)",
                    "(c) TPR-corrected, 95% CI"]


def _era_name(era: str) -> str:
    return ERA_LABELS.get(era, era)


def render_run(doc: Doc, a: dict, run: RunData, reference: RunData) -> None:
    """Append one run's report to ``doc``."""
    doc.h(1, f"lowbackground run report: {a['label']}")
    doc.p(f"Run: {a['run']}. Cut-off: {a.get('cutoff') or 'unknown'}. This report was made from the run's "
          "manifest and stats/ only; it read no shard.", "small")
    doc.raw_html('<nav><a href="#summary">Summary</a><a href="#funnel">Funnel</a><a href="#provenance">'
                 'Provenance</a><a href="#quality">Quality</a><a href="#detectors">Detectors</a><a href="#share">'
                 'Machine-written share</a><a href="#vocabulary">Vocabulary</a><a href="#drift">Drift</a></nav>')
    if a.get("about"):
        doc.p(f"About this run: {a['about']}", "headline")
    for note in a["notes"]:
        doc.p(f"Note: {note}", "note")
    doc.p(f"Human reference: {a['reference']['note']}.", "note" if a["reference"]["kind"] == "baseline" else "small")
    _summary(doc, a)
    _funnel(doc, a)
    if not a["stats"]:
        return
    _provenance(doc, a)
    _quality(doc, a)
    _detectors(doc, a, run, reference)
    _shares(doc, a)
    _vocabulary(doc, a)
    _drift(doc, a, reference)


def _summary(doc: Doc, a: dict) -> None:
    doc.h(2, "Summary", "summary")
    f = a.get("funnel")
    if f:
        doc.p(f"{f['records_in']:,} records in: {f['curated']:,} curated, {f['rejected']:,} rejected, "
              f"{f['skipped']:,} skipped (not documents), {f['errors']:,} errors; "
              f"{'balanced' if f['balanced'] else 'NOT balanced'}.")
    if not a["stats"]:
        return
    name = a.get("headline_detector")
    share = next((s for s in a.get("machine_share", []) if s["detector"] == name), None)
    if share and "overall" in share:
        e = share["overall"]
        if "too_small" in e:
            doc.p(f"Machine-written share of post-cutoff documents ({name}): too small for an estimate "
                  f"({e['too_small']}).", "headline")
        else:
            text = (f"Machine-written share of post-cutoff documents ({name}, n={e['n_post']:,}): (a) at least "
                    f"{pct(e['a_excess']['ci'][0])} (estimate {pct(e['a_excess']['estimate'])}); (b) at least "
                    f"{pct(e['b_mixture']['lower_bound'])}")
            c = e.get("c_tpr")
            if c and "ci" in c:
                text += f"; (c) {pct(c['estimate'])} {interval(c['ci'])} with TPR {c['tpr']:.3g}"
            doc.p(text + ".", "headline")
    elif share:
        doc.p(f"Machine-written share ({name}): {share.get('unavailable')}", "headline")
    v = a.get("vocabulary") or {}
    if v.get("languages"):
        first = v["languages"][0]
        doc.p(f"Excess vocabulary ({first['language']}): marker words imply at least "
              f"{pct(first['marker_bound']['ci'][0])} machine-processed post-cutoff documents (estimate "
              f"{pct(first['marker_bound']['estimate'])}); the best single style word "
              f"({first['single_word_bound']['word'] or '–'}) at least "
              f"{pct(first['single_word_bound']['lower_bound'])}.", "headline")
    for d in a.get("drift", []):
        if "fpr_newest" in d:
            doc.p(f"Drift ({d['detector']}): the threshold calibrated on {_years(d['older_years'])} flags "
                  f"{pct(d['fpr_newest'])} {interval(d['fpr_newest_ci'])} of {d['newest_year']}'s human documents "
                  f"(target {pct(d['target_fpr'])}); KS distance {d['ks_ks']:.3f}.", "headline")


def _years(years: list[int]) -> str:
    return f"{years[0]}–{years[-1]}" if len(years) > 1 else str(years[0])


def _funnel(doc: Doc, a: dict) -> None:
    doc.h(2, "Funnel", "funnel")
    f = a.get("funnel")
    if not f:
        doc.p("No manifest: the funnel is unknown.", "note")
        return
    if f.get("decided_from"):
        doc.p(f"This run re-decided the curated and rejected shards of {f['decided_from']} (lowbg decide): "
              "records in are those documents; skipped records and errors stayed with the source run.", "note")
    doc.figure(figures.funnel(f), "funnel", "Records in, then skipped (by record type), errors (by reason), "
                                            "rejected (by reason, in pipeline order) and curated.")
    doc.table(["stage", "records", "share of records in"],
              [[s["stage"], f"{s['n']:,}", pct(s["share"])] for s in f["stages"]], {1, 2})
    if a["inputs"]:
        doc.h(3, "Inputs")
        doc.table(["file", "bytes", "records", "documents", "skipped", "errors", "notes"],
                  [[i["path"], num(i["size"]), num(i["records"]), num(i["documents"]), num(i["skipped"]),
                    num(i["errors"]), "; ".join(i["notes"])] for i in a["inputs"]], {1, 2, 3, 4, 5})


def _provenance(doc: Doc, a: dict) -> None:
    p = a["provenance"]
    doc.h(2, "Provenance and languages", "provenance")
    eras = [PRE, POST, POST_OLD, UNKNOWN]
    doc.table(["era", "documents"], [[_era_name(e), f"{p['eras'].get(e, 0):,}"] for e in eras if p["eras"].get(e)],
              {1})
    groups = [{**g, "label": label(g["crawl"], "(no crawl id)")} for g in p["by_crawl"]]
    doc.figure(figures.eras_by(groups, "label", "Documents by crawl and capture provenance", eras), "crawls",
               "Documents (after extraction) by crawl, coloured by era.")
    doc.table(["crawl", *[_era_name(e) for e in eras], "total"],
              [[label(g["crawl"], "(no crawl id)"), *[f"{g.get(e, 0):,}" for e in eras], f"{g['total']:,}"]
               for g in p["by_crawl"]], {1, 2, 3, 4, 5})
    doc.h(3, "Capture provenance by rule")
    doc.table(["provenance", "rule", "documents"],
              [[r["provenance"], label(r["rule"]), f"{r['n']:,}"] for r in p["by_rule"]], {2})
    doc.h(3, "Content provenance")
    old = p["post_with_old_content"]
    doc.p(f"{old['total']:,} documents captured after the cutoff (or with unknown capture time) carry content seen "
          f"before it: " + (", ".join(f"{n:,} via {label(s)}" for s, n in sorted(old["by_source"].items(),
                                                                                   key=lambda kv: str(kv[0])))
                            or "none") +
          " (cluster: an older copy in this run; reference: the pre-cutoff reference index).")
    doc.table(["capture provenance", "content provenance", "evidence", "documents"],
              [[r["provenance"], label(r["content_provenance"], "(not set: rejected before dedup)"), label(r["source"]),
                f"{r['n']:,}"] for r in p["content_provenance"]], {3})
    doc.h(3, "Capture years")
    doc.table(["year", "pre-cutoff", "post-cutoff", "unknown"],
              [[label(y["year"], "(no date)"), num(y.get(PRE, 0)), num(y.get("post_cutoff", 0)),
                num(y.get(UNKNOWN, 0))] for y in p["capture_years"]], {1, 2, 3})
    langs = a["languages"]
    doc.h(3, "Languages")
    groups = [{**g, "label": label(g["language"], "(none: rejected before language ID, or ID off)")}
              for g in langs["top"]]
    if groups:
        doc.figure(figures.eras_by(groups, "label", "Documents by language and era", eras), "languages",
                   "Top languages (fastText lid.176) by era.")
    doc.table(["language", "documents", "curated", "rejected", "pre-cutoff", "post-cutoff"],
              [[label(g["language"], "(no language)"), f"{g['total']:,}", f"{g['curated']:,}", f"{g['rejected']:,}",
                f"{g.get(PRE, 0):,}", f"{g.get(POST, 0):,}"] for g in langs["top"]], {1, 2, 3, 4, 5})
    if langs["other_languages"]:
        doc.p(f"{langs['other_languages']} other languages: {langs['other_documents']:,} documents.", "small")


def _quality(doc: Doc, a: dict) -> None:
    doc.h(2, "Quality signals and dedup", "quality")
    if a["signals"]:
        doc.figure(figures.signals(a["signals"]), "quality signals",
                   "Distribution of each quality signal, curated vs rejected documents (fixed bins).")
        doc.table(["signal", "curated (n)", "curated median", "rejected (n)", "rejected median"],
                  [[s["signal"], f"{s['curated']['n']:,}", num(s["curated"]["median"]), f"{s['rejected']['n']:,}",
                    num(s["rejected"]["median"])] for s in a["signals"]], {1, 2, 3, 4})
    else:
        doc.p("No quality signal was computed in this run: a run stores the signal groups its --quality-preset, "
              "--min-words and --quality-signals ask for, and this one asked for none.", "small")
    d = a["dedup"]
    doc.h(3, "Dedup")
    removed = ", ".join(f"{reason}: " + ", ".join(f"{n:,} {_era_name(e)}" for e, n in sorted(by.items()))
                        for reason, by in sorted(d["removed"].items())) or "none"
    doc.p(f"{d['kept_with_cluster_size']:,} kept documents went through dedup; {d['kept_with_copies']:,} of them had "
          f"copies. Copies removed: {removed}. The earliest capture of each cluster is kept.")
    doc.figure(figures.cluster_sizes(d["cluster_sizes"]), "dedup cluster sizes", "Cluster size of each kept document "
               f"(sizes above {d['exact_up_to']} rounded down to a power of two).")


def _detectors(doc: Doc, a: dict, run: RunData, reference: RunData) -> None:
    doc.h(2, "Detectors", "detectors")
    if not a["detectors"]:
        doc.p("This run used no detector.")
        return
    for d in a["detectors"]:
        name = d["detector"]
        doc.h(3, name)
        if d["threshold"] is not None:
            doc.p(f"Threshold {num(d['threshold'])} (95% CI {num((d['threshold_ci'] or [None])[0])} to "
                  f"{num((d['threshold_ci'] or [None, None])[1])}), direction {d['direction']}, target "
                  f"false-positive rate {pct(d['target_fpr'])}: {d['source']}; {num(d['n_human'])} human documents. "
                  f"Models: {', '.join(d['models'] or [])}.")
        else:
            doc.p(f"No threshold: {d.get('note') or d.get('flag_note')}", "note")
        if d.get("note") and d["threshold"] is not None:
            doc.p(d["note"], "small")
        det = run.require_stats()["detectors"][name]
        series = []
        for g in det["groups"]:
            if g["by"] == "era" and g["era"] in (PRE, POST, POST_OLD):
                series.append((f"{_era_name(g['era'])} (this run)" if reference is not run else _era_name(g["era"]),
                               hist(g), figures.COLORS[g["era"]]))
        if reference is not run and reference.stats and name in reference.stats["detectors"]:
            for g in reference.stats["detectors"][name]["groups"]:
                if g["by"] == "era" and g["era"] == PRE:
                    series.append(("pre-cutoff (baseline)", hist(g), figures.COLORS["reference"]))
        doc.figure(figures.score_distributions(series, d["scale"], d["threshold"], d["threshold_ci"],
                                               f"{name}: scores before and after the cutoff"),
                   f"{name} score distributions", "Share of documents per score bin, by era; dashed: the run's "
                   "threshold, shaded: its 95% CI.")
        doc.table(["group", "documents scored", "flagged", "flag rate", "95% CI"],
                  [[_era_name(r["era"]), f"{r['n']:,}", num(r["flagged"]), pct(r["rate"], 2), interval(r["ci"], 2)]
                   for r in d["by_era"]], {1, 2, 3})
        crawls = [r for r in d["by_crawl"] if r["era"] in (PRE, POST)]
        if crawls:
            doc.table(["crawl", "era", "documents scored", "flag rate", "95% CI"],
                      [[label(r["crawl"], "(no crawl id)"), _era_name(r["era"]), f"{r['n']:,}", pct(r["rate"], 2),
                        interval(r["ci"], 2)] for r in crawls], {2, 3})
        calibrated = set(d["language_thresholds"])
        langs = [r for r in d["by_language"] if r["era"] in (PRE, POST)
                 and (r["language"] in calibrated or not calibrated)][:20]
        if langs:
            doc.p("Flag rates per language" + (" (languages with their own threshold)" if calibrated else
                                               " (no per-language threshold in this run: the global one applies)"))
            doc.table(["language", "era", "own threshold", "documents scored", "flag rate", "95% CI"],
                      [[label(r["language"], "(no language)"), _era_name(r["era"]),
                        num((d["language_thresholds"].get(r["language"]) or {}).get("threshold")), f"{r['n']:,}",
                        pct(r["rate"], 2), interval(r["ci"], 2)] for r in langs], {3, 4})
        if d["not_scored"]:
            doc.p("Not scored: " + ", ".join(f"{r['reason']}: {r['n']:,}" for r in d["not_scored"]), "small")


def _shares(doc: Doc, a: dict) -> None:
    doc.h(2, "Machine-written share of post-cutoff documents", "share")
    doc.p("Post-cutoff documents here are those captured after the cutoff whose content was not seen before it "
          "(copies of older pages are human-era and excluded), among those the detector scored.")
    for key in ("a", "b", "c"):
        doc.p(ASSUMPTIONS[key])
    if not a["machine_share"]:
        doc.p("This run used no detector: see the excess vocabulary below for a detector-free bound.", "note")
    for s in a["machine_share"]:
        name = s["detector"]
        doc.h(3, name)
        if "unavailable" in s:
            doc.p(f"No estimate: {s['unavailable']}", "note")
            continue
        if not s["fpr_exact"]:
            doc.p("The reference's false-positive rate at this run's threshold comes from its histogram: the bin "
                  "that holds the threshold is counted as flagged for the upper end of the interval.", "small")
        rows = [("all post-cutoff", s["overall"])]
        rows += [(f"crawl {label(r['crawl'], '(no crawl id)')}", r) for r in s["by_crawl"]]
        rows += [(f"language {label(r['language'], '(no language)')}", r) for r in s["by_language"]]
        rows += [(f"host {label(r['host'] or None, '(no host)')}", r) for r in s["by_host"]]
        doc.figure(figures.shares(rows, f"{name}: machine-written share of post-cutoff documents"),
                   f"{name} machine-written share", "Per group: (a) interval, (b) lower bound, (c) interval when a "
                   "TPR was given. Groups too small for an estimate are left out of the figure and marked in the "
                   "table.")
        doc.table(["group", *ESTIMATE_HEADERS], [[g, *_estimate_cells(e)] for g, e in rows])
        doc.p(s["hosts_note"], "small")


def _vocabulary(doc: Doc, a: dict) -> None:
    doc.h(2, "Excess vocabulary", "vocabulary")
    doc.p(VOCAB_TEXT)
    v = a["vocabulary"]
    if "unavailable" in v:
        doc.p(f"Not available: {v['unavailable']}", "note")
    for lang in v.get("languages", []):
        doc.h(3, f"Language: {lang['language']}")
        doc.p(f"{lang['n_pre']:,} pre-cutoff and {lang['n_post']:,} post-cutoff documents (first {v['chars']:,} "
              f"characters of each); {lang['risen_words']:,} listed words rose. Word counts are a bounded summary "
              f"of {v['capacity']:,} words per group: a count can be low by at most {lang['pre_decrement']:,} "
              f"(pre) and {lang['post_decrement']:,} (post) documents.", "small")
        m, s = lang["marker_bound"], lang["single_word_bound"]
        doc.table(["bound", "pre-cutoff", "post-cutoff", "lower bound (95%)", "estimate"],
                  [["any pre-registered marker word", pct(m["fpr"]["rate"]), pct(m["f_post"]["rate"]),
                    pct(m["ci"][0]), pct(m["estimate"])],
                   [f"best single style word ({s['word'] or '–'}; {s['words_tested']:,} tested)", "", "",
                    pct(s["lower_bound"]), ""]], {1, 2, 3, 4})
        doc.figure(figures.vocabulary(lang, f"Document frequency of words before vs after the cutoff "
                                            f"({lang['language']})"),
                   f"excess vocabulary {lang['language']}", "Each point a word; red: style words, grey: topical "
                   "(numbers, names, event words). Above the dotted line: more frequent after the cutoff.")
        doc.p("Style words by the strength of their rise: ranked by each word's own 95% lower bound on "
              "(p − q)/(1 − q), so a rise seen in a handful of documents does not outrank a steady one.", "small")
        doc.table(["style word", "pre-cutoff docs", "post-cutoff docs", "excess (pp)", "ratio", "own 95% bound",
                   "marker"],
                  [[r["word"], f"{pct(r['pre_df'])} ({r['pre_docs']:,})", f"{pct(r['post_df'])} ({r['post_docs']:,})",
                    f"{100 * r['excess']:.2f}", num(r["ratio"]), pct(max(0.0, r["lower_bound"])),
                    "yes" if r["marker"] else ""] for r in lang["style"]], {1, 2, 3, 4, 5})
        doc.table(["topical word", "why", "pre-cutoff docs", "post-cutoff docs", "excess (pp)"],
                  [[r["word"], r["why"], f"{pct(r['pre_df'])}", f"{pct(r['post_df'])}", f"{100 * r['excess']:.2f}"]
                   for r in lang["topical"]], {2, 3, 4})
    for t in v.get("too_small", []):
        doc.p(f"Language {label(t['language'])}: too small ({t['pre_documents']:,} pre-cutoff, "
              f"{t['post_documents']:,} post-cutoff documents; {t['too_small']}).", "small")


def _drift(doc: Doc, a: dict, reference: RunData) -> None:
    doc.h(2, "Calibration drift check", "drift")
    doc.p(DRIFT_TEXT)
    for d in a["drift"]:
        doc.h(3, d["detector"])
        if "unavailable" in d:
            doc.p(f"Not available: {d['unavailable']}", "note")
            continue
        verdict = ("inside" if d["target_inside_ci"] else "OUTSIDE")
        doc.p(f"Calibrated on {_years(d['older_years'])} ({d['n_older']:,} documents, {pct(d['fpr_older'], 2)} "
              f"flagged there), applied to {d['newest_year']} ({d['n_newest']:,} documents): false-positive rate "
              f"{pct(d['fpr_newest'], 2)} {interval(d['fpr_newest_ci'], 2)}; the target {pct(d['target_fpr'], 2)} "
              f"is {verdict} the interval. KS distance {d['ks_ks']:.3f} (p = {d['ks_p_value']:.3g}; 95% critical "
              f"value {d['ks_critical_95']:.3f}).", "headline" if not d["target_inside_ci"] else None)
        det = reference.require_stats()["detectors"][d["detector"]]
        by_year = {g["year"]: hist(g) for g in det["groups"] if g["by"] == "era+year" and g["era"] == PRE
                   and g["year"] is not None}
        doc.figure(figures.drift(by_year, det["scale"], det.get("direction") or "higher_is_machine",
                                 d.get("cut_value"), d["newest_year"], f"{d['detector']}: pre-cutoff scores by "
                                                                       "capture year"),
                   f"{d['detector']} drift", "Cumulative score distribution of pre-cutoff documents per capture "
                   "year; dashed: the threshold calibrated on the older years.")
        doc.table(["capture year", "documents", "flagged at that threshold", "rate"],
                  [[y["year"], f"{y['n']:,}", num(y["flagged"]), pct(y["rate"], 2)] for y in d["per_year"]],
                  {1, 2, 3})


def render_compare(doc: Doc, comparison: dict) -> None:
    runs = comparison["runs"]
    doc.h(1, f"lowbackground: {len(runs)} runs side by side")
    doc.p("Made from each run's manifest and stats/ only; no shard was read. Each run's full report (provenance, "
          "detectors, vocabulary, drift): lowbg report RUN.", "small")
    if comparison.get("about"):
        doc.p(f"About these runs: {comparison['about']}", "headline")
    for r in runs:
        for note in r["notes"]:
            doc.p(f"{r['label']}: {note}", "note")
    doc.h(2, "Funnel", "funnel")
    doc.figure(figures.compare_funnel(runs, comparison["reasons"]), "funnel per run",
               "Share of each run's records that were curated, rejected, skipped and errors.")
    headers = ["", *[r["label"] for r in runs]]
    table = [[k, *[num(r["funnel"].get(k)) for r in runs]] for k in ("records_in", "curated", "rejected", "skipped",
                                                                      "errors")]
    table += [[f"rejected: {reason}", *[num(r["rejected_by_reason"].get(reason, 0)) for r in runs]]
              for reason in comparison["reasons"]]
    doc.table(headers, table, set(range(1, len(headers))))
    doc.h(2, "Shares", "shares")
    eras = [PRE, POST, POST_OLD, UNKNOWN]
    doc.table(headers, [[_era_name(e), *[pct((r["eras"].get(e) or {}).get("share")) for r in runs]] for e in eras]
              + [["top languages", *[", ".join(f"{label(lang, '(none)')} {n:,}" for lang, n in r["top_languages"])
                                     for r in runs]]], set(range(1, len(headers))))
    doc.h(2, "Machine-written share of post-cutoff documents", "share")
    for key in ("a", "b", "c"):
        doc.p(ASSUMPTIONS[key], "small")
    doc.figure(figures.compare_estimates(runs), "estimates per run", "Per run, the headline detector's (a) "
               "interval, (b) lower bound and (c) interval when a TPR was given.")
    rows = []
    for r in runs:
        e = r.get("estimates") or {}
        name = r.get("headline_detector") or "–"
        if not e or "unavailable" in e:
            rows.append([r["label"], name, f"no estimate: {e.get('unavailable') if e else 'no stats/'}", "", "", ""])
        else:
            rows.append([r["label"], name, *_estimate_cells(e)])
    doc.table(["run", "detector", *ESTIMATE_HEADERS], rows)
    doc.h(2, "Excess vocabulary", "vocabulary")
    vrows = []
    for r in runs:
        v = r["vocabulary"]
        if "marker_bound" in v:
            vrows.append([r["label"], v["language"], f"{pct(v['marker_bound']['ci'][0])} (estimate "
                          f"{pct(v['marker_bound']['estimate'])})", pct(v["single_word_bound"]["lower_bound"])])
        else:
            vrows.append([r["label"], "", f"not available: {v.get('unavailable')}", ""])
    doc.table(["run", "language", "marker-word bound (95%)", "best single word bound (95%)"], vrows)


def html_page(doc: Doc, title: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(doc.html) +
            "\n<p class=\"small\">Written by <code>lowbg report</code> (lowbackground). Formats: docs/report.md."
            "</p></body></html>\n")


def markdown_page(doc: Doc) -> str:
    return "\n".join(doc.md) + "\n"
