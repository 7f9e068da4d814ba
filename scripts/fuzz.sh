#!/usr/bin/env bash
# Builds the libFuzzer targets (cmake "fuzz" preset: clang, ASan+UBSan) and fuzzes GgufFile::parse
# for a bounded time on a scratch copy of the committed seed corpus (fuzz/corpus/gguf).
#
#   FUZZ_SECONDS=60   total fuzzing time (default 60)
#   FUZZ_JOBS=2       parallel build jobs (default 2)
#   FUZZ_BUILD_DIR=   build directory (default: the preset's build/fuzz)
# Extra arguments are passed to the fuzzer (e.g. -only_ascii=1). Crashes are written to
# $FUZZ_OUT (default build dir/fuzz-artifacts) and make the script exit non-zero.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-2}"
build="${FUZZ_BUILD_DIR:-$root/build/fuzz}"

if [[ -n "${FUZZ_BUILD_DIR:-}" ]]; then
  cmake --preset fuzz -B "$build"
else
  cmake --preset fuzz
fi
cmake --build "$build" --target fuzz_gguf -j "$jobs"

out="${FUZZ_OUT:-$build/fuzz-artifacts}"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/modu-fuzz-gguf.XXXXXX")"
mkdir -p "$out"
cp fuzz/corpus/gguf/* "$scratch/"
echo "fuzzing fuzz_gguf for ${seconds}s; scratch corpus: $scratch; artifacts: $out"

# -rss_limit_mb / -malloc_limit_mb: any single huge allocation is a bug (counts are bounded by
# the input size), so keep the limits tight.
"$build/fuzz/fuzz_gguf" "$scratch" \
  -max_total_time="$seconds" \
  -max_len=4096 \
  -rss_limit_mb=1024 \
  -malloc_limit_mb=256 \
  -timeout=10 \
  -dict=fuzz/gguf.dict \
  -artifact_prefix="$out/" \
  -print_final_stats=1 \
  "$@"
echo "fuzz_gguf: no crash in ${seconds}s; corpus now has $(ls "$scratch" | wc -l) inputs in $scratch"
