"""One flag table for every `lowbg` command: a flag that several commands take has the same name, value type
(so range check), choices and default in each, as ``--help`` shows it; its former spellings are accepted with
one deprecation line and hidden from ``--help``."""

from __future__ import annotations

import argparse
import copy
import re

import pytest

from common.flags import FLAGS
from pipeline.cli import main as lowbg
from pipeline.options import PIPELINE_FLAGS


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser (sub-commands included), by the words that run it."""
    import collapse.cli
    import detectors.cli
    import pipeline.curate
    import pipeline.decide
    import pipeline.dedup.index_build
    import pipeline.options
    import pipeline.report

    found = {"curate": pipeline.options.build_curate_parser(), "decide": pipeline.decide.build_parser(),
             "index build": pipeline.dedup.index_build.build_index_parser(),
             "index extend": pipeline.dedup.index_build.build_extend_parser(),
             "manifest": pipeline.curate.build_manifest_parser(), "report": pipeline.report.build_parser()}
    for name, parser in (("detect", detectors.cli.build_parser()), ("collapse", collapse.cli._parser())):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found.update({f"{name} {sub}": p for sub, p in action.choices.items()})
    return found


PARSERS = parsers()
# Where a command's default differs from the table's on purpose (the parser's help says so).
OWN_DEFAULT = {("decide", flag) for flag in ("--target-fpr", "--min-calibration-docs", "--on-uncertain",
                                             "--on-machine", "--languages", "--min-language-score", "--min-words",
                                             "--quality-preset")}
# Where a command takes fewer choices on purpose: decide re-decides a run whose `auto` was resolved when it ran.
OWN_CHOICES = {("decide", "--on-machine")}
TABLE = {**FLAGS, **PIPELINE_FLAGS}


def shared_flags() -> list[tuple[str, str]]:
    return [(command, name) for command, parser in PARSERS.items() for name in TABLE
            if name in parser._option_string_actions]


def help_text(command: str, capsys) -> str:
    try:
        code = lowbg([*command.split(), "--help"])
    except SystemExit as exc:  # a parser's --help exits (collapse's main returns the code instead)
        code = exc.code
    assert code == 0
    return capsys.readouterr().out


def test_every_command_has_help_and_the_shared_flags_are_used_widely(capsys):
    for command in PARSERS:
        assert "usage: lowbg " + command in help_text(command, capsys)
    used = {}
    for command, name in shared_flags():
        used.setdefault(name, []).append(command)
    # the flags the issue found spelled differently, now one spelling in every command that takes them
    assert {"curate", "detect score", "detect evaluate", "detect calibrate"} <= set(used["--scoring-model"])
    assert {"curate", "detect score", "collapse run", "collapse web"} <= set(used["--device"])
    assert {"detect score", "detect calibrate", "collapse run", "collapse web"} <= set(used["--text-field"])
    assert {"curate", "decide", "detect calibrate", "collapse run", "collapse web"} <= set(used["--target-fpr"])
    assert {"decide", "index build", "report", "collapse run", "collapse web"} <= set(used["--allow-incomplete"])


@pytest.mark.parametrize("command, name", shared_flags())
def test_a_shared_flag_has_the_same_name_type_choices_and_default_everywhere(command, name, capsys):
    flag, action = TABLE[name], PARSERS[command]._option_string_actions[name]
    assert action.option_strings == [name]
    assert action.type is flag.kwargs.get("type")
    if (command, name) in OWN_CHOICES:
        assert set(action.choices) < set(flag.kwargs["choices"])
    else:
        assert action.choices == flag.kwargs.get("choices")
    if (command, name) not in OWN_DEFAULT:
        assert action.default == flag.kwargs.get("default", None if action.nargs != 0 else False)
    text = help_text(command, capsys)
    assert name in text
    for alias in flag.aliases:  # hidden from --help, still accepted
        assert not re.search(rf"{re.escape(alias)}(?![\w-])", text), alias
        assert PARSERS[command]._option_string_actions[alias].dest == action.dest


@pytest.mark.parametrize("command, old, new, value", [
    ("detect score", "--scoring", "--scoring-model", "m"),
    ("detect score", "--reference", "--reference-model", "m"),
    ("detect score", "--text-column", "--text-field", "body"),
    ("detect evaluate", "--output-dir", "--output", "folder"),
    ("curate", "--lm", "--lm-model", "m"),
    ("collapse run", "--text-column", "--text-field", "body"),
    ("collapse run", "--id-column", "--id-field", "key"),
    ("collapse web", "--filter-fpr", "--target-fpr", "0.05"),
])
def test_a_former_spelling_still_works_with_one_deprecation_line(command, old, new, value, capsys):
    parser = copy.deepcopy(PARSERS[command])
    for action in parser._actions:  # only the flag under test on the command line
        action.required = False
    new_action = parser._option_string_actions[new]
    ns, _ = parser.parse_known_args([old, value])
    expected = new_action.type(value) if new_action.type else value
    assert getattr(ns, new_action.dest) == expected
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lowbg {command}: {old} is deprecated; use {new}"]


def test_the_former_detect_model_flag_goes_to_the_model_of_the_detector(capsys):
    from detectors.cli import build_parser, detector_options

    parser = build_parser()
    for detector, expected in (("likelihood", "lm"), ("fasttext", "ft.ftz")):
        args = parser.parse_args(["score", "--detector", detector, "--model", expected, "--input", __file__,
                                  "--output", "o"])
        assert detector_options(args) == {"model": expected}
    assert "--model is deprecated; use --lm-model (or --fasttext-model)" in capsys.readouterr().err
    args = parser.parse_args(["score", "--detector", "fasttext", "--lm-model", "x", "--input", __file__,
                              "--output", "o"])
    with pytest.raises(ValueError, match="takes no --lm-model"):
        detector_options(args)
