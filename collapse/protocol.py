"""The protocol of Shumailov et al. (2024) on Parquet shards, with per-generation checkpoints and resume.

Layout of a run directory:
  config.json                     the options and the input's fingerprint; a resumed run must match them
  tokenizer.json                  trained on generation 0's training text (ngram / gpt)
  seed_S/gen_GGG/                 one finished generation, written to gen_GGG.tmp and renamed when complete:
      train.parquet               its training data (`text`)
      samples.parquet             what its model wrote (`text`, `gen0_ppl`: generation 0's perplexity on each)
      model/                      the model (npz + json, or safetensors)
      metrics.json                its row of metrics.parquet
      pool.parquet                web regime: the crawl's candidates (source, synthetic, origin, score, kept,
                                  trained), the texts being in train.parquet and the earlier samples
      filter.json                 web regime, generations >= 1: the filter's decision and the thresholds it used
  seed_S/stopped.json             why a seed stopped early (NaN loss, empty samples), if it did
  filter/                         a detector filter's thresholds files (detectors.calibration format)
  metrics.parquet, report.md, *.png

The web regime (collapse.web) splits the real documents three ways by key: held out (perplexity), calibration (a
detector filter's threshold) and the real pool; all three are fixed before any filter is built, so every arm of an
experiment trains on the same pool and is measured on the same text. Arms of one experiment share generation 0
(`share_from`): it does not depend on the filter, and is copied rather than recomputed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from collapse import metrics as M
from collapse.data import (
    Corpus,
    CorpusError,
    check_sizes,
    load_corpus,
    parse_row_filters,
    pool_order,
    resolve_shards,
    split_corpus,
    split_three,
)
from collapse.filters import ModelAccess, PoolFilter, build_filter, parse_filter
from collapse.loop import evolve
from collapse.models.base import EmptyTrainingData, NonFiniteLoss, SamplingOptions, SavedModel, check_finite
from collapse.models.ngram import NGramModel
from collapse.regimes import Regime
from collapse.tokenizer import CachedEncoder, auto_vocab_size, load_tokenizer, save_tokenizer, train_tokenizer
from collapse.web import WebRegime, parse_contamination

KEY_COLUMNS = ["generation", "seed", "regime", "model", "filter", "status", "reason"]
STRING_COLUMNS = {"regime", "model", "filter", "status", "reason"}
# Options that do not change a run's results: a resumed run may change them.
NOT_COMPARED = {"shards", "device", "progress", "allow_incomplete"}
# Options in which two arms of a web experiment may differ and still share generation 0.
ARM_OPTIONS = {"filter", "filter_fpr"}
WEB_DEFAULTS = {"contamination": None, "synthetic_from": "all", "real_pool_use": "reuse", "crawl_factor": 1.0,
                "real_pool": None, "calibration_fraction": 0.1, "filter": "none", "filter_fpr": 0.01}


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
    # the web regime (collapse.web) and its filter (collapse.filters)
    contamination: list[float] | str | None = None  # c_1..c_T, or one share for every generation
    synthetic_from: str = "all"  # all | last
    real_pool_use: str = "reuse"  # reuse | consume
    crawl_factor: float = 1.0  # candidates per training document
    real_pool: int | None = None  # cap on the real pool's documents (default: every training-side document)
    calibration_fraction: float = 0.1  # documents set aside to calibrate a detector filter
    filter: str = "none"  # none | oracle | detector:SPEC
    filter_fpr: float = 0.01
    # input selection and the run-completion contract
    real_filter: list[str] = field(default_factory=list)  # COLUMN=VALUE[|VALUE], e.g. provenance=pre_cutoff
    allow_incomplete: bool = False  # read shards of an unfinished `lowbg curate` run

    def __post_init__(self) -> None:
        self.real_filter = list(self.real_filter or [])
        parse_row_filters(self.real_filter)  # validates
        if self.regime == "web":
            if self.contamination is None:
                raise ValueError("--regime web needs --contamination (a share, or one per generation)")
            self.contamination = parse_contamination(self.contamination)
            self.web_regime().schedule(self.generations)  # validates the schedule's length
            spec = parse_filter(self.filter)
            if "last" in spec.harness_models and self.save_models != "all":
                raise ValueError(f"--filter {self.filter} scores with the previous generation's model, which a "
                                 "resumed run reloads: it needs --save-models all")
            if not 0.0 < self.filter_fpr < 1.0:
                raise ValueError(f"--target-fpr must be in (0, 1), got {self.filter_fpr}")
            if self.real_pool is not None and self.real_pool < 1:
                raise ValueError(f"--real-pool must be >= 1, got {self.real_pool}")
        else:
            Regime(self.regime, self.real_fraction)  # validates
            given = [k for k, v in WEB_DEFAULTS.items() if getattr(self, k) != v]
            if given:
                flag = {"filter_fpr": "target_fpr"}.get(given[0], given[0])  # the flag's name for the field
                raise ValueError(f"--{flag.replace('_', '-')} applies to the web regime only, not "
                                 f"{self.regime!r}")
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

    def web_regime(self) -> WebRegime:
        return WebRegime(tuple(self.contamination or ()), self.crawl_factor, self.synthetic_from, self.real_pool_use)

    @property
    def regime_label(self) -> str:
        return "web" if self.regime == "web" else Regime(self.regime, self.real_fraction).label


def option_defaults() -> dict[str, Any]:
    """Every option's default: a saved config from before an option existed compares as if it had the default."""
    out = {}
    for f in fields(RunConfig):
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
        elif f.default is not dataclasses.MISSING:
            out[f.name] = f.default
    return out


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


