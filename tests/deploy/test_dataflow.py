"""deploy/dataflow: the Flex Template against the CLI, the launcher's mapping, and launch.py's Beam options."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import re
import sys
import types

import pytest

from pipeline.options import build_curate_parser, parse_curate_args
from tests.deploy.deploylib import DATAFLOW, beam_dests, beam_flags, flag_name, unknown_flags

METADATA = DATAFLOW / "metadata.json"
IMAGE = "us-central1-docker.pkg.dev/p/r/lowbackground-sdk:0.1.0-beam2.77.0"

# A `lowbg curate` command line that touches every kind of option: repeated values, switches, choices, a
# comma inside a value, a datetime, a semicolon inside a single value.
CURATE_ARGS = [
    "--input", "gs://b/cc/a.warc.gz", "--input=gs://b/cc/b-*.warc.gz",
    "--input-list", "gs://b/cc/warc.paths.gz",
    "--input-base=gs://b/cc/",
    "--output", "gs://b/out",
    "--max-files", "90",
    "--overwrite",
    "--cutoff", "2022-11-30T00:00:00Z",
    "--languages", "en,de",
    "--quality-preset", "gopher",
    "--dedup", "near",
    "--detectors", "fasttext,binoculars",
    "--cascade-band", "0.2,0.8",
    "--score-pre-cutoff", "0.01",
    "--large-model",
    "--gpu-resource-hint=type:nvidia-l4;count:1;install-nvidia-driver",
]


def parser_dests(parser: argparse.ArgumentParser, local_only: dict[str, str]) -> list[str]:
    return [a.dest for a in parser._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction) and a.dest not in local_only]


def metadata_problems(parser: argparse.ArgumentParser, metadata: dict, local_only: dict[str, str]) -> list[str]:
    """What is wrong with metadata.json for this parser (empty: nothing)."""
    problems = []
    entries = {p["name"]: p for p in metadata["parameters"]}
    if len(entries) != len(metadata["parameters"]):
        problems.append("duplicate parameter names")
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    for dest in parser_dests(parser, local_only):
        entry = entries.get(dest)
        if entry is None:
            problems.append(f"--{dest.replace('_', '-')} has no template parameter {dest!r}")
            continue
        if not entry.get("helpText", "").strip() or not entry.get("label", "").strip():
            problems.append(f"{dest}: empty helpText or label")
        if entry.get("isOptional") is not (not actions[dest].required):
            problems.append(f"{dest}: isOptional must be {not actions[dest].required}")
    for name in entries:
        if name not in actions:
            problems.append(f"template parameter {name!r} is no `lowbg curate` option")
    return problems


# ------------------------------------------------------------------------------------------ metadata vs the CLI


def test_every_cli_option_is_a_template_parameter(launcher):
    metadata = json.loads(METADATA.read_text(encoding="utf-8"))
    assert metadata_problems(build_curate_parser(), metadata, launcher.LOCAL_ONLY) == []
    assert metadata["name"] and metadata["description"]


def test_an_option_added_to_the_cli_without_a_parameter_is_caught(launcher):
    parser = build_curate_parser()
    parser.add_argument("--shiny-new-option", default=None, help="added after metadata.json was generated")
    metadata = json.loads(METADATA.read_text(encoding="utf-8"))
    problems = metadata_problems(parser, metadata, launcher.LOCAL_ONLY)
    assert any("shiny_new_option" in p for p in problems), problems


def test_required_options_are_required_parameters():
    metadata = json.loads(METADATA.read_text(encoding="utf-8"))
    entries = {p["name"]: p for p in metadata["parameters"]}
    assert entries["output"]["isOptional"] is False  # the one required option of `lowbg curate` today
    assert entries["input"]["isOptional"] is True and entries["input_list"]["isOptional"] is True


def test_local_only_options_say_why(launcher):
    dests = {a.dest for a in build_curate_parser()._actions}
    for name, reason in launcher.LOCAL_ONLY.items():
        assert name in dests, f"LOCAL_ONLY names {name!r}, which is no `lowbg curate` option"
        assert len(reason.strip()) > 10, f"LOCAL_ONLY[{name!r}] needs a reason"


def test_metadata_json_is_what_make_metadata_generates(make_metadata):
    expected = make_metadata.render(make_metadata.build_metadata())
    assert METADATA.read_text(encoding="utf-8") == expected, "run: python deploy/dataflow/make_metadata.py"
    assert make_metadata.main(["--check"]) == 0


def test_choice_and_switch_regexes_accept_exactly_the_valid_values(launcher):
    metadata = json.loads(METADATA.read_text(encoding="utf-8"))
    entries = {p["name"]: p for p in metadata["parameters"]}
    for param in launcher.curate_parameters():
        regexes = entries[param.name].get("regexes", [])
        if param.kind == "switch":
            valid = ["true", "false"]
        elif param.choices:
            valid = list(param.choices)
        else:
            assert not regexes, f"{param.name}: unexpected regexes"
            continue
        for value in valid:
            assert all(re.fullmatch(r, value) for r in regexes), (param.name, value)
        assert not all(re.fullmatch(r, "bogus") for r in regexes), param.name


def test_template_names_do_not_collide_with_beam_options(launcher):
    # The launcher claims its parameters' names; a Beam option of the same name would never reach Beam.
    names = {p.name for p in launcher.curate_parameters()}
    assert not names & beam_dests()
    assert not {f"--{n}" for n in names} & beam_flags()


# --------------------------------------------------------------------------------------------- launcher.py


def _as_flex_argv(params: dict[str, str], beam: list[str]) -> list[str]:
    """What Dataflow's Python template launcher runs the entry point with."""
    return [f"--{k}={v}" for k, v in params.items()] + beam


