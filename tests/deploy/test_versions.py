"""Every image tag, jar and version named under deploy/ agrees with setup.py (Beam pin, Python, package, torch)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.deploylib import (
    DATAFLOW,
    DEPLOY,
    FLINK,
    beam_pin,
    beam_version,
    package_version,
    python_versions,
    requirement,
)

TEXT_SUFFIXES = {".md", ".yaml", ".yml", ".json", ".py", ".sh", ".dockerignore", ""}

# Tags end in a word character: a sentence's full stop after a tag is not part of it.
BEAM_IMAGE = re.compile(r"apache/beam_([a-z0-9_.]+?)(?:_sdk|_job_server):([\w.\-]*\w)")
BEAM_SDK_IMAGE = re.compile(r"apache/beam_python(\d+\.\d+)_sdk:")
FLINK_JOB_SERVER_IMAGE = re.compile(r"apache/beam_flink(\d+\.\d+)_job_server:")
FLINK_JAR = re.compile(r"beam-runners-flink-(\d+\.\d+)-job-server/([\w.\-]+)/beam-runners-flink-(\d+\.\d+)-job-server-"
                       r"([\w.\-]+?)\.jar")
OUR_IMAGE = re.compile(r"lowbackground-sdk:(\w(?:[\w.\-]*\w)?)")
FLINK_VERSION_FLAG = re.compile(r"--flink_version[= ]([\d.]*\d)")
BEAM_VERSION_ASSERT = re.compile(r"apache_beam\.__version__ == '([\w.\-]+)'")
LAUNCHER_BASE = re.compile(r"python(\d)(\d+)-template-launcher-base")


def deploy_texts() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(DEPLOY.rglob("*"))
            if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name.startswith("Dockerfile"))
            and "__pycache__" not in p.parts}


def flink_deployment() -> dict:
    docs = list(yaml.safe_load_all((FLINK / "flink-session.yaml").read_text(encoding="utf-8")))
    (fd,) = [d for d in docs if d and d.get("kind") == "FlinkDeployment"]
    return fd


def cluster_flink_version() -> str:
    """The session cluster's Flink major.minor, from flinkVersion (v1_20 -> 1.20)."""
    m = re.fullmatch(r"v(\d+)_(\d+)", flink_deployment()["spec"]["flinkVersion"])
    assert m, flink_deployment()["spec"]["flinkVersion"]
    return f"{m.group(1)}.{m.group(2)}"


def version_problems(texts: dict[Path, str], beam: str, flink: str, package: str, pythons: list[str]) -> list[str]:
    """Every place under deploy/ whose version disagrees with the expected ones."""
    problems = []
    our_tag = re.compile(rf"{re.escape(package)}-beam{re.escape(beam)}(-cpu)?")
    for path, text in texts.items():
        name = path.relative_to(DEPLOY)
        for m in BEAM_IMAGE.finditer(text):
            if m.group(2) != beam:
                problems.append(f"{name}: {m.group(0)} is not Beam {beam}")
        for m in BEAM_SDK_IMAGE.finditer(text):
            if m.group(1) not in pythons:
                problems.append(f"{name}: {m.group(0)} is not Python {pythons}")
        for m in LAUNCHER_BASE.finditer(text):
            if f"{m.group(1)}.{m.group(2)}" not in pythons:
                problems.append(f"{name}: {m.group(0)} is not Python {pythons}")
        for m in FLINK_JOB_SERVER_IMAGE.finditer(text):
            if m.group(1) != flink:
                problems.append(f"{name}: {m.group(0)} is not for Flink {flink}")
        for m in FLINK_JAR.finditer(text):
            if {m.group(1), m.group(3)} != {flink} or {m.group(2), m.group(4)} != {beam}:
                problems.append(f"{name}: {m.group(0)} is not Beam {beam} for Flink {flink}")
        for m in FLINK_VERSION_FLAG.finditer(text):
            if m.group(1) != flink:
                problems.append(f"{name}: {m.group(0)} is not Flink {flink}")
        for m in OUR_IMAGE.finditer(text):
            if not our_tag.fullmatch(m.group(1)):
                problems.append(f"{name}: {m.group(0)} is not tagged {package}-beam{beam}[-cpu]")
        for m in BEAM_VERSION_ASSERT.finditer(text):
            if m.group(1) != beam:
                problems.append(f"{name}: the image checks for Beam {m.group(1)}, not {beam}")
    return problems