def _options_diff(saved: dict[str, Any], cfg: RunConfig, ignore: set[str] = frozenset()) -> dict[str, tuple]:
    defaults = option_defaults()
    return {k: (saved.get(k, defaults.get(k)), v) for k, v in cfg.compared().items()
            if k not in ignore and saved.get(k, defaults.get(k)) != v}


def _read_config(run: Path) -> dict[str, Any]:
    path = run / "config.json"
    try:
        saved = json.loads(path.read_text())
        saved["options"], saved["data"]["fingerprint"]  # noqa: B018 - the keys every run's config has
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigMismatch(f"{path} is not a collapse run's config ({type(e).__name__}: {e})") from None
    return saved


def _check_resume(run: Path, cfg: RunConfig, data: dict[str, Any]) -> bool:
    """Refuse to resume a run with other options or data; True when the run is new (nothing saved yet)."""
    path = run / "config.json"
    if not path.exists():
        # (a filter/ folder alone is what a first attempt left when its detector failed to calibrate)
        if run.exists() and any(p.name != "filter" for p in run.iterdir()):
            raise ConfigMismatch(f"{run} exists, is not empty and holds no config.json: choose another --output")
        return True
    saved = _read_config(run)
    diff = _options_diff(saved["options"], cfg)
    if saved["data"]["fingerprint"] != data["fingerprint"]:
        diff["input data"] = (f"{saved['data']['n_docs']} documents {saved['data']['fingerprint'][:12]}",
                              f"{data['n_docs']} documents {data['fingerprint'][:12]}")
    if diff:
        lines = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise ConfigMismatch(f"refusing to resume {run}: options differ from the saved run ({lines}); "
                             "use the same options or a new --output")
    return False


def _write_config(run: Path, cfg: RunConfig, data: dict[str, Any]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"options": asdict(cfg), "data": data}, indent=2))


def _shareable(source: Path | None, cfg: RunConfig, data: dict[str, Any]) -> Path | None:
    """`source` when it is a run of the same experiment (the same options but for the filter, the same data), whose
    generation 0 is therefore this run's too."""
    if source is None or not (Path(source) / "config.json").exists():
        return None
    saved = _read_config(Path(source))
    if saved["data"]["fingerprint"] != data["fingerprint"] or _options_diff(saved["options"], cfg, ARM_OPTIONS):
        return None
    return Path(source)


