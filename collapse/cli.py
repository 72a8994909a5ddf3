"""`lowbg collapse run | web | compare | report`: argv here excludes the word "collapse".

Bad input (a missing or malformed option, shards that cannot support the run, an unfinished `lowbg curate` run, a
filter that cannot load or calibrate, a resume with other options) answers with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collapse.regimes import REGIMES
from collapse.web import REAL_POOL_USES, SYNTHETIC_FROM

PROG = "lowbg collapse"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other bad input."""

    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"{PROG}: error: {self.prog.removeprefix(PROG).strip() or 'usage'}: {message} "
                         f"(see {self.prog} --help)\n")
        sys.exit(2)


def _add_run_options(r: argparse.ArgumentParser, web: bool) -> None:
    r.add_argument("--shards", required=True, help="Parquet file, directory (all *.parquet below) or glob; a "
                   "`lowbg curate` run folder reads its curated shards (the run must be finished)")
    r.add_argument("--model", default="ngram", help="ngram | gpt | hf:PATH_OR_ID (default: ngram)")
    if not web:
        r.add_argument("--regime", default="replace", choices=REGIMES)
        r.add_argument("--real-fraction", type=float, default=0.0, help="mix: fraction of real data per generation")
    r.add_argument("--generations", type=int, default=5, help="generations after generation 0 (default: 5)")
    r.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..S-1 (default: 3)")
    r.add_argument("--output", required=True, help="output directory; an existing one with the same options resumes")
    r.add_argument("--sample-size", type=int, help="documents per generation (default: generation 0's train size; "
                   "web: the largest the real pool supports under the schedule)")
    r.add_argument("--heldout-fraction", type=float, default=0.1)
    r.add_argument("--max-docs", type=int, help="read at most this many documents")
    r.add_argument("--text-column", default="text")
    r.add_argument("--id-column", default="id")
    r.add_argument("--real-filter", action="append", default=[], metavar="COLUMN=VALUE[|VALUE]",
                   help="keep only rows with these values, e.g. provenance=pre_cutoff (what capture dates certify "
                        "as human); repeat to combine")
    r.add_argument("--allow-incomplete", action="store_true",
                   help="read the shards of a `lowbg curate` run that has no valid, balanced manifest")

    w = r.add_argument_group("web regime: a crawl that fills with model output, filtered" + (
        " (--regime web)" if not web else ""))
    w.add_argument("--contamination", required=web, help="share of model output in each generation's crawl: one "
                   "share (0.3) or one per generation after generation 0 (0.1,0.2,0.35,0.5,0.5)")
    w.add_argument("--synthetic-from", default="all", choices=SYNTHETIC_FROM,
                   help="the crawl's model output comes from all earlier generations (default) or the last one")
    w.add_argument("--real-pool-use", default="reuse", choices=REAL_POOL_USES,
                   help="reuse: each generation draws its real documents from the whole pool (as mix); consume: a "
                        "real document is offered once, so the pool runs low (default: reuse)")
    w.add_argument("--crawl-factor", type=float, default=1.0,
                   help="candidate documents per training document (default 1: train on whatever survives the "
                        "filter; 2: the crawl is twice the budget)")
    w.add_argument("--real-pool", type=int, help="cap the real pool at this many documents (default: all)")
    w.add_argument("--calibration-fraction", type=float, default=0.1,
                   help="real documents set aside to calibrate a detector filter, never trained on (default 0.1)")
    if web:
        w.add_argument("--filters", action="append", required=True,
                       help="one arm per filter: none,oracle,detector:NAME[:gen0|:last|:key=value,...] "
                            "(e.g. none,oracle,detector:fast-detectgpt:gen0,detector:fasttext)")
    else:
        w.add_argument("--filter", default="none", help="none | oracle | detector:NAME[:gen0|:last|:key=value,...]")
    w.add_argument("--filter-fpr", type=float, default=0.01,
                   help="a detector's target false-positive rate, calibrated on the calibration documents "
                        "(default 0.01, as the pipeline's --target-fpr)")

    g = r.add_argument_group("n-gram model")
    g.add_argument("--order", type=int, default=2, help="n-gram order (default: 2)")
    g.add_argument("--vocab-size", type=int,
                   help="BPE vocabulary trained on generation 0 (ngram, gpt); default: ~sqrt(tokens), 384..8192")
    g = r.add_argument_group("gpt / hf training (defaults: gpt small on CPU; hf the paper's OPT-125m setting)")
    g.add_argument("--gpt-size", default="small", choices=["toy", "tiny", "small", "base"])
    g.add_argument("--epochs", type=float)
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--block-size", type=int)
    g.add_argument("--max-steps", type=int)
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g = r.add_argument_group("sampling")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--beams", type=int, default=1, help="beam search width (gpt, hf); the paper used 5")
    g.add_argument("--max-new-tokens", type=int, help="default: from generation 0's document lengths")
    g.add_argument("--prompt-tokens", type=int, default=64)
    g.add_argument("--prompts", default="auto", choices=["auto", "none", "real", "train"],
                   help="prompt each sample with a real or training document's first tokens (auto: real for hf)")
    g = r.add_argument_group("output")
    g.add_argument("--self-bleu-docs", type=int, default=100)
    g.add_argument("--save-models", default="all", choices=["all", "first"])
    g.add_argument("--no-progress", action="store_true")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=(
        "Train a model on the shards, sample a corpus of the same size from it, train the next model on that, and "
        "measure what each generation forgets (Shumailov et al., Nature 2024); or measure what a filter between a "
        "contaminated crawl and the training data buys (web)."))
    sub = p.add_subparsers(dest="command", required=True)
    _add_run_options(sub.add_parser("run", help="run (or resume) the generational protocol"), web=False)
    _add_run_options(sub.add_parser("web", help="one web-regime arm per filter, and what each filter buys"), web=True)

    c = sub.add_parser("compare", help="runs side by side, with differences and their confidence intervals")
    c.add_argument("runs", nargs="+", help="run directories (a web experiment stands for its arms); the first is "
                                           "the baseline")
    c.add_argument("--output", default="collapse-compare")

    rep = sub.add_parser("report", help="re-create the report and plots of a run or of a web experiment")
    rep.add_argument("run")
    return p


