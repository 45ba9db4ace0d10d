#!/usr/bin/env bash
# Decoding throughput of `abridge eval` (the bundled model, its defaults: beam 4, content
# selector) on the first PAIRS dev pairs, on 1 and 2 threads, ROUNDS times each, alternating.
# Prints one line per run and appends it as JSON (date, commit, CPU, articles/s, ROUGE) to
# docs/results/eval_throughput.jsonl. BIN=path compares another build (e.g. an older commit's).
#
#   bash scripts/bench_eval_throughput.sh          # PAIRS=300 ROUNDS=2
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-300}
ROUNDS=${ROUNDS:-2}
DATA=${DATA:-../shared/data/cnndm/dev.jsonl.zst}
if [ -z "${BIN:-}" ]; then
  cargo build --release -p abridge-cli >/dev/null
  BIN=target/release/abridge
fi
commit=$(git rev-parse --short HEAD)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
mkdir -p docs/results
for round in $(seq "$ROUNDS"); do
  for threads in 2 1; do
    "$BIN" eval "$DATA" --pretokenized --max-examples "$PAIRS" --threads "$threads" --format json \
      | python3 -c '
import datetime, json, sys
d = json.load(sys.stdin)
row = {"bench": "eval_throughput", "date": datetime.date.today().isoformat(),
       "commit": sys.argv[1], "cpu": sys.argv[2], "bin": sys.argv[3], "pairs": d["pairs"],
       "threads": int(sys.argv[4]), "articles_per_s": round(d["articles_per_s"], 2),
       "rouge_score_stem": [round(x, 2) for x in d["rouge_score_stem"]["model"]],
       "rouge155_f": [round(m["F"], 5) for m in d["rouge155_see_et_al"]]}
print(json.dumps(row))
' "$commit" "$cpu" "$BIN" "$threads" | tee -a docs/results/eval_throughput.jsonl
  done
done
