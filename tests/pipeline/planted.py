"""A crawl with machine text planted at known shares, scored by a tiny LM that wrote the planted text.

The language model is trained here for a few seconds on human texts (tests/data/detect) and then samples the
"machine" documents; the pipeline scores every document with the `likelihood` detector over the same model
(white-box: the generator scores its own text), so the detector's behaviour is under the test's control and
its true-positive rate can be measured on more text from the same generator.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

DETECT = Path(__file__).resolve().parents[1] / "data" / "detect"
CRAWLS = {"CC-MAIN-2023-50": ("2023-12-01T12:00:00Z", 0.10), "CC-MAIN-2024-22": ("2024-05-20T12:00:00Z", 0.40)}
HOSTS = [f"site{i}.example" for i in range(4)]
HOSTILE_HOST = "x<script>alert(1)</script>.example"


def originals(name: str) -> list[str]:
    return json.loads((DETECT / name).read_text(encoding="utf-8"))["original"]


def write_warc(path: Path, docs: list[tuple[str, str, str]]) -> None:
    """(url, text, WARC-Date) as plain-text HTTP responses, so the stored text is the planted text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, text, date in docs:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/plain; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(text.encode("utf-8")),
                                                          http_headers=http, warc_headers_dict={"WARC-Date": date}))


@dataclass
class PlantedCrawl:
    inputs: list[Path]
    lm_dir: Path
    truth: dict[str, tuple[int, int]]  # crawl -> (machine documents, documents)
    tpr_texts: list[str]  # more machine text from the same generator, never in the crawl


def sample(model, tokenizer, prompts: list[str], seed: int, temperature: float = 0.9, tokens: int = 110) -> list[str]:
    ids = torch.tensor([tokenizer(p)["input_ids"][:6] for p in prompts])
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=temperature,
                             top_k=0, max_new_tokens=tokens, pad_token_id=tokenizer.eos_token_id, eos_token_id=None)
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


def build(root: Path, n_pre: int = 150, n_post: int = 150) -> PlantedCrawl:
    from tests.detectors.conftest import make_model, make_tokenizer, train_lm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train = originals("exp_main/writing_gpt-neo-2.7B.raw_data.json")
        tok = make_tokenizer(train, 1024)
        model = train_lm(make_model(tok, seed=0), tok, train, seed=0, steps=30, batch=16)
        lm_dir = root / "lm"
        model.save_pretrained(lm_dir)
        tok.save_pretrained(lm_dir)
        # Human pages: news, Q&A paragraphs, abstracts and stories (the genre the model learnt), shuffled once,
        # so pre- and post-cutoff human text is one population.
        human = originals("exp_main/xsum_gpt-neo-2.7B.raw_data.json") + \
            originals("exp_main/squad_gpt-neo-2.7B.raw_data.json") + \
            originals("exp_gpt3to4/pubmed_gpt-4.raw_data.json") + \
            originals("exp_gpt3to4/writing_gpt-3.5-turbo.raw_data.json")
        random.Random(7).shuffle(human)
        prompts = originals("exp_gpt3to4/xsum_gpt-4.raw_data.json") + \
            originals("exp_main/writing_gpt-neo-2.7B.raw_data.json")
        machine_needed = sum(round(share * n_post) for _, share in CRAWLS.values())
        machine = sample(model, tok, prompts[:machine_needed], seed=1)
        tpr_texts = sample(model, tok, prompts[machine_needed:machine_needed + 200], seed=2)
    finally:
        torch.set_num_threads(threads)

    pre = [(f"http://{HOSTS[i % len(HOSTS)]}/pre/{i}", human.pop(), f"{2019 + i % 3}-06-15T10:00:00Z")
           for i in range(n_pre)]
    inputs = [root / "pre" / "pre-cutoff.warc.gz"]
    write_warc(inputs[0], pre)
    truth = {}
    for crawl, (date, share) in CRAWLS.items():
        k = round(share * n_post)
        docs = [(f"http://{HOSTS[i % len(HOSTS)]}/{crawl}/m{i}", machine.pop(), date) for i in range(k)]
        docs += [(f"http://{HOSTS[i % len(HOSTS)]}/{crawl}/h{i}", human.pop(), date) for i in range(n_post - k)]
        if crawl == "CC-MAIN-2024-22":  # a hostile URL and host: must come out escaped
            docs += [(f"http://{HOSTILE_HOST}/p{i}?q=\"'><img src=x onerror=alert(2)>", human.pop(), date)
                     for i in range(2)]
            k_total = (k, n_post + 2)
        else:
            k_total = (k, n_post)
        random.Random(crawl).shuffle(docs)
        path = root / "crawl-data" / crawl / "segment.warc.gz"
        write_warc(path, docs)
        inputs.append(path)
        truth[crawl] = k_total
    return PlantedCrawl(inputs, lm_dir, truth, tpr_texts)