def test_launcher_maps_template_parameters_back_to_the_same_cli_arguments(launcher):
    params = launcher.curate_parameters()
    beam = ["--project=p", "--region=us-central1", "--temp_location=gs://b/tmp", "--runner=DataflowRunner"]
    template_params, leftovers = launcher.from_curate_argv(CURATE_ARGS + beam, params)
    assert leftovers == beam
    assert template_params["input"] == "gs://b/cc/a.warc.gz;gs://b/cc/b-*.warc.gz"
    assert template_params["overwrite"] == "true"
    argv = launcher.to_curate_argv(_as_flex_argv(template_params, beam), params)
    direct = parse_curate_args(CURATE_ARGS + beam)
    via_template = parse_curate_args(argv)
    assert via_template == direct
    assert via_template.beam_args == direct.beam_args


def test_launcher_switches_and_empty_values(launcher):
    params = launcher.curate_parameters()
    argv = launcher.to_curate_argv(
        ["--output=gs://b/o", "--overwrite=false", "--large_model=true", "--languages=", "--input_list=a;;b"], params)
    assert "--overwrite" not in argv and "--large-model" in argv
    assert not any(a.startswith("--languages") for a in argv)
    assert [a for a in argv if a.startswith("--input-list")] == ["--input-list=a", "--input-list=b"]
    with pytest.raises(launcher.TemplateError):
        launcher.to_curate_argv(["--overwrite=maybe"], params)
    # Space-separated forms, as a person running the launcher by hand would write them.
    argv = launcher.to_curate_argv(["--output", "gs://b/o", "--overwrite", "--max_files", "3"], params)
    assert argv[:3] == ["--output=gs://b/o", "--overwrite", "--max-files=3"]


def test_launcher_defaults_to_dataflow_and_keeps_a_given_runner(launcher):
    params = launcher.curate_parameters()
    assert launcher.to_curate_argv(["--output=o"], params)[-1] == "--runner=DataflowRunner"
    argv = launcher.to_curate_argv(["--output=o", "--runner=PortableRunner"], params)
    assert [a for a in argv if a.startswith("--runner")] == ["--runner=PortableRunner"]


