#!/usr/bin/env python3
"""Generates the GGUF fuzz seed corpus in fuzz/corpus/gguf (small valid_* and invalid_* files).

Uses its own little encoder (not modu's writer) so the seeds also cross-check the reader against
an independent implementation of the format. Run from anywhere: python3 fuzz/gen_corpus.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "gguf")

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
       U64: "<Q", I64: "<q", F64: "<d"}
F32_T, F16_T, Q4_0_T, Q8_0_T, Q4_K_T, BF16_T = 0, 1, 2, 8, 12, 30
TYPE_BYTES = {F32_T: (1, 4), F16_T: (1, 2), BF16_T: (1, 2), Q4_0_T: (32, 18), Q8_0_T: (32, 34), Q4_K_T: (256, 144)}


def s(x):
    b = x if isinstance(x, bytes) else x.encode()
    return struct.pack("<Q", len(b)) + b


def val(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, elems = v
        return struct.pack("<IQ", et, len(elems)) + b"".join(val(et, e) for e in elems)
    return struct.pack(FMT[t], v)


def kv(key, t, v):
    return s(key) + struct.pack("<I", t) + val(t, v)


def gguf(kvs, tensors=(), version=3, alignment=32):
    """tensors: (name, ne list, ggml type); data is a deterministic byte pattern."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    blobs, off = [], 0
    for name, ne, t in tensors:
        bs, bb = TYPE_BYTES[t]
        n = 1
        for d in ne:
            n *= d
        size = n // bs * bb
        out += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<q", d) for d in ne)
        out += struct.pack("<IQ", t, off)
        blobs.append((off, bytes((i * 37 + len(name)) & 0xFF for i in range(size))))
        off = (off + size + alignment - 1) // alignment * alignment
    if tensors:
        out += b"\0" * (-len(out) % alignment)
        data = bytearray(off)
        for o, b in blobs:
            data[o:o + len(b)] = b
        out += bytes(data)
    return out


def sub(data, old, new):
    """Replaces the single occurrence of `old` (asserting there is exactly one)."""
    assert data.count(old) == 1, (old, data.count(old))
    return data.replace(old, new)


def main():
    os.makedirs(OUT, exist_ok=True)
    arch = kv("general.architecture", STR, "llama")
    all_types = [
        arch,
        kv("t.u8", U8, 255), kv("t.i8", I8, -128), kv("t.u16", U16, 65535), kv("t.i16", I16, -32768),
        kv("t.u32", U32, 0xFFFFFFFF), kv("t.i32", I32, -2**31), kv("t.f32", F32, 1.5),
        kv("t.bool", BOOL, 1), kv("t.str", STR, b"h\xc3\xa9llo \xff"), kv("t.u64", U64, 2**64 - 1),
        kv("t.i64", I64, -2**63), kv("t.f64", F64, 0.1),
        kv("t.strs", ARR, (STR, ["a", "", "ccc"])), kv("t.i32s", ARR, (I32, [1, -2, 3])),
        kv("t.empty", ARR, (F32, [])), kv("t.nested", ARR, (ARR, [(U8, [1, 2]), (BOOL, [0])])),
    ]
    tensors = [("tok_embd.weight", [8, 3], F32_T), ("norm.weight", [5], F16_T), ("b", [3, 1, 2], BF16_T)]
    seeds = {
        "valid_minimal.gguf": gguf([]),
        "valid_all_types.gguf": gguf(all_types),
        "valid_tensors.gguf": gguf([arch, kv("llama.block_count", U32, 1)], tensors),
        "valid_align64_quant.gguf": gguf([arch, kv("general.alignment", U32, 64)],
                                         [("q8", [32, 2], Q8_0_T), ("q4", [64], Q4_0_T), ("qk", [256], Q4_K_T)],
                                         alignment=64),
        "valid_align1.gguf": gguf([kv("general.alignment", U32, 1)], [("x", [3], F16_T), ("y", [1], F32_T)],
                                  alignment=1),
        "valid_v2.gguf": gguf([arch], tensors[:1], version=2),
        "valid_vocab_like.gguf": gguf([
            kv("tokenizer.ggml.model", STR, "gpt2"),
            kv("tokenizer.ggml.tokens", ARR, (STR, ["<s>", "</s>", "a", "b", "ab", "\u0120the"])),
            kv("tokenizer.ggml.token_type", ARR, (I32, [3, 3, 1, 1, 1, 1])),
            kv("tokenizer.ggml.merges", ARR, (STR, ["a b", "\u0120 t"])),
            kv("tokenizer.ggml.bos_token_id", U32, 0),
            kv("tokenizer.chat_template", STR, "{% for m in messages %}{{ m.content }}{% endfor %}"),
        ]),
    }
    good = seeds["valid_tensors.gguf"]
    seeds.update({
        "invalid_magic.gguf": b"GGML" + good[4:],
        "invalid_version1.gguf": good[:4] + struct.pack("<I", 1) + good[8:],
        "invalid_bigendian.gguf": good[:4] + struct.pack(">I", 3) + good[8:],
        "invalid_truncated_header.gguf": good[:40],
        "invalid_truncated_data.gguf": good[:-40],
        "invalid_dup_key.gguf": gguf([arch, arch]),
        "invalid_dup_tensor.gguf": gguf([], [("w", [8], F32_T), ("w", [8], F32_T)]),
        "invalid_misaligned.gguf": sub(gguf([arch], tensors), struct.pack("<IQ", F16_T, 96), struct.pack("<IQ", F16_T, 97)),
        "invalid_ndims5.gguf": gguf([], [("w", [1, 1, 1, 1, 8], F32_T)]),
        "invalid_dim_negative.gguf": sub(gguf([], [("w", [8, 1], F32_T)]), struct.pack("<qq", 8, 1), struct.pack("<qq", 8, -1)),
        "invalid_dtype.gguf": sub(gguf([], [("w", [8], F32_T)]), struct.pack("<qIQ", 8, F32_T, 0), struct.pack("<qIQ", 8, 99, 0)),
        "invalid_block_multiple.gguf": sub(gguf([], [("w", [64], Q8_0_T)]), struct.pack("<Iq", 1, 64), struct.pack("<Iq", 1, 33)),
        "invalid_alignment.gguf": gguf([kv("general.alignment", U32, 48)]),
        "invalid_alignment_type.gguf": gguf([kv("general.alignment", U64, 32)]),
        "invalid_array_len.gguf": sub(gguf([kv("a", ARR, (U32, [1]))]), struct.pack("<IQ", U32, 1), struct.pack("<IQ", U32, 2**40)),
        "invalid_value_type.gguf": sub(gguf([kv("a", U32, 1)]), s("a") + struct.pack("<I", U32), s("a") + struct.pack("<I", 13)),
        "invalid_nested_deep.gguf": b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + s("deep") + struct.pack("<I", ARR)
                                    + struct.pack("<IQ", ARR, 1) * 20 + struct.pack("<IQ", U8, 0),
        "invalid_kv_count.gguf": b"GGUF" + struct.pack("<IQQ", 3, 0, 2**62) + kv("a", U8, 1),
        "invalid_tensor_oob.gguf": sub(good, struct.pack("<IQ", F16_T, 96), struct.pack("<IQ", F16_T, 2**20)),
    })
    for name in os.listdir(OUT):
        if name.endswith(".gguf"):
            os.remove(os.path.join(OUT, name))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