# ---- the run ---------------------------------------------------------------------------------------------------------
def _is_empty(texts: Sequence[str]) -> bool:
    return not any(t.strip() for t in texts)


def _real_data(cfg: RunConfig, corpus: Corpus):
    """(real training side, calibration side or None, held out, a sentence saying where the numbers come from)."""
    if cfg.regime != "web":
        train, held = split_corpus(corpus, cfg.heldout_fraction)
        return train, None, held, ""
    pool, cal, held = split_three(corpus, cfg.heldout_fraction, cfg.calibration_fraction)
    order = pool_order(pool.keys)
    if cfg.real_pool is not None:
        if cfg.real_pool > len(order):
            raise CorpusError(f"--real-pool {cfg.real_pool} but the shards hold {len(corpus)} non-empty documents: "
                              f"{len(held)} held out, {len(cal)} for calibration and {len(pool)} for the real pool")
        order = order[: cfg.real_pool]
    train = Corpus([pool.keys[i] for i in order], [pool.texts[i] for i in order])
    where = (f"the shards hold {len(corpus)} non-empty documents: {len(held)} held out (--heldout-fraction "
             f"{cfg.heldout_fraction:g}), {len(cal)} for calibration (--calibration-fraction "
             f"{cfg.calibration_fraction:g}) and {len(pool)} in the real pool"
             + (f", of which --real-pool keeps {len(train)}" if cfg.real_pool is not None else ""))
    return train, cal, held, where


@dataclass
class RunData:
    """The input of a run, read and split: what every arm of a web experiment shares."""

    files: list[Path]
    corpus: Corpus
    train: Corpus  # the real training side (the web regime's real pool)
    calibration: Corpus | None  # web regime: the calibration documents
    heldout: Corpus
    where: str  # a sentence naming the counts, for error messages
    sample_size: int
    info: dict[str, Any]  # config.json's "data"

    def calibration_where(self, cfg: RunConfig) -> str:
        return f"--calibration-fraction {cfg.calibration_fraction:g} of {len(self.corpus)} documents"


def load_run_data(cfg: RunConfig) -> RunData:
    """Read the shards, split them and check that they support the run (CorpusError / ScheduleError naming the
    numbers otherwise)."""
    files = resolve_shards(cfg.shards, cfg.allow_incomplete)
    corpus = load_corpus(files, cfg.text_column, cfg.id_column, cfg.max_docs, parse_row_filters(cfg.real_filter))
    train, cal, held, where = _real_data(cfg, corpus)
    if cfg.regime == "web":
        web = cfg.web_regime()
        sample_size = cfg.sample_size or web.largest_budget(len(train), cfg.generations)
        if sample_size < 8:
            why = "; ".join(web.problems(8, len(train), cfg.generations))
            raise CorpusError(f"the real pool is too small for the schedule even at 8 documents per generation: "
                              f"{why} ({where}); add shards, or lower --crawl-factor or --contamination")
        web.check(sample_size, len(train), cfg.generations, where)
    else:
        sample_size = cfg.sample_size or len(train)
    check_sizes(len(corpus), train, held, sample_size)
    info = {"fingerprint": corpus.fingerprint(), "n_docs": len(corpus), "n_train": len(train),
            "n_heldout": len(held), "files": [str(f) for f in files]}
    if cfg.regime == "web":
        info.update(n_calibration=len(cal), sample_size=sample_size)
    return RunData(files, corpus, train, cal, held, where, sample_size, info)


