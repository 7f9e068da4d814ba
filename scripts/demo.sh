#!/usr/bin/env bash
# The README's main command: builds modu and runs it on a model. Until modu ships its own trained
# model (models/), this writes a small randomly initialized model with modu's GGUF writer and runs
# that: the output is random text, which shows the whole pipeline working, not a trained model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=${JOBS:-$(nproc)}
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS" --target modu
MODU=build/release/src/cli/modu
MODEL=models/modu-tiny.gguf
if [ ! -f "$MODEL" ]; then
  MODEL=build/release/demo-random.gguf
  [ -f "$MODEL" ] || "$MODU" init-model --preset tiny -o "$MODEL"
  echo "note: no trained model ships yet; running a randomly initialized one (random text expected)" >&2
fi
"$MODU" info "$MODEL"
echo "--- English prompt:"
"$MODU" run -m "$MODEL" -p "The weather today is" -n 48 --seed 7
echo
echo "--- Korean prompt:"
"$MODU" run -m "$MODEL" -p "오늘 날씨는" -n 48 --seed 7
echo
