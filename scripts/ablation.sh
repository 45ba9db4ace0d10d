#!/usr/bin/env bash
# Decoding ablation on a dev file: each row is `abridge eval` with one setting changed from the
# bundled model's defaults; ROUGE (rouge-score, stemming) and the faithfulness signals, as JSON
# lines in $OUT.jsonl and a Markdown table in $OUT.md (machine-written; commit both).
#   DEV=<pairs> [STRIDE=5] [THREADS=2] [BIN=target/release/abridge] scripts/ablation.sh
# STRIDE=5 scores every 5th pair (1,000 of the 5,000 dev pairs: CNN and Daily Mail alike);
# STRIDE=1 the whole file.
set -euo pipefail
DEV=${DEV:-../shared/data/cnndm/dev.jsonl.zst}
STRIDE=${STRIDE:-5}
THREADS=${THREADS:-2}
BIN=${BIN:-target/release/abridge}
OUT=${OUT:-docs/ablation}
MODEL=${MODEL:-}
cargo build --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$DEV" in
  *.zst) zstdcat "$DEV" ;;
  *.gz) zcat "$DEV" ;;
  *) cat "$DEV" ;;
esac | awk -v s="$STRIDE" 'NR % s == 0' > "$tmp/dev.jsonl"
n=$(wc -l < "$tmp/dev.jsonl")
rows=(
  "defaults|"
  "selector off|--selector off"
  "selector ε=0.05|--select-threshold 0.05"
  "selector ε=0.10|--select-threshold 0.10"
  "selector ε=0.20|--select-threshold 0.20"
  "selector ε=0.30|--select-threshold 0.30"
  "length penalty none|--length-penalty none"
  "length penalty GNMT α=1|--length-penalty gnmt --alpha 1"
  "length penalty GNMT α=2|--length-penalty gnmt --alpha 2"
  "coverage penalty GNMT β=0.2|--coverage-penalty gnmt --beta 0.2"
  "coverage penalty summary β=5|--coverage-penalty summary --beta 5"
  "no trigram blocking|--block-ngram 0"
  "min length 0|--min-len 0"
  "beam 1 (greedy)|--beam 1"
  "beam 8|--beam 8"
)
: > "$OUT.jsonl"
for row in "${rows[@]}"; do
  name=${row%%|*}
  flags=${row#*|}
  echo "== $name ($flags)" >&2
  # shellcheck disable=SC2086
  "$BIN" eval ${MODEL:+--model "$MODEL"} "$tmp/dev.jsonl" --pretokenized --threads "$THREADS" \
      --format json $flags \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); r["setting"]=sys.argv[1]; r["flags"]=sys.argv[2]; print(json.dumps(r))' "$name" "$flags" \
    >> "$OUT.jsonl"
done
python3 - "$OUT.jsonl" "$n" "$DEV" "$STRIDE" > "$OUT.md" <<'PY'
import json, sys, subprocess, datetime, platform
rows = [json.loads(l) for l in open(sys.argv[1])]
n, dev, stride = sys.argv[2], sys.argv[3], sys.argv[4]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"# Decoding ablation\n\nMachine-written by `scripts/ablation.sh` ({datetime.date.today()}, commit {commit}, {cpu}): "
      f"{n} pairs (every {stride}th of `{dev}`), the bundled model, one setting changed per row from the defaults. "
      "ROUGE: rouge-score 0.1.2 with stemming, F1. Signals: mean per summary, % "
      "(novel n-grams against the source; summary sentences found verbatim in the source; trigrams repeating an earlier one; "
      "numbers found in the source; mean p_gen, the probability of generating rather than copying).\n")
lead = rows[0]["rouge_score_stem"]["baseline"]
print(f"Lead-3 on the same pairs: R1 {lead[0]:.2f}, R2 {lead[1]:.2f}, RLsum {lead[2]:.2f}.\n")
print("| setting | flags | R1 | R2 | RLsum | words | novel 2-gram | novel 3-gram | verbatim sent. | repeated 3-gram | numbers in source | mean p_gen | articles/s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    m = r["rouge_score_stem"]["model"]
    f = r["faithfulness"]["model"]
    pct = lambda k: "-" if f.get(k) is None else f"{100*f[k]:.1f}"
    print(f"| {r['setting']} | `{r['flags']}` | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {r.get('mean_words', 0):.1f} | {pct('novel_2gram')} | {pct('novel_3gram')} | "
          f"{pct('verbatim_sentences')} | {pct('repeated_trigrams')} | {pct('numbers_in_source')} | {pct('mean_p_gen')} | {r['articles_per_s']:.1f} |")
ref = rows[0]["faithfulness"]["reference"]
print(f"\nThe reference summaries on the same signals: novel 2-grams {100*ref['novel_2gram']:.1f} %, novel 3-grams {100*ref['novel_3gram']:.1f} %, "
      f"verbatim sentences {100*ref['verbatim_sentences']:.1f} %, repeated trigrams {100*ref['repeated_trigrams']:.1f} %, numbers in source {100*ref['numbers_in_source']:.1f} %.")
PY
echo "wrote $OUT.md and $OUT.jsonl" >&2
