#!/usr/bin/env bash
# Side-by-side layer benchmark: abridge vs PyTorch's nn.LSTM / nn.GRU, same shapes, same sitting.
# Usage: PY=/path/to/python-with-torch scripts/bench_rnn_vs_torch.sh [threads...]
# Prints a Markdown table. PyTorch set-up: see ../shared/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
BENCH=${BENCH:-../shared/bench/torch_lstm_bench.py}
threads=("${@:-2}")
cargo build --release -q
echo "| cell | threads | abridge fwd+bwd ms | torch fwd+bwd ms | ratio | abridge fwd ms | torch fwd ms | ratio | abridge GEMM GFLOP/s | torch GEMM GFLOP/s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for cell in lstm gru; do
  for t in "${threads[@]}"; do
    ours=$(./target/release/abridge bench rnn --cell "$cell" --threads "$t" --reps 7 --format json)
    theirs=$("$PY" "$BENCH" --cell "$cell" --threads "$t" --phases gemm,layer --reps 7 2>/dev/null)
    python3 - "$cell" "$t" "$ours" "$theirs" <<'PYEOF'
import json, sys
cell, t, o, p = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
ob, of = o["fwd_bwd"]["ms"], o["fwd_infer"]["ms"]
pb, pf = p["layer"]["fwd_bwd"]["ms"], p["layer"]["fwd_infer"]["ms"]
print(f"| {cell} | {t} | {ob:.1f} | {pb:.1f} | {pb/ob:.2f}× | {of:.1f} | {pf:.1f} | {pf/of:.2f}× | {o['gemm_gflops']:.0f} | {p['gemm']['gemm_2048_gflops']:.0f} |")
PYEOF
  done
done