def test_launcher_rejects_the_list_separator_inside_a_list_value(launcher):
    with pytest.raises(launcher.TemplateError):
        launcher.from_curate_argv(["--input=gs://b/a;b"], launcher.curate_parameters())


def test_launcher_main_calls_the_cli(launcher, monkeypatch):
    calls = []
    fake_cli = types.ModuleType("pipeline.cli")
    fake_cli.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "pipeline.cli", fake_cli)
    assert launcher.main(["--input=gs://b/a.warc.gz", "--output=gs://b/o", "--project=p"]) == 0
    assert calls == [["curate", "--input=gs://b/a.warc.gz", "--output=gs://b/o", "--project=p",
                      "--runner=DataflowRunner"]]


# ----------------------------------------------------------------------------------------------- launch.py


def _config(launch, **kw):
    base = dict(project="p", region="us-central1", bucket="gs://b", image=IMAGE, max_workers=100,
                job_name="lowbg-test")
    return launch.LaunchConfig(**{**base, **kw})


BASE_CURATE = ["--input-list", "gs://b/cc/warc.paths.gz", "--input-base", "gs://b/cc/", "--output", "gs://b/out",
               "--detectors", "fasttext,binoculars", "--cascade-band", "0.2,0.8"]
GPU_CASES = [
    dict(gpu="none"),
    dict(gpu="hint"),
    dict(gpu="service"),
    dict(gpu="service", gpu_sharing="single-process"),
    dict(gpu="hint", gpu_type="nvidia-tesla-a100", gpu_count=2, setup_file=True, num_workers=10,
         launcher_machine_type="n2-highmem-8"),
]


