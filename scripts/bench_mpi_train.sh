#!/usr/bin/env bash
# Data-parallel training throughput: the default model's recipe (scripts/train_default_model.sh)
# on 1 rank × 1 thread, 2 ranks × 1 thread (mpirun on loopback) and 1 rank × 2 threads, same
# global batch, same sitting. Prints a table and appends one JSON line per setting (date, commit,
# CPU) to docs/results/mpi_train.jsonl. Also prints the gradient's size and what summing it
# would cost on a 10 and a 25 Gb/s network.
#
#   bash scripts/bench_mpi_train.sh            # STEPS=40 PAIRS=4000 by default
#
# Needs Open MPI (apt-get install openmpi-bin libopenmpi-dev libclang-dev) and ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-40}
PAIRS=${PAIRS:-4000}
DATA=${DATA:-../shared/data/cnndm}
cargo build --release --features mpi -p abridge-cli >/dev/null
BIN=$PWD/target/release/abridge
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(zstdcat "$DATA/train.jsonl.zst" || true) | head -n "$PAIRS" > "$WORK/train.jsonl"
common=(train "$WORK/train.jsonl" --pretokenized --vocab-size 20000 --cell lstm --emb 128
        --hidden 256 --attn 256 --max-src-len 200 --max-tgt-len 60 --batch-size 16
        --optimizer adam --lr 0.001 --clip 2 --max-steps "$STEPS" --eval-every 0 --seed 1)
run() { # name ranks threads
  local out="$WORK/$1"
  if [ "$2" = 1 ]; then
    "$BIN" "${common[@]}" --threads "$3" --out "$out" >/dev/null 2>"$WORK/$1.err"
  else
    mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$2" \
      "$BIN" "${common[@]}" --threads "$3" --out "$out" >/dev/null 2>"$WORK/$1.err"
  fi
  # Median tokens/s over the steps after the first five (warm-up).
  python3 - "$out/metrics.jsonl" "$1" "$2" "$3" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][5:]
tps = statistics.median(r["tokens_per_s"] for r in rows)
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{sys.argv[4]}\t{tps:.0f}\t{rows[-1]['loss']:.6f}")
EOF
}
# The machine's own ceiling for two workers: two independent one-thread runs at once, their
# tokens/s added (no communication at all; what is lost is shared caches, memory bandwidth, clocks).
ceiling() {
  ( run solo-a 1 1 > "$WORK/a.tsv" ) & ( run solo-b 1 1 > "$WORK/b.tsv" ) & wait
  paste "$WORK/a.tsv" "$WORK/b.tsv" | awk -F'\t' '{printf "two-independent\t2\t1\t%.0f\t%s\n", $4 + $9, $5}'
}
{
  run one-by-one 1 1
  run two-ranks 2 1
  run one-by-two 1 2
  ceiling
} | tee "$WORK/table.tsv"
params=$(grep -o '[0-9]* parameters' "$WORK/one-by-one.err" | cut -d' ' -f1)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
commit=$(git rev-parse --short HEAD)
mkdir -p docs/results
python3 - "$WORK/table.tsv" "$params" "$cpu" "$commit" "$STEPS" >> docs/results/mpi_train.jsonl <<'EOF'
import json, sys, datetime
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
base = float(rows[0][3])
params = int(sys.argv[2])
for name, ranks, threads, tps, loss in rows:
    print(json.dumps({"bench": "mpi_train", "date": datetime.date.today().isoformat(),
        "commit": sys.argv[4], "cpu": sys.argv[3], "setting": name, "ranks": int(ranks),
        "threads_per_rank": int(threads), "tokens_per_s": float(tps),
        "vs_one_rank_one_thread": round(float(tps) / base, 3), "loss_at_last_step": float(loss),
        "steps": int(sys.argv[5]), "parameters": params}))
EOF
python3 - "$WORK/table.tsv" "$params" <<'EOF'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
base = float(rows[0][3])
print("setting         ranks threads tokens/s  ×(1×1)")
for name, r, t, tps, loss in rows:
    print(f"{name:15} {r:>5} {t:>7} {float(tps):>8.0f}  {float(tps)/base:5.2f}")
p = int(sys.argv[2]); mb = p * 4 / 1e6
print(f"gradient: {p} parameters = {mb:.1f} MB in f32")
for gbps in (10, 25):
    # Each rank sends and receives 2(N-1)/N of the vector; for N = 2, the vector once each way.
    print(f"  sum over 2 ranks at {gbps} Gb/s: {mb * 8 / (gbps * 1000) * 1000:.0f} ms per step "
          f"(+ latency); N ranks: {2 * mb * 8 / (gbps * 1000) * 1000:.0f} ms × (N-1)/N")
EOF
