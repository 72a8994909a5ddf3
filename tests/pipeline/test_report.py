"""`lowbg report`: machine text planted at known shares, a white-box detector, and what the report makes of it."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from detectors.calibration import calibrate, save_thresholds
from detectors.registry import build_detector
from pipeline.cli import main as lowbg
from pipeline.decide import decide
from pipeline.estimators import clopper_pearson
from pipeline.report import report
from pipeline.report.analysis import analyse
from pipeline.report.load import load_run
from tests.pipeline import planted
from tests.pipeline.conftest import curate, read_kind

COMMON = ("--dedup", "exact", "--min-language-score", "0", "--device", "cpu", "--direct_running_mode=in_memory")


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """The planted crawl curated with the likelihood detector over the generator itself, and its measured TPR."""
    root = tmp_path_factory.mktemp("planted")
    crawl = planted.build(root)
    out = root / "run"
    manifest = curate(out, *[str(p) for p in crawl.inputs], detectors="likelihood", extra=(
        "--lm", str(crawl.lm_dir), "--score-pre-cutoff", "1", "--target-fpr", "0.05", "--min-calibration-docs", "100",
        *COMMON))
    entry = manifest["thresholds"]["likelihood"]
    assert entry["source"].startswith("calibrated")
    # The detector's TPR at the run's threshold, measured on other text from the same generator.
    detector = build_detector("likelihood", model=str(crawl.lm_dir), device="cpu")
    k = sum(s.value > entry["threshold"] for s in detector.score(crawl.tpr_texts))
    tpr = (k / len(crawl.tpr_texts), clopper_pearson(k, len(crawl.tpr_texts)))
    return out, crawl, manifest, tpr


def _truth(crawl) -> dict[str, float]:
    k = sum(m for m, _ in crawl.truth.values())
    n = sum(n for _, n in crawl.truth.values())
    return {"overall": k / n, **{c: m / n for c, (m, n) in crawl.truth.items()}}


def test_lower_bounds_hold_and_the_tpr_corrected_estimate_covers_the_planted_share(planted_run, tmp_path):
    out, crawl, manifest, tpr = planted_run
    paths = report([str(out)], tprs={"likelihood": tpr})
    assert [Path(p).name for p in paths] == ["report.json", "report.md", "index.html"]
    data = json.loads(Path(paths[0]).read_text())
    share = data["machine_share"][0]
    assert share["detector"] == "likelihood" and share["fpr_exact"]
    truth = _truth(crawl)
    groups = {"overall": share["overall"], **{g["crawl"]: g for g in share["by_crawl"]}}
    assert set(groups) == set(truth)
    for name, e in groups.items():
        t = truth[name]
        a, b, c = e["a_excess"], e["b_mixture"], e["c_tpr"]
        print(f"\n{name}: true {t:.3f}; (a) {a['estimate']:.3f} {a['ci']}; (b) >= {b['lower_bound']:.3f}; "
              f"(c) {c['estimate']:.3f} {c['ci']} (TPR {tpr[0]:.3f})")
        assert a["ci"][0] <= t, f"{name}: the excess-rate lower bound is above the planted share"
        assert b["lower_bound"] <= t, f"{name}: the mixture lower bound is above the planted share"
        assert c["ci"][0] <= t <= c["ci"][1], f"{name}: the TPR-corrected interval misses the planted share"
        # (a) counts only what the detector catches; with TPR < 1 the correction raises it.
        assert a["estimate"] <= c["estimate"]
    forty = groups["CC-MAIN-2024-22"]
    assert forty["a_excess"]["ci"][0] > 0.15 and forty["b_mixture"]["lower_bound"] > 0.15  # informative bounds
    assert groups["CC-MAIN-2024-22"]["c_tpr"]["estimate"] > groups["CC-MAIN-2023-50"]["c_tpr"]["estimate"]
    # The flag counts the report uses are the pipeline's decisions, counted independently from the shards.
    rejected = read_kind(out, "rejected").to_pylist()
    machine = sum(r["reason"] == "machine_generated" for r in rejected)
    assert share["overall"]["a_excess"]["f_post"]["flagged"] == machine
    # Hosts: the small hostile one is reported as too small, not given a number.
    hostile = [h for h in share["by_host"] if h["host"].startswith("x<script>")]
    assert hostile and "too_small" in hostile[0] and "a_excess" not in hostile[0]
    # Same population of human text across capture years: the drift check sees no drift.
    drift = data["drift"][0]
    assert drift["newest_year"] == 2021 and drift["target_inside_ci"]


def test_report_is_self_contained_and_escapes_page_strings(planted_run):
    out, *_ = planted_run
    report([str(out)])
    page = (out / "report" / "index.html").read_text()
    assert "<script" not in page.lower() and "onerror=" not in page  # the hostile URL/host never becomes markup
    assert "x&lt;script&gt;alert(1)&lt;" in page
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page
    for attr in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attr.startswith("data:image/png;base64,") or attr.startswith("#"), attr  # nothing to fetch
    assert "<link" not in page and "@import" not in page and "url(" not in page
    md = (out / "report" / "report.md").read_text()
    assert "<script" not in md and "x&lt;script&gt;" in md
    json.loads((out / "report" / "report.json").read_text())  # strict JSON (no NaN)


def _copy_run(src: Path, dst: Path, with_stats: bool = True) -> Path:
    """Only the manifest and stats/: a report that needs a shard fails here."""
    dst.mkdir(parents=True)
    shutil.copy(src / "manifest.json", dst / "manifest.json")
    if with_stats:
        shutil.copytree(src / "stats", dst / "stats")
    return dst


def test_hostile_words_and_hosts_in_stats_come_out_escaped(planted_run, tmp_path):
    import gzip

    out, *_ = planted_run
    run = _copy_run(out, tmp_path / "run")
    evil = "</td><script>alert('w')</script><img src=x onerror=alert(3)>"
    words_path = run / "stats" / "words.json.gz"
    words = json.loads(gzip.decompress(words_path.read_bytes()))
    for table in words["tables"]:
        if table["era"] == "post_cutoff":
            table["words"].insert(0, [evil, table["documents"], 0])  # the most risen word there is
    words_path.write_bytes(gzip.compress(json.dumps(words).encode()))
    stats_path = run / "stats" / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats["hosts"]["rows"][0]["host"] = evil
    stats["counts"]["crawl"]["rows"][0][0] = evil
    stats_path.write_text(json.dumps(stats))
    report([str(run)])  # reads no shard: there is none in this folder
    page = (run / "report" / "index.html").read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page and "onerror=alert(3)>" not in page
    assert html.escape(evil, quote=True) in page
    md = (run / "report" / "report.md").read_text()
    assert "<script" not in md and "<img" not in md and "</td>" not in md


def _embedded_images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


PROBE = """<script>
window.addEventListener('load', () => {
  const out = [];
  for (const img of document.images) {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d');
    let ink = 0;
    if (c.width && c.height) {
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) ink++;
      ink /= d.length / 4;
    }
    const box = img.getBoundingClientRect();
    out.push({alt: img.alt, w: img.naturalWidth, h: img.naturalHeight, shown: box.width * box.height, ink: ink});
  }
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def rendered(planted_run) -> str:
    out, crawl, manifest, tpr = planted_run
    report([str(out)], tprs={"likelihood": tpr})
    return (out / "report" / "index.html").read_text()


def test_every_embedded_figure_decodes_to_a_non_blank_image(rendered):
    from PIL import Image

    images = _embedded_images(rendered)
    assert len(images) == rendered.count("<figure>") >= 8
    for png in images:
        im = Image.open(io.BytesIO(png)).convert("L")
        assert im.width > 200 and im.height > 100
        dark = sum(1 for p in im.getdata() if p < 200) / (im.width * im.height)
        assert dark > 0.01, "a blank figure"


@pytest.mark.skipif(chromium() is None, reason="Chromium not installed (the figures are still checked by decoding)")
def test_chromium_draws_every_figure_with_content(rendered, tmp_path):
    # The shipped page allows no script; this copy adds one probe that measures what the browser drew.
    probe_page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", rendered).replace(
        "</body>", PROBE + "</body>")
    path = tmp_path / "probe.html"
    path.write_text(probe_page)
    result = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                             "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"Chromium did not render the page: {result.stderr[-2000:]}"
    drawn = json.loads(html.unescape(found.group(1)))
    assert len(drawn) == len(_embedded_images(rendered)) >= 8
    for fig in drawn:
        assert fig["w"] > 200 and fig["h"] > 100 and fig["shown"] > 0, fig
        assert fig["ink"] > 0.01, f"figure {fig['alt']!r} rendered blank"


