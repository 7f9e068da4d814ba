// The pretraining loop: deterministic batches, AdamW + warm-up/cosine schedule + clipping,
// checkpoints with exact resume, progress bar, loss CSV and SVG curve, GGUF export at the end.
#include "modu/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "logplot.h"
#include "modu/gguf/gguf.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu::train {

namespace fs = std::filesystem;

double lr_at(const TrainConfig& c, int64_t step) {
  if (step < c.warmup) return c.lr * (double)(step + 1) / (double)c.warmup;
  const double span = (double)std::max<int64_t>(1, c.steps - c.warmup);
  const double progress = std::min(1.0, (double)(step - c.warmup) / span);
  const double lo = c.lr * c.min_lr_ratio;
  return lo + (c.lr - lo) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

void sample_batch(const std::vector<int32_t>& data, uint64_t seed, int64_t step, int64_t batch, int64_t len,
                  std::vector<int32_t>& tokens, std::vector<int32_t>& targets, const std::vector<uint8_t>* predict) {
  tokens.resize((size_t)(batch * len));
  targets.resize(tokens.size());
  const uint64_t span = data.size() > (size_t)len + 1 ? data.size() - (size_t)len - 1 : 1;
  for (int64_t b = 0; b < batch; ++b) {
    const uint64_t h = splitmix64(splitmix64(seed) ^ splitmix64((uint64_t)step * 1000003ull + (uint64_t)b));
    const size_t off = (size_t)(h % span);
    for (int64_t i = 0; i < len; ++i) {
      const size_t at = off + (size_t)i;
      tokens[b * len + i] = at < data.size() ? data[at] : 0;
      targets[b * len + i] = at + 1 < data.size() && (!predict || (*predict)[at + 1]) ? data[at + 1] : -1;
    }
  }
}

StepStats train_step(const TrainConfig& c, const Layout& L, TrainState& st, const std::vector<int32_t>& data,
                     ThreadPool& pool) {
  const ModelDims& d = c.model;
  std::vector<int32_t> tokens, targets;
  sample_batch(data, c.seed, st.step, c.batch, d.n_ctx, tokens, targets);
  std::vector<float> g(L.total);
  StepStats s;
  s.loss = forward_backward<float>(d, L, st.params.data(), g.data(), tokens.data(), targets.data(), c.batch, d.n_ctx,
                                   pool);
  double ss = 0;
  for (float x : g) ss += (double)x * (double)x;  // serial: the same sum for any thread count
  s.grad_norm = std::sqrt(ss);
  const float clip = (c.grad_clip > 0 && s.grad_norm > c.grad_clip) ? (float)(c.grad_clip / s.grad_norm) : 1.0f;
  s.lr = lr_at(c, st.step);
  const int64_t t = st.step + 1;
  const float b1 = (float)c.beta1, b2 = (float)c.beta2;
  const float bc1 = (float)(1.0 - std::pow(c.beta1, (double)t)), bc2 = (float)(1.0 - std::pow(c.beta2, (double)t));
  const float lr = (float)s.lr, eps = (float)c.adam_eps;
  for (const ParamTensor& pt : L.tensors) {
    const float wd = pt.decay ? (float)c.weight_decay : 0.0f;
    float* p = st.params.data() + pt.offset;
    float* m = st.m.data() + pt.offset;
    float* v = st.v.data() + pt.offset;
    const float* gr = g.data() + pt.offset;
    pool.parallel_for((int64_t)pt.size, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float gi = gr[i] * clip;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        const float mh = m[i] / bc1, vh = v[i] / bc2;
        p[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
      }
    }, 1024);
  }
  st.step += 1;
  return s;
}

namespace {

constexpr char kMagic[8] = {'M', 'O', 'D', 'U', 'C', 'K', 'P', '1'};

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const uint8_t* p = (const uint8_t*)data;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

struct DimsRecord {
  int64_t v[8];
  float theta, eps;
};
DimsRecord record(const ModelDims& d) {
  return {{d.n_vocab, d.n_embd, d.n_layer, d.n_head, d.n_head_kv, d.head_dim, d.n_ff, d.n_ctx}, d.rope_theta, d.rms_eps};
}

}  // namespace

