"""Launch `lowbg curate` on Dataflow, directly or from the Flex Template, with the options a crawl-scale run needs.

    # straight from a workstation (needs `pip install -e ".[gcp]"`, Python 3.11, Beam 2.77.0):
    python deploy/dataflow/launch.py direct --project P --region us-central1 --bucket gs://B \\
        --image REGION-docker.pkg.dev/P/REPO/lowbackground-sdk:0.1.0-beam2.77.0 --max-workers 250 \\
        -- --input-list gs://B/cc/CC-MAIN-2024-22/warc.paths.gz --input-base gs://B/cc/ --output gs://B/out/2024-22

    # register the Flex Template once per image, then run it (needs only gcloud):
    python deploy/dataflow/launch.py build-template --project P --region us-central1 --bucket gs://B --image IMAGE
    python deploy/dataflow/launch.py template --project P --region us-central1 --bucket gs://B --image IMAGE \\
        --max-workers 250 --gpu hint -- --input-list ... --output ... --detectors fasttext,binoculars

Add --print-only to see the command instead of running it. GPU modes (never both, the CLI refuses that too):

* ``--gpu service``: ``--dataflow_service_options=worker_accelerator=...``: every worker gets the GPU and the GPU
  machine type; simple, but CPU stages then run on GPU machines.
* ``--gpu hint``: ``lowbg curate --gpu-resource-hint=...``: the pipeline puts an accelerator resource hint on the
  scoring step only, and Dataflow gives that step its own GPU worker pool (right fitting); the rest stays on
  ``--machine-type``.

GPU memory holds one copy of a model per machine with ``--gpu-sharing large-model`` (the default: the
pipeline's ``--large-model``, Beam's cross-process model sharing) or one SDK process per VM with
``--gpu-sharing single-process`` (``no_use_multiple_sdk_containers`` and one harness thread).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))  # launcher.py sits next to this file

from launcher import curate_parameters, from_curate_argv  # noqa: E402

TEMPLATE_SPEC_NAME = "templates/lowbg-curate.json"
# gcloud's alternative list delimiter (see `gcloud topic escaping`): our values contain commas.
GCLOUD_DELIM = "~"
# The Flex Template passes these Beam options as template parameters (Google's documented pattern for
# sdk_container_image); everything else Beam goes through --additional-pipeline-options.
TEMPLATE_BEAM_PARAMETERS = ("sdk_container_image",)

GPU_MACHINE_DEFAULTS = {  # the smallest machine type that carries one such GPU
    "nvidia-l4": "g2-standard-8",
    "nvidia-tesla-t4": "n1-standard-8",
    "nvidia-tesla-a100": "a2-highgpu-1g",
    "nvidia-a100-80gb": "a2-ultragpu-1g",
    "nvidia-h100-80gb": "a3-highgpu-1g",
}


@dataclass(frozen=True)
class LaunchConfig:
    project: str
    region: str
    bucket: str
    image: str
    max_workers: int
    job_name: str
    num_workers: int | None = None
    machine_type: str = "n2-standard-16"
    disk_size_gb: int = 50
    gpu: str = "none"  # none | service | hint
    gpu_type: str = "nvidia-l4"
    gpu_count: int = 1
    gpu_machine_type: str | None = None
    gpu_sharing: str = "large-model"  # large-model | single-process
    setup_file: bool = False
    launcher_machine_type: str | None = None  # Flex Template launcher VM (it builds the graph, loads detectors)

    @property
    def accelerator(self) -> str:
        return f"type:{self.gpu_type};count:{self.gpu_count};install-nvidia-driver"

    @property
    def worker_machine_type(self) -> str:
        if self.gpu == "service":
            return self.gpu_machine_type or GPU_MACHINE_DEFAULTS.get(self.gpu_type, "g2-standard-8")
        return self.machine_type

    @property
    def temp_location(self) -> str:
        return f"{self.bucket.rstrip('/')}/tmp"

    @property
    def staging_location(self) -> str:
        return f"{self.bucket.rstrip('/')}/staging"

    @property
    def template_spec(self) -> str:
        return f"{self.bucket.rstrip('/')}/{TEMPLATE_SPEC_NAME}"


def validate(cfg: LaunchConfig) -> None:
    if cfg.max_workers <= 0:
        raise ValueError("--max-workers must be > 0: an unbounded autoscaler can exhaust the project's quotas")
    if cfg.num_workers is not None and not 0 < cfg.num_workers <= cfg.max_workers:
        raise ValueError("--num-workers must be within [1, --max-workers]")
    if not cfg.bucket.startswith("gs://"):
        raise ValueError(f"--bucket must be a gs:// location, not {cfg.bucket!r}")
    if cfg.gpu not in ("none", "service", "hint"):
        raise ValueError(f"unknown --gpu mode {cfg.gpu!r}")
    if cfg.gpu_sharing == "single-process" and cfg.gpu == "hint":
        # The experiment applies to every pool: the CPU stages would run one thread per VM.
        raise ValueError("--gpu-sharing single-process only makes sense with --gpu service")


def beam_options(cfg: LaunchConfig) -> dict[str, str | None]:
    """The Dataflow options of a run, as Beam option name -> value (None: a switch)."""
    opts: dict[str, str | None] = {
        "project": cfg.project,
        "region": cfg.region,
        "temp_location": cfg.temp_location,
        "staging_location": cfg.staging_location,
        "job_name": cfg.job_name,
        "sdk_container_image": cfg.image,
        "sdk_location": "container",  # the Beam inside the image, never a staged tarball
        "max_num_workers": str(cfg.max_workers),
        "autoscaling_algorithm": "THROUGHPUT_BASED",
        "machine_type": cfg.worker_machine_type,
        "disk_size_gb": str(cfg.disk_size_gb),
    }
    if cfg.num_workers is not None:
        opts["num_workers"] = str(cfg.num_workers)
    if cfg.gpu == "service":
        opts["dataflow_service_options"] = f"worker_accelerator={cfg.accelerator}"
    if cfg.gpu != "none" and cfg.gpu_sharing == "single-process":
        opts["number_of_worker_harness_threads"] = "1"
    if cfg.setup_file:
        opts["setup_file"] = str(REPO_ROOT / "setup.py")
    return opts


def experiments(cfg: LaunchConfig) -> list[str]:
    exps = ["use_runner_v2"]  # GPUs and custom containers need Runner v2; explicit so it cannot be turned off
    if cfg.gpu != "none" and cfg.gpu_sharing == "single-process":
        exps.append("no_use_multiple_sdk_containers")
    return exps


def curate_extras(cfg: LaunchConfig, curate_args: Sequence[str]) -> list[str]:
    """`lowbg curate` flags the GPU mode implies, unless the user already gave them."""
    extra = []
    if cfg.gpu == "hint" and not any(a.startswith("--gpu-resource-hint") for a in curate_args):
        extra.append(f"--gpu-resource-hint={cfg.accelerator}")
    if cfg.gpu != "none" and cfg.gpu_sharing == "large-model" and "--large-model" not in curate_args:
        extra.append("--large-model")
    return extra


def _flags(opts: dict[str, str | None]) -> list[str]:
    return [f"--{k}" if v is None else f"--{k}={v}" for k, v in opts.items()]


def direct_argv(cfg: LaunchConfig, curate_args: Sequence[str]) -> list[str]:
    """argv of `lowbg curate` (without the leading 'lowbg curate') for a DataflowRunner run."""
    validate(cfg)
    beam = ["--runner=DataflowRunner", *_flags(beam_options(cfg))]
    beam += [f"--experiments={e}" for e in experiments(cfg)]
    return [*curate_args, *curate_extras(cfg, curate_args), *beam]


def template_run_argv(cfg: LaunchConfig, curate_args: Sequence[str]) -> list[str]:
    """`gcloud dataflow flex-template run ...` for the same run."""
    validate(cfg)
    if cfg.setup_file:
        # The launcher VM has no checkout: a template runs the code in its image.
        raise ValueError("--setup-file only applies to direct runs; rebuild the image to change a template's code")
    params, leftovers = from_curate_argv([*curate_args, *curate_extras(cfg, curate_args)], curate_parameters())
    for name in TEMPLATE_BEAM_PARAMETERS:
        params[name] = cfg.image
    opts = beam_options(cfg)
    # Set through gcloud's own flags below, or through TEMPLATE_BEAM_PARAMETERS.
    for name in ("project", "region", "temp_location", "staging_location", "job_name", "max_num_workers",
                 "num_workers", "machine_type", *TEMPLATE_BEAM_PARAMETERS):
        opts.pop(name, None)
    for arg in leftovers:  # extra Beam options given after '--' (e.g. --network=..., --no_use_public_ips)
        if not arg.startswith("--"):
            raise ValueError(f"unexpected argument {arg!r}: give Beam options as --name=value")
        key, eq, value = arg[2:].partition("=")
        opts[key] = value if eq else "true"
    cmd = [
        "gcloud", "dataflow", "flex-template", "run", cfg.job_name,
        f"--project={cfg.project}",
        f"--region={cfg.region}",
        f"--template-file-gcs-location={cfg.template_spec}",
        f"--temp-location={cfg.temp_location}",
        f"--staging-location={cfg.staging_location}",
        f"--max-workers={cfg.max_workers}",
        f"--worker-machine-type={cfg.worker_machine_type}",
        "--additional-experiments=" + ",".join(experiments(cfg)),
    ]
    if cfg.num_workers is not None:
        cmd.append(f"--num-workers={cfg.num_workers}")
    if cfg.launcher_machine_type:
        cmd.append(f"--launcher-machine-type={cfg.launcher_machine_type}")
    if opts:
        cmd.append(f"--additional-pipeline-options=^{GCLOUD_DELIM}^"
                   + GCLOUD_DELIM.join(f"{k}={v}" for k, v in opts.items()))
    bad = [v for v in params.values() if GCLOUD_DELIM in v]
    if bad:
        raise ValueError(f"template parameter values must not contain {GCLOUD_DELIM!r}: {bad}")
    cmd.append(f"--parameters=^{GCLOUD_DELIM}^" + GCLOUD_DELIM.join(f"{k}={v}" for k, v in params.items()))
    return cmd


def template_build_argv(cfg: LaunchConfig) -> list[str]:
    return [
        "gcloud", "dataflow", "flex-template", "build", cfg.template_spec,
        f"--project={cfg.project}",
        f"--image={cfg.image}",
        "--sdk-language=PYTHON",
        f"--metadata-file={HERE / 'metadata.json'}",
    ]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="launch.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Everything after '--' is passed to `lowbg curate` (our options, then any extra Beam options).")
    ap.add_argument("mode", choices=["direct", "template", "build-template"])
    ap.add_argument("--project", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--bucket", required=True, help="gs://BUCKET[/PREFIX] for temp, staging and the template spec")
    ap.add_argument("--image", required=True, help="the image built from deploy/dataflow/Dockerfile")
    ap.add_argument("--job-name", default=None, help="default: lowbg-curate-<UTC time>")
    ap.add_argument("--max-workers", type=int, default=None, help="autoscaling ceiling (required to run)")
    ap.add_argument("--num-workers", type=int, default=None, help="initial workers (default: Dataflow's)")
    ap.add_argument("--machine-type", default="n2-standard-16", help="CPU worker machine type")
    ap.add_argument("--disk-size-gb", type=int, default=50)
    ap.add_argument("--gpu", choices=["none", "service", "hint"], default="none")
    ap.add_argument("--gpu-type", default="nvidia-l4")
    ap.add_argument("--gpu-count", type=int, default=1)
    ap.add_argument("--gpu-machine-type", default=None, help="machine type of GPU workers (--gpu service)")
    ap.add_argument("--gpu-sharing", choices=["large-model", "single-process"], default="large-model")
    ap.add_argument("--setup-file", action="store_true",
                    help="also stage setup.py, so workers install this checkout over the image's copy")
    ap.add_argument("--launcher-machine-type", default=None,
                    help="template mode: machine of the launcher VM, which builds the job graph and loads the "
                    "detectors once to check them (an LM detector needs more memory than the default launcher)")
    ap.add_argument("--print-only", action="store_true", help="print the command, do not run it")
    return ap


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    own, curate_args = split_argv(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(own)
    if args.mode != "build-template" and args.max_workers is None:
        ap.error("--max-workers is required: never launch a crawl-scale job with an unbounded autoscaler")
    job_name = args.job_name or "lowbg-curate-" + dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    cfg = LaunchConfig(
        project=args.project, region=args.region, bucket=args.bucket, image=args.image,
        max_workers=args.max_workers or 1, job_name=job_name, num_workers=args.num_workers,
        machine_type=args.machine_type, disk_size_gb=args.disk_size_gb, gpu=args.gpu, gpu_type=args.gpu_type,
        gpu_count=args.gpu_count, gpu_machine_type=args.gpu_machine_type, gpu_sharing=args.gpu_sharing,
        setup_file=args.setup_file, launcher_machine_type=args.launcher_machine_type,
    )
    try:
        if args.mode == "build-template":
            cmd = template_build_argv(cfg)
        elif args.mode == "template":
            cmd = template_run_argv(cfg, curate_args)
        else:
            cmd = ["lowbg", "curate", *direct_argv(cfg, curate_args)]
    except ValueError as exc:
        ap.error(str(exc))
    if args.mode != "build-template":
        # Refuse impossible option sets here, before gcloud or Dataflow sees them (same check as the CLI's).
        from pipeline.options import parse_curate_args

        parse_curate_args(direct_argv(cfg, curate_args))
    if args.print_only:
        print(shlex.join(cmd))
        return 0
    if args.mode == "direct":
        from pipeline.cli import main as cli_main

        return int(cli_main(cmd[1:]) or 0)
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
