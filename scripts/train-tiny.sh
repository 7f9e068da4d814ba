#!/usr/bin/env bash
# Recipe for models/modu-tiny.gguf: corpus -> tokenizer -> pretraining -> quantization -> held-out
# evaluation. Resumable: rerun after an interruption and it continues from the last checkpoint.
# Wall time on 2 shared cores: see models/README.md. Set INSTALL=1 to copy the result into models/.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
OUT=build/tiny
bash scripts/make-corpus.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS" --target modu
MODU=build/release/src/cli/modu
mkdir -p "$OUT"
[ -f "$OUT/tokenizer.gguf" ] || "$MODU" tokenizer train -f build/corpus/train.txt --vocab-size 4096 \
  -o "$OUT/tokenizer.gguf" --name modu-tiny
"$MODU" train --config models/modu-tiny.json --resume
for q in q8_0 q4_0; do
  "$MODU" quantize "$OUT/model.gguf" "$OUT/model-$q.gguf" "$q"
done
for f in model model-q8_0 model-q4_0; do
  printf '%-12s ' "$f"
  "$MODU" eval -m "$OUT/$f.gguf" -f build/corpus/valid.txt --json | tee "$OUT/$f.eval.json"
done
if [ "${INSTALL:-0}" = 1 ]; then
  cp "$OUT/model.gguf" models/modu-tiny.gguf
  cp "$OUT/loss.svg" models/modu-tiny-loss.svg
  cp "$OUT/loss.csv" models/modu-tiny-loss.csv
fi
