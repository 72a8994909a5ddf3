"""The command-line contract of every `lowbg` command: one error shape, exit codes, and checked value types.

Exit codes, the same for every sub-command (``curate``, ``decide``, ``index``, ``manifest``, ``report``,
``detect``, ``collapse``):

* **0**: done.
* **1**: the work ran and failed: a run that does not balance, a job that did not finish, or a bug. One line on
  stderr names it; ``lowbg --debug <command> ...`` shows the traceback.
* **2**: bad usage or bad input, found before any work where it can be: an unknown or mistyped flag (with the
  closest known one), a value out of range, a missing or unreadable file, a folder that is not a finished run,
  an output that cannot be written. One line on stderr, ``lowbg <command>: <message>``, never a traceback
  (unless ``--debug``).

Commands raise :class:`UsageError`, :class:`InputError` or :class:`RunFailed` (or their own bad-input types,
which :func:`run_command` is told about) and never print-and-exit themselves; :func:`run_command` is where they
become a line and a code. Parsers built with :class:`ArgumentParser` report a bad command line the same way (one
line and exit 2, by raising ``SystemExit(2)`` as argparse does, so programs that call a parser directly keep
working). The value types (:func:`fraction`, :func:`positive_int`, :func:`device`, ...) check a range the same
way in every command.

This module is Beam-free and imports nothing of the project: ``detectors/`` and ``collapse/`` use it too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import difflib
import logging
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import NoReturn

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


def _one_line_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    say(parser.prog, f"{message} (see `{parser.prog} --help`)")
    raise SystemExit(2)


@contextlib.contextmanager
def one_line_argparse_errors():
    """Give every plain argparse parser the error shape of :class:`ArgumentParser` while a command runs."""
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _one_line_error  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the error shape of every `lowbg` command: a bad command line is one line on stderr,
    ``<prog>: <message> (see <prog> --help)``, and exit 2, instead of the whole usage text. Abbreviated flags
    are not accepted (``--out`` for ``--output``): with flags handed on to Beam, a prefix could silently match
    the wrong one. An unknown flag names the closest known one. Sub-command parsers are of the same class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        _one_line_error(self, message)

    def flag_names(self) -> list[str]:
        return [s for s in self._option_string_actions if s.startswith("--")]

    def reject_unknown_flags(self, args: list[str], also_known: Iterable[str] = (), what: str | None = None) -> None:
        """Refuse the first ``--flag`` that is neither ours nor in ``also_known``, before argparse looks at the
        rest: a mistyped required flag is then reported as the typo it is, not as a missing flag. (A parser with
        sub-commands leaves this to the sub-command's parser.)"""
        if self._subparsers is not None:
            return
        known = set(self.flag_names()) | set(also_known)
        for arg in args:
            if arg == "--":
                break
            if arg.startswith("--") and arg.split("=", 1)[0] not in known:
                self.error(unknown_flag_message(arg, known, what or f"not a {self.prog} flag"))

    def _chosen_subparser(self, ns: argparse.Namespace) -> ArgumentParser | None:
        if self._subparsers is None:
            return None
        for action in self._subparsers._group_actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(ns, action.dest, None) or "")
                if isinstance(chosen, ArgumentParser):
                    return chosen._chosen_subparser(ns) or chosen
        return None

    def parse_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        self.reject_unknown_flags(args)
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            parser = self._chosen_subparser(ns) or self
            parser.error(unknown_flag_message(extra[0], parser.flag_names(), f"not a {parser.prog} flag"))
        return ns


class _Deprecated(argparse.Action):
    """A former spelling of a flag: still accepted (same destination), with a one-line note on stderr."""

    def __init__(self, option_strings, dest, new_name: str = "", **kwargs):
        self.new_name = new_name
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated; use {self.new_name}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(parser, old: str, new: str, dest: str, **kwargs) -> argparse.Action:
    """Accept ``old`` for ``new`` (hidden from --help and from generated metadata)."""
    return parser.add_argument(old, dest=dest, action=_Deprecated, new_name=new, help=argparse.SUPPRESS,
                               default=argparse.SUPPRESS, **kwargs)


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


# --- value types: a range is checked the same way in every command ------------------------------------------


def parse_utc(value: str) -> dt.datetime:
    """Parse an ISO-8601 time; a naive value is taken as UTC."""
    text = value.strip().replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def utc_time(value: str) -> dt.datetime:
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {value!r}") from exc


def _number(value: str, kind: type) -> float:
    try:
        x = kind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not {'a whole number' if kind is int else 'a number'}: {value!r}") from exc
    if isinstance(x, float) and not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"not a finite number: {value!r}")
    return x


def fraction(value: str) -> float:
    """A number within [0, 1] (a rate, a probability, a share of files)."""
    x = _number(value, float)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1]: {value}")
    return x


def openfraction(value: str) -> float:
    """A number strictly between 0 and 1 (a similarity threshold, a false-positive rate to hold)."""
    x = _number(value, float)
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"must be within (0, 1), ends excluded: {value}")
    return x


def positive_int(value: str) -> int:
    x = _number(value, int)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {value}")
    return int(x)


def non_negative_int(value: str) -> int:
    x = _number(value, int)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return int(x)


def positive_float(value: str) -> float:
    x = _number(value, float)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {value}")
    return x


def non_negative_float(value: str) -> float:
    x = _number(value, float)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return x


def band(value: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH: {value!r}") from exc
    if not (math.isfinite(low) and math.isfinite(high)):
        raise argparse.ArgumentTypeError(f"LOW and HIGH must be finite numbers: {value!r}")
    if low > high:
        raise argparse.ArgumentTypeError(f"LOW > HIGH in {value!r}")
    return low, high


def csv_list(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list: {value!r}")
    return items


def existing_file(value: str) -> str:
    """A local file that exists and can be read: checked when the command line is parsed, before a model loads."""
    if not os.path.exists(value):
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    if os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"a folder, not a file: {value}")
    if not os.access(value, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot be read: {value}")
    return value


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def device(value: str) -> str:
    """Where a model runs: auto (CUDA when present), cpu, cuda, cuda:N or mps."""
    if not _DEVICE.match(value):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda, cuda:N or mps: {value!r}")
    return value


# --- quiet local runs ------------------------------------------------------------------------------------------


class _DropApitoolsWarning(logging.Filter):
    """Without the ``[gcp]`` extra, ``import apache_beam`` logs "apitools not found, and bigquery client libraries
    are not available" on every run, although nothing here uses BigQuery: only that record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and str(record.msg).startswith("apitools not found"))


def drop_apitools_warning() -> None:
    """Install the filter of :class:`_DropApitoolsWarning` on the root logger and its handlers (idempotent)."""
    root = logging.getLogger()
    for target in (root, *root.handlers):
        if not any(isinstance(f, _DropApitoolsWarning) for f in target.filters):
            target.addFilter(_DropApitoolsWarning())


def quiet_library_warnings() -> None:
    """For a command run from the command line: drop the warnings libraries print on every local run that say
    nothing about the run: Beam's apitools notice, transformers' and torch's advice to the model's author
    (generation config, TF32, deprecated storage classes), and Hugging Face's progress bars when stderr is not
    a terminal (a log). Errors and every other warning are untouched. Environment variables set here are
    inherited by Beam's local worker processes. Call it before transformers is imported."""
    drop_apitools_warning()
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # transformers sets its logger's level from this when it is first imported (a level set before is lost)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if not sys.stderr.isatty():  # "Loading weights: 100%|...": a progress bar is for a person watching, not a log
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"transformers(\.|$)")
    warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
