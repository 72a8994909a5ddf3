"""The protocol of Shumailov et al. (2024) on Parquet shards, with per-generation checkpoints and resume.

Layout of a run directory:
  config.json                     the options and the input's fingerprint; a resumed run must match them
  tokenizer.json                  trained on generation 0's training text (ngram / gpt)
  seed_S/gen_GGG/                 one finished generation, written to gen_GGG.tmp and renamed when complete:
      train.parquet               its training data (`text`)
      samples.parquet             what its model wrote (`text`, `gen0_ppl`: generation 0's perplexity on each)
      model/                      the model (npz + json, or safetensors)
      metrics.json                its row of metrics.parquet
  seed_S/stopped.json             why a seed stopped early (NaN loss, empty samples), if it did
  metrics.parquet, report.md, *.png
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from collapse import metrics as M
from collapse.data import check_sizes, load_corpus, resolve_shards, split_corpus
from collapse.loop import evolve
from collapse.models.base import EmptyTrainingData, NonFiniteLoss, SamplingOptions, SavedModel, check_finite
from collapse.models.ngram import NGramModel
from collapse.regimes import Regime
from collapse.tokenizer import CachedEncoder, auto_vocab_size, load_tokenizer, save_tokenizer, train_tokenizer

KEY_COLUMNS = ["generation", "seed", "regime", "model", "status", "reason"]
# Options that do not change a run's results: a resumed run may change them.
NOT_COMPARED = {"shards", "device", "progress"}


class ConfigMismatch(ValueError):
    """A resumed run's options differ from the ones saved in its directory."""


@dataclass
class RunConfig:
    shards: str
    model: str = "ngram"  # ngram | gpt | hf:PATH_OR_ID
    regime: str = "replace"
    real_fraction: float = 0.0
    generations: int = 5  # generations after generation 0
    seeds: int = 3
    sample_size: int | None = None  # documents per generation; default: generation 0's training size
    heldout_fraction: float = 0.1
    max_docs: int | None = None
    text_column: str = "text"
    id_column: str = "id"
    # n-gram (and the gpt's tokenizer)
    vocab_size: int | None = None  # default: a power of two near sqrt(generation 0's tokens), see auto_vocab_size
    order: int = 2
    # gpt / hf training (None: the model's default)
    gpt_size: str = "small"
    epochs: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    block_size: int | None = None
    max_steps: int | None = None
    # sampling
    temperature: float = 1.0
    top_p: float = 1.0
    beams: int = 1
    max_new_tokens: int | None = None  # default: from generation 0's document lengths
    prompt_tokens: int = 64
    prompts: str = "auto"  # none | real | train; auto: real for hf (the paper), none otherwise
    self_bleu_docs: int = 100
    save_models: str = "all"  # all | first (generation 0 is always kept: resume scores samples with it)
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        Regime(self.regime, self.real_fraction)  # validates
        if not (self.model in ("ngram", "gpt") or self.model.startswith("hf:")):
            raise ValueError(f"--model must be ngram, gpt or hf:PATH_OR_ID, got {self.model!r}")
        if self.prompts not in ("auto", "none", "real", "train"):
            raise ValueError(f"--prompts must be auto, none, real or train, got {self.prompts!r}")
        if self.generations < 0 or self.seeds < 1:
            raise ValueError("--generations must be >= 0 and --seeds >= 1")
        if self.save_models not in ("all", "first"):
            raise ValueError(f"--save-models must be all or first, got {self.save_models!r}")

    @property
    def kind(self) -> str:
        return "hf" if self.model.startswith("hf:") else self.model

    @property
    def prompt_source(self) -> str:
        return ("real" if self.kind == "hf" else "none") if self.prompts == "auto" else self.prompts

    def compared(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in NOT_COMPARED}


# ---- models ----------------------------------------------------------------------------------------------------------
def _train_options(cfg: RunConfig):
    from collapse.models.causal import TrainOptions
    from collapse.models.gpt import SIZES
    from collapse.models.hf import PAPER_TRAIN

    base = PAPER_TRAIN if cfg.kind == "hf" else TrainOptions(block_size=SIZES[cfg.gpt_size]["n_positions"])
    over = {k: v for k, v in {"epochs": cfg.epochs, "lr": cfg.lr, "batch_size": cfg.batch_size,
                              "block_size": cfg.block_size, "max_steps": cfg.max_steps}.items() if v is not None}
    return TrainOptions(**{**base.to_dict(), **over})