def test_shipped_page_runs_no_script_in_chromium(rendered, tmp_path):
    """The page as shipped, with a script smuggled in where a page string goes: the CSP keeps it from running."""
    exe = chromium()
    if exe is None:
        pytest.skip("Chromium not installed")
    smuggled = rendered.replace("</body>", "<script>document.title='PWNED'</script></body>")
    path = tmp_path / "smuggled.html"
    path.write_text(smuggled)
    result = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                             "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert "<title>" in result.stdout and "PWNED" not in result.stdout.split("<body")[0]


def test_report_of_a_run_without_detectors(real_run):
    out, manifest = real_run
    data = json.loads(Path(report([str(out)])[0]).read_text())
    assert data["stats"] and data["machine_share"] == [] and data["drift"] == []
    assert any("no detector" in n for n in data["notes"])
    assert data["funnel"]["records_in"] == manifest["counts"]["records_in"]
    stages = [s["stage"] for s in data["funnel"]["stages"] if s["kind"] == "rejected"]
    order = ["rejected: non_text_payload", "rejected: http_status", "rejected: empty_text", "rejected: language"]
    assert [s for s in stages if s in order] == [s for s in order if s in stages]  # pipeline order


def test_unfinished_run_is_refused_unless_allowed(planted_run, tmp_path, capsys):
    out, *_ = planted_run
    run = _copy_run(out, tmp_path / "run")
    (run / "manifest.json").unlink()
    assert lowbg(["report", str(run)]) == 2
    assert "no manifest.json" in capsys.readouterr().err and not (run / "report").exists()
    (run / "manifest.json").write_text('{"schema_version": "1.0", "counts": {}, "bal')  # a torn write
    assert lowbg(["report", str(run)]) == 2
    assert lowbg(["report", str(run), "--allow-incomplete"]) == 0
    data = json.loads((run / "report" / "report.json").read_text())
    assert data["funnel"] is None and any("not a finished run" in n for n in data["notes"])
    assert data["machine_share"]  # stats are still shown


