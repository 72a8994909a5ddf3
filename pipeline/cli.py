"""`lowbg`: one command, sub-commands per part of the product, and the one place where errors become exit codes.

Exit codes, the same for every sub-command:

* **0**: done.
* **1**: the work ran and failed: a run that does not balance, a job that did not finish, or a bug. One line on
  stderr names it; ``lowbg --debug <command> ...`` shows the traceback.
* **2**: bad usage or bad input, found before any work where it can be: an unknown or mistyped flag (with the
  closest known one), a value out of range, a missing or unreadable file, a folder that is not a finished run,
  an output that cannot be written. One line on stderr, ``lowbg <command>: <message>``, never a traceback
  (unless ``--debug``).

Commands raise :class:`UsageError`, :class:`InputError` or :class:`RunFailed` (or, from the Beam-free packages,
their own bad-input types, listed per command below) and never print-and-exit themselves; :func:`run_command` is
where they become a line and a code. Parsers built with :class:`ArgumentParser` report a bad command line the
same way (one line and exit 2, by raising ``SystemExit(2)`` as argparse does, so programs that call a parser
directly keep working); while a command runs under `lowbg`, so do the plain argparse parsers of the Beam-free
packages (``detectors/``, ``collapse/``), which cannot import this module.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import sys
from collections.abc import Callable, Iterable

DEBUG_ENV = "LOWBG_DEBUG"


class CliError(Exception):
    """An error the user can act on: printed as one line, exit code :attr:`exit_code`."""

    exit_code = 2


class UsageError(CliError):
    """A flag or value that cannot work: unknown, mistyped, out of range, contradictory."""


class InputError(CliError):
    """Input that cannot be used: a missing or unreadable file, a folder that is not a finished run, an output
    folder that cannot be written."""


class RunFailed(CliError):
    """The work ran and failed in a way we understand (records lost: the manifest does not balance; a job that
    did not finish). Exit 1: the output is not a finished run."""

    exit_code = 1


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def say(prog: str, message: str) -> None:
    """The error shape of every command: one line on stderr."""
    text = " ".join(str(message).split())  # one line, whatever the exception's message held
    print(f"{prog}: {text}", file=sys.stderr)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_flag_message(arg: str, candidates: Iterable[str], what: str) -> str:
    name = arg.split("=", 1)[0]
    if not name.startswith("-"):
        return f"unexpected argument {arg!r}"
    match = closest(name, candidates)
    hint = f"; did you mean {match}?" if match else ""
    return f"unknown flag {name} ({what}){hint}"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the error shape of every `lowbg` command: a bad command line is one line on stderr,
    ``<prog>: <message> (see <prog> --help)``, and exit 2, instead of the whole usage text. Abbreviated flags
    are not accepted (``--out`` for ``--output``): with flags handed on to Beam, a prefix could silently match
    the wrong one. An unknown flag names the closest known one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        _one_line_error(self, message)

    def flag_names(self) -> list[str]:
        return [s for s in self._option_string_actions if s.startswith("--")]

    def reject_unknown_flags(self, args: list[str], also_known: Iterable[str] = (), what: str | None = None) -> None:
        """Refuse the first ``--flag`` that is neither ours nor in ``also_known``, before argparse looks at the
        rest: a mistyped required flag is then reported as the typo it is, not as a missing flag."""
        known = set(self.flag_names()) | set(also_known)
        for arg in args:
            if arg == "--":
                break
            if arg.startswith("--") and arg.split("=", 1)[0] not in known:
                self.error(unknown_flag_message(arg, known, what or f"not a {self.prog} flag"))

    def parse_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        self.reject_unknown_flags(args)
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            self.error(unknown_flag_message(extra[0], self.flag_names(), f"not a {self.prog} flag"))
        return ns


def run_command(prog: str, body: Callable[[], int | None], bad_input: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command's body; turn what it raises into one line on stderr and an exit code (module docstring).

    ``bad_input``: exception types that mean bad input for this command (exit 2) beside :class:`CliError`,
    :class:`schemas.run.IncompleteRun` and the file errors of a path that does not exist or cannot be read.
    With ``--debug`` (or ``LOWBG_DEBUG=1``) every error propagates, traceback and all.
    """
    from schemas.run import IncompleteRun

    try:
        return int(body() or 0)
    except KeyboardInterrupt:
        say(prog, "interrupted")
        return 130
    except Exception as exc:
        if debug_enabled():
            raise
        if isinstance(exc, CliError):
            say(prog, str(exc))
            return exc.exit_code
        if isinstance(exc, (IncompleteRun, *bad_input)):
            say(prog, str(exc))
            return 2
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
            where = f": {exc.filename}" if exc.filename else ""
            say(prog, f"{exc.strerror or exc}{where}")
            return 2
        say(prog, f"failed: {type(exc).__name__}: {exc} (run `lowbg --debug ...` for the traceback)")
        return 1


def _one_line_error(parser: argparse.ArgumentParser, message: str):
    say(parser.prog, f"{message} (see `{parser.prog} --help`)")
    raise SystemExit(2)


@contextlib.contextmanager
def one_line_argparse_errors():
    """Give every argparse parser the error shape of :class:`ArgumentParser` while a command runs (the parsers
    of ``detectors/`` and ``collapse/`` are plain argparse: those packages do not import the pipeline)."""
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _one_line_error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original


def curate_main(argv: list[str]) -> int:
    """`lowbg curate`: its command line is parsed and checked before the pipeline is imported (that import pulls
    in torch and Beam's ML modules: seconds), so a typo is answered at once."""
    from pipeline.options import parse_curate_args

    args = parse_curate_args(argv)
    from pipeline.curate import main as run

    return run(args)


# name -> (module:function, bad-input exception types of that command as module:name, one-line summary)
COMMANDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "curate": ("pipeline.cli:curate_main", (), "run the curation pipeline on WARC/WET files (Beam)"),
    "decide": ("pipeline.decide:main", (), "re-split scored shards under a new policy, without re-scoring"),
    "index": ("pipeline.dedup.reference:index_main", (), "build a reference band-key index of a pre-cutoff corpus"),
    "manifest": ("pipeline.curate:manifest_main", (),
                 "write (or check) the manifest of a run that finished elsewhere"),
    "report": ("pipeline.report:main", (),
               "what a run did and how much of it is machine-written (HTML, Markdown, JSON)"),
    "detect": ("detectors.cli:main", ("detectors.inputs:InputError",), "score, evaluate, calibrate AI-text detectors"),
    "collapse": ("collapse.cli:main", ("collapse.data:CorpusError",),
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
