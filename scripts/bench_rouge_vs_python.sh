#!/usr/bin/env bash
# Side-by-side ROUGE speed: abridge vs Google's rouge-score 0.1.2 on the same 10,000 generated pairs
# (about 60 words each), rouge1/rouge2/rougeL/rougeLsum with stemming.
# Usage: PY=/path/to/python-with-rouge-score [PAIRS=pairs.jsonl] scripts/bench_rouge_vs_python.sh
#   (python3 -m venv .venv-rouge && .venv-rouge/bin/pip install rouge-score==0.1.2)
# PAIRS: score these pairs ({"hyp", "ref"} per line) instead of generated ones.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
N=${N:-10000}
cargo build --release -q
if [ -n "${PAIRS:-}" ]; then
  pairs=$PAIRS
  ours=$(./target/release/abridge bench rouge --pairs "$pairs" --threads 2 --format json)
else
  pairs=$(mktemp --suffix .jsonl)
  trap 'rm -f "$pairs"' EXIT
  ours=$(./target/release/abridge bench rouge --n "$N" --threads 2 --write "$pairs" --format json)
fi
theirs=$("$PY" - "$pairs" <<'PYEOF'
import json, sys, time
from rouge_score import rouge_scorer
pairs = [json.loads(l) for l in open(sys.argv[1])]
sc = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
t = time.perf_counter()
for p in pairs:
    sc.score(p["ref"], p["hyp"])
print(json.dumps({"seconds": time.perf_counter() - t, "pairs": len(pairs)}))
PYEOF
)
python3 - "$ours" "$theirs" <<'PYEOF'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"pairs: {o['pairs']}")
print(f"rouge-score 0.1.2 (1 process):      {p['seconds']:.2f} s")
print(f"abridge, 2 threads, cold stem cache: {o['seconds_cold']:.3f} s  -> {p['seconds'] / o['seconds_cold']:.0f}x faster")
PYEOF