def test_run_without_stats_gets_the_funnel_and_a_note(planted_run, tmp_path):
    out, _, manifest, _ = planted_run
    run = _copy_run(out, tmp_path / "old-run", with_stats=False)
    report([str(run)])
    data = json.loads((run / "report" / "report.json").read_text())
    assert data["funnel"]["records_in"] == manifest["counts"]["records_in"] and not data["stats"]
    assert any("no stats/stats.json" in n for n in data["notes"])
    page = (run / "report" / "index.html").read_text()
    assert "Funnel" in page and "no stats/stats.json" in page


def test_post_cutoff_crawl_with_a_baseline_and_side_by_side(planted_run, tmp_path):
    """A crawl with no pre-cutoff pages: thresholds from a file, human reference from the planted run."""
    out, crawl, manifest, tpr = planted_run
    entry = manifest["thresholds"]["likelihood"]
    rows = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    human = [r["scores"][0]["value"] for r in rows if r["provenance"] == "pre_cutoff"]
    thresholds = calibrate(human, detector="likelihood", models=entry["models"], direction=entry["direction"],
                           target_fpr=0.05, n_bootstrap=20)
    save_thresholds(thresholds, tmp_path / "thresholds.json")
    post = tmp_path / "post"
    curate(post, *[str(p) for p in crawl.inputs[1:]], detectors="likelihood", extra=(
        "--lm", str(crawl.lm_dir), "--thresholds", str(tmp_path / "thresholds.json"), *COMMON))
    alone = analyse(load_run(str(post)))
    assert "give --baseline" in alone["machine_share"][0]["unavailable"]
    data = json.loads(Path(report([str(post)], baseline=str(out), tprs={None: tpr})[0]).read_text())
    assert data["reference"]["kind"] == "baseline" and str(out) in data["reference"]["note"]
    page = (post / "report" / "index.html").read_text()
    assert "baseline run" in page
    share = data["machine_share"][0]
    truth = _truth(crawl)
    for g in share["by_crawl"]:
        t = truth[g["crawl"]]
        assert g["a_excess"]["ci"][0] <= t and g["b_mixture"]["lower_bound"] <= t
        assert g["c_tpr"]["ci"][0] <= t <= g["c_tpr"]["ci"][1]
    assert data["vocabulary"]["reference"] == "baseline" and data["vocabulary"]["languages"]

    both = tmp_path / "both"
    report([str(out), str(post)], output=str(both))
    comparison = json.loads((both / "report.json").read_text())["comparison"]
    assert [r["label"] for r in comparison["runs"]] == [str(out), str(post)]
    assert comparison["runs"][0]["estimates"]["a_excess"] and comparison["runs"][1]["estimates"]["unavailable"]
    with pytest.raises(SystemExit):  # several runs need --output
        lowbg(["report", str(out), str(post)])


