#!/usr/bin/env bash
# The recipe of the bundled default model (models/cnndm-pg): See et al. (2017) pointer-generator,
# trained on CNN/DailyMail, then a short coverage phase. Run from the repository root with the
# corpus at ../shared/data/cnndm. Time-boxed: MAIN_MIN minutes without coverage, COV_MIN with it.
# Afterwards: `abridge export runs/cnndm-pg-cov models/cnndm-pg --dtype f16`.
set -euo pipefail
DATA=${DATA:-../shared/data/cnndm}
OUT=${OUT:-runs}
MAIN_MIN=${MAIN_MIN:-80}
COV_MIN=${COV_MIN:-12}
THREADS=${THREADS:-2}
BIN=${BIN:-target/release/abridge}
cargo build --release
common=(--pretokenized --dev "$DATA/dev.jsonl.zst" --dev-examples 300 --eval-every 1000
        --max-src-len 200 --max-tgt-len 60 --batch-size 16 --optimizer adam --clip 2
        --threads "$THREADS")
[ "${MAIN:-1}" = 0 ] || "$BIN" train "$DATA/train.jsonl.zst" --out "$OUT/cnndm-pg" "${common[@]}" \
    --vocab-size 20000 --cell lstm --emb 128 --hidden 256 --attn 256 --enc-layers 1 \
    --lr 0.001 --max-steps 100000 --max-minutes "$MAIN_MIN" --patience 0 --seed 1
"$BIN" train "$DATA/train.jsonl.zst" --out "$OUT/cnndm-pg-cov" "${common[@]}" \
    --init-from "$OUT/cnndm-pg" --coverage --cov-weight 1 \
    --lr 0.0005 --warmup-steps 100 --max-steps 100000 --max-minutes "$COV_MIN" --patience 0 --seed 2
