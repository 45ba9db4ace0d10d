#!/usr/bin/env bash
# The recipe of the bundled default model (models/default): See et al. (2017) pointer-generator,
# trained on CNN/DailyMail, then a short coverage phase, then its content selector (Gehrmann et
# al. 2018). Run from the repository root with the corpus at ../shared/data/cnndm. Time-boxed:
# MAIN_MIN minutes without coverage, COV_MIN with it, SEL_MIN for the selector; each stage is its
# own command and can be skipped (MAIN=0, COV=0, SEL=0) to resume the recipe after a stop.
set -euo pipefail
DATA=${DATA:-../shared/data/cnndm}
OUT=${OUT:-runs}
MAIN_MIN=${MAIN_MIN:-80}
COV_MIN=${COV_MIN:-12}
SEL_MIN=${SEL_MIN:-30}
SEL_THREADS=${SEL_THREADS:-1}
SEL_THRESHOLD=${SEL_THRESHOLD:-0.1}
MODEL=${MODEL:-models/default}
THREADS=${THREADS:-2}
BIN=${BIN:-target/release/abridge}
cargo build --release
common=(--pretokenized --dev "$DATA/dev.jsonl.zst" --dev-examples 300 --eval-every 1000
        --max-src-len 200 --max-tgt-len 60 --batch-size 16 --optimizer adam --clip 2
        --threads "$THREADS")
[ "${MAIN:-1}" = 0 ] || "$BIN" train "$DATA/train.jsonl.zst" --out "$OUT/cnndm-pg" "${common[@]}" \
    --vocab-size 20000 --cell lstm --emb 128 --hidden 256 --attn 256 --enc-layers 1 \
    --lr 0.001 --max-steps 100000 --max-minutes "$MAIN_MIN" --patience 0 --seed 1
[ "${COV:-1}" = 0 ] || "$BIN" train "$DATA/train.jsonl.zst" --out "$OUT/cnndm-pg-cov" "${common[@]}" \
    --init-from "$OUT/cnndm-pg" --coverage --cov-weight 1 \
    --lr 0.0005 --warmup-steps 100 --max-steps 100000 --max-minutes "$COV_MIN" --patience 0 --seed 2
[ "${EXPORT:-1}" = 0 ] || "$BIN" export "$OUT/cnndm-pg-cov" "$MODEL" --dtype f16 --force
# The selector reads the model's vocabulary and tokenization and writes selector.json and
# selector.safetensors into the model folder (the best dev loss of SEL_MIN minutes). The bundled
# one: 30 minutes on one thread, dev = every 5th dev pair (first 500); threshold 0.1 chosen on
# every 5th dev pair with the decoding defaults (docs/ablation.md).
[ "${SEL:-1}" = 0 ] || "$BIN" selector train "$DATA/train.jsonl.zst" --pretokenized --model "$MODEL" \
    --dev "$DATA/dev.jsonl.zst" --dev-examples 1000 --input encoder --layers 1 --hidden 128 \
    --always-copy-top 50 --max-minutes "$SEL_MIN" --eval-every 1000 --threads "$SEL_THREADS" --f16 \
    --threshold "$SEL_THRESHOLD"
