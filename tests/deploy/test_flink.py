"""deploy/flink: the manifests parse, carry what the operator and Kubernetes need, and agree with each other and
with the submission command (ports, service names, slots vs SDK workers, volumes)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from pipeline.options import parse_curate_args
from tests.deploy.deploylib import DEPLOY, FLINK, beam_flags, curate_flags, flag_name, unknown_flags

MANIFESTS = sorted(FLINK.glob("*.yaml"))


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((FLINK / name).read_text(encoding="utf-8")) if d is not None]


def one(name: str, kind: str) -> dict:
    docs = [d for d in load(name) if d["kind"] == kind]
    assert len(docs) == 1, f"{name}: expected one {kind}"
    return docs[0]


def flink_deployment() -> dict:
    return one("flink-session.yaml", "FlinkDeployment")


def tm_pod_spec() -> dict:
    return flink_deployment()["spec"]["taskManager"]["podTemplate"]["spec"]


def container(pod_spec: dict, name: str) -> dict:
    found = [c for c in pod_spec["containers"] if c["name"] == name]
    assert len(found) == 1, f"no container {name!r}"
    return found[0]


def worker_pool() -> dict:
    return next(c for c in tm_pod_spec()["containers"] if "--worker_pool" in c.get("args", []))


def rest_endpoint() -> str:
    meta = flink_deployment()["metadata"]
    return f"{meta['name']}-rest.{meta['namespace']}:8081"  # the operator's REST service for the deployment


def args_dict(args: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (a.partition("=") for a in args)}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_parse_and_are_namespaced(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "lowbg", f"{path.name}: {doc['kind']} outside lowbg"


def test_namespace_is_defined():
    assert one("namespace.yaml", "Namespace")["metadata"]["name"] == "lowbg"


def test_flink_deployment_is_a_complete_session_cluster():
    fd = flink_deployment()
    assert fd["apiVersion"] == "flink.apache.org/v1beta1"
    spec = fd["spec"]
    assert "job" not in spec, "a session cluster has no job spec"
    assert re.fullmatch(r"v\d+_\d+", spec["flinkVersion"])
    assert spec["image"].startswith("flink:")
    assert spec["serviceAccount"]
    assert spec.get("mode") == "standalone"
    # The CRD types flinkConfiguration as map<string, string>: an unquoted YAML number is rejected.
    assert all(isinstance(v, str) for v in spec["flinkConfiguration"].values()), spec["flinkConfiguration"]
    for role in ("jobManager", "taskManager"):
        resource = spec[role]["resource"]
        assert resource["cpu"] > 0 and re.fullmatch(r"\d+[mgMG]i?", str(resource["memory"])), (role, resource)
    # Standalone session clusters need a fixed TaskManager count.
    assert isinstance(spec["taskManager"]["replicas"], int) and spec["taskManager"]["replicas"] > 0


def test_task_manager_pod_has_the_sdk_worker_pool_sidecar():
    pod = tm_pod_spec()
    container(pod, "flink-main-container")  # the operator merges Flink's container into this name
    sidecar = worker_pool()
    assert sidecar["args"] == ["--worker_pool"]
    assert sidecar["image"].startswith("lowbackground-sdk:")
    assert [p["containerPort"] for p in sidecar["ports"]] == [50000]
    volumes = {v["name"] for v in pod["volumes"]}
    for c in pod["containers"]:
        for mount in c.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{c['name']} mounts undefined volume {mount['name']}"
    config = flink_deployment()["spec"]["flinkConfiguration"]
    for role in ("jobManager", "taskManager"):
        role_pod = flink_deployment()["spec"][role]["podTemplate"]["spec"]
        mounts = {m["mountPath"] for m in container(role_pod, "flink-main-container")["volumeMounts"]}
        for key in ("io.tmp.dirs", "web.upload.dir"):
            # A directory the flink user can write: a mounted volume (the dedup shuffle spills to io.tmp.dirs).
            assert config[key] in mounts, f"{role}: {key} {config[key]} is not a mounted volume"


def test_job_server_points_at_the_session_cluster_and_shares_artifacts():
    deployment = one("job-server.yaml", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["image"].startswith("apache/beam_flink")
    args = args_dict(server["args"])
    assert args["--flink-master"] == rest_endpoint()
    assert args["--job-host"] == "0.0.0.0"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"].items()
    # Staged artifacts are written by the job server and read back by every TaskManager: a gs:// location (the
    # only remote filesystem the job-server jar bundles), or one ReadWriteMany claim at the same path in both.
    artifacts_dir = args["--artifacts-dir"]
    if not artifacts_dir.startswith("gs://"):
        server_mount = next(m for m in server["volumeMounts"] if m["mountPath"] == artifacts_dir)
        claim = next(v for v in pod["volumes"] if v["name"] == server_mount["name"])["persistentVolumeClaim"]
        tm_pod = tm_pod_spec()
        tm_mount = next(m for m in container(tm_pod, "flink-main-container")["volumeMounts"]
                        if m["mountPath"] == artifacts_dir)
        tm_volume = next(v for v in tm_pod["volumes"] if v["name"] == tm_mount["name"])
        assert tm_volume["persistentVolumeClaim"]["claimName"] == claim["claimName"]
    # The Service exposes exactly the ports the container listens on.
    service = one("job-server.yaml", "Service")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    container_ports = {p["containerPort"] for p in server["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} == container_ports
    assert {int(args[f"--{n}-port"]) for n in ("job", "artifact", "expansion")} == container_ports


def submit_args() -> list[str]:
    job = one("submit-job.yaml", "Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["lowbg", "curate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    return c["args"]


def check_flink_submission(args: list[str]) -> None:
    """The submission agrees with the cluster: runner, master, version, environment, parallelism."""
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, PipelineOptions, PortableOptions

    assert unknown_flags(args) == []
    parsed = parse_curate_args(args)
    assert re.match(r"(s3|gs)://", parsed.sinks.output), "outputs must be on a filesystem every worker reaches"
    opts = PipelineOptions(parsed.beam_args)
    opts.get_all_options()  # argparse validates --flink_version against Beam's published versions here
    flink = opts.view_as(FlinkRunnerOptions)
    portable = opts.view_as(PortableOptions)
    spec = flink_deployment()["spec"]
    slots = int(spec["flinkConfiguration"]["taskmanager.numberOfTaskSlots"])
    assert flink.flink_master == rest_endpoint()
    assert flink.flink_version == spec["flinkVersion"][1:].replace("_", ".")
    assert portable.environment_type == "EXTERNAL"
    assert portable.environment_config == f"localhost:{worker_pool()['ports'][0]['containerPort']}"
    assert int(portable.sdk_worker_parallelism) == slots, "one SDK process per task slot"
    assert flink.parallelism == spec["taskManager"]["replicas"] * slots


def test_submit_job_matches_the_cluster():
    args = submit_args()
    check_flink_submission(args)
    assert "--runner=FlinkRunner" in args and "--flink_submit_uber_jar" in args


def test_submission_check_catches_a_mismatch():
    args = submit_args()
    for old, new in [("--sdk_worker_parallelism=8", "--sdk_worker_parallelism=1"),
                     ("--parallelism=128", "--parallelism=64"),
                     ("--environment_config=localhost:50000", "--environment_config=localhost:50001"),
                     ("--flink_master=lowbg-flink-rest.lowbg:8081", "--flink_master=flink:8081")]:
        assert old in args, old
        with pytest.raises(AssertionError):
            check_flink_submission([new if a == old else a for a in args])


# ------------------------------------------------------------------------------ commands written in the READMEs


def shell_commands(markdown: str) -> list[list[str]]:
    """The commands of the fenced bash blocks (continuation lines joined), as argv lists."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


