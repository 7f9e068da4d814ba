#!/usr/bin/env python3
"""Measures modu's text watermark (not a test: a report, see docs/trust.md).

- True-positive rate: texts of exactly N tokens (--ignore-eos) generated with the watermark
  (temperature T, no top-k/top-p/min-p) that `modu detect` finds; the same prompts and seeds without the watermark give the false-positive
  rate on machine text.
- False-positive rate on human text: windows of about N tokens of Korean and English prose from
  the corpus recipe (scripts/make-corpus.sh: Debian documentation packages), at least 1000 each.
- Perplexity cost: `modu eval` of the generated texts under the generating model, with and
  without the watermark.
- Robustness: detection after replacing a fraction of the words with words of human text (a
  crude stand-in for paraphrase), and after deleting words.

Usage: python3 bench/watermark/eval.py --modu build/release/src/cli/modu --model models/modu-tiny.gguf \
           [--corpus build/corpus] [--samples 100] [--tokens 200] [--temp 0.7] [--json out.json]
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile

KEY = "modu-watermark-eval"


def run(cmd, **kw):
    # A generation cut at N tokens may end inside a UTF-8 character: that byte becomes U+FFFD.
    r = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", **kw)
    if r.returncode not in (0, 3):
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return r


def detect_many(args, texts, model):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
        path = f.name
    try:
        out = run([args.modu, "detect", "--key", KEY, "-m", model, "--gamma", str(args.gamma), "--jsonl", path]).stdout
    finally:
        os.unlink(path)
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def hangul_ratio(s):
    letters = [c for c in s if c.isalpha()]
    return sum(1 for c in letters if "\uac00" <= c <= "\ud7a3") / max(1, len(letters))


def human_windows(corpus, target_bytes):
    """Windows of about target_bytes of prose per language, cut at sentence ends."""
    text = ""
    for name in ("valid.txt", "train.txt"):
        p = os.path.join(corpus, name)
        if os.path.exists(p):
            text += open(p, encoding="utf-8").read() + "\n"
    out = {"ko": [], "en": []}
    for doc in text.split("<|endoftext|>"):
        doc = re.sub(r"\s+", " ", doc).strip().encode()
        pos = 0
        while len(doc) - pos > target_bytes // 2:
            chunk = doc[pos:pos + target_bytes].decode("utf-8", "ignore")
            cut = max(chunk.rfind(". "), chunk.rfind("다. "))
            if cut > len(chunk) // 2:
                chunk = chunk[:cut + 1]
            pos += len(chunk.encode())
            r = hangul_ratio(chunk)
            if r >= 0.4:
                out["ko"].append(chunk.strip())
            elif r == 0:
                out["en"].append(chunk.strip())
    return out


def generate(args, model, prompt, seed, watermark):
    cmd = [args.modu, "run", "-m", model, "-p", prompt, "-n", str(args.tokens), "--temp", str(args.temp),
           "--top-k", "0", "--top-p", "1", "--min-p", "0", "-s", str(seed), "-t", str(args.threads), "--ignore-eos"]
    if watermark:
        cmd += ["--watermark-key", KEY, "--watermark-gamma", str(args.gamma), "--watermark-delta", str(args.delta)]
    return run(cmd).stdout


def perplexity(args, model, texts):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n\n".join(re.sub(r"\n\s*\n", "\n", t).strip() for t in texts if t.strip()) + "\n")
        path = f.name
    try:
        out = run([args.modu, "eval", "-m", model, "-f", path, "--json", "-t", str(args.threads)]).stdout
    finally:
        os.unlink(path)
    return json.loads(out)["perplexity"]


def rate(results):
    return sum(1 for r in results if r["watermarked"]) / max(1, len(results))


def attack(texts, frac, rng, mode, pool):
    """Each word replaced by a word of human text (or deleted) with probability frac."""
    out = []
    for t in texts:
        words = t.split()
        keep = []
        for w in words:
            if rng.random() >= frac:
                keep.append(w)
            elif mode == "replace":
                keep.append(rng.choice(pool))
        out.append(" ".join(keep))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modu", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", default="build/corpus")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--temp", type=float, default=0.7)
    ap.add_argument("--gamma", type=float, default=0.25)
    ap.add_argument("--delta", type=float, default=2.0)
    ap.add_argument("--human", type=int, default=1000, help="human texts per language")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-human", action="store_true")
    ap.add_argument("--human-only", action="store_true", help="only the false positives on human text")
    ap.add_argument("--json")
    args = ap.parse_args()
    rng = random.Random(1)
    report = {"model": args.model, "tokens": args.tokens, "temperature": args.temp, "gamma": args.gamma,
              "delta": args.delta, "threshold_z": 4.0}

    win = human_windows(args.corpus, target_bytes=args.tokens * 4)
    if not args.skip_human:
        for lang in ("ko", "en"):
            texts = win[lang][: args.human]
            if len(texts) < args.human:
                print(f"warning: only {len(texts)} {lang} windows", file=sys.stderr)
            res = detect_many(args, texts, args.model)
            zs = [r["z"] for r in res]
            report[f"human_{lang}"] = {"texts": len(res), "false_positives": sum(r["watermarked"] for r in res),
                                       "fpr": rate(res), "mean_scored_tokens": statistics.mean(r["scored"] for r in res),
                                       "z_mean": statistics.mean(zs), "z_sd": statistics.pstdev(zs), "z_max": max(zs)}
            print(f"human {lang}: {report[f'human_{lang}']}", file=sys.stderr)

    if args.human_only:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2, ensure_ascii=False)
        return

    prompts = []
    for lang_texts in win.values():
        for t in lang_texts[:: max(1, len(lang_texts) // args.samples)]:
            prompts.append(t[:40] if hangul_ratio(t) > 0 else t[:60])
    rng.shuffle(prompts)
    prompts = prompts[: args.samples]
    marked, plain = [], []
    for i, p in enumerate(prompts):
        marked.append(generate(args, args.model, p, 1000 + i, True))
        plain.append(generate(args, args.model, p, 1000 + i, False))
        if (i + 1) % 10 == 0:
            print(f"generated {i + 1}/{len(prompts)}", file=sys.stderr)
    rm, rp = detect_many(args, marked, args.model), detect_many(args, plain, args.model)
    report["generated"] = {
        "samples": len(prompts),
        "tpr": rate(rm), "fpr_unwatermarked": rate(rp),
        "z_marked_median": statistics.median(r["z"] for r in rm), "z_plain_median": statistics.median(r["z"] for r in rp),
        "mean_scored_tokens": statistics.mean(r["scored"] for r in rm),
        # Distinct (previous, token) pairs of the samples the detector missed: loops score few.
        "missed_scored_pairs": sorted(r["scored"] for r in rm if not r["watermarked"]),
        "perplexity_marked": perplexity(args, args.model, marked), "perplexity_plain": perplexity(args, args.model, plain),
    }
    attacks = {}
    pool = [w for lang in ("ko", "en") for t in win[lang][:300] for w in t.split()]
    for frac in (0.1, 0.3, 0.5):
        attacks[f"replace_{int(frac * 100)}pct"] = rate(detect_many(args, attack(marked, frac, rng, "replace", pool), args.model))
        attacks[f"delete_{int(frac * 100)}pct"] = rate(detect_many(args, attack(marked, frac, rng, "delete", pool), args.model))
    report["generated"]["detection_after_edits"] = attacks
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
