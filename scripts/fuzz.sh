#!/usr/bin/env bash
# Builds the libFuzzer targets (cmake "fuzz" preset: clang, ASan+UBSan) and runs each for a bounded
# time on a scratch copy of its committed seed corpus: the GGUF reader (fuzz/corpus/gguf), the
# server's request parsing (fuzz/corpus/request), the safetensors reader, the tool-call parsers
# (fuzz/corpus/toolcalls), the audit-log verifier (fuzz/corpus/audit) and the image decoder and
# mmproj reader (fuzz/corpus/image).
#
#   FUZZ_SECONDS=60        time for fuzz_gguf (default 60)
#   FUZZ_OTHER_SECONDS=20  time for each other target (default 20)
#   FUZZ_JOBS=2            parallel build jobs (default 2)
#   FUZZ_BUILD_DIR=        build directory (default: the preset's build/fuzz)
#   FUZZ_SEED=1            libFuzzer's random seed (default 1, so CI explores the same path every
#                          run and a red CI means a regression; FUZZ_SEED=0 picks a fresh seed each
#                          run for open-ended exploration)
# Extra arguments are passed to every fuzzer (e.g. -only_ascii=1). Crashes are written to
# $FUZZ_OUT (default build dir/fuzz-artifacts) and make the script exit non-zero.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${FUZZ_SECONDS:-60}"
other_seconds="${FUZZ_OTHER_SECONDS:-20}"
jobs="${FUZZ_JOBS:-2}"
seed="${FUZZ_SEED:-1}"
build="${FUZZ_BUILD_DIR:-$root/build/fuzz}"

if [[ -n "${FUZZ_BUILD_DIR:-}" ]]; then
  cmake --preset fuzz -B "$build"
else
  cmake --preset fuzz
fi
cmake --build "$build" --target fuzz_gguf fuzz_request fuzz_safetensors fuzz_toolcalls fuzz_audit fuzz_image -j "$jobs"

out="${FUZZ_OUT:-$build/fuzz-artifacts}"
mkdir -p "$out"

# run_fuzzer TARGET SECONDS CORPUS_DIR [extra libFuzzer flags...]
run_fuzzer() {
  local target="$1" secs="$2" corpus="$3"
  shift 3
  local scratch
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/modu-$target.XXXXXX")"
  if [[ -d "$corpus" ]]; then cp "$corpus"/* "$scratch/" 2>/dev/null || true; fi
  echo "fuzzing $target for ${secs}s; scratch corpus: $scratch; artifacts: $out"
  # -rss_limit_mb / -malloc_limit_mb: any single huge allocation is a bug (counts are bounded by
  # the input size), so keep the limits tight.
  "$build/fuzz/$target" "$scratch" \
    -max_total_time="$secs" \
    -max_len=4096 \
    -rss_limit_mb=1024 \
    -malloc_limit_mb=256 \
    -timeout=10 \
    -seed="$seed" \
    -artifact_prefix="$out/$target-" \
    -print_final_stats=1 \
    "$@" "${EXTRA_ARGS[@]}"
  echo "$target: no crash in ${secs}s; corpus now has $(ls "$scratch" | wc -l) inputs"
}

EXTRA_ARGS=("$@")
run_fuzzer fuzz_gguf "$seconds" fuzz/corpus/gguf -dict=fuzz/gguf.dict
run_fuzzer fuzz_request "$other_seconds" fuzz/corpus/request
run_fuzzer fuzz_safetensors "$other_seconds" fuzz/corpus/safetensors
run_fuzzer fuzz_toolcalls "$other_seconds" fuzz/corpus/toolcalls
run_fuzzer fuzz_audit "$other_seconds" fuzz/corpus/audit
run_fuzzer fuzz_image "$other_seconds" fuzz/corpus/image
