#!/usr/bin/env bash
# Worked example of `modu tune` (docs/tune-example.md): a Korean Debian-FAQ specialization of
# modu-tiny. Builds the corpus offline from Debian packages (scripts/make-corpus.sh), keeps the
# Korean documents about Debian (the debian-faq-ko pages: "데비안" at least twice), holds out
# every fourth of them, tunes a rank-8 LoRA, and prints held-out loss and greedy samples before
# and after. Needs a built modu (bash scripts/test.sh or cmake --build --preset release).
set -euo pipefail
cd "$(dirname "$0")/.."
MODU=${MODU:-build/release/src/cli/modu}
OUT=${OUT:-build/tune-example}
STEPS=${STEPS:-300}
[ -f build/corpus/train.txt ] || bash scripts/make-corpus.sh
mkdir -p "$OUT"
python3 - "$OUT" <<'PY'
import sys
out = sys.argv[1]
docs = []
for name in ("build/corpus/train.txt", "build/corpus/valid.txt"):
    docs += [d.strip() for d in open(name, encoding="utf-8").read().split("\n\n") if d.strip()]  # one document per block
faq = [d for d in docs if d.count("데비안") >= 2]
train = [d for i, d in enumerate(faq) if i % 4 != 3]
valid = [d for i, d in enumerate(faq) if i % 4 == 3]
open(f"{out}/faq-train.txt", "w", encoding="utf-8").write("\n\n".join(train) + "\n")
open(f"{out}/faq-valid.txt", "w", encoding="utf-8").write("\n\n".join(valid) + "\n")
print(f"tune-example: {len(faq)} Korean Debian documents: {len(train)} to tune on, {len(valid)} held out", file=sys.stderr)
PY
"$MODU" tune -m models/modu-tiny.gguf --text "$OUT/faq-train.txt" --valid "$OUT/faq-valid.txt" \
  -o "$OUT/debian-faq-ko.gguf" --rank 8 --alpha 16 --steps "$STEPS" --batch 4 --ctx 128 --lr 2e-3 --eval-every 50
for p in "데비안 패키지를 설치하려면" "데비안의 새 버전은"; do
  echo "== prompt: $p"
  echo "-- modu-tiny:"
  "$MODU" run -m models/modu-tiny.gguf -p "$p" -n 48 --temp 0 2>/dev/null; echo
  echo "-- modu-tiny + debian-faq-ko LoRA:"
  "$MODU" run -m models/modu-tiny.gguf --lora "$OUT/debian-faq-ko.gguf" -p "$p" -n 48 --temp 0 2>/dev/null; echo
done
