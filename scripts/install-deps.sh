#!/usr/bin/env bash
# Installs the Debian packages modu needs to build and test. Idempotent: installs only what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config   # toolchain
  clang libclang-rt-14-dev                       # libFuzzer targets
  nlohmann-json3-dev                             # JSON (metadata dumps, server, templates)
  libcli11-dev                                   # command-line parsing
  libcpp-httplib-dev                             # HTTP server (modu serve)
  libedit-dev                                    # line editing for modu chat (UTF-8 input)
  libpcre2-dev                                   # tokenizer pre-split regexes (UTF + Unicode properties)
  libstb-dev libwebp-dev                         # image decoding for vision input (stb_image: PNG JPEG BMP GIF; WebP)
  libgtest-dev libgmock-dev                      # unit tests
  libbenchmark-dev                               # microbenchmarks
  bubblewrap                                     # sandbox for the agent's commands and MCP servers
  libseccomp-dev                                 # the sandbox's system call filter (bwrap --seccomp)
  libssl-dev                                     # SHA-256 (libcrypto) for the agent's action log
  chromium fonts-nanum                           # web chat browser test (headless; Korean glyphs in screenshots)
)

# Node.js + npm drive the server tests with the official openai package. A machine that already
# has node and npm (from any source) keeps them; otherwise Debian's packages are installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