def run(cfg: RunConfig, output: str | Path, log=print, pool_filter: PoolFilter | None = None,
        share_from: str | Path | None = None, run_data: RunData | None = None) -> pa.Table:
    """Run (or resume) the protocol; returns the metrics table (one row per generation x seed).

    pool_filter: the web regime's filter, already prepared (an experiment prepares every arm's before any runs);
    built and prepared here when None. share_from: a sibling arm of the same experiment whose generation 0 of a
    seed is copied instead of recomputed. run_data: the input, already read (load_run_data)."""
    out = Path(output)
    rd = run_data or load_run_data(cfg)
    corpus, train, cal, held, sample_size, data = rd.corpus, rd.train, rd.calibration, rd.heldout, \
        rd.sample_size, rd.info
    web = cfg.web_regime() if cfg.regime == "web" else None
    new = _check_resume(out, cfg, data)
    if web is not None and pool_filter is None:
        pool_filter = build_filter(cfg.filter, cfg.filter_fpr, cal.texts, cfg.kind, out / "filter",
                                   rd.calibration_where(cfg))
        pool_filter.prepare(log)
    if new:
        _write_config(out, cfg, data)
    for stale in out.glob("seed_*/gen_*.tmp"):
        shutil.rmtree(stale)
    sibling = _shareable(Path(share_from), cfg, data) if share_from else None

    tok = encoder = None
    if cfg.kind in ("ngram", "gpt"):
        tok_path = out / "tokenizer.json"
        if not tok_path.exists() and sibling is not None and (sibling / "tokenizer.json").exists():
            shutil.copyfile(sibling / "tokenizer.json", tok_path)
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
    regime = web if web is not None else Regime(cfg.regime, cfg.real_fraction)
    extra = ""
    if web is not None:
        sched = ",".join(f"{c:g}" for c in web.schedule(cfg.generations))
        extra = (f", contamination {sched}, {web.candidates_per_generation(sample_size)} candidates per generation "
                 f"(synthetic from {cfg.synthetic_from}, real pool {cfg.real_pool_use}d), filter {cfg.filter}, "
                 f"{len(cal)} calibration documents")
    log(f"collapse: {len(corpus)} documents ({len(train)} train, {len(held)} held out), model {cfg.model}, "
        f"regime {regime.label}{extra}, generations 0..{cfg.generations}, {cfg.seeds} seed(s), {sample_size} "
        f"samples of <= {max_new} tokens per generation"
        + (f", vocabulary {tok.get_vocab_size()}" if tok else "") + f" -> {out}")

    def prompts(g: int, train_data: Sequence[str], rng: np.random.Generator) -> list[str] | None:
        src = {"none": None, "real": train.texts, "train": train_data}[cfg.prompt_source]
        if src is None:
            return None
        idx = rng.choice(len(src), size=sample_size, replace=sample_size > len(src))
        return [src[i] for i in idx.tolist()]

    seed_ctx = _SeedContext(cfg, out, tok, encoder, train, held.texts, sample_size, sampling, regime, prompts,
                            reference, pool_filter, sibling, data["fingerprint"])
    computed = [_run_seed(seed_ctx, seed) for seed in range(cfg.seeds)]

    table = collect_metrics(out)
    from collapse.report import summary_table, write_report

    if any(computed) or not (out / "metrics.parquet").exists() or not (out / "report.md").exists():
        pq.write_table(table, out / "metrics.parquet")
        write_report(out)  # (a resume that found every generation done leaves the report as it was)
    log(summary_table(table))
    return table


@dataclass
class _SeedContext:
    cfg: RunConfig
    out: Path
    tok: Any
    encoder: Any
    real: Corpus
    heldout: list[str]
    sample_size: int
    sampling: SamplingOptions
    regime: Any
    prompts: Any
    reference: Any
    pool_filter: PoolFilter | None
    sibling: Path | None
    fingerprint: str


def _share_generation_zero(ctx: _SeedContext, seed: int) -> bool:
    """Copy a sibling arm's finished generation 0 of this seed (it does not depend on the filter)."""
    src = _gen_dir(ctx.sibling, seed, 0) if ctx.sibling is not None else None
    if src is None or not (src / "metrics.json").exists():
        return False
    final = _gen_dir(ctx.out, seed, 0)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    row = json.loads((tmp / "metrics.json").read_text())
    row["filter"] = ctx.cfg.filter
    row["shared_from"] = str(ctx.sibling.name)
    (tmp / "metrics.json").write_text(json.dumps(row, indent=2))
    tmp.rename(final)
    return True


