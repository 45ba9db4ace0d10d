#!/usr/bin/env bash
# Side-by-side summarizer benchmark: a training step and decoding, abridge vs the PyTorch anchor
# (../shared/bench/torch_lstm_bench.py), same shapes (vocab 20k, emb 128, hidden 256, batch 32,
# source 200, target 30), same sitting. Usage: PY=/path/to/python-with-torch scripts/bench_model_vs_torch.sh [threads]
# Prints two Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
BENCH=${BENCH:-../shared/bench/torch_lstm_bench.py}
T=${1:-2}
cargo build --release -q
echo "| cell | abridge ms/step | torch ms/step | ratio | abridge peak RSS MB | torch peak RSS MB |"
echo "|---|---|---|---|---|---|"
for cell in lstm gru; do
  ours=$(./target/release/abridge bench train --cell "$cell" --threads "$T" --format json)
  theirs=$("$PY" "$BENCH" --cell "$cell" --threads "$T" --phases train 2>/dev/null)
  python3 - "$cell" "$ours" "$theirs" <<'PYEOF'
import json, sys
cell, o, p = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
om, pm = o["ms_per_step"], p["train"]["ms_per_step"]
print(f"| {cell} | {om:.0f} | {pm:.0f} | {pm/om:.2f}× | {o['peak_rss_mb']:.0f} | {p['rss_peak_mb_after_train']:.0f} |")
PYEOF
done
echo
echo "| cell | greedy b32 ms (torch) | ratio | greedy b1 ms (torch) | ratio | beam 4 b1 ms (torch) | ratio | beam 4 b1, f16 head ms | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
for cell in lstm gru; do
  ours=$(./target/release/abridge bench decode --cell "$cell" --threads "$T" --format json)
  theirs=$("$PY" "$BENCH" --cell "$cell" --threads "$T" --phases infer 2>/dev/null)
  python3 - "$cell" "$ours" "$theirs" <<'PYEOF'
import json, sys
cell, o, p = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
i = p["infer"]
g32, g1, b4 = i["greedy_b32"]["ms"], i["greedy_b1"]["ms"], i["beam4_b1"]["ms"]
r = lambda t, ours: f"{ours:.1f} ({t:.1f}) | {t/ours:.2f}×"
print(f"| {cell} | {r(g32, o['greedy_batch_ms'])} | {r(g1, o['greedy_1_ms'])} | {r(b4, o['beam4_1_ms'])} | {o['beam4_1_f16_ms']:.1f} | {b4/o['beam4_1_f16_ms']:.2f}× |")
PYEOF
done
