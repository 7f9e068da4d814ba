#!/usr/bin/env bash
# Builds modu (release preset) and runs every test with CTest; then replays and runs the GGUF
# fuzzer for a bounded time. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=${JOBS:-$(nproc)}
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS"
ctest --preset release -j "$JOBS"
if [ "${MODU_SKIP_FUZZ:-0}" != "1" ] && [ -f scripts/fuzz.sh ]; then
  bash scripts/fuzz.sh
fi
