"""Fixtures of the deploy/ tests; the helpers live in deploylib.py."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.deploy.deploylib import DATAFLOW, DEPLOY, load_module


@pytest.fixture(scope="session")
def launcher() -> ModuleType:
    return load_module(DATAFLOW / "launcher.py", "launcher")


@pytest.fixture(scope="session")
def make_metadata(launcher) -> ModuleType:
    return load_module(DATAFLOW / "make_metadata.py", "lowbg_deploy_make_metadata")


@pytest.fixture(scope="session")
def launch(launcher) -> ModuleType:
    return load_module(DATAFLOW / "launch.py", "lowbg_deploy_launch")


@pytest.fixture(scope="session")
def scale_plan() -> ModuleType:
    return load_module(DEPLOY / "scale_plan.py", "lowbg_deploy_scale_plan")