def build_model(cfg: RunConfig, tok, sampling: SamplingOptions, seed: int, encoder=None) -> SavedModel:
    if cfg.kind == "ngram":
        return NGramModel(tok, order=cfg.order, sampling=sampling, seed=seed, encoder=encoder)
    if cfg.kind == "gpt":
        from collapse.models.gpt import GPTModel

        return GPTModel(tok, size=cfg.gpt_size, train=_train_options(cfg), sampling=sampling, seed=seed,
                        device=cfg.device)
    from collapse.models.hf import HFModel

    return HFModel(cfg.model[3:], train=_train_options(cfg), sampling=sampling, seed=seed, device=cfg.device)


def load_model(cfg: RunConfig, path: Path, sampling: SamplingOptions, seed: int, encoder=None) -> SavedModel:
    if cfg.kind == "ngram":
        return NGramModel.load(path, sampling=sampling, seed=seed, encoder=encoder)
    if cfg.kind == "gpt":
        from collapse.models.gpt import GPTModel

        return GPTModel.load(path, sampling=sampling, seed=seed, device=cfg.device, train=_train_options(cfg))
    from collapse.models.hf import HFModel

    return HFModel.load(path, sampling=sampling, seed=seed, device=cfg.device, train=_train_options(cfg))


def _token_lengths(cfg: RunConfig, tok, encoder, sampling: SamplingOptions, texts: list[str]) -> np.ndarray:
    if cfg.kind == "hf":  # the checkpoint's tokenizer alone: no need to load the weights for this
        from transformers import AutoTokenizer

        hf_tok = AutoTokenizer.from_pretrained(cfg.model[3:], trust_remote_code=False)
        return np.array([len(x) for x in hf_tok(texts, add_special_tokens=False)["input_ids"]], dtype=np.int64)
    return build_model(cfg, tok, sampling, 0, encoder).token_lengths(texts)


# ---- files -----------------------------------------------------------------------------------------------------------
def _write_texts(path: Path, texts: Sequence[str], **columns: Sequence) -> None:
    pq.write_table(pa.table({"text": pa.array(list(texts), pa.string()), **columns}), path, compression="zstd")


def read_texts(path: Path) -> list[str]:
    return pq.read_table(path, columns=["text"]).column("text").to_pylist()


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


def _gen_dir(run: Path, seed: int, g: int) -> Path:
    return run / f"seed_{seed}" / f"gen_{g:03d}"


def _done_generations(run: Path, seed: int) -> int:
    g = 0
    while (_gen_dir(run, seed, g) / "metrics.json").exists():
        g += 1
    return g


def _check_resume(run: Path, cfg: RunConfig, data: dict[str, Any]) -> None:
    path = run / "config.json"
    if not path.exists():
        if run.exists() and any(run.iterdir()):
            raise ConfigMismatch(f"{run} exists, is not empty and holds no config.json: choose another --output")
        run.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"options": asdict(cfg), "data": data}, indent=2))
        return
    saved = json.loads(path.read_text())
    old = {k: v for k, v in saved["options"].items() if k not in NOT_COMPARED}
    diff = {k: (old.get(k), v) for k, v in cfg.compared().items() if old.get(k) != v}
    if saved["data"]["fingerprint"] != data["fingerprint"]:
        diff["input data"] = (f"{saved['data']['n_docs']} documents {saved['data']['fingerprint'][:12]}",
                              f"{data['n_docs']} documents {data['fingerprint'][:12]}")
    if diff:
        lines = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise ConfigMismatch(f"refusing to resume {run}: options differ from the saved run ({lines}); "
                             "use the same options or a new --output")


# ---- the run ---------------------------------------------------------------------------------------------------------
def _is_empty(texts: Sequence[str]) -> bool:
    return not any(t.strip() for t in texts)


