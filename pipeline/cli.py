"""`lowbg`: one command, sub-commands per part of the product."""

from __future__ import annotations

import sys

USAGE = """usage: lowbg <command> [options]

commands:
  curate     run the curation pipeline on WARC/WET files (Beam)
  decide     re-split scored shards under a new policy, without re-scoring
  index      build a reference band-key index of a pre-cutoff corpus
  manifest   write (and check) the manifest of a run that finished elsewhere
  report     what a run did and how much of it is machine-written (HTML, Markdown, JSON)
  detect     score, evaluate, calibrate AI-text detectors
  collapse   generational retraining experiments on curated shards

`lowbg <command> --help` for a command's options."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "curate":
        from pipeline.curate import main as run
    elif command == "decide":
        from pipeline.decide import main as run
    elif command == "manifest":
        from pipeline.curate import manifest_main as run
    elif command == "report":
        from pipeline.report import main as run
    elif command == "index":
        from pipeline.dedup.reference import index_main as run
    elif command == "detect":
        from detectors.cli import main as run
    elif command == "collapse":
        from collapse.cli import main as run
    else:
        print(f"lowbg: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return int(run(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