def test_drift_check_sees_human_text_from_another_source(planted_run, tmp_path):
    """Pre-cutoff human text from news and Q&A in 2019-2020, from stories (the generator's own genre) in 2021:
    the threshold calibrated on the older years misses its target on the newest."""
    out, crawl, *_ = planted_run
    older = planted.originals("exp_main/xsum_gpt-neo-2.7B.raw_data.json")[:120]
    newer = planted.originals("exp_main/writing_gpt-neo-2.7B.raw_data.json")[:60]
    docs = [(f"http://old.example/{i}", t, f"{2019 + i % 2}-03-01T00:00:00Z") for i, t in enumerate(older)]
    docs += [(f"http://new.example/{i}", t, "2021-09-01T00:00:00Z") for i, t in enumerate(newer)]
    warc = tmp_path / "drift.warc.gz"
    planted.write_warc(warc, docs)
    run = tmp_path / "drift"
    curate(run, str(warc), detectors="likelihood", extra=(
        "--lm", str(crawl.lm_dir), "--score-pre-cutoff", "1", "--target-fpr", "0.05", "--min-calibration-docs", "100",
        *COMMON))
    data = json.loads(Path(report([str(run)])[0]).read_text())
    d = data["drift"][0]
    print(f"\ndrift: FPR on {d['newest_year']} {d['fpr_newest']:.3f} {d['fpr_newest_ci']} (target {d['target_fpr']}); "
          f"KS {d['ks_ks']:.3f} (critical {d['ks_critical_95']:.3f})")
    assert d["older_years"] == [2019, 2020] and d["newest_year"] == 2021
    assert d["fpr_older"] <= 0.05
    assert not d["target_inside_ci"] and d["fpr_newest_ci"][0] > 0.05
    assert d["ks_ks"] > d["ks_critical_95"]


def test_decide_updates_the_statistics(planted_run, tmp_path):
    out, _, manifest, _ = planted_run
    decided = tmp_path / "decided"
    new = decide(out, decided, target_fpr=0.2)
    stats = json.loads((decided / "stats" / "stats.json").read_text())
    assert stats["written_by"] == "lowbg decide"
    rejected = {}
    for _era, outcome, reason, n in stats["counts"]["outcome"]["rows"]:
        if outcome == "rejected":
            rejected[reason] = rejected.get(reason, 0) + n
    assert rejected == new["counts"]["rejected_by_reason"]
    old = json.loads((out / "stats" / "stats.json").read_text())

    def flagged(s, era):
        return next(g["flagged"] for g in s["detectors"]["likelihood"]["groups"] if g["by"] == "era"
                    and g["era"] == era)
    assert flagged(stats, "pre_cutoff") > flagged(old, "pre_cutoff")  # a looser threshold flags more human text
    assert flagged(stats, "post_cutoff") == new["counts"]["rejected_by_reason"]["machine_generated"]
    data = json.loads(Path(report([str(decided)])[0]).read_text())
    assert data["funnel"]["decided_from"] == str(out) and data["machine_share"][0]["overall"]["a_excess"]
