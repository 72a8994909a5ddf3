"""Flex Template entry point: template parameters in, `lowbg curate` argv out.

Dataflow's Python template launcher runs this file (``FLEX_TEMPLATE_PYTHON_PY_FILE`` in the Dockerfile) as
``python launcher.py --<name>=<value> ... <pipeline options>``: one ``--name=value`` per template parameter given
at launch, then the Beam/Dataflow options of the launch request (project, region, temp and staging locations,
sdk_container_image, experiments, ...).

Template parameter names are the argparse ``dest`` of each `lowbg curate` option (``--input-list`` becomes
``input_list``): snake_case is what gcloud's ``--parameters`` and the template UI expect, and it keeps our names
in the same style as the Beam options they travel with. The mapping back:

* a value option (``--output``): ``output=gs://b/out`` -> ``--output=gs://b/out``; an empty value is "not given";
* a repeatable option (``--input``, ``--input-list``): the value is split on ``;`` (commas separate gcloud's own
  parameters, and ``;`` never appears in the paths we read), one flag per item;
* a switch (``--overwrite``, ``--large-model``): ``true``/``false``.

Everything that is not one of our parameters is passed through untouched, for Beam's PipelineOptions. The
parameter list is derived from ``build_curate_parser()`` at run time, so it cannot drift from the CLI; the test
in tests/deploy checks metadata.json against the same derivation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LIST_SEPARATOR = ";"
TRUE_VALUES = frozenset({"true", "1", "yes"})
FALSE_VALUES = frozenset({"false", "0", "no", ""})

# CLI options that are deliberately not template parameters, with the reason. Every other option of `lowbg curate`
# means something on Dataflow (model paths must then be gs:// paths, --overwrite replaces a gs:// output's
# shards). An option added here must say why it cannot apply to a Dataflow job.
LOCAL_ONLY: dict[str, str] = {
    "local_workers": "local processes of the DirectRunner (pipeline/local_run.py); Dataflow scales its own workers",
}


class TemplateError(ValueError):
    """A template parameter that cannot become a `lowbg curate` flag."""


@dataclass(frozen=True)
class TemplateParam:
    name: str  # the template parameter: the option's argparse dest
    flag: str  # the CLI flag it becomes
    kind: str  # "value" | "list" | "switch"
    required: bool
    help: str
    choices: tuple[str, ...] | None = None
    default: object = None

    def to_argv(self, value: str) -> list[str]:
        if self.kind == "switch":
            v = value.strip().lower()
            if v in TRUE_VALUES:
                return [self.flag]
            if v in FALSE_VALUES:
                return []
            raise TemplateError(f"{self.name}: expected true or false, got {value!r}")
        if self.kind == "list":
            return [f"{self.flag}={item.strip()}" for item in value.split(LIST_SEPARATOR) if item.strip()]
        if value == "":
            return []
        # --flag=value, not two tokens: a value starting with '-' must not read as a flag.
        return [f"{self.flag}={value}"]


def _long_flag(action: argparse.Action) -> str:
    longs = [s for s in action.option_strings if s.startswith("--")]
    if not longs:
        raise TemplateError(f"option {action.option_strings} has no --long form to map a template parameter to")
    return longs[0]


def _help_text(action: argparse.Action) -> str:
    text = (action.help or "").strip()
    if "%(" in text:  # argparse-style interpolation, as `--help` would show it
        text = text % {**vars(action), "prog": "lowbg curate"}
    return text


def template_parameters(parser: argparse.ArgumentParser) -> list[TemplateParam]:
    """One TemplateParam per option of the `lowbg curate` parser, in the parser's order."""
    params = []
    for action in parser._actions:  # argparse has no public API for this list
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        if action.help == argparse.SUPPRESS:  # a deprecated spelling of another option: not a parameter of its own
            continue
        if action.dest in LOCAL_ONLY:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            kind = "switch"
        elif isinstance(action, argparse._AppendAction):
            kind = "list"
        elif type(action) is argparse._StoreAction and action.nargs in (None, "?"):
            kind = "value"
        else:
            # store_false, count, const, extend, nargs='+'...: decide how a template passes it before shipping it.
            raise TemplateError(f"no template mapping for {_long_flag(action)} ({type(action).__name__})")
        params.append(TemplateParam(
            name=action.dest,
            flag=_long_flag(action),
            kind=kind,
            required=bool(action.required),
            help=_help_text(action),
            choices=tuple(str(c) for c in action.choices) if action.choices else None,
            default=action.default,
        ))
    return params


def curate_parameters() -> list[TemplateParam]:
    from pipeline.options import build_curate_parser

    return template_parameters(build_curate_parser())


def _has_runner(args: Iterable[str]) -> bool:
    return any(a == "--runner" or a.startswith("--runner=") for a in args)


def to_curate_argv(argv: Sequence[str], params: Sequence[TemplateParam]) -> list[str]:
    """Template launcher argv -> `lowbg curate` argv (our flags first, then the Beam options as given)."""
    by_name = {p.name: p for p in params}
    ours: list[str] = []
    beam: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        param = by_name.get(key)
        if param is None:
            beam.append(arg)
            i += 1
            continue
        if not eq:  # "--name value" or a bare switch
            if param.kind == "switch":
                value = "true"
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                raise TemplateError(f"--{key} needs a value")
        ours.extend(param.to_argv(value))
        i += 1
    if not _has_runner(beam):
        beam.append("--runner=DataflowRunner")  # a template only ever runs on Dataflow
    return ours + beam


def from_curate_argv(curate_argv: Sequence[str], params: Sequence[TemplateParam]) -> tuple[dict[str, str], list[str]]:
    """`lowbg curate` argv -> (template parameters, leftover Beam options): the inverse of to_curate_argv."""
    by_flag = {p.flag: p for p in params}
    by_name = {p.name: p for p in params}
    values: dict[str, list[str]] = {}
    beam: list[str] = []
    i = 0
    while i < len(curate_argv):
        arg = curate_argv[i]
        flag, eq, value = arg.partition("=")
        param = by_flag.get(flag)
        if param is None:
            beam.append(arg)
            i += 1
            continue
        if param.kind == "switch":
            if eq:
                raise TemplateError(f"{flag} is a switch and takes no value")
            value = "true"
        elif not eq:
            if i + 1 >= len(curate_argv):
                raise TemplateError(f"{flag} needs a value")
            i += 1
            value = curate_argv[i]
        if param.kind == "list" and LIST_SEPARATOR in value:
            raise TemplateError(f"{flag} value {value!r} contains {LIST_SEPARATOR!r}, the template's list separator")
        values.setdefault(param.name, []).append(value)
        i += 1
    out = {}
    for name, vals in values.items():
        # A repeated single-value flag: argparse keeps the last, so does the template.
        out[name] = LIST_SEPARATOR.join(vals) if by_name[name].kind == "list" else vals[-1]
    return out, beam


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    curate_argv = to_curate_argv(args, curate_parameters())
    # The launcher VM's log is where a failed launch is debugged: show what the template became.
    print("lowbg curate " + " ".join(curate_argv), file=sys.stderr, flush=True)
    from pipeline.cli import main as cli_main

    result = cli_main(["curate", *curate_argv])
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
