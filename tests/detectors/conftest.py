"""Session fixtures: tiny GPT-2 models with a locally trained tokenizer, saved and loaded back through our code.

Nothing is downloaded. The models are trained for a few seconds on human texts from tests/data/detect so that
their predictions carry real signal (a random model predicts near-uniformly and no detector direction could be
tested); "machine" texts are then sampled from them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parents[1] / "data" / "detect"
EOT = "<|endoftext|>"


def raw_pairs(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def make_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())  # byte-level BPE, as GPT-2's
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOT, eos_token=EOT, unk_token=EOT)


def make_model(tokenizer, seed: int, n_layer: int = 2, n_embd: int = 64, n_positions: int = 256):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    eot = tokenizer.convert_tokens_to_ids(EOT)
    cfg = GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=4, n_positions=n_positions, vocab_size=len(tokenizer),
                     bos_token_id=eot, eos_token_id=eot)
    return GPT2LMHeadModel(cfg)


def train_lm(model, tokenizer, texts: list[str], seed: int, steps: int = 40, block: int = 128, batch: int = 32):
    """`steps` AdamW steps of next-token training on random blocks of the concatenated texts (seconds on CPU)."""
    eot = tokenizer.convert_tokens_to_ids(EOT)
    ids: list[int] = []
    for t in texts:
        ids += tokenizer(t)["input_ids"] + [eot]
    n = len(ids) // block
    data = torch.tensor(ids[: n * block]).view(n, block)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (batch,), generator=gen)
        loss = model(input_ids=data[idx], labels=data[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


@dataclass
class TinyWorld:
    tokenizer_dir: Path
    observer_dir: Path
    performer_dir: Path
    other_tokenizer_dir: Path  # a model whose tokenizer differs from the others'
    pickle_only_dir: Path
    train_texts: list[str]
    human_texts: list[str]  # held-out human texts (never seen in training)
    machine_texts: list[str]  # sampled from the performer at temperature 0.7
    cold_machine_texts: list[str]  # sampled at temperature 0.3 (low-entropy text)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyWorld:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and much faster on a shared, busy machine
    try:
        return _build_tiny(tmp_path_factory.mktemp("tiny_lms"))
    finally:
        torch.set_num_threads(threads)


def _build_tiny(root: Path) -> TinyWorld:
    train_texts = [t for name in ("exp_main/xsum_gpt-neo-2.7B.raw_data.json",
                                  "exp_main/writing_gpt-neo-2.7B.raw_data.json",
                                  "exp_main/squad_gpt-neo-2.7B.raw_data.json") for t in raw_pairs(name)["original"]]
    held = raw_pairs("exp_gpt3to4/xsum_gpt-4.raw_data.json")["original"]
    held += raw_pairs("exp_gpt3to4/writing_gpt-3.5-turbo.raw_data.json")["original"]

    tok = make_tokenizer(train_texts, 1024)
    tok_dir = root / "tokenizer"
    tok.save_pretrained(tok_dir)

    observer = train_lm(make_model(tok, seed=0), tok, train_texts, seed=0, steps=60)
    # The performer continues the observer's training on another sample order, as an instruction-tuned model
    # continues its base model: close to the observer, not identical.
    performer = train_lm(copy.deepcopy(observer), tok, train_texts, seed=1, steps=20)
    dirs = {}
    for name, model in (("observer", observer), ("performer", performer)):
        dirs[name] = root / name
        model.save_pretrained(dirs[name])
        tok.save_pretrained(dirs[name])

    other_tok = make_tokenizer(train_texts[::-1][:200], 700)
    other_dir = root / "other_tokenizer"
    make_model(other_tok, seed=2).save_pretrained(other_dir)
    other_tok.save_pretrained(other_dir)

    pickle_dir = root / "pickle_only"
    pickle_dir.mkdir()
    observer.config.save_pretrained(pickle_dir)
    tok.save_pretrained(pickle_dir)
    torch.save(observer.state_dict(), pickle_dir / "pytorch_model.bin")  # written, never loaded

    # Machine texts: continuations sampled from the performer, prompted with the first 8 tokens of held-out texts.
    prompts = torch.tensor([tok(t)["input_ids"][:8] for t in held[100:124]])
    machine = {}
    with torch.inference_mode():
        for temperature in (0.7, 0.3):
            torch.manual_seed(123)
            out = performer.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=True,
                                     temperature=temperature, top_k=0, max_new_tokens=120,
                                     pad_token_id=tok.eos_token_id, eos_token_id=None)
            machine[temperature] = tok.batch_decode(out, skip_special_tokens=True)
    return TinyWorld(tok_dir, dirs["observer"], dirs["performer"], other_dir, pickle_dir, train_texts, held[:100],
                     machine[0.7], machine[0.3])
