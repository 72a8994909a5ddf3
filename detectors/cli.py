"""`lowbg detect ...`: score, evaluate, calibrate, train-fasttext. Also runnable as `python -m detectors.cli`.

Flags shared with other commands (the detector model flags ``--observer``, ``--performer``, ``--scoring-model``,
``--reference-model``, ``--lm-model``, ``--fasttext-model``, ``--device``, ``--max-tokens``, ``--text-field``,
``--target-fpr``, ``--seed``, ``--n-bootstrap``) come from :data:`common.flags.FLAGS`, spelled, checked and
defaulted as in ``lowbg curate``; former spellings (``--scoring``, ``--reference``, ``--model``, ``--output-dir``)
still work with a one-line deprecation note. ``--output`` is what the sub-command writes: a file (``score``,
``calibrate``, ``train-fasttext``) or a folder (``evaluate``). Errors have :mod:`common.cli`'s shape: one line,
exit 2 for bad usage or input (a missing input file is refused before a model loads), exit 1 for a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

from common.cli import (
    ArgumentParser,
    UsageError,
    add_deprecated_alias,
    existing_file,
    fraction,
    non_negative_int,
    openfraction,
    positive_float,
    positive_int,
    quiet_library_warnings,
    run_command,
)
from common.flags import FLAGS, add_flag, add_flags
from detectors.base import DIRECTIONS, machine_oriented
from detectors.inputs import HUMAN, InputError, doc_key, in_holdout, load_labelled, read_jsonl, read_texts
from detectors.registry import DETECTORS, DIRECTION, build_detector, canonical_name

PASSTHROUGH = ("id", "language")  # input fields copied to the score line when present


def _version() -> str:
    return version("lowbackground")


# flag destination -> the registry's option name (detectors.registry.OPTIONS)
_MODEL_OPTIONS = {"observer": "observer", "performer": "performer", "scoring_model": "scoring",
                  "reference_model": "reference"}
_PLAIN_OPTIONS = ("tokenizer", "device", "dtype", "max_tokens", "max_length", "min_tokens", "max_words", "gamma",
                  "hash_key", "seeding_scheme", "vocab_size", "ignore_repeated_ngrams")


def _add_detector_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("detector")
    g.add_argument("--detector", required=required, type=_detector_name, help=f"one of: {', '.join(DETECTORS)}")
    add_flags(g, "--observer", "--performer", "--scoring-model", "--reference-model", "--lm-model",
              "--fasttext-model")
    # `--model` named the likelihood/logrank/entropy/lrr model and the fastText model: now --lm-model and
    # --fasttext-model, as in `lowbg curate`.
    add_deprecated_alias(g, "--model", "--lm-model (or --fasttext-model)", "legacy_model")
    g.add_argument("--tokenizer", help="watermark: the generating model's tokenizer (HF id or local dir)")
    add_flags(g, "--device", "--max-tokens")
    g.add_argument("--dtype", choices=["auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"],
                   help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    g.add_argument("--max-length", type=positive_int, help="truncate texts to this many tokens (binoculars: 512; "
                   "others: the model context)")
    g.add_argument("--min-tokens", type=non_negative_int,
                   help="texts with fewer tokens get score null, reason too_short")
    g.add_argument("--max-words", type=positive_int, help="fasttext: truncate to this many words")
    g.add_argument("--gamma", type=openfraction, help="watermark: green-list fraction (default 0.25)")
    g.add_argument("--hash-key", type=non_negative_int, help="watermark: PRF hash key (default 15485863)")
    g.add_argument("--seeding-scheme", help="watermark: simple_1/lefthash (default), minhash, skipgram, selfhash, "
                                            "ff-<prf>-<width>-<self_salt>[-<key>]")
    g.add_argument("--vocab-size", type=positive_int, help="watermark: vocabulary size used at generation "
                                                           "(default: the tokenizer's)")
    rep = g.add_mutually_exclusive_group()
    rep.add_argument("--ignore-repeated-ngrams", dest="ignore_repeated_ngrams", action="store_const", const=True,
                     help="watermark: count each distinct n-gram once (default)")
    rep.add_argument("--count-repeated-ngrams", dest="ignore_repeated_ngrams", action="store_const", const=False)


def _detector_name(value: str) -> str:
    try:
        return canonical_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def detector_options(args: argparse.Namespace) -> dict:
    """The registry options of a parsed command line. A shared flag left at its default (``--device auto``,
    ``--max-tokens``) is not passed (each detector's own default means the same); a flag set to another value
    is, so the registry refuses one the detector does not take."""
    name = args.detector
    model_flag = "fasttext_model" if name == "fasttext" else "lm_model"
    legacy = getattr(args, "legacy_model", None)
    if legacy is not None:
        if getattr(args, model_flag) is not None:
            raise UsageError(f"give --{model_flag.replace('_', '-')} only (--model is its former spelling)")
        setattr(args, model_flag, legacy)
    opts: dict = {}
    for dest, option in (*_MODEL_OPTIONS.items(), (model_flag, "model"), *((o, o) for o in _PLAIN_OPTIONS)):
        value = getattr(args, dest, None)
        if value is None:
            continue
        flag = FLAGS.get("--" + dest.replace("_", "-"))
        if flag is None or value != flag.kwargs.get("default"):
            opts[option] = value
    other = "lm_model" if model_flag == "fasttext_model" else "fasttext_model"
    if getattr(args, other, None) is not None:
        raise ValueError(f"detector {name!r} takes no --{other.replace('_', '-')}"
                         + (" (use --fasttext-model)" if name == "fasttext" else ""))
    return opts


def _detector_from_args(args):
    return build_detector(args.detector, **detector_options(args))


def _score_all(det, texts: list[str], chunk: int = 4096):
    """Scores (and watermark test results when applicable) in input order, in chunks to bound memory."""
    from detectors.watermark import WatermarkDetector

    out: list = []
    for start in range(0, len(texts), chunk):
        part = texts[start:start + chunk]
        out.extend(det.test(part) if isinstance(det, WatermarkDetector) else det.score(part))
    return out


def _score_line(det, s, extra: dict) -> dict:
    value = s.z if hasattr(s, "z") else s.value
    row = {"score": value, "detector": det.name, "models": det.model_ids, "tokens": s.tokens,
           "truncated": bool(getattr(s, "truncated", False)), "normalized": s.normalized, "version": _version()}
    if value is None:
        row["reason"] = s.reason
    if hasattr(s, "p_value"):
        row["p_value"] = s.p_value
        row["green_tokens"], row["tokens_tested"] = s.green, s.scored
    row.update(extra)
    return row


def cmd_score(args) -> int:
    det = _detector_from_args(args)
    out = Path(args.output)
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            batch: list[tuple[str, dict]] = []

            def flush() -> None:
                for (_, extra), s in zip(batch, _score_all(det, [t for t, _ in batch])):
                    f.write(json.dumps(_score_line(det, s, extra), ensure_ascii=False) + "\n")
                batch.clear()

            for _, obj, text in read_texts(args.input, args.text_field):
                batch.append((text, {k: obj[k] for k in PASSTHROUGH if k in obj}))
                n += 1
                if len(batch) >= args.batch_lines:
                    flush()
            flush()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    print(f"scored {n} texts with {det.name} ({', '.join(det.model_ids)}) -> {out}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from detectors.evaluation import evaluate_scores, format_table, plot_roc, roc_curve

    det = _detector_from_args(args)
    outdir = Path(args.output_dir or f"out/detect/evaluate-{det.name}")
    outdir.mkdir(parents=True, exist_ok=True)
    rows, curves, all_neg, all_pos, per_text = [], [], [], [], []
    unscored_total = 0
    for path in args.data:
        items = load_labelled(path)
        scores = _score_all(det, [it.text for it in items])
        neg: list[float] = []
        pos: list[float] = []
        unscored = 0
        for it, s in zip(items, scores):
            value = s.z if hasattr(s, "z") else s.value
            per_text.append({"file": Path(path).name, "label": it.label, "score": value, "tokens": s.tokens})
            if value is None:
                unscored += 1
                continue
            (neg if it.label == HUMAN else pos).append(machine_oriented(value, det.direction))
        m = evaluate_scores(neg, pos, n_bootstrap=args.n_bootstrap, seed=args.seed)
        m["unscored"] = unscored
        unscored_total += unscored
        rows.append((Path(path).name, m))
        all_neg += neg
        all_pos += pos
        if neg and pos:
            curves.append((Path(path).name, m, *roc_curve(neg, pos)))
    overall = evaluate_scores(all_neg, all_pos, n_bootstrap=args.n_bootstrap, seed=args.seed)
    overall["unscored"] = unscored_total
    if len(args.data) > 1:
        rows.append(("overall", overall))
        if all_neg and all_pos:
            curves.append(("overall", overall, *roc_curve(all_neg, all_pos)))
    table = format_table(rows)
    report = {"detector": det.name, "models": det.model_ids, "direction": det.direction, "version": _version(),
              "data": [str(p) for p in args.data], "n_bootstrap": args.n_bootstrap, "seed": args.seed,
              "files": [{"file": name, **m} for name, m in rows if name != "overall"], "overall": overall}
    (outdir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (outdir / "metrics.md").write_text(table + "\n", encoding="utf-8")
    with open(outdir / "scores.jsonl", "w", encoding="utf-8") as f:
        for row in per_text:
            f.write(json.dumps(row) + "\n")
    plot_roc(curves, str(outdir / "roc.png"), f"{det.name}: {', '.join(det.model_ids)}")
    print(f"{det.name} ({', '.join(det.model_ids)}); higher-is-machine orientation; n/m = not measurable "
          "(fewer than 1/FPR human texts)")
    print(table)
    print(f"wrote {outdir / 'metrics.json'}, {outdir / 'metrics.md'}, {outdir / 'scores.jsonl'}, {outdir / 'roc.png'}")
    return 0


def cmd_calibrate(args) -> int:
    from detectors.calibration import calibrate, save_thresholds

    if bool(args.scores) == bool(args.input):
        raise UsageError("give either --scores (a `detect score` output) or --detector ... --input (human texts)")
    if args.input and not args.detector:
        raise UsageError("--input needs --detector (the detector that scores the human texts)")
    languages: list[str | None] = []
    if args.scores:
        values, names, models = [], set(), set()
        for lineno, obj in read_jsonl(args.scores):
            if "score" not in obj or "detector" not in obj:
                raise InputError(f"{args.scores}: line {lineno} is not a `detect score` line")
            names.add(obj["detector"])
            models.add(tuple(obj.get("models", [])))
            values.append(obj["score"])
            languages.append(obj.get(args.language_field))
        if len(names) != 1 or len(models) != 1:
            raise InputError(f"{args.scores}: mixes detectors/models {sorted(names)} {sorted(models)}")
        name, model_ids = names.pop(), list(models.pop())
        direction = args.direction or DIRECTION[canonical_name(name)]
    else:
        det = _detector_from_args(args)
        texts = []
        for _, obj, text in read_texts(args.input, args.text_field):
            texts.append(text)
            languages.append(obj.get(args.language_field))
        values = [s.value for s in _score_all(det, texts)]
        name, model_ids, direction = det.name, det.model_ids, det.direction
    doc = calibrate(values, detector=name, models=model_ids, direction=direction, target_fpr=args.target_fpr,
                    languages=languages if any(languages) else None, n_bootstrap=args.n_bootstrap, seed=args.seed,
                    min_per_language=args.min_per_language, source=str(args.scores or args.input))
    save_thresholds(doc, args.output)
    ci = doc["ci"]
    print(f"{name}: threshold {doc['threshold']:.6g} (95% CI {ci[0]:.6g} .. {ci[1]:.6g}) for FPR {args.target_fpr:g} "
          f"on {doc['n_negatives']} human texts{'' if doc['measurable'] else ' (NOT measurable: too few)'}; "
          f"{len(doc['languages'])} language entries -> {args.output}")
    return 0


def cmd_train_fasttext(args) -> int:
    from detectors.fasttext_detector import train_fasttext

    items = [it for path in args.data for it in load_labelled(path)]
    n_all = len(items)
    # A text is excluded when its document key matches any text (or pair) of the evaluation files.
    excluded_docs: set[str] = set()
    for path in args.exclude_docs_of or []:
        for it in load_labelled(path):
            excluded_docs |= {it.doc, doc_key(it.text)}
    items = [it for it in items if it.doc not in excluded_docs]
    n_excluded = n_all - len(items)
    is_held = [bool(args.holdout) and in_holdout(it.doc, args.holdout, args.seed) for it in items]
    held = [it for it, h in zip(items, is_held) if h]
    train = [it for it, h in zip(items, is_held) if not h]
    info = train_fasttext(train, args.output, quantize=not args.no_quantize, epoch=args.epoch, lr=args.lr,
                          dim=args.dim, word_ngrams=args.word_ngrams, minn=args.minn, maxn=args.maxn,
                          bucket=args.bucket, min_count=args.min_count, cutoff=args.cutoff, seed=args.seed)
    if held and args.holdout_output:
        seen: set[tuple[str, int]] = set()
        with open(args.holdout_output, "w", encoding="utf-8") as f:
            for it in held:
                if (it.text, it.label) in seen:  # a human text recurs across generators' files: count it once
                    continue
                seen.add((it.text, it.label))
                f.write(json.dumps({"text": it.text, "label": "machine" if it.label else "human", "doc": it.doc,
                                    "source": it.source}, ensure_ascii=False) + "\n")
    info.update({"texts_read": n_all, "excluded_by_document": n_excluded, "held_out": len(held)})
    if held and args.holdout_output:
        info["held_out_unique_written"] = len(seen)
    print(json.dumps(info, indent=2))
    return 0


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="lowbg detect", description="LLM-text detectors: score, evaluate, calibrate, train "
                            "the fastText detector.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{score,evaluate,calibrate,train-fasttext}")

    p = sub.add_parser("score", help="score JSONL texts; one output line per input line, in order")
    _add_detector_options(p)
    p.add_argument("--input", required=True, type=existing_file, metavar="JSONL", help="JSONL with a text field")
    p.add_argument("--output", required=True, metavar="FILE", help="JSONL of scores (written atomically)")
    add_flag(p, "--text-field")
    p.add_argument("--batch-lines", type=positive_int, default=4096, help="lines read and scored at a time")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("evaluate", help="AUROC and TPR at 1%% / 0.1%% FPR with bootstrap CIs, and a ROC plot")
    _add_detector_options(p)
    p.add_argument("--data", nargs="+", required=True, type=existing_file, metavar="FILE",
                   help="labelled files: fast-detect-gpt *.raw_data.json or JSONL with text and label")
    p.add_argument("--output", metavar="DIR", dest="output_dir",
                   help="folder of metrics.json, metrics.md, scores.jsonl, roc.png "
                   "(default out/detect/evaluate-<detector>)")
    add_deprecated_alias(p, "--output-dir", "--output", "output_dir")
    add_flags(p, "--n-bootstrap", "--seed")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("calibrate", help="threshold for a target FPR from known-human texts (thresholds JSON)")
    _add_detector_options(p, required=False)
    p.add_argument("--input", type=existing_file, metavar="JSONL", help="JSONL of human texts (scored with "
                   "--detector ...)")
    p.add_argument("--scores", type=existing_file, metavar="JSONL",
                   help="or: a `detect score` output for human texts")
    p.add_argument("--output", required=True, metavar="FILE", help="thresholds JSON")
    add_flag(p, "--target-fpr")
    p.add_argument("--language-field", default="language", metavar="NAME",
                   help="per-language thresholds from this field")
    p.add_argument("--min-per-language", type=positive_int, default=1)
    p.add_argument("--direction", choices=DIRECTIONS, help="override (only with --scores)")
    add_flags(p, "--text-field", "--n-bootstrap", "--seed")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("train-fasttext", help="train the supervised fastText detector (deterministic)")
    p.add_argument("--data", nargs="+", required=True, type=existing_file, metavar="FILE",
                   help="labelled files (raw_data.json or JSONL text/label)")
    p.add_argument("--output", required=True, metavar="FILE", help="model file (.ftz when quantised)")
    p.add_argument("--exclude-docs-of", nargs="+", type=existing_file, metavar="FILE",
                   help="drop training texts whose source document appears in these labelled files (keep an "
                   "evaluation set unseen)")
    p.add_argument("--holdout", type=fraction, default=0.0, help="fraction of source documents held out")
    p.add_argument("--holdout-output", metavar="FILE", help="write the held-out texts here (JSONL text/label/doc)")
    p.add_argument("--no-quantize", action="store_true")
    for flag, typ in (("epoch", positive_int), ("lr", positive_float), ("dim", positive_int),
                      ("word-ngrams", positive_int), ("minn", non_negative_int), ("maxn", non_negative_int),
                      ("bucket", positive_int), ("min-count", positive_int), ("cutoff", positive_int)):
        p.add_argument(f"--{flag}", type=typ)
    add_flag(p, "--seed")
    p.set_defaults(func=cmd_train_fasttext)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``lowbg detect ...`` (argv after ``detect``): one line and exit 2 on bad usage or input (a detector option
    the registry refuses, a model that cannot load safely, a bad input line), exit 1 on a failure."""
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_library_warnings()
    prog = "lowbg detect" + (f" {argv[0]}" if argv and not argv[0].startswith("-") else "")

    def body() -> int:
        args = build_parser().parse_args(argv)
        return args.func(args)

    return run_command(prog, body, bad_input=(InputError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
