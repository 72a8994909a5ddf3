"""`lowbg collapse run | compare | report`: argv here excludes the word "collapse"."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collapse.data import CorpusError
from collapse.regimes import REGIMES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lowbg collapse", description=(
        "Train a model on the shards, sample a corpus of the same size from it, train the next model on that, and "
        "measure what each generation forgets (Shumailov et al., Nature 2024)."))
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run (or resume) the generational protocol")
    r.add_argument("--shards", required=True, help="Parquet file, directory (all *.parquet below) or glob")
    r.add_argument("--model", default="ngram", help="ngram | gpt | hf:PATH_OR_ID (default: ngram)")
    r.add_argument("--regime", default="replace", choices=REGIMES)
    r.add_argument("--real-fraction", type=float, default=0.0, help="mix: fraction of real data per generation")
    r.add_argument("--generations", type=int, default=5, help="generations after generation 0 (default: 5)")
    r.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..S-1 (default: 3)")
    r.add_argument("--output", required=True, help="run directory; an existing run with the same options resumes")
    r.add_argument("--sample-size", type=int, help="documents per generation (default: generation 0's train size)")
    r.add_argument("--heldout-fraction", type=float, default=0.1)
    r.add_argument("--max-docs", type=int, help="read at most this many documents")
    r.add_argument("--text-column", default="text")
    r.add_argument("--id-column", default="id")
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

    c = sub.add_parser("compare", help="runs side by side, with differences and their confidence intervals")
    c.add_argument("runs", nargs="+", help="run directories; the first is the baseline")
    c.add_argument("--output", default="collapse-compare")

    rep = sub.add_parser("report", help="re-create report.md and the plots of a run")
    rep.add_argument("run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            from collapse.protocol import RunConfig, run

            opts = {k: v for k, v in vars(args).items() if k not in ("command", "output", "no_progress")}
            cfg = RunConfig(progress=not args.no_progress, **opts)
            run(cfg, args.output)
        elif args.command == "compare":
            from collapse.compare import compare

            compare(args.runs, args.output)
        else:
            import pyarrow.parquet as pq

            from collapse.protocol import collect_metrics
            from collapse.report import summary_table, write_report

            run_dir = Path(args.run)
            table = collect_metrics(run_dir)
            pq.write_table(table, run_dir / "metrics.parquet")
            print(f"report written to {write_report(run_dir)}")
            print(summary_table(table))
    except (CorpusError, ValueError, FileNotFoundError) as e:
        print(f"lowbg collapse: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
