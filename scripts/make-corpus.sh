#!/usr/bin/env bash
# Corpus recipe for modu's own model: downloads Korean and English documentation packages from
# Debian (exact versions pinned below), extracts clean prose (HTML stripped, NFC, deduplicated),
# and writes build/corpus/{train,valid}.txt plus models/CORPUS.md (every source and its licence).
# Reproducible: same package versions -> byte-identical corpus. Needs apt-get, dpkg-deb, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/corpus}
# package=version (Debian 12 "bookworm"); language tag is used for filtering and balancing.
PACKAGES=(
  "ko gimp-help-ko=2.10.34-2"
  "en gimp-help-en=2.10.34-2"
  "ko libreoffice-help-ko=4:7.4.7-1+deb12u14"
  "en libreoffice-help-en-us=4:7.4.7-1+deb12u14"
  "ko debian-faq-ko=11.1"
  "en debian-faq=11.1"
  "doc gimp-help-common=2.10.34-2"
)
mkdir -p "$OUT/debs" "$OUT/root"
cd "$OUT/debs"
for entry in "${PACKAGES[@]}"; do
  spec=${entry#* }
  name=${spec%%=*}
  if ! ls "${name}"_*.deb >/dev/null 2>&1; then
    apt-get download "$spec" 2>/dev/null || { apt-get update -qq && apt-get download "$spec"; }
  fi
done
cd - >/dev/null
# Each package is unpacked into its own tree (no installation, so no dependencies are pulled in).
for entry in "${PACKAGES[@]}"; do
  spec=${entry#* }; name=${spec%%=*}
  if [ ! -f "$OUT/root/$name/.done" ]; then
    rm -rf "$OUT/root/$name"
    dpkg-deb -x "$OUT"/debs/"${name}"_*.deb "$OUT/root/$name" && touch "$OUT/root/$name/.done"
  fi
done
printf '%s\n' "${PACKAGES[@]}" > "$OUT/packages.txt"
python3 scripts/make-corpus.py --root "$OUT/root" --packages "$OUT/packages.txt" --out "$OUT" \
  --corpus-md models/CORPUS.md
