# Extracts clean Korean/English prose from unpacked Debian documentation packages (called by
# make-corpus.sh): HTML stripped, whitespace and Unicode (NFC) normalized, language-filtered,
# paragraph-deduplicated; documents split into train/valid by a hash of their path (stable).
import argparse
import hashlib
import html.parser
import os
import re
import unicodedata

BLOCK = {"p", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "td", "th", "pre", "title", "div", "blockquote"}
SKIP = {"script", "style", "head", "noscript", "code", "pre", "kbd", "samp", "tt"}


class Prose(html.parser.HTMLParser):
    """Collects the text of block elements as paragraphs, skipping scripts, code and navigation."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras, self.buf, self.skip, self.stack = [], [], 0, []

    def flush(self):
        text = " ".join("".join(self.buf).split())
        if text:
            self.paras.append(text)
        self.buf = []

    def handle_starttag(self, tag, attrs):
        cls = " ".join(v or "" for k, v in attrs if k in ("class", "id")).lower()
        skipping = tag in SKIP or "nav" in cls or "breadcrumb" in cls or "footer" in cls or "header" in cls
        if tag in ("br", "img", "hr", "input", "meta", "link"):
            return
        self.stack.append((tag, skipping))
        if skipping:
            self.skip += 1
        if tag in BLOCK:
            self.flush()

    def handle_endtag(self, tag):
        if tag in ("br", "img", "hr", "input", "meta", "link"):
            return
        # pop to the matching tag (HTML in the wild is not always well nested)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for _, s in self.stack[i:]:
                    if s:
                        self.skip -= 1
                del self.stack[i:]
                break
        if tag in BLOCK:
            self.flush()

    def handle_data(self, data):
        if self.skip == 0:
            self.buf.append(data)


def is_hangul(c):
    return "\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e"


def keep(text, lang):
    if len(text) < 24 or text.count(" ") < 3:
        return False
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 0.5 * len(text.replace(" ", "")):
        return False  # tables of numbers, paths, code
    hangul = sum(1 for c in letters if is_hangul(c))
    if lang == "ko":
        return hangul >= 0.4 * len(letters)
    ascii_letters = sum(1 for c in letters if c.isascii())
    return hangul == 0 and ascii_letters >= 0.95 * len(letters)


def sources(root, name):
    """(relative path, absolute path) of every prose HTML file of one unpacked package, sorted."""
    base = os.path.join(root, name)
    out = []
    for dirpath, _, files in os.walk(base):
        for f in files:
            if f.endswith(".html") or f.endswith(".htm"):
                p = os.path.join(dirpath, f)
                out.append((os.path.relpath(p, base), p))
    return sorted(out)


def licence(root, name):
    """The licence of the package's main files (the first License: of debian/copyright)."""
    for cand in (name, "gimp-help-common"):
        p = os.path.join(root, cand, "usr/share/doc", cand, "copyright")
        if not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            txt = f.read()
        for line in txt.splitlines():
            if line.startswith("License:") and line.split(":", 1)[1].strip():
                return line.split(":", 1)[1].strip()
        if "Permission is granted to make and distribute verbatim copies" in txt:
            return "SPI permission notice (verbatim and modified copies allowed)"
    return "see /usr/share/doc/%s/copyright" % name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--packages", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus-md", required=True)
    ap.add_argument("--valid-per-256", type=int, default=5, help="held-out share of documents, in 1/256")
    args = ap.parse_args()
    pkgs = []
    with open(args.packages) as f:
        for line in f:
            lang, spec = line.split()
            name, version = spec.split("=", 1)
            pkgs.append((lang, name, version))
    seen = set()
    docs = {"train": [], "valid": []}
    stats = []
    for lang, name, version in pkgs:
        if lang not in ("ko", "en"):
            continue
        n_docs = n_chars = 0
        for rel, path in sources(args.root, name):
            with open(path, encoding="utf-8", errors="replace") as f:
                parser = Prose()
                parser.feed(f.read())
                parser.close()
                parser.flush()
            paras = []
            for p in parser.paras:
                p = unicodedata.normalize("NFC", p)
                if not keep(p, lang):
                    continue
                key = p.casefold()
                if key in seen:
                    continue
                seen.add(key)
                paras.append(p)
            if not paras:
                continue
            doc = "\n".join(paras)
            h = hashlib.sha1((name + "/" + rel).encode()).digest()
            split = "valid" if h[0] < args.valid_per_256 else "train"
            docs[split].append((h, doc))
            n_docs += 1
            n_chars += len(doc)
        stats.append((lang, name, version, licence(args.root, name), n_docs, n_chars))
    os.makedirs(args.out, exist_ok=True)
    sizes = {}
    for split, items in docs.items():
        items.sort()  # hash order interleaves the languages and packages, stably
        text = "\n\n".join(d for _, d in items) + "\n"
        with open(os.path.join(args.out, split + ".txt"), "w", encoding="utf-8") as f:
            f.write(text)
        sizes[split] = (len(items), len(text.encode()))
    with open(args.corpus_md, "w", encoding="utf-8") as f:
        f.write("# modu-tiny training corpus\n\n")
        f.write("Built by `scripts/make-corpus.sh` (Debian 12 packages, unpacked with `dpkg-deb -x`, not\n")
        f.write("installed). Prose is taken from HTML block elements (code, navigation and scripts skipped),\n")
        f.write("whitespace-collapsed, NFC-normalized, filtered by script (Korean: >= 40% Hangul letters;\n")
        f.write("English: no Hangul, >= 95% ASCII letters), and deduplicated by paragraph (case-folded).\n")
        f.write("Documents (one per HTML page) go to the held-out split when the first byte of\n")
        f.write("sha1(package/path) is < %d (about %.1f%%).\n\n" % (args.valid_per_256, args.valid_per_256 / 2.56))
        f.write("| language | package | version | licence | documents | characters |\n|---|---|---|---|---|---|\n")
        for lang, name, version, lic, nd, nc in stats:
            f.write("| %s | %s | %s | %s | %d | %d |\n" % (lang, name, version, lic, nd, nc))
        f.write("\n| split | documents | bytes |\n|---|---|---|\n")
        for split, (nd, nb) in sizes.items():
            f.write("| %s | %d | %d |\n" % (split, nd, nb))
        f.write("\nThe corpus itself is not in git (build/corpus/); the recipe reproduces it byte for byte.\n")
        f.write("Licences are as stated in each package's debian/copyright; the model's weights are derived\n")
        f.write("from these texts, so they are distributed under the same terms where those terms require it.\n")
    for s in stats:
        print("make-corpus: %-3s %-24s %5d docs %9d chars  (%s)" % (s[0], s[1], s[4], s[5], s[3]))
    for split, (nd, nb) in sizes.items():
        print("make-corpus: %s: %d documents, %d bytes" % (split, nd, nb))


if __name__ == "__main__":
    main()