def curate_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted(DEPLOY.rglob("README.md")):
        for argv in shell_commands(path.read_text(encoding="utf-8")):
            if argv[:2] == ["lowbg", "curate"]:
                found.append((path.relative_to(DEPLOY).as_posix(), argv[2:]))
            elif len(argv) > 1 and argv[1].endswith("launch.py") and "--" in argv:
                found.append((path.relative_to(DEPLOY).as_posix(), argv[argv.index("--") + 1:]))
    return found


def test_readme_commands_use_only_real_options(launch):
    commands = curate_commands()
    assert len(commands) >= 4, commands
    for where, args in commands:
        assert unknown_flags(args) == [], f"{where}: {args}"
    launch_flags = frozenset(launch.build_parser()._option_string_actions)
    for path in sorted(DEPLOY.rglob("README.md")):
        for argv in shell_commands(path.read_text(encoding="utf-8")):
            if len(argv) > 1 and argv[1].endswith("launch.py"):
                own = argv[2:argv.index("--")] if "--" in argv else argv[2:]
                assert all(flag_name(a) in launch_flags for a in own if a.startswith("--")), own


def test_readme_flink_recipe_matches_the_cluster():
    readme = (FLINK / "README.md").read_text(encoding="utf-8")
    recipes = [argv[2:] for argv in shell_commands(readme)
               if argv[:2] == ["lowbg", "curate"] and "--runner=FlinkRunner" in argv]
    assert recipes, "flink/README.md shows no FlinkRunner command"
    for args in recipes:
        check_flink_submission(args)


def test_flag_sets_are_disjoint():
    # A flag both ours and Beam's would be swallowed by `lowbg curate` before Beam sees it.
    assert not curate_flags() & beam_flags()