def _model_id(ctx: _SeedContext, seed: int, generation: int) -> str:
    return f"collapse-{ctx.cfg.kind}:seed_{seed}/gen_{generation:03d}@{ctx.fingerprint[:12]}"


def _run_seed(ctx: _SeedContext, seed: int) -> bool:
    """Run (or resume) one seed; False when it had nothing left to do."""
    cfg, out = ctx.cfg, ctx.out
    seed_dir = out / f"seed_{seed}"
    if (seed_dir / "stopped.json").exists():
        return False
    seed_dir.mkdir(parents=True, exist_ok=True)
    done = _done_generations(out, seed)
    shared = done == 0 and _share_generation_zero(ctx, seed)
    done = max(done, int(shared))
    if done > cfg.generations:
        return shared
    history = [read_texts(_gen_dir(out, seed, g) / "samples.parquet") for g in range(done)]
    model0 = load_model(cfg, _gen_dir(out, seed, 0) / "model", ctx.sampling, seed, ctx.encoder) if done else None
    uses_last = ctx.pool_filter is not None and "last" in ctx.pool_filter.spec.harness_models
    state: dict[str, Any] = {"last": None}
    if done and uses_last:
        state["last"] = model0 if done == 1 else load_model(cfg, _gen_dir(out, seed, done - 1) / "model",
                                                            ctx.sampling, seed, ctx.encoder)

    def make_model(g: int, rng: np.random.Generator):
        model = build_model(cfg, ctx.tok, ctx.sampling, int(rng.integers(2**31 - 1)), ctx.encoder)
        if hasattr(model, "progress"):
            model.progress = cfg.progress
        return model

    select = None
    if ctx.pool_filter is not None:
        def select(g, pool):
            access = ModelAccess(seed, g, lambda w: model0 if w == "gen0" else state["last"],
                                 lambda w: _model_id(ctx, seed, 0 if w == "gen0" else g - 1))
            return ctx.pool_filter.decide(g, pool, access)

    bar = tqdm(total=cfg.generations + 1, initial=done, desc=f"seed {seed}", unit="gen", file=sys.stderr,
               disable=not cfg.progress, leave=True)
    g = done
    try:
        t0 = time.perf_counter()
        for gen in evolve(ctx.real.texts, make_model, ctx.regime, cfg.generations, ctx.sample_size, seed, history,
                          ctx.prompts, _is_empty, select, ctx.real.keys):
            g = gen.index
            t_fit_sample = time.perf_counter() - t0
            model0 = gen.model if model0 is None else model0
            state["last"] = gen.model if uses_last else None
            row = _measure(cfg, gen, model0, ctx.heldout, ctx.reference, seed, ctx.regime)
            row["fit_sample_seconds"] = t_fit_sample
            row["generation_seconds"] = t_fit_sample + row["metric_seconds"]
            if "filter_seconds" in row:  # generations >= 1 of a web run: the share of its time spent filtering
                row["filter_share"] = row["filter_seconds"] / row["generation_seconds"]
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
    return True


