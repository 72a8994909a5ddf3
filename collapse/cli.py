"""`lowbg collapse run | web | compare | report`: argv here excludes the word "collapse".

Errors have :mod:`common.cli`'s shape, as in every `lowbg` command: bad input (a missing or malformed option, a
value out of range, shards that cannot support the run, an unfinished `lowbg curate` run, a filter that cannot load
or calibrate, a resume with other options) answers with one line on stderr and exit code 2; a failure with exit 1.
Flags shared with other commands (``--text-field``, ``--device``, ``--target-fpr``, ``--allow-incomplete``) come
from :data:`common.flags.FLAGS`; former spellings (``--text-column``, ``--id-column``, ``--filter-fpr``) still work
with a one-line deprecation note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collapse.regimes import REGIMES
from collapse.web import REAL_POOL_USES, SYNTHETIC_FROM
from common.cli import (
    ArgumentParser,
    add_deprecated_alias,
    fraction,
    non_negative_int,
    openfraction,
    positive_float,
    positive_int,
    quiet_library_warnings,
    run_command,
)
from common.flags import add_flag

PROG = "lowbg collapse"


def _top_p(value: str) -> float:
    x = positive_float(value)
    if x > 1.0:
        raise argparse.ArgumentTypeError(f"must be within (0, 1]: {value}")
    return x


def _add_run_options(r: argparse.ArgumentParser, web: bool) -> None:
    r.add_argument("--shards", required=True, help="Parquet file, directory (all *.parquet below) or glob; a "
                   "`lowbg curate` run folder reads its curated shards (the run must be finished)")
    r.add_argument("--model", default="ngram", help="ngram | gpt | hf:PATH_OR_ID (default: ngram)")
    if not web:
        r.add_argument("--regime", default="replace", choices=REGIMES)
        r.add_argument("--real-fraction", type=fraction, default=0.0, help="mix: fraction of real data per generation")
    r.add_argument("--generations", type=non_negative_int, default=5,
                   help="generations after generation 0 (default: 5)")
    r.add_argument("--seeds", type=positive_int, default=3, help="number of seeds, 0..S-1 (default: 3)")
    r.add_argument("--output", required=True, metavar="DIR",
                   help="output folder; an existing one with the same options resumes")
    r.add_argument("--sample-size", type=positive_int, help="documents per generation (default: generation 0's train "
                   "size; web: the largest the real pool supports under the schedule)")
    r.add_argument("--heldout-fraction", type=openfraction, default=0.1)
    r.add_argument("--max-docs", type=positive_int, help="read at most this many documents")
    add_flag(r, "--text-field", dest="text_column")
    r.add_argument("--id-field", default="id", dest="id_column", metavar="NAME",
                   help="the column that holds the document id")
    add_deprecated_alias(r, "--id-column", "--id-field", "id_column")
    r.add_argument("--real-filter", action="append", default=[], metavar="COLUMN=VALUE[|VALUE]",
                   help="keep only rows with these values, e.g. provenance=pre_cutoff (what capture dates certify "
                        "as human); repeat to combine")
    add_flag(r, "--allow-incomplete")

    w = r.add_argument_group("web regime: a crawl that fills with model output, filtered" + (
        " (--regime web)" if not web else ""))
    w.add_argument("--contamination", required=web, help="share of model output in each generation's crawl: one "
                   "share (0.3) or one per generation after generation 0 (0.1,0.2,0.35,0.5,0.5)")
    w.add_argument("--synthetic-from", default="all", choices=SYNTHETIC_FROM,
                   help="the crawl's model output comes from all earlier generations (default) or the last one")
    w.add_argument("--real-pool-use", default="reuse", choices=REAL_POOL_USES,
                   help="reuse: each generation draws its real documents from the whole pool (as mix); consume: a "
                        "real document is offered once, so the pool runs low (default: reuse)")
    w.add_argument("--crawl-factor", type=positive_float, default=1.0,
                   help="candidate documents per training document (default 1: train on whatever survives the "
                        "filter; 2: the crawl is twice the budget)")
    w.add_argument("--real-pool", type=positive_int, help="cap the real pool at this many documents (default: all)")
    w.add_argument("--calibration-fraction", type=openfraction, default=0.1,
                   help="real documents set aside to calibrate a detector filter, never trained on (default 0.1)")
    if web:
        w.add_argument("--filters", action="append", required=True,
                       help="one arm per filter: none,oracle,detector:NAME[:gen0|:last|:key=value,...] "
                            "(e.g. none,oracle,detector:fast-detectgpt:gen0,detector:fasttext)")
    else:
        w.add_argument("--filter", default="none", help="none | oracle | detector:NAME[:gen0|:last|:key=value,...]")
    add_flag(w, "--target-fpr", dest="filter_fpr",
             help="false-positive rate on real text that a detector filter's threshold must hold, calibrated on the "
             "calibration documents (as the pipeline's --target-fpr)")
    add_deprecated_alias(w, "--filter-fpr", "--target-fpr", "filter_fpr", type=openfraction)

    g = r.add_argument_group("n-gram model")
    g.add_argument("--order", type=positive_int, default=2, help="n-gram order (default: 2)")
    g.add_argument("--vocab-size", type=positive_int,
                   help="BPE vocabulary trained on generation 0 (ngram, gpt); default: ~sqrt(tokens), 384..8192")
    g = r.add_argument_group("gpt / hf training (defaults: gpt small on CPU; hf the paper's OPT-125m setting)")
    g.add_argument("--gpt-size", default="small", choices=["toy", "tiny", "small", "base"])
    g.add_argument("--epochs", type=positive_float)
    g.add_argument("--lr", type=positive_float)
    g.add_argument("--batch-size", type=positive_int)
    g.add_argument("--block-size", type=positive_int)
    g.add_argument("--max-steps", type=positive_int)
    add_flag(g, "--device", help="where the models train and sample: auto (CUDA when present), cpu, cuda, cuda:N "
             "or mps")
    g = r.add_argument_group("sampling")
    g.add_argument("--temperature", type=positive_float, default=1.0)
    g.add_argument("--top-p", type=_top_p, default=1.0)
    g.add_argument("--beams", type=positive_int, default=1, help="beam search width (gpt, hf); the paper used 5")
    g.add_argument("--max-new-tokens", type=positive_int, help="default: from generation 0's document lengths")
    g.add_argument("--prompt-tokens", type=non_negative_int, default=64)
    g.add_argument("--prompts", default="auto", choices=["auto", "none", "real", "train"],
                   help="prompt each sample with a real or training document's first tokens (auto: real for hf)")
    g = r.add_argument_group("output")
    g.add_argument("--self-bleu-docs", type=non_negative_int, default=100)
    g.add_argument("--save-models", default="all", choices=["all", "first"])
    g.add_argument("--no-progress", action="store_true")


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=(
        "Train a model on the shards, sample a corpus of the same size from it, train the next model on that, and "
        "measure what each generation forgets (Shumailov et al., Nature 2024); or measure what a filter between a "
        "contaminated crawl and the training data buys (web)."))
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,web,compare,report}")
    _add_run_options(sub.add_parser("run", help="run (or resume) the generational protocol"), web=False)
    _add_run_options(sub.add_parser("web", help="one web-regime arm per filter, and what each filter buys"), web=True)

    c = sub.add_parser("compare", help="runs side by side, with differences and their confidence intervals")
    c.add_argument("runs", nargs="+", help="run directories (a web experiment stands for its arms); the first is "
                                           "the baseline")
    c.add_argument("--output", default="collapse-compare", metavar="DIR", help="output folder (default: "
                   "collapse-compare)")

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


def _run(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
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
    return 0


def main(argv: list[str] | None = None) -> int:
    """``lowbg collapse ...`` (argv after ``collapse``). ValueError and OSError mean bad input here (CorpusError,
    ConfigMismatch, IncompleteRun, FilterError, ScheduleError, a shard that cannot be read): exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_library_warnings()
    prog = PROG + (f" {argv[0]}" if argv and not argv[0].startswith("-") else "")
    try:
        return run_command(prog, lambda: _run(argv), bad_input=(ValueError, OSError))
    except SystemExit as exc:  # a usage error (one line, already said) or --help: its code, returned
        return exc.code if isinstance(exc.code, int) else 2


if __name__ == "__main__":
    sys.exit(main())
