#!/usr/bin/env bash
# `make demo`: curate the bundled real WARC/WET files into out/demo, print the summary, then run a short
# model-collapse experiment on the curated shards.
set -euo pipefail
PY=${1:-.venv/bin/python}
cd "$(dirname "$0")/.."
OUT=out/demo
echo "== lowbg curate: bundled Common Crawl (2020, 2024), Internet Archive (2008) and ClueWeb09 fixtures"
# The bundled fixtures hold ~90 pre-cutoff documents: enough to calibrate the detector's threshold on this run's
# own human text at a 5% false-positive rate (at 1% it would not be measurable), not at the production default.
"$PY" -m pipeline.cli curate \
  --input 'tests/data/warc/*.warc.gz' \
  --output "$OUT" --overwrite \
  --detectors fasttext --target-fpr 0.05 --min-calibration-docs 50 \
  --direct_running_mode=in_memory
echo
"$PY" - "$OUT" <<'PYEOF'
import collections, glob, json, sys
import pyarrow as pa
import schemas
out = sys.argv[1]
table = pa.concat_tables([schemas.read_shard(p, "curated") for p in sorted(glob.glob(f"{out}/curated/*.parquet"))])
rows = table.select(["crawl_id", "provenance", "language"]).to_pylist()
print("curated documents by provenance:", dict(collections.Counter(r["provenance"] for r in rows)))
print("curated documents by crawl:", dict(collections.Counter(r["crawl_id"] or "(not Common Crawl)" for r in rows)))
langs = collections.Counter(r["language"] for r in rows if r["language"])
if langs:
    print("languages:", dict(langs.most_common(8)))
manifest = json.load(open(f"{out}/manifest.json"))
for name, t in (manifest.get("thresholds") or {}).items():
    ci = t.get("ci") or [None, None]
    print(f"{name} threshold {t['threshold']:.6f} (95% CI {ci[0]:.6f}..{ci[1]:.6f}) at target FPR {t['target_fpr']}: "
          f"{t['source']}, {t['n_human']} human documents")
print(f"shards: {out}/curated, {out}/rejected, {out}/errors; manifest: {out}/manifest.json")
PYEOF
echo
echo "== lowbg collapse run: 3 generations of an n-gram model on the curated shards (replace regime)"
rm -rf "$OUT/collapse"  # a collapse run resumes in its folder; these shards are new
"$PY" -m pipeline.cli collapse run --shards "$OUT/curated" --model ngram --regime replace \
    --generations 3 --seeds 2 --output "$OUT/collapse"