def _expected() -> dict:
    return dict(beam=beam_version(), flink=cluster_flink_version(), package=package_version(),
                pythons=python_versions())


def test_every_version_under_deploy_matches_setup_py():
    assert version_problems(deploy_texts(), **_expected()) == []


def test_the_version_check_catches_drift():
    texts = deploy_texts()
    expected = _expected()
    beam = expected["beam"]
    for old, new in [(f"beam_python3.11_sdk:{beam}", "beam_python3.11_sdk:2.76.0"),
                     (f"job_server:{beam}", "job_server:2.78.0"),
                     ("beam_flink1.20_job_server", "beam_flink1.19_job_server"),
                     ("--flink_version=1.20", "--flink_version=2.0"),
                     (f"lowbackground-sdk:0.1.0-beam{beam}", "lowbackground-sdk:0.0.9-beam2.77.0"),
                     ("python311-template-launcher-base", "python312-template-launcher-base")]:
        mutated = {p: t.replace(old, new) for p, t in texts.items()}
        assert mutated != texts, f"{old!r} no longer appears under deploy/"
        assert version_problems(mutated, **expected), f"replacing {old!r} by {new!r} went unnoticed"


def test_images_and_jars_are_named_where_expected():
    texts = {p.relative_to(DEPLOY).as_posix(): t for p, t in deploy_texts().items()}
    beam = beam_version()
    assert f"FROM apache/beam_python{python_versions()[0]}_sdk:{beam}" in texts["dataflow/Dockerfile"]
    assert f"apache/beam_flink{cluster_flink_version()}_job_server:{beam}" in texts["flink/job-server.yaml"]
    assert FLINK_JAR.search(texts["flink/submit-job.yaml"])
    assert OUR_IMAGE.search(texts["flink/flink-session.yaml"]) and OUR_IMAGE.search(texts["flink/submit-job.yaml"])


def test_beam_version_satisfies_the_pin():
    assert beam_version() in beam_pin()


def test_flink_version_is_one_beam_publishes():
    from apache_beam.options.pipeline_options import FlinkRunnerOptions

    flink = cluster_flink_version()
    assert flink in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    image = flink_deployment()["spec"]["image"]
    assert re.fullmatch(rf"flink:{re.escape(flink)}(\.\d+)?(-[\w.]+)*", image), image


def test_flink_jar_url_is_the_one_beam_itself_would_fetch():
    from apache_beam.runners.portability.job_server import JavaJarJobServer

    url = JavaJarJobServer.path_to_beam_jar(f":runners:flink:{cluster_flink_version()}:job-server:shadowJar")
    assert url in (FLINK / "submit-job.yaml").read_text(encoding="utf-8")


def test_torch_version_satisfies_setup_py():
    from packaging.specifiers import SpecifierSet

    dockerfile = (DATAFLOW / "Dockerfile").read_text(encoding="utf-8")
    m = re.search(r"^ARG TORCH_VERSION=(\S+)$", dockerfile, re.M)
    assert m, "Dockerfile has no ARG TORCH_VERSION"
    assert m.group(1) in SpecifierSet(requirement("torch"))


def test_python_version_is_supported_by_setup_py():
    from packaging.specifiers import SpecifierSet

    m = re.search(r'python_requires="([^"]+)"', (DEPLOY.parent / "setup.py").read_text(encoding="utf-8"))
    assert m
    for version in python_versions():
        assert f"{version}.0" in SpecifierSet(m.group(1))