Status save_checkpoint(const std::string& path, const ModelDims& d, const TrainState& s) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return io_error("cannot write checkpoint " + tmp);
  uint64_t h = 0xCBF29CE484222325ull;
  bool ok = true;
  auto put = [&](const void* p, size_t n) {
    ok = ok && std::fwrite(p, 1, n, f) == n;
    h = fnv1a(p, n, h);
  };
  const DimsRecord r = record(d);
  const uint64_t n = s.params.size();
  put(kMagic, 8);
  put(&r, sizeof r);
  put(&s.step, 8);
  put(&s.elapsed_s, 8);
  put(&n, 8);
  put(s.params.data(), n * 4);
  put(s.m.data(), n * 4);
  put(s.v.data(), n * 4);
  ok = ok && std::fwrite(&h, 1, 8, f) == 8;
  ok = ok && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return io_error("writing checkpoint " + tmp + " failed (disk full?)");
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return io_error("renaming " + tmp + " to " + path + ": " + ec.message());
  return Status::Ok();
}

Result<TrainState> load_checkpoint(const std::string& path, const ModelDims& d, size_t n_params) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return not_found("no checkpoint at " + path);
  TrainState s;
  uint64_t h = 0xCBF29CE484222325ull;
  bool ok = true;
  auto get = [&](void* p, size_t n) {
    ok = ok && std::fread(p, 1, n, f) == n;
    if (ok) h = fnv1a(p, n, h);
  };
  char magic[8];
  DimsRecord r;
  uint64_t n = 0;
  get(magic, 8);
  get(&r, sizeof r);
  get(&s.step, 8);
  get(&s.elapsed_s, 8);
  get(&n, 8);
  const DimsRecord want = record(d);
  if (ok && (std::memcmp(magic, kMagic, 8) != 0)) ok = false;
  if (ok && std::memcmp(&r, &want, sizeof r) != 0) {
    std::fclose(f);
    return invalid_argument("checkpoint " + path + " was trained with other model dimensions than the config");
  }
  if (ok && n == (n_params ? n_params : make_layout(d).total)) {
    s.params.resize(n); s.m.resize(n); s.v.resize(n);
    get(s.params.data(), n * 4);
    get(s.m.data(), n * 4);
    get(s.v.data(), n * 4);
    uint64_t stored = 0;
    ok = ok && std::fread(&stored, 1, 8, f) == 8 && stored == h;
  } else {
    ok = false;
  }
  std::fclose(f);
  if (!ok) return corrupt("checkpoint " + path + " is truncated or corrupt");
  return s;
}