def _config(args: argparse.Namespace, **fixed):
    from collapse.protocol import RunConfig

    skip = {"command", "output", "no_progress", "filters"}
    opts = {k: v for k, v in vars(args).items() if k not in skip}
    return RunConfig(progress=not args.no_progress, **opts, **fixed)


def _report(path: Path) -> None:
    from collapse.experiment import is_experiment, web_summary, write_web_report

    if is_experiment(path):
        write_web_report(path)
        print(f"comparison written to {path / 'web.md'}")
        print(web_summary(path))
        return
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is neither a collapse run (no config.json) nor a web experiment "
                                "(no web.json)")
    import pyarrow.parquet as pq

    from collapse.protocol import collect_metrics
    from collapse.report import summary_table, write_report

    table = collect_metrics(path)
    pq.write_table(table, path / "metrics.parquet")
    print(f"report written to {write_report(path)}")
    print(summary_table(table))


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # a usage error (one line, see _Parser.error) or --help
        return e.code if isinstance(e.code, int) else 2
    try:
        if args.command == "run":
            from collapse.protocol import run

            run(_config(args), args.output)
        elif args.command == "web":
            from collapse.experiment import run_web
            from collapse.filters import split_filters

            run_web(_config(args, regime="web", real_fraction=0.0), split_filters(args.filters), args.output)
        elif args.command == "compare":
            from collapse.compare import compare

            compare(args.runs, args.output)
        else:
            _report(Path(args.run))
    except (ValueError, OSError) as e:  # CorpusError, ConfigMismatch, IncompleteRun, FilterError, ScheduleError ...
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
