"""`lowbg`: one command, sub-commands per part of the product, and the one place where errors become exit codes.

The error shape and the exit codes (0 done, 1 the run failed, 2 bad usage or input: one line on stderr, the
traceback only with ``--debug``) are :mod:`common.cli`'s, shared with the Beam-free packages (``detectors/``,
``collapse/``), whose parsers are built with the same :class:`common.cli.ArgumentParser`. This module dispatches
``lowbg <command>`` to each command's ``main`` through :func:`common.cli.run_command`, telling it which
exceptions of that command mean bad input.
"""

from __future__ import annotations

import importlib
import os
import sys

from common.cli import DEBUG_ENV, closest, one_line_argparse_errors, quiet_library_warnings, run_command, say


def curate_main(argv: list[str]) -> int:
    """`lowbg curate`: its command line is parsed and checked before the pipeline is imported (that import pulls
    in torch and Beam's ML modules: seconds), so a typo is answered at once."""
    from pipeline.options import parse_curate_args, parse_local_workers

    args = parse_curate_args(argv)
    from pipeline.curate import main as run

    return run(args, parse_local_workers(argv))


# name -> (module:function, bad-input exception types of that command as module:name, one-line summary)
COMMANDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "curate": ("pipeline.cli:curate_main", (), "run the curation pipeline on WARC/WET files (Beam)"),
    "decide": ("pipeline.decide:main", (), "re-split scored shards under a new policy, without re-scoring"),
    "index": ("pipeline.dedup.reference:index_main", (), "build or extend the reference index of finished runs (Beam)"),
    "manifest": ("pipeline.curate:manifest_main", (),
                 "write (or check) the manifest of a run that finished elsewhere"),
    "report": ("pipeline.report:main", (),
               "what a run did and how much of it is machine-written (HTML, Markdown, JSON)"),
    "detect": ("detectors.cli:main", (), "score, evaluate, calibrate AI-text detectors"),
    "collapse": ("collapse.cli:main", (),
                 "generational retraining experiments on curated shards"),
}

USAGE = "usage: lowbg [--debug] <command> [options]\n\ncommands:\n" + "\n".join(
    f"  {name:<10} {summary}" for name, (_, _, summary) in COMMANDS.items()) + """

`lowbg <command> --help` for a command's options. Exit codes: 0 done, 1 the run failed, 2 bad usage or input.
--debug (anywhere on the line, or LOWBG_DEBUG=1) shows the traceback of an error."""


def _load(ref: str):
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``lowbg <command> ...``; returns the exit code (a parser's SystemExit passes through)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_library_warnings()
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        match = closest(command, COMMANDS)
        say("lowbg", f"unknown command {command!r}" + (f"; did you mean {match}?" if match else "")
            + " (see `lowbg --help`)")
        return 2
    target, bad_input_refs, _ = COMMANDS[command]
    previous = os.environ.get(DEBUG_ENV)
    if debug:
        os.environ[DEBUG_ENV] = "1"
    try:
        run = _load(target)
        bad_input = tuple(_load(ref) for ref in bad_input_refs)
        with one_line_argparse_errors():
            return run_command(f"lowbg {command}", lambda: run(rest), bad_input)
    finally:
        if debug:
            if previous is None:
                os.environ.pop(DEBUG_ENV, None)
            else:
                os.environ[DEBUG_ENV] = previous


if __name__ == "__main__":
    sys.exit(main())