Result<std::vector<int32_t>> tokenize_corpus(const std::string& tokenizer_gguf, const std::string& text_path) {
  MODU_ASSIGN_OR_RETURN(GgufFile tf, GgufFile::open(tokenizer_gguf));
  MODU_ASSIGN_OR_RETURN(auto tok, Tokenizer::from_gguf(tf));
  std::ifstream in(text_path, std::ios::binary);
  if (!in) return not_found("cannot read corpus " + text_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<int32_t> out = encode_documents(*tok, text);
  if (out.size() < 16) return invalid_argument("corpus " + text_path + " is too small to train on");
  return out;
}

Status export_model(const TrainConfig& c, const std::vector<float>& params, const std::string& path) {
  MODU_ASSIGN_OR_RETURN(GgufFile tf, GgufFile::open(c.tokenizer));
  GgufWriter w;
  const Layout L = make_layout(c.model);
  MODU_RETURN_IF_ERROR(add_model_to_gguf(w, c.model, L, params.data(), c.name));
  for (const auto& [k, v] : tf.metadata())
    if (k.rfind("tokenizer.", 0) == 0) w.set(k, v);
  return w.write(path);
}

namespace {

Result<std::vector<int32_t>> load_or_tokenize(const TrainConfig& c) {
  const std::string cache = c.out_dir + "/train.tokens";
  std::vector<int32_t> data;
  if (std::FILE* f = std::fopen(cache.c_str(), "rb")) {
    std::fseek(f, 0, SEEK_END);
    const long n = std::ftell(f) / 4;
    std::fseek(f, 0, SEEK_SET);
    data.resize((size_t)n);
    const bool ok = std::fread(data.data(), 4, (size_t)n, f) == (size_t)n;
    std::fclose(f);
    if (ok && n > 0) return data;
  }
  MODU_ASSIGN_OR_RETURN(data, tokenize_corpus(c.tokenizer, c.train_text));
  const std::string tmp = cache + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return io_error("cannot write " + tmp);
  const bool ok = std::fwrite(data.data(), 4, data.size(), f) == data.size();
  if (std::fclose(f) != 0 || !ok) return io_error("writing " + tmp + " failed");
  std::error_code ec;
  fs::rename(tmp, cache, ec);
  if (ec) return io_error("renaming " + tmp + ": " + ec.message());
  return data;
}

std::string fmt_time(double s) {
  char b[32];
  const long t = (long)s;
  std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return b;
}

}  // namespace

Status run_training(TrainConfig c, const RunOptions& opt) {
  std::error_code ec;
  fs::create_directories(c.out_dir, ec);
  if (ec) return io_error("cannot create " + c.out_dir + ": " + ec.message());
  {
    MODU_ASSIGN_OR_RETURN(GgufFile tf, GgufFile::open(c.tokenizer));
    MODU_ASSIGN_OR_RETURN(auto tok, Tokenizer::from_gguf(tf));
    if (c.model.n_vocab == 0) c.model.n_vocab = tok->n_vocab();
    if (c.model.n_vocab != tok->n_vocab())
      return invalid_argument("config n_vocab " + std::to_string(c.model.n_vocab) + " != tokenizer's " +
                              std::to_string(tok->n_vocab()));
  }
  MODU_RETURN_IF_ERROR(c.model.validate());
  const Layout L = make_layout(c.model);
  const std::string ckpt = c.out_dir + "/checkpoint.bin", csv = c.out_dir + "/loss.csv";
  if (!opt.export_only.empty()) {
    MODU_ASSIGN_OR_RETURN(TrainState st, load_checkpoint(ckpt, c.model));
    MODU_RETURN_IF_ERROR(export_model(c, st.params, opt.export_only));
    std::fprintf(stderr, "modu train: exported step %lld to %s\n", (long long)st.step, opt.export_only.c_str());
    return Status::Ok();
  }
  MODU_ASSIGN_OR_RETURN(std::vector<int32_t> data, load_or_tokenize(c));
  TrainState st;
  if (opt.resume && fs::exists(ckpt)) {
    MODU_ASSIGN_OR_RETURN(st, load_checkpoint(ckpt, c.model));
    std::fprintf(stderr, "modu train: resuming at step %lld from %s\n", (long long)st.step, ckpt.c_str());
  } else {
    st.params = init_params(c.model, L, c.seed);
    st.m.assign(L.total, 0.0f);
    st.v.assign(L.total, 0.0f);
  }
  LossLog log;
  log.load(csv, st.step);  // drops rows after the checkpoint (steps that will be redone)
  MODU_RETURN_IF_ERROR(log.save(csv));
  {
    std::ofstream cf(c.out_dir + "/config.json");
    cf << train_config_json(c);
  }
  ThreadPool pool(opt.threads);
  const int64_t end = opt.stop_after >= 0 ? std::min(opt.stop_after, c.steps) : c.steps;
  const int64_t tok_per_step = c.batch * c.model.n_ctx;
  const bool tty = isatty(2);
  std::fprintf(stderr, "modu train: %s, %.2fM parameters, %zu corpus tokens, %lld steps x %lld tokens, %d threads\n",
               c.name.c_str(), (double)L.total / 1e6, data.size(), (long long)c.steps, (long long)tok_per_step,
               pool.size());
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first = st.step;
  while (st.step < end) {
    const auto t0 = std::chrono::steady_clock::now();
    const StepStats s = train_step(c, L, st, data, pool);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.elapsed_s += dt;
    if (!std::isfinite(s.loss)) return internal_error("loss is not finite at step " + std::to_string(st.step));
    log.add({st.step, s.loss, s.lr, s.grad_norm, tok_per_step / dt, st.elapsed_s});
    const double run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    const double per_step = run_s / (double)(st.step - first);
    const double eta = per_step * (double)(c.steps - st.step);
    if (opt.progress && (tty || st.step % c.log_every == 0 || st.step == end)) {
      const int width = 24, filled = (int)(width * st.step / std::max<int64_t>(1, c.steps));
      std::string bar(filled, '#');
      bar.resize(width, '.');
      std::fprintf(stderr, "%s[%s] step %lld/%lld  loss %.4f  lr %.2e  |g| %.2f  %.0f tok/s  ETA %s%s",
                   tty ? "\r" : "", bar.c_str(), (long long)st.step, (long long)c.steps, s.loss, s.lr, s.grad_norm,
                   tok_per_step / per_step, fmt_time(eta).c_str(), tty ? "  " : "\n");
    }
    if (st.step % c.checkpoint_every == 0 || st.step == end) {
      MODU_RETURN_IF_ERROR(save_checkpoint(ckpt, c.model, st));
      MODU_RETURN_IF_ERROR(log.save(csv));
      MODU_RETURN_IF_ERROR(write_loss_svg(log, c.out_dir + "/loss.svg", c.name));
    }
  }
  if (tty && opt.progress) std::fprintf(stderr, "\n");
  if (st.step >= c.steps) {
    const std::string out = c.out_dir + "/model.gguf";
    MODU_RETURN_IF_ERROR(export_model(c, st.params, out));
    std::fprintf(stderr, "modu train: done in %s of training; wrote %s\n", fmt_time(st.elapsed_s).c_str(), out.c_str());
  }
  return Status::Ok();
}

}  // namespace modu::train