def run(cfg: RunConfig, output: str | Path, log=print) -> pa.Table:
    """Run (or resume) the protocol; returns the metrics table (one row per generation x seed)."""
    out = Path(output)
    files = resolve_shards(cfg.shards)
    corpus = load_corpus(files, cfg.text_column, cfg.id_column, cfg.max_docs)
    train, held = split_corpus(corpus, cfg.heldout_fraction)
    sample_size = cfg.sample_size or len(train)
    check_sizes(len(corpus), train, held, sample_size)
    data = {"fingerprint": corpus.fingerprint(), "n_docs": len(corpus), "n_train": len(train),
            "n_heldout": len(held), "files": [str(f) for f in files]}
    _check_resume(out, cfg, data)
    for stale in out.glob("seed_*/gen_*.tmp"):
        shutil.rmtree(stale)

    tok = encoder = None
    if cfg.kind in ("ngram", "gpt"):
        tok_path = out / "tokenizer.json"
        if tok_path.exists():
            tok = load_tokenizer(tok_path)
        else:
            tok = train_tokenizer(train.texts, cfg.vocab_size or auto_vocab_size(train.texts))
            save_tokenizer(tok, tok_path)
        encoder = CachedEncoder(tok)

    reference = M.Support(train.texts)
    max_new = cfg.max_new_tokens
    base_sampling = SamplingOptions(cfg.temperature, cfg.top_p, cfg.beams, max_new or 1, cfg.prompt_tokens)
    if max_new is None:
        # Long enough for generation 0's documents without letting one outlier set the pace.
        lengths = _token_lengths(cfg, tok, encoder, base_sampling, train.texts)
        max_new = int(min(lengths.max(), 2 * np.quantile(lengths, 0.99))) + 1
    sampling = SamplingOptions(cfg.temperature, cfg.top_p, cfg.beams, max_new, cfg.prompt_tokens)
    regime = Regime(cfg.regime, cfg.real_fraction)
    log(f"collapse: {len(corpus)} documents ({len(train)} train, {len(held)} held out), model {cfg.model}, "
        f"regime {regime.label}, generations 0..{cfg.generations}, {cfg.seeds} seed(s), {sample_size} samples of "
        f"<= {max_new} tokens per generation"
        + (f", vocabulary {tok.get_vocab_size()}" if tok else "") + f" -> {out}")

    def prompts(g: int, train_data: Sequence[str], rng: np.random.Generator) -> list[str] | None:
        src = {"none": None, "real": train.texts, "train": train_data}[cfg.prompt_source]
        if src is None:
            return None
        idx = rng.choice(len(src), size=sample_size, replace=sample_size > len(src))
        return [src[i] for i in idx.tolist()]

    for seed in range(cfg.seeds):
        _run_seed(cfg, out, seed, tok, encoder, train.texts, held.texts, sample_size, sampling, regime, prompts,
                  reference)

    table = collect_metrics(out)
    pq.write_table(table, out / "metrics.parquet")
    from collapse.report import summary_table, write_report

    write_report(out)
    log(summary_table(table))
    return table


def _run_seed(cfg, out, seed, tok, encoder, real, heldout, sample_size, sampling, regime, prompts,
              reference) -> None:
    seed_dir = out / f"seed_{seed}"
    if (seed_dir / "stopped.json").exists():
        return
    done = _done_generations(out, seed)
    if done > cfg.generations:
        return
    seed_dir.mkdir(parents=True, exist_ok=True)
    history = [read_texts(_gen_dir(out, seed, g) / "samples.parquet") for g in range(done)]
    model0 = load_model(cfg, _gen_dir(out, seed, 0) / "model", sampling, seed, encoder) if done else None

    def make_model(g: int, rng: np.random.Generator):
        model = build_model(cfg, tok, sampling, int(rng.integers(2**31 - 1)), encoder)
        if hasattr(model, "progress"):
            model.progress = cfg.progress
        return model

    bar = tqdm(total=cfg.generations + 1, initial=done, desc=f"seed {seed}", unit="gen", file=sys.stderr,
               disable=not cfg.progress, leave=True)
    g = done
    try:
        t0 = time.perf_counter()
        for gen in evolve(real, make_model, regime, cfg.generations, sample_size, seed, history, prompts, _is_empty):
            g = gen.index
            t_fit_sample = time.perf_counter() - t0
            model0 = gen.model if model0 is None else model0
            row = _measure(cfg, gen, model0, heldout, reference, seed, regime)
            row["fit_sample_seconds"] = t_fit_sample
            _save_generation(cfg, out, seed, gen, model0, row)
            bar.update(1)
            bar.set_postfix(ppl=f"{row['heldout_ppl']:.1f}", distinct2=f"{row['distinct_2']:.3f}")
            g += 1
            t0 = time.perf_counter()
    except (NonFiniteLoss, EmptyTrainingData) as e:
        reason = f"{type(e).__name__}: {e}"
        (seed_dir / "stopped.json").write_text(json.dumps({"generation": g, "seed": seed, "reason": reason}))
        print(f"collapse: seed {seed} stopped at generation {g}: {reason}", file=sys.stderr)
    finally:
        bar.close()