@pytest.mark.parametrize("case", GPU_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_launch_direct_emits_only_real_beam_options(launch, case):
    from apache_beam.options.pipeline_options import (
        DebugOptions,
        GoogleCloudOptions,
        PipelineOptions,
        SetupOptions,
        StandardOptions,
        WorkerOptions,
    )

    cfg = _config(launch, **case)
    argv = launch.direct_argv(cfg, BASE_CURATE)
    assert unknown_flags(argv) == []
    parsed = parse_curate_args(argv)  # also the CLI's own refusal of impossible combinations
    beam = parsed.beam_args
    assert all(flag_name(a) in beam_flags() for a in beam), beam
    opts = PipelineOptions(beam)
    opts.get_all_options()  # argparse validates choices (e.g. --autoscaling_algorithm) here
    assert opts.view_as(StandardOptions).runner == "DataflowRunner"
    worker = opts.view_as(WorkerOptions)
    assert worker.max_num_workers == 100
    assert worker.sdk_container_image == IMAGE
    assert worker.autoscaling_algorithm == "THROUGHPUT_BASED"
    assert worker.num_workers == case.get("num_workers")
    experiments = opts.view_as(DebugOptions).experiments or []
    assert "use_runner_v2" in experiments
    service = [o for o in opts.view_as(GoogleCloudOptions).dataflow_service_options or []
               if o.startswith("worker_accelerator=")]
    hint = parsed.scoring.gpu_resource_hint
    accelerator = f"type:{cfg.gpu_type};count:{cfg.gpu_count};install-nvidia-driver"
    if cfg.gpu == "service":
        assert service == [f"worker_accelerator={accelerator}"] and hint is None
        assert worker.machine_type == launch.GPU_MACHINE_DEFAULTS[cfg.gpu_type]
    elif cfg.gpu == "hint":
        assert hint == accelerator and not service
        assert worker.machine_type == cfg.machine_type
    else:
        assert hint is None and not service and not parsed.scoring.large_model
    if cfg.gpu != "none":
        if cfg.gpu_sharing == "large-model":
            assert parsed.scoring.large_model
        else:
            assert "no_use_multiple_sdk_containers" in experiments
            assert opts.view_as(DebugOptions).number_of_worker_harness_threads == 1
    if cfg.setup_file:
        assert opts.view_as(SetupOptions).setup_file.endswith("setup.py")


def test_launch_refuses_both_gpu_mechanisms(launch):
    cfg = _config(launch, gpu="service")
    argv = launch.direct_argv(cfg, [*BASE_CURATE, "--gpu-resource-hint=type:nvidia-l4;count:1"])
    with pytest.raises(SystemExit):
        parse_curate_args(argv)
    with pytest.raises(SystemExit):
        launch.main(["direct", "--project=p", "--region=r", "--bucket=gs://b", f"--image={IMAGE}",
                     "--max-workers=5", "--gpu=service", "--print-only", "--",
                     *BASE_CURATE, "--gpu-resource-hint=type:nvidia-l4;count:1"])


def test_launch_refuses_direct_runner_options(launch):
    with pytest.raises(SystemExit):
        launch.main(["direct", "--project=p", "--region=r", "--bucket=gs://b", f"--image={IMAGE}",
                     "--max-workers=5", "--print-only", "--", *BASE_CURATE, "--direct_num_workers=4"])


def test_launch_requires_bounded_autoscaling(launch, capsys):
    with pytest.raises(SystemExit):
        launch.main(["direct", "--project=p", "--region=r", "--bucket=gs://b", f"--image={IMAGE}", "--print-only",
                     "--", *BASE_CURATE])
    assert "--max-workers" in capsys.readouterr().err
    for bad in (dict(max_workers=0), dict(num_workers=500), dict(bucket="/tmp/b"),
                dict(gpu="hint", gpu_sharing="single-process")):
        with pytest.raises(ValueError):
            launch.direct_argv(_config(launch, **bad), BASE_CURATE)


def test_launch_print_only(launch, capsys):
    assert launch.main(["direct", "--project=p", "--region=r", "--bucket=gs://b", f"--image={IMAGE}",
                        "--max-workers=5", "--job-name=j", "--print-only", "--", *BASE_CURATE]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lowbg curate ") and "--max_num_workers=5" in out and "--job_name=j" in out


def _gcloud_flags(cmd: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (a.partition("=") for a in cmd if a.startswith("--"))}


def _split_delimited(value: str, launch) -> dict[str, str]:
    prefix = f"^{launch.GCLOUD_DELIM}^"
    assert value.startswith(prefix)
    return dict(item.split("=", 1) for item in value[len(prefix):].split(launch.GCLOUD_DELIM))


@pytest.mark.parametrize("case", GPU_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_launch_template_run_matches_the_direct_run(launch, launcher, case):
    cfg = _config(launch, **case)
    if cfg.setup_file:  # a template runs the code in its image
        with pytest.raises(ValueError, match="setup-file"):
            launch.template_run_argv(cfg, BASE_CURATE)
        cfg = _config(launch, **{**case, "setup_file": False})
    cmd = launch.template_run_argv(cfg, [*BASE_CURATE, "--network=default"])
    assert cmd[:5] == ["gcloud", "dataflow", "flex-template", "run", cfg.job_name]
    flags = _gcloud_flags(cmd)
    assert flags["--max-workers"] == str(cfg.max_workers)
    assert flags["--template-file-gcs-location"] == cfg.template_spec
    assert "use_runner_v2" in flags["--additional-experiments"].split(",")
    metadata = json.loads(METADATA.read_text(encoding="utf-8"))
    names = {p["name"] for p in metadata["parameters"]}
    params = _split_delimited(flags["--parameters"], launch)
    assert set(params) <= names | set(launch.TEMPLATE_BEAM_PARAMETERS)
    assert params["sdk_container_image"] == IMAGE
    pipeline_opts = _split_delimited(flags["--additional-pipeline-options"], launch)
    assert pipeline_opts["network"] == "default"
    assert all(f"--{k}" in beam_flags() for k in pipeline_opts), pipeline_opts
    assert "setup_file" not in pipeline_opts
    assert flags.get("--launcher-machine-type") == cfg.launcher_machine_type
    # What the template's launcher will hand `lowbg curate` equals the direct run's own options.
    template_params = {k: v for k, v in params.items() if k in names}
    flex_argv = _as_flex_argv(template_params, [])
    via_template = parse_curate_args(launcher.to_curate_argv(flex_argv, launcher.curate_parameters()))
    direct = parse_curate_args(launch.direct_argv(cfg, BASE_CURATE))
    assert dataclasses.replace(via_template, beam_args=()) == dataclasses.replace(direct, beam_args=())


def test_launch_build_template_uses_the_metadata_file(launch):
    cmd = launch.template_build_argv(_config(launch))
    flags = _gcloud_flags(cmd)
    assert cmd[:4] == ["gcloud", "dataflow", "flex-template", "build"]
    assert flags["--metadata-file"] == str(METADATA)
    assert flags["--sdk-language"] == "PYTHON" and flags["--image"] == IMAGE


# ------------------------------------------------------------------------------------ Dataflow job graph, offline


def _dataflow_client_available() -> bool:
    try:
        from apache_beam.runners.dataflow.internal import apiclient  # noqa: F401
    except ImportError:
        return False
    return importlib.util.find_spec("apitools") is not None


needs_gcp = pytest.mark.skipif(not _dataflow_client_available(),
                               reason="building a Dataflow job offline needs apache-beam[gcp] (apitools)")
# Beam validates names even in a dry run: a real-looking project id and bucket.
DRY_RUN = dict(project="lowbg-test-project", bucket="gs://lowbg-test-bucket")


@needs_gcp
@pytest.mark.parametrize("gpu", ["none", "hint", "service"])
def test_dataflow_job_builds_offline_with_the_launch_options(launch, gpu):
    """--dry_run=True: DataflowRunner translates a pipeline into a Dataflow job and stops before submitting."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability.api import beam_runner_api_pb2

    cfg = _config(launch, gpu=gpu, **DRY_RUN)
    beam_args = parse_curate_args(launch.direct_argv(cfg, ["--input=x", "--output=y"])).beam_args
    p = beam.Pipeline(options=PipelineOptions([*beam_args, "--dry_run=True", "--no_auth"]))
    docs = p | beam.Create(["a", "b"]) | "extract" >> beam.Map(str.upper)
    score = beam.Map(len)
    if gpu == "hint":  # what the pipeline does with --gpu-resource-hint: the scoring step only
        score = score.with_resource_hints(accelerator=cfg.accelerator)
    _ = docs | "score" >> score
    result = p.run()
    assert result.job.proto.name == cfg.job_name
    envs = p.runner.proto_pipeline.components.environments.values()
    images = {beam_runner_api_pb2.DockerPayload.FromString(e.payload).container_image for e in envs}
    assert images == {IMAGE}
    hinted = [dict(e.resource_hints) for e in envs if e.resource_hints]
    expected = [{"beam:resources:accelerator:v1": cfg.accelerator.encode()}] if gpu == "hint" else []
    assert hinted == expected


@needs_gcp
@pytest.mark.skipif(importlib.util.find_spec("pipeline.cli") is None, reason="pipeline.cli is not written yet")
def test_lowbg_curate_builds_a_dataflow_job_offline(launch, tmp_path):
    from pipeline.cli import main as cli_main

    warc = tmp_path / "empty.warc.gz"
    warc.write_bytes(b"")
    cfg = _config(launch, gpu="hint", **DRY_RUN)
    argv = launch.direct_argv(cfg, ["--input", str(warc), "--output", str(tmp_path / "out"),
                                    "--detectors", "fasttext"])
    assert cli_main(["curate", *argv, "--dry_run=True", "--no_auth"]) in (None, 0)


def test_an_option_kind_without_a_mapping_is_refused(launcher):
    for kwargs in (dict(action="store_false"), dict(action="count"), dict(nargs="+")):
        parser = build_curate_parser()
        parser.add_argument("--odd-one", **kwargs)
        with pytest.raises(launcher.TemplateError, match="--odd-one"):
            launcher.template_parameters(parser)
