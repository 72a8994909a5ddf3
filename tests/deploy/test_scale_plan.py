"""deploy/scale_plan.py: the arithmetic, and deploy/README.md showing exactly what the script prints."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from pipeline.options import build_curate_parser
from tests.deploy.deploylib import DEPLOY

FIGURES = {  # made-up throughputs, to check the arithmetic
    "ingest_extract_docs_per_core_s": "150",
    "langid_quality_docs_per_core_s": "800",
    "dedup_minhash_docs_per_core_s": "400",
    "fasttext_detector_docs_per_core_s": "3000",
    "llm_tiny_docs_per_gpu_s": "200",
    "llm_7b_docs_per_gpu_s": "12",
}


@pytest.fixture()
def inputs(scale_plan):
    return scale_plan.load_inputs(overrides=FIGURES)


def test_funnel_follows_the_assumptions(scale_plan, inputs):
    docs = scale_plan.funnel(inputs)
    a = inputs.num
    assert docs["responses"] == pytest.approx(90_000 * 35_000)  # the issue's ~3 billion pages
    assert docs["extracted"] == pytest.approx(docs["responses"] * a("html_share"))
    assert docs["kept_lang_quality"] == pytest.approx(
        docs["extracted"] * a("language_keep_share") * a("quality_keep_share"))
    assert docs["deduped"] == pytest.approx(
        docs["kept_lang_quality"] * (1 - a("exact_dup_share")) * (1 - a("near_dup_share")))
    assert a("warc_files") * a("warc_bytes") == pytest.approx(100e12, rel=0.05)  # the issue's ~100 TB


def test_core_hours_are_documents_over_throughput(scale_plan, inputs):
    res = scale_plan.compute(inputs)
    docs = res["documents"]
    hours = res["cpu_core_hours"]
    assert hours["ingest + extract"] == pytest.approx(docs["responses"] / 150 / 3600)
    assert hours["language ID + quality"] == pytest.approx(docs["extracted"] / 800 / 3600)
    assert hours["dedup (exact + MinHash)"] == pytest.approx(docs["kept_lang_quality"] / 400 / 3600)
    assert hours["fastText detector"] == pytest.approx(docs["deduped"] / 3000 / 3600)
    assert res["cpu_core_hours_total"] == pytest.approx(sum(hours.values()))
    slower = scale_plan.compute(scale_plan.load_inputs(overrides={**FIGURES, "vcpu_speed_vs_bench_core": "0.5"}))
    assert slower["cpu_core_hours_total"] == pytest.approx(2 * res["cpu_core_hours_total"])


def test_gpu_hours_with_and_without_cascade_and_skip(scale_plan, inputs):
    res = scale_plan.compute(inputs)
    d = res["documents"]["deduped"]
    band, sample = inputs.num("cascade_band_fraction"), inputs.num("score_pre_cutoff")
    rows = {(r["snapshot"], r["cascade"], r["pre_cutoff_skip"]): r for r in res["gpu_hours"]}
    assert len(rows) == 4 * len(inputs.snapshots)
    for snapshot, pre in inputs.snapshots.items():
        expected = {
            (False, False): d,
            (True, False): d * band,
            (False, True): d * (1 - pre) + d * pre * sample,
            (True, True): d * (1 - pre) * band + d * pre * sample,
        }
        for (cascade, skip), n in expected.items():
            row = rows[(snapshot, cascade, skip)]
            assert row["documents"] == pytest.approx(n)
            assert row["7B LM detector"] == pytest.approx(n / 12 / 3600)
            assert row["tiny LM detector"] == pytest.approx(n / 200 / 3600)
    # The two snapshot kinds the plan is about: the skip is everything before the cutoff, nothing after.
    assert sorted(inputs.snapshots.values()) == [0.0, 1.0]


def test_dedup_shuffle_volume(scale_plan, inputs):
    res = scale_plan.compute(inputs)
    docs, sh, a = res["documents"], res["shuffle_bytes"], inputs.num
    record = a("doc_id_bytes") + a("shuffle_record_overhead_bytes")
    assert sh["near"] == pytest.approx(docs["after_exact_dedup"] * a("minhash_bands") * (a("band_key_bytes") + record))
    assert sh["exact"] == pytest.approx(docs["kept_lang_quality"] * (a("exact_key_bytes") + record))
    assert sh["total"] == pytest.approx(sh["exact"] + sh["near"] + sh["rejoin"])


def test_minhash_bands_match_the_cli_defaults(scale_plan):
    # The shuffle assumption uses datasketch's banding for the CLI's default threshold and permutations.
    from datasketch import MinHashLSH

    defaults = build_curate_parser().parse_args(["--output", "x"])
    lsh = MinHashLSH(threshold=defaults.minhash_threshold, num_perm=defaults.minhash_num_perm)
    assert scale_plan.load_inputs().num("minhash_bands") == lsh.b


def test_sizing(scale_plan, inputs):
    res = scale_plan.compute(inputs)
    plan, a = res["plan"], inputs.num
    cpu_wall = res["cpu_core_hours_total"] / (a("cpu_max_workers") * a("cpu_vcpus_per_worker") * a("utilization"))
    gpu_wall = plan["gpu_hours"] / (a("gpu_max_workers") * a("gpus_per_worker") * a("utilization"))
    assert plan["cpu_wall_hours"] == pytest.approx(cpu_wall)
    assert plan["gpu_wall_hours"] == pytest.approx(gpu_wall)
    assert plan["wall_hours"] == pytest.approx(max(cpu_wall, gpu_wall))
    assert plan["gpu_workers_for_target"] == math.ceil(
        plan["gpu_hours"] / (a("target_wall_hours") * a("gpus_per_worker") * a("utilization")))
    assert plan["read_gbytes_per_s"] == pytest.approx(res["read_bytes"] / (cpu_wall * 3600) / 1e9)
    assert plan["service_mode_wall_hours"] >= plan["wall_hours"]  # GPU machines have fewer vCPUs


def test_missing_figures_leave_the_rest_computed(scale_plan):
    res = scale_plan.compute(scale_plan.load_inputs(overrides={"llm_7b_docs_per_gpu_s": "null"}))
    assert res["plan"]["gpu_hours"] is None and res["plan"]["wall_hours"] is None
    assert res["documents"]["deduped"] > 0 and res["shuffle_bytes"]["total"] > 0


def test_readme_shows_what_the_script_prints(scale_plan):
    inputs = scale_plan.load_inputs()
    expected = scale_plan.render_markdown(inputs, scale_plan.compute(inputs))
    assert scale_plan.readme_block() == expected, "run: python deploy/scale_plan.py --update-readme"


def test_figure_markers_name_real_figures(scale_plan):
    inputs = scale_plan.load_inputs()
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    markers = set(re.findall(r"<!-- FIGURE: ([\w]+) -->", readme))
    assert markers <= set(inputs.figures)
    assert {f for f in inputs.figures if inputs[f] is None} <= markers
    for name in inputs.figures:
        assert "BENCHMARKS.md" in inputs.notes[name], f"{name} must say which benchmark measures it"
    for name in inputs.values:
        assert inputs.notes[name].strip(), f"{name} needs a source or a reason"


def test_script_runs_from_the_command_line():
    cmd = [sys.executable, str(DEPLOY / "scale_plan.py"), "--json"]
    cmd += [f"--set={k}={v}" for k, v in FIGURES.items()]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    res = json.loads(out.stdout)
    assert res["plan"]["wall_hours"] > 0 and res["cpu_core_hours_total"] > 0
    md = subprocess.run([sys.executable, str(DEPLOY / "scale_plan.py")], capture_output=True, text=True,
                        check=True, timeout=60)
    assert "| **total** |" in md.stdout
    bad = subprocess.run([sys.executable, str(DEPLOY / "scale_plan.py"), "--set=no_such_input=1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no_such_input" in bad.stderr


def test_index_plan(scale_plan, inputs):
    res = scale_plan.compute(scale_plan.load_inputs(overrides={
        **FIGURES, "index_build_docs_per_core_s": "500", "index_band_row_bytes": "30", "index_exact_row_bytes": "60",
        "index_signature_row_bytes": "560", "input_slices": "4"}))
    ix, n, a = res["index"], res["documents"]["deduped"], inputs.num
    assert ix["rows"] == {"exact": pytest.approx(n), "bands": pytest.approx(n * a("minhash_bands")),
                          "signatures": pytest.approx(n)}
    assert ix["disk_bytes_total"] == pytest.approx(n * (60 + 30 * a("minhash_bands") + 560))
    assert ix["build_core_hours"] == pytest.approx(n / 500 / 3600)
    assert ix["partitions"] == math.ceil(ix["disk_bytes_total"] / a("index_partition_bytes"))
    # 4 jobs read the index of 0, 1, 2 and 3 slices: 6 quarters of it in all
    assert ix["sliced_curate_shuffle_bytes"] == pytest.approx(ix["curate_shuffle_bytes_full_index"] * 6 / 4)
    assert ix["sliced_extend_io_bytes"] == pytest.approx(ix["disk_bytes_total"] * 2 * 6 / 4)