def _measure(cfg, gen, model0, heldout, reference, seed, regime) -> dict[str, Any]:
    t0 = time.perf_counter()
    lp = gen.model.log_prob(heldout)
    row: dict[str, Any] = {"generation": gen.index, "seed": seed, "regime": regime.label, "model": cfg.model,
                           "status": "ok", "reason": "", "train_docs": len(gen.train),
                           "train_chars": sum(len(t) for t in gen.train)}
    row.update(M.perplexity_metrics(lp, heldout, "heldout"))
    check_finite(row["heldout_ppl"], f"held-out perplexity of generation {gen.index}")
    lp0 = model0.log_prob(gen.samples)
    per = M.sequence_perplexities(lp0)
    row["gen0_ppl_on_samples"] = M.perplexity(lp0)
    row["gen0_ppl_on_samples_p50"] = float(np.median(per)) if len(per) else M.NAN
    row["_gen0_ppl"] = per
    row.update(M.sample_metrics(gen.samples, reference, cfg.self_bleu_docs,
                                np.random.default_rng([seed, gen.index, 7])))
    row.update(getattr(gen.model, "last_train_stats", {}) or {})
    row["metric_seconds"] = time.perf_counter() - t0
    return row


def _save_generation(cfg, out, seed, gen, model0, row) -> None:
    final = _gen_dir(out, seed, gen.index)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    per = row.pop("_gen0_ppl")
    _write_texts(tmp / "train.parquet", gen.train)
    _write_texts(tmp / "samples.parquet", gen.samples, gen0_ppl=pa.array(per, pa.float64()))
    if cfg.save_models == "all" or gen.index == 0:
        gen.model.save(tmp / "model")
    (tmp / "metrics.json").write_text(json.dumps(_json_safe(row), indent=2))
    tmp.rename(final)  # the generation counts as done only once everything is on disk


def collect_metrics(run: str | Path) -> pa.Table:
    """Rows of every finished generation and every stop, with heldout_ppl_ratio to the seed's generation 0."""
    run = Path(run)
    rows: list[dict[str, Any]] = []
    for seed_dir in sorted(run.glob("seed_*"), key=lambda p: int(p.name.split("_")[1])):
        seed_rows = [json.loads(p.read_text()) for p in sorted(seed_dir.glob("gen_[0-9][0-9][0-9]/metrics.json"))]
        base = seed_rows[0].get("heldout_ppl") if seed_rows else None
        for r in seed_rows:
            r["heldout_ppl_ratio"] = r["heldout_ppl"] / base if base and r.get("heldout_ppl") is not None else None
            rows.append(r)
        stop = seed_dir / "stopped.json"
        if stop.exists():
            s = json.loads(stop.read_text())
            regime = seed_rows[0]["regime"] if seed_rows else None
            model = seed_rows[0]["model"] if seed_rows else None
            rows.append({"generation": s["generation"], "seed": s["seed"], "regime": regime, "model": model,
                         "status": "stopped", "reason": s["reason"]})
    if not rows:
        return pa.table({c: pa.array([], pa.string()) for c in KEY_COLUMNS})
    cols = KEY_COLUMNS + ["heldout_ppl", "heldout_ppl_ratio"]
    cols += sorted({k for r in rows for k in r} - set(cols))
    data: dict[str, list] = {c: [r.get(c) for r in rows] for c in cols}
    if all(v is None for v in data["regime"]):
        cfg = json.loads((run / "config.json").read_text())["options"]
        label = Regime(cfg["regime"], cfg["real_fraction"]).label
        data["regime"] = [label] * len(rows)
        data["model"] = [cfg["model"]] * len(rows)
    arrays = {}
    for c, v in data.items():
        if c in ("regime", "model", "status", "reason"):
            arrays[c] = pa.array([x if x is not None else "" for x in v], pa.string())
        elif c in ("generation", "seed"):
            arrays[c] = pa.array(v, pa.int64())
        else:
            arrays[c] = pa.array([float(x) if x is not None else float("nan") for x in v], pa.float64())
    return pa.table(arrays)


def config_fields() -> list[str]:
    return [f.name for f in fields(RunConfig)]
