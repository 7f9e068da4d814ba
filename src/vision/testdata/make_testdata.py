#!/usr/bin/python3
# Makes the vision preprocessing test data with Pillow (Debian python3-pil) and numpy, independently
# of modu: source images in every supported format, Pillow's resize results for each filter, EXIF
# orientations as Pillow's ImageOps.exif_transpose applies them, and the Hugging Face processors'
# float pipelines written out with numpy. Run from this folder: /usr/bin/python3 make_testdata.py
import io, json, struct
import numpy as np
from PIL import Image, ImageOps

rng = np.random.default_rng(20261207)

def noise(w, h):
    # Random pixels plus smooth gradients, so both sharp edges and ramps are exercised.
    a = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint16)
    yy, xx = np.mgrid[0:h, 0:w]
    a[..., 0] = (a[..., 0] + xx * 255 // max(w - 1, 1)) // 2
    a[..., 1] = (a[..., 1] + yy * 255 // max(h - 1, 1)) // 2
    return Image.fromarray(a.astype(np.uint8), "RGB")

src = noise(37, 23)
src.save("src_37x23.png")
tall = noise(19, 41)
tall.save("src_19x41.png")

cases = []
for name, im in (("src_37x23.png", src), ("src_19x41.png", tall)):
    for flt, fname in ((Image.BILINEAR, "bilinear"), (Image.BICUBIC, "bicubic"), (Image.LANCZOS, "lanczos")):
        for (w, h) in ((16, 16), (64, 48), (37, 11), (5, 80), (97, 61)):
            out = im.resize((w, h), flt)
            fn = "resize_%s_%s_%dx%d.png" % (name[4:-4], fname, w, h)
            out.save(fn)
            cases.append({"src": name, "filter": fname, "w": w, "h": h, "expect": fn})

# Orientation: an asymmetric 5x3 image stored with each EXIF orientation, in PNG (eXIf), WebP
# (lossless, EXIF chunk) and JPEG (APP1, lossy: compared with a tolerance).
base = noise(5, 3)
base.save("orient_base.png")
orient = []
for o in range(1, 9):
    ex = Image.Exif()
    ex[0x0112] = o
    for fmt, ext, kw in (("PNG", "png", {}), ("WEBP", "webp", {"lossless": True}), ("JPEG", "jpg", {"quality": 100, "subsampling": 0})):
        fn = "orient_%d.%s" % (o, ext)
        base.save(fn, fmt, exif=ex.tobytes(), **kw)
        upright = ImageOps.exif_transpose(Image.open(fn).convert("RGB") if fmt != "JPEG" else Image.open(fn))
        ufn = "orient_%d_%s_upright.png" % (o, ext)
        upright.convert("RGB").save(ufn)
        orient.append({"file": fn, "upright": ufn, "exact": fmt != "JPEG"})

# Other containers: BMP, GIF (two frames: the first is the image), RGBA PNG (alpha dropped).
src.save("src_37x23.bmp")
pal = src.quantize(64)
frames = [pal, noise(37, 23).quantize(64)]
frames[0].save("src_37x23.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
Image.open("src_37x23.gif").convert("RGB").save("src_37x23_gif_frame0.png")
rgba = src.convert("RGBA")
rgba.putalpha(Image.fromarray(rng.integers(0, 256, size=(23, 37), dtype=np.uint8), "L"))
rgba.save("src_37x23_rgba.png")
src.save("src_37x23.webp", "WEBP", lossless=True)

# The HF processors' arithmetic, written out with numpy: rescale in float64 then float32, then
# (x - mean) / std in float32 (transformers.image_transforms.rescale / normalize).
def hf_normalize(im, mean, std, scale=0.00392156862745098):
    a = np.asarray(im, dtype=np.uint8).astype(np.float64) * scale
    a = a.astype(np.float32)
    a = (a - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return a.transpose(2, 0, 1).astype("<f4")  # [3, h, w]

clip_mean, clip_std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
pipes = []
# CLIPImageProcessor (LLaVA 1.5): shortest edge 32 (int() for the long side), centre crop 32.
w, h = tall.size
short, long_ = (w, h) if w <= h else (h, w)
new_long = int(32 * long_ / short)
rw, rh = (32, new_long) if w <= h else (new_long, 32)
r = tall.resize((rw, rh), Image.BICUBIC)
top, left = (rh - 32) // 2, (rw - 32) // 2
crop = r.crop((left, top, left + 32, top + 32))
hf_normalize(crop, clip_mean, clip_std).tofile("pipe_clip_19x41.f32")
pipes.append({"name": "clip", "src": "src_19x41.png", "size": 32, "out": "pipe_clip_19x41.f32", "w": 32, "h": 32})
# SiglipImageProcessor / Gemma3ImageProcessor: square resize (bilinear for Gemma 3), mean = std = 0.5.
hf_normalize(src.resize((28, 28), Image.BILINEAR), [0.5] * 3, [0.5] * 3).tofile("pipe_gemma3_37x23.f32")
pipes.append({"name": "gemma3", "src": "src_37x23.png", "size": 28, "out": "pipe_gemma3_37x23.f32", "w": 28, "h": 28})

# Qwen2-VL smart_resize on a table of sizes (the formula from the processor, in Python).
import math
def smart_resize(height, width, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280):
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar
smart = []
for (hh, ww) in ((23, 37), (42, 70), (70, 42), (1080, 1920), (4000, 3000), (14, 14), (500, 14), (3024, 4032), (98, 126)):
    smart.append({"h": hh, "w": ww, "out": list(smart_resize(hh, ww))})


# Multi-crop processors (transformers' LlavaNextImageProcessor / LlavaOnevisionImageProcessor and
# Idefics3ImageProcessor), written out from their source: every crop as 8-bit RGB, concatenated.
def select_best_resolution(original_size, possible_resolutions):
    original_height, original_width = original_size
    best_fit, max_effective, min_wasted = None, 0, float("inf")
    for height, width in possible_resolutions:
        scale = min(width / original_width, height / original_height)
        dw, dh = int(original_width * scale), int(original_height * scale)
        effective = min(dw * dh, original_width * original_height)
        wasted = width * height - effective
        if effective > max_effective or (effective == max_effective and wasted < min_wasted):
            max_effective, min_wasted, best_fit = effective, wasted, (height, width)
    return best_fit

next_pins = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
ov_pins = [[384 * a, 384 * b] for a in range(1, 7) for b in range(1, 7)]
best = []
for (hh, ww) in ((23, 37), (480, 640), (640, 480), (1080, 1920), (100, 1000), (336, 336), (2000, 2000), (700, 300)):
    best.append({"h": hh, "w": ww, "pins": "llava_next", "out": list(select_best_resolution((hh, ww), next_pins))})
    best.append({"h": hh, "w": ww, "pins": "onevision", "out": list(select_best_resolution((hh, ww), ov_pins))})

def anyres(im, pins, tile):
    w, h = im.size
    th, tw = select_best_resolution((h, w), pins)
    sw, sh = tw / w, th / h
    if sw < sh:
        nw, nh = tw, min(math.ceil(h * sw), th)
    else:
        nh, nw = th, min(math.ceil(w * sh), tw)
    r = np.asarray(im.resize((nw, nh), Image.BICUBIC))
    py, ry = divmod(th - nh, 2)
    px, rx = divmod(tw - nw, 2)
    canvas = np.pad(r, ((py, py + ry), (px, px + rx), (0, 0)))
    crops = [np.asarray(im.resize((tile, tile), Image.BICUBIC))]
    for y in range(0, th, tile):
        for x in range(0, tw, tile):
            crops.append(canvas[y:y + tile, x:x + tile])
    return crops, th // tile, tw // tile

def idefics3(im, longest, tile):
    w, h = im.size
    aspect = w / h
    if w >= h:
        w = longest; h = int(w / aspect); h += h % 2
    else:
        h = longest; w = int(h * aspect); w += w % 2
    im = im.resize((w, h), Image.LANCZOS)
    aspect = w / h
    if w >= h:
        w = math.ceil(w / tile) * tile; h = int(w / aspect); h = math.ceil(h / tile) * tile
    else:
        h = math.ceil(h / tile) * tile; w = int(h * aspect); w = math.ceil(w / tile) * tile
    im = im.resize((w, h), Image.LANCZOS)
    a, crops, rows, cols = np.asarray(im), [], 0, 0
    if h > tile or w > tile:
        rows, cols = math.ceil(h / tile), math.ceil(w / tile)
        oh, ow = math.ceil(h / rows), math.ceil(w / cols)
        for r in range(rows):
            for c in range(cols):
                crops.append(a[r * oh:min(r * oh + oh, h), c * ow:min(c * ow + ow, w)])
        im = im.resize((tile, tile), Image.LANCZOS)
    crops.append(np.asarray(im))
    return crops, rows, cols

tiles = []
small_pins = [[16, 32], [32, 16], [32, 32], [48, 16], [16, 48]]
for name, im in (("src_37x23.png", src), ("src_19x41.png", tall)):
    crops, rows, cols = anyres(im, small_pins, 16)
    fn = "anyres_%s.rgb" % name[4:-4]
    np.concatenate([c.reshape(-1) for c in crops]).astype(np.uint8).tofile(fn)
    tiles.append({"kind": "anyres", "src": name, "tile": 16, "pins": "small", "rows": rows, "cols": cols, "out": fn})
    for longest in (40, 16):
        crops, rows, cols = idefics3(im, longest, 16)
        fn = "idefics3_%s_%d.rgb" % (name[4:-4], longest)
        np.concatenate([c.reshape(-1) for c in crops]).astype(np.uint8).tofile(fn)
        tiles.append({"kind": "idefics3", "src": name, "tile": 16, "longest": longest, "rows": rows, "cols": cols, "out": fn})

json.dump({"resize": cases, "orient": orient, "pipes": pipes, "smart_resize": smart, "best_resolution": best,
           "pinpoints": {"llava_next": next_pins, "onevision": ov_pins, "small": small_pins},
           "tiles": tiles}, open("cases.json", "w"), indent=1)
