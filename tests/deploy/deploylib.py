"""Shared helpers of the deploy/ tests: the deploy scripts (not a package) loaded by path, setup.py's pins,
and the option names the installed Beam registers."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DATAFLOW = DEPLOY / "dataflow"
FLINK = DEPLOY / "flink"


def load_module(path: Path, name: str) -> ModuleType:
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # launch.py and make_metadata.py import it as `launcher`
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------- setup.py pins


@functools.cache
def setup_py() -> str:
    return (REPO / "setup.py").read_text(encoding="utf-8")


def requirement(name: str) -> str:
    """The specifier of `name` in setup.py's install_requires, e.g. '>=2.77,<2.78'."""
    m = re.search(rf'"{re.escape(name)}((?:[<>=!~]=?[\w.*]+,?)+)"', setup_py())
    assert m, f"{name} not pinned in setup.py"
    return m.group(1)


def beam_pin():
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(requirement("apache-beam"))


def package_version() -> str:
    m = re.search(r'^VERSION = "([^"]+)"', setup_py(), re.M)
    assert m, "VERSION not found in setup.py"
    return m.group(1)


def python_versions() -> list[str]:
    """The Python versions setup.py's classifiers name, e.g. ['3.11']."""
    return re.findall(r"Programming Language :: Python :: (\d+\.\d+)", setup_py())


@functools.cache
def beam_version() -> str:
    """The Beam version every image and jar must carry: the installed one, which must satisfy the pin."""
    import apache_beam

    assert apache_beam.__version__ in beam_pin(), (
        f"installed apache-beam {apache_beam.__version__} does not satisfy setup.py's {beam_pin()}")
    return apache_beam.__version__


# ----------------------------------------------------------------------------------------------- option names


@functools.cache
def beam_parser() -> argparse.ArgumentParser:
    """A parser with every option registered in apache_beam.options.pipeline_options (all runners)."""
    from apache_beam.options import pipeline_options as po

    parser = po._BeamArgumentParser(allow_abbrev=False, add_help=False, conflict_handler="resolve")
    seen: set[type] = set()
    stack = list(po.PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if cls.__module__ == po.__name__:  # Beam's own option classes, not test or user subclasses
            cls._add_argparse_args(parser)
    return parser


@functools.cache
def beam_flags() -> frozenset[str]:
    return frozenset(beam_parser()._option_string_actions)


@functools.cache
def beam_dests() -> frozenset[str]:
    return frozenset(a.dest for a in beam_parser()._actions)


@functools.cache
def curate_flags() -> frozenset[str]:
    from pipeline.options import build_curate_parser

    return frozenset(build_curate_parser()._option_string_actions)


def flag_name(arg: str) -> str:
    return arg.partition("=")[0]


def unknown_flags(args: list[str], extra: frozenset[str] = frozenset()) -> list[str]:
    """Flags in args that are neither `lowbg curate` options nor Beam options (values are skipped)."""
    known = beam_flags() | curate_flags() | extra
    return [a for a in args if a.startswith("--") and flag_name(a) not in known]