def _measure(cfg, gen, model0, heldout, reference, seed, regime) -> dict[str, Any]:
    t0 = time.perf_counter()
    lp = gen.model.log_prob(heldout)
    row: dict[str, Any] = {"generation": gen.index, "seed": seed, "regime": regime.label, "model": cfg.model,
                           "status": "ok", "reason": "", "train_docs": len(gen.train),
                           "train_chars": sum(len(t) for t in gen.train)}
    if gen.selection is not None:
        row["filter"] = cfg.filter
        row.update(gen.selection.metrics())
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


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _save_generation(cfg, out, seed, gen, model0, row) -> None:
    final = _gen_dir(out, seed, gen.index)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    per = row.pop("_gen0_ppl")
    _write_texts(tmp / "train.parquet", gen.train)
    _write_texts(tmp / "samples.parquet", gen.samples, gen0_ppl=pa.array(per, pa.float64()))
    sel = gen.selection
    if sel is not None:
        kept = sel.decision.keep
        trained = np.zeros(len(sel.pool), dtype=bool)
        trained[sel.train_index] = True
        scores = sel.decision.scores if sel.decision.scores is not None else np.full(len(sel.pool), np.nan)
        pq.write_table(pa.table({
            "source": pa.array(sel.pool.source, pa.string()),
            "synthetic": pa.array(sel.pool.synthetic, pa.bool_()),
            "origin_generation": pa.array(sel.pool.origin, pa.int64()),
            "score": pa.array(scores, pa.float64()),
            "kept": pa.array(kept, pa.bool_()),
            "trained": pa.array(trained, pa.bool_()),
        }), tmp / "pool.parquet", compression="zstd")
        if gen.index > 0:
            (tmp / "filter.json").write_text(json.dumps(_plain({"filter": cfg.filter, "generation": gen.index,
                                                                **sel.decision.info}), indent=2))
    if cfg.save_models == "all" or gen.index == 0:
        gen.model.save(tmp / "model")
    (tmp / "metrics.json").write_text(json.dumps(_json_safe(row), indent=2))
    tmp.rename(final)  # the generation counts as done only once everything is on disk


def collect_metrics(run: str | Path) -> pa.Table:
    """Rows of every finished generation and every stop, with heldout_ppl_ratio (and the p50/p90/p99 ratios) to the
    seed's generation 0."""
    run = Path(run)
    rows: list[dict[str, Any]] = []
    for seed_dir in sorted(run.glob("seed_*"), key=lambda p: int(p.name.split("_")[1])):
        seed_rows = [json.loads(p.read_text()) for p in sorted(seed_dir.glob("gen_[0-9][0-9][0-9]/metrics.json"))]
        base = seed_rows[0] if seed_rows else {}
        for r in seed_rows:
            for name in ("heldout_ppl", "heldout_ppl_p50", "heldout_ppl_p90", "heldout_ppl_p99"):
                b, v = base.get(name), r.get(name)
                r[f"{name}_ratio"] = v / b if b and v is not None else None
            rows.append(r)
        stop = seed_dir / "stopped.json"
        if stop.exists():
            s = json.loads(stop.read_text())
            first = seed_rows[0] if seed_rows else {}
            rows.append({"generation": s["generation"], "seed": s["seed"], "regime": first.get("regime"),
                         "model": first.get("model"), "filter": first.get("filter"), "status": "stopped",
                         "reason": s["reason"]})
    if not rows:
        return pa.table({c: pa.array([], pa.string()) for c in KEY_COLUMNS})
    cols = KEY_COLUMNS + ["heldout_ppl", "heldout_ppl_ratio"]
    cols += sorted({k for r in rows for k in r} - set(cols))
    data: dict[str, list] = {c: [r.get(c) for r in rows] for c in cols}
    if all(v is None for v in data["regime"]):
        opts = {**option_defaults(), **_read_config(run)["options"]}
        data["regime"] = ["web" if opts["regime"] == "web" else Regime(opts["regime"], opts["real_fraction"]).label
                          ] * len(rows)
        data["model"] = [opts["model"]] * len(rows)
        data["filter"] = [opts["filter"] if opts["regime"] == "web" else None] * len(rows)
    arrays = {}
    for c, v in data.items():
        if c in STRING_COLUMNS or c == "shared_from":
            arrays[c] = pa.array([x if x is not None else "" for x in v], pa.string())
        elif c in ("generation", "seed"):
            arrays[c] = pa.array(v, pa.int64())
        else:
            arrays[c] = pa.array([float(x) if x is not None else float("nan") for x in v], pa.float64())
    return pa.table(arrays)


def config_fields() -> list[str]:
    return [f.name for f in fields(RunConfig)]
