// `modu bench`: prefill and decode throughput like llama-bench (warm-up, repetitions, mean and
// standard deviation), with weight-streaming bandwidth and memory use.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "common.h"
#include "modu/core/huge_buffer.h"
#include "modu/kernels/dispatch.h"
#include "modu/vision/vision_model.h"

namespace modu::cli {

namespace {

struct BenchArgs {
  std::string model;
  std::vector<std::string> lora;
  int n_prompt = 512;
  int n_gen = 128;
  int depth = 0;  // positions already in the cache when each test starts
  int threads = 0;
  int reps = 3;
  bool json = false;
  bool roofline = false;
  std::string mmproj;  // --mmproj: image encoding instead of (or before) the text tests
  std::string image;   // --image: also a real image end to end (preprocessing, tiles, encoder runs)
  std::vector<int> verify;  // --verify: speculative verification passes of these many tokens
  bool beyond_ctx = false;  // allow -d past the training context (speed at depth on short-context models)
};

// Machine limits for --roofline, measured with the selected ISA level's instructions.
struct Roofline {
  double read_gbs = 0;      // multi-thread streaming read of a 1 GiB buffer
  double fma_gops = 0;      // f32 FMA (2 ops per lane)
  double dot_gops = 0;      // int8 dot (2 ops per int8 multiply-add)
};

// Streaming read of a 1 GiB buffer by all threads (the --roofline bandwidth). Allocated once, so
// that it can also be read right before and after each decode repetition: the machine's bandwidth
// moves from minute to minute when it is shared, and a decode rate compares fairly only with a
// read measured under the same conditions.
class ReadProbe {
 public:
  static constexpr size_t kBytes = size_t(1) << 30;
  explicit ReadProbe(ThreadPool& pool) : pool_(pool) {
    // Same kind of memory as the repacked weights (2 MiB pages where granted): the fastest read
    // the machine offers is the bar.
    Result<HugeBuffer> mem = HugeBuffer::allocate(kBytes);
    if (!mem.ok()) return;
    mem_ = std::move(*mem);
    uint8_t* buf = mem_.data();
    pool_.parallel_for((int64_t)(kBytes >> 20), [&](int64_t b, int64_t e) {  // first touch by the reading thread
      std::memset(buf + (b << 20), 1, (size_t)(e - b) << 20);
    });
  }
  bool ok() const { return mem_.data() != nullptr; }
  // One pass over the buffer; GB/s (0 when the buffer could not be allocated).
  double once() {
    if (!ok()) return 0;
    const KernelTable& kt = kernels();
    uint8_t* buf = mem_.data();
    std::atomic<double> sink{0};
    const auto t0 = std::chrono::steady_clock::now();
    pool_.parallel_for((int64_t)(kBytes >> 20), [&](int64_t b, int64_t e) {
      const double v = kt.probe_read(buf + (b << 20), (size_t)(e - b) << 20);
      double cur = sink.load();
      while (!sink.compare_exchange_weak(cur, cur + v)) {}
    });
    return kBytes / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9;
  }

 private:
  ThreadPool& pool_;
  HugeBuffer mem_;
};

Roofline measure_roofline(ThreadPool& pool, ReadProbe& probe) {
  using clock = std::chrono::steady_clock;
  const KernelTable& kt = kernels();
  Roofline r;
  for (int rep = 0; rep < 4; ++rep) r.read_gbs = std::max(r.read_gbs, probe.once());
  auto peak = [&](double (*probe)(int64_t)) {
    double best = 0;
    const int64_t iters = 2'000'000;
    for (int rep = 0; rep < 3; ++rep) {
      std::atomic<double> ops{0};
      auto t0 = clock::now();
      pool.run([&](int, int) {
        const double o = probe(iters);
        double cur = ops.load();
        while (!ops.compare_exchange_weak(cur, cur + o)) {}
      });
      best = std::max(best, ops.load() / std::chrono::duration<double>(clock::now() - t0).count() / 1e9);
    }
    return best;
  };
  r.fma_gops = peak(kt.probe_fma);
  r.dot_gops = peak(kt.probe_dot);
  return r;
}

struct Stats {
  double mean = 0, stddev = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= v.size();
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / (v.size() - 1));
  }
  return s;
}

// --mmproj: encode a synthetic image of the projector's input size (preprocessing, encoder and
// projector), reporting seconds per image, image tokens/s, GOP/s (multiply-adds of every matmul
// and of attention, 2 ops each) and weight GB/s (weights read once per image).
int bench_vision(const BenchArgs& a) {
  using clock = std::chrono::steady_clock;
  auto vm = load_projector(a.mmproj);
  if (!vm.ok()) return fail(vm.status());
  const vision::VisionModel& m = **vm;
  const vision::VisionConfig& c = m.config();
  ThreadPool pool(a.threads);
  vision::Image img;
  img.width = img.height = (int)c.image_size;
  img.rgb.resize((size_t)img.width * img.height * 3);
  std::mt19937 rng(7);
  for (auto& b : img.rgb) b = (uint8_t)(rng() & 255);
  const auto p0 = clock::now();
  auto px = m.preprocess(img);
  if (!px.ok()) return fail(px.status());
  const double pre_s = std::chrono::duration<double>(clock::now() - p0).count();
  const int64_t side = c.patches_per_side(), n_tok = m.n_tokens(img.width, img.height);
  const double n = (double)(side * side + (c.class_token ? 1 : 0)), d = (double)c.n_embd;
  double ops = 2.0 * side * side * 3.0 * c.patch_size * c.patch_size * d;                  // patch embedding
  ops += c.n_layer * (2.0 * n * (4.0 * d * d + 2.0 * d * c.n_ff) + 4.0 * n * n * d);     // blocks + attention
  for (const Weight& w : m.weights().proj)
    if (w.rows > 1) ops += 2.0 * (double)n_tok * w.rows * w.cols;                        // projector (as if on n_tok rows)
  std::vector<float> out;
  if (Status st = m.encode(*px, pool, out); !st.ok()) return fail(st);  // warm-up
  std::vector<double> secs;
  for (int r = 0; r < a.reps; ++r) {
    const auto t0 = clock::now();
    if (Status st = m.encode(*px, pool, out); !st.ok()) return fail(st);
    secs.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  const Stats s = stats(secs);
  const double gops = ops / s.mean / 1e9, gbs = (double)m.weight_bytes() / s.mean / 1e9;
  // --image: the file as run/chat/serve take it (its own size; tiled families run the encoder per
  // tile), decoding excluded.
  Stats file_s;
  vision::ImageEmbedding file_e;
  vision::Image file_img;
  if (!a.image.empty()) {
    auto im = vision::load_image_file(a.image);
    if (!im.ok()) return fail(im.status());
    file_img = std::move(im).value();
    std::vector<double> fs;
    for (int r = 0; r < a.reps; ++r) {
      auto e = vision::embed_image(m, file_img, pool);
      if (!e.ok()) return fail(e.status());
      fs.push_back(e->encode_seconds);
      file_e = std::move(e).value();
    }
    file_s = stats(fs);
  }
  Roofline roof;
  if (a.roofline) {
    ReadProbe probe(pool);
    roof = measure_roofline(pool, probe);
  }
  std::map<std::string, int64_t> by_type;
  for (const auto& t : m.gguf().tensors()) by_type[dtype_name(t.dtype)] += t.n_elements();
  nlohmann::ordered_json j;
  j["mmproj"] = a.mmproj;
  j["projector"] = c.projector;
  j["image_size"] = c.image_size;
  j["encoder"] = {{"width", c.n_embd}, {"layers", c.n_layer}, {"heads", c.n_head}, {"feed_forward_length", c.n_ff}};
  j["dtypes"] = by_type;
  j["isa"] = isa_name(kernels().isa);
  j["threads"] = pool.size();
  j["repetitions"] = a.reps;
  j["preprocess_seconds"] = pre_s;
  j["encode_seconds"] = s.mean;
  j["encode_seconds_stddev"] = s.stddev;
  j["image_tokens"] = n_tok;
  j["image_tokens_per_s"] = n_tok / s.mean;
  j["gop_per_image"] = ops / 1e9;
  j["gop_per_s"] = gops;
  j["weight_gb_per_s"] = gbs;
  if (a.roofline)
    j["roofline"] = {{"read_gb_per_s", roof.read_gbs}, {"fma_f32_gop_per_s", roof.fma_gops}, {"int8_dot_gop_per_s", roof.dot_gops}};
  if (!a.image.empty())
    j["image"] = {{"file", a.image}, {"width", file_img.width}, {"height", file_img.height},
                  {"encoder_runs", file_e.n_encoder_runs}, {"tokens", file_e.n_tokens}, {"seconds", file_s.mean},
                  {"seconds_stddev", file_s.stddev}, {"tokens_per_s", file_e.n_tokens / file_s.mean}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("mmproj: %s (%s, %lld x %lld px, width %lld, %lld layers, %.0f M params), isa %s, %d threads\n",
              a.mmproj.c_str(), c.projector.c_str(), (long long)c.image_size, (long long)c.image_size, (long long)c.n_embd,
              (long long)c.n_layer, m.n_params() / 1e6, isa_name(kernels().isa), pool.size());
  std::printf("| test        | s / image |  stddev | image tok/s |  GOP/s |  GB/s |\n"
              "|-------------|-----------|---------|-------------|--------|-------|\n");
  std::printf("| encode %-4lld | %9.3f | %7.3f | %11.1f | %6.1f | %5.2f |\n", (long long)c.image_size, s.mean, s.stddev,
              n_tok / s.mean, gops, gbs);
  if (!a.image.empty())
    std::printf("| %-11s | %9.3f | %7.3f | %11.1f |        |       |  (%d x %d px, %d encoder runs, %lld tokens)\n",
                "image file", file_s.mean, file_s.stddev, file_e.n_tokens / file_s.mean, file_img.width, file_img.height,
                file_e.n_encoder_runs, (long long)file_e.n_tokens);
  std::printf("preprocessing (decode not included): %.1f ms; %.1f GOP per image\n", 1e3 * pre_s, ops / 1e9);
  if (a.roofline)
    std::printf("roofline: f32 FMA %.0f GOP/s, int8 dot %.0f GOP/s, read %.1f GB/s -> encode at %.1f%% of the f32 FMA peak, "
                "%.1f%% of the int8 peak\n", roof.fma_gops, roof.dot_gops, roof.read_gbs, 100 * gops / roof.fma_gops,
                100 * gops / roof.dot_gops);
  return 0;
}

int bench(const BenchArgs& a) {
  using clock = std::chrono::steady_clock;
  if (!a.image.empty() && a.mmproj.empty()) return fail(invalid_argument("bench --image needs --mmproj PROJECTOR"));
  if (!a.mmproj.empty()) {  // images first; with -m the text figures follow
    if (int rc = bench_vision(a); rc != 0 || a.model.empty()) return rc;
    std::printf("\n");
  }
  if (a.model.empty()) return fail(invalid_argument("bench needs -m MODEL (text) or --mmproj PROJECTOR (images)"));
  auto lm = load_model(a.model, false);
  if (!lm.ok()) return fail(lm.status());
  if (Status st = attach_loras(*lm->model, a.lora); !st.ok()) return fail(st);
  const Model& m = *lm->model;
  const ModelConfig& c = m.config();
  if (a.n_prompt < 0 || a.n_gen < 0 || a.depth < 0 || a.reps < 1)
    return fail(invalid_argument("-p, -n, -d must be >= 0 and -r >= 1"));
  const int64_t ctx = std::max<int64_t>(1, (int64_t)a.depth + std::max(a.n_prompt, a.n_gen) + 1);
  if (ctx > c.n_ctx_train && c.n_ctx_train > 0 && a.beyond_ctx)
    std::fprintf(stderr, "modu bench: -d + max(-p, -n) = %lld is past the model's training context %lld (--beyond-ctx): "
                 "speed only, the text would be meaningless\n", (long long)(ctx - 1), (long long)c.n_ctx_train);
  else if (ctx > c.n_ctx_train && c.n_ctx_train > 0)
    return fail(invalid_argument("-d + max(-p, -n) = " + std::to_string(ctx - 1) + " exceeds the model's context of " +
                                 std::to_string(c.n_ctx_train) + " tokens; lower -d"));
  // Refuse rather than fail to allocate.
  const size_t kv_need = KvCache::bytes_for(c, 1, ctx, KvType::kF16), avail = available_memory_bytes();
  if (avail > 0 && kv_need > avail)  // 0: unknown
    return fail(invalid_argument("a KV cache for " + std::to_string(ctx) + " positions needs " +
                                 std::to_string(kv_need / 1000000) + " MB, more than is available; lower -d"));
  ThreadPool pool(a.threads);
  KvCache kv(c, 1, ctx, KvType::kF16);
  std::mt19937 rng(1234);
  std::vector<float> logits;
  auto rand_tok = [&] { return (int32_t)(rng() % c.n_vocab); };
  // --depth: the first `depth` positions are filled once, in batches, and every test starts after
  // them. Truncating back keeps them, except in sliding-window rings, which are refilled.
  bool prefix_ready = false;
  auto to_depth = [&]() -> Status {
    if (prefix_ready && !kv.has_ring()) {
      kv.truncate(0, a.depth);
      return Status::Ok();
    }
    kv.truncate(0, 0);
    for (int b = 0; b < a.depth; b += 512) {
      std::vector<BatchToken> batch;
      for (int i = b; i < std::min(a.depth, b + 512); ++i) batch.push_back({rand_tok(), i, 0, false});
      MODU_RETURN_IF_ERROR(m.forward(batch, kv, pool, logits));
    }
    prefix_ready = true;
    return Status::Ok();
  };

  auto run_prefill = [&](int n) -> Result<double> {
    MODU_RETURN_IF_ERROR(to_depth());
    std::vector<BatchToken> batch;
    for (int i = 0; i < n; ++i) batch.push_back({rand_tok(), a.depth + i, 0, i + 1 == n});
    auto t0 = clock::now();
    MODU_RETURN_IF_ERROR(m.forward(batch, kv, pool, logits));
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  auto run_decode = [&](int n) -> Result<double> {
    MODU_RETURN_IF_ERROR(to_depth());
    auto t0 = clock::now();
    for (int i = 0; i < n; ++i) MODU_RETURN_IF_ERROR(m.forward({{rand_tok(), a.depth + i, 0, true}}, kv, pool, logits));
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  std::vector<double> pp, tg;
  double pp_util = 0, tg_util = 0;
  double tg_serial = 0;  // decode: share of the time outside the pool's parallel regions
  if (a.n_prompt > 0) {
    auto w = run_prefill(std::min(a.n_prompt, 32));  // warm-up: page in weights, spin up threads
    if (!w.ok()) return fail(w.status());
    pool.reset_stats();
    for (int r = 0; r < a.reps; ++r) {
      auto s = run_prefill(a.n_prompt);
      if (!s.ok()) return fail(s.status());
      pp.push_back(a.n_prompt / *s);
    }
    const auto st = pool.stats();
    pp_util = st.wall_s > 0 ? st.busy_s / (st.wall_s * pool.size()) : 0;
  }
  std::unique_ptr<ReadProbe> probe;
  if (a.roofline) probe = std::make_unique<ReadProbe>(pool);
  std::vector<double> read_around;  // --roofline: read GB/s before repetition r (and after the last)
  if (a.n_gen > 0) {
    auto w = run_decode(std::min(a.n_gen, 4));
    if (!w.ok()) return fail(w.status());
    double busy = 0, wall = 0, elapsed = 0;
    for (int r = 0; r < a.reps; ++r) {
      if (probe && probe->ok()) read_around.push_back(probe->once());
      pool.reset_stats();
      auto s = run_decode(a.n_gen);
      if (!s.ok()) return fail(s.status());
      tg.push_back(a.n_gen / *s);
      elapsed += *s;
      busy += pool.stats().busy_s;
      wall += pool.stats().wall_s;
    }
    if (probe && probe->ok()) read_around.push_back(probe->once());
    tg_util = wall > 0 ? busy / (wall * pool.size()) : 0;
    tg_serial = elapsed > 0 ? std::max(0.0, 1.0 - wall / elapsed) : 0;
  }
  // Speculative decoding's verification: one pass over a token and its drafts with the decode
  // kernels (what generate() runs), timed against one-token steps at the same depth.
  std::vector<std::pair<int, Stats>> verify;
  for (int nv : a.verify) {
    if (nv < 1) continue;
    std::vector<double> per;
    for (int r = 0; r < std::max(2, a.reps) + 1; ++r) {
      if (auto st = to_depth(); !st.ok()) return fail(st);
      std::vector<BatchToken> batch;
      for (int i = 0; i < nv; ++i) batch.push_back({rand_tok(), a.depth + i, 0, true});
      DecodeKernelsScope exact;
      auto t0 = clock::now();
      if (auto st = m.forward(batch, kv, pool, logits); !st.ok()) return fail(st);
      if (r > 0) per.push_back(std::chrono::duration<double>(clock::now() - t0).count());  // (the first warms up)
    }
    verify.push_back({nv, stats(per)});
  }
  const Stats sp = stats(pp), sg = stats(tg);
  // Decode streams every weight once per token (the output matrix included; the embedding is
  // read one row per token).
  const double stream_bytes = (double)m.weight_bytes() - (m.weights().tied_output ? 0.0 : (double)m.weights().tok_embd.rows * m.weights().tok_embd.row_bytes);
  // Multiply-adds per token: every matrix except the embedding table (2 ops each); attention adds
  // 2 * 2 * n_head * head_dim * (positions attended) per token and layer.
  const double mat_params = (double)m.n_params() - (m.weights().tied_output ? 0.0 : (double)m.weights().tok_embd.rows * m.weights().tok_embd.cols);
  auto attn_ops = [&](double avg_pos) { return 4.0 * c.n_layer * c.n_head * c.head_dim * avg_pos; };
  // Prefill projects only the last position through the output matrix, so that matrix counts once
  // per batch, not once per prompt token.
  const double out_params = (double)m.weights().output.rows * m.weights().output.cols;
  const double pp_gops =
      sp.mean * (2.0 * (mat_params - out_params) + attn_ops(a.depth + a.n_prompt / 2.0) + 2.0 * out_params / std::max(1, a.n_prompt)) / 1e9;
  const double tg_gops = sg.mean * (2.0 * mat_params + attn_ops(a.depth + a.n_gen / 2.0)) / 1e9;
  const double pp_gbs = sp.mean / std::max(1, a.n_prompt) * stream_bytes / 1e9;  // weights read once per batch
  // A decoded token also reads the K and V rows of every position it attends, which matters once
  // --depth is large.
  auto kv_read_bytes = [&](double avg_pos) {
    double b = 0;
    for (int64_t il = 0; il < c.n_layer; ++il)
      b += 2.0 * (double)kv.row_bytes() * (c.is_swa(il) ? std::min<double>(avg_pos, c.n_swa) : avg_pos);
    return b;
  };
  const double tg_bytes = stream_bytes + kv_read_bytes(a.depth + a.n_gen / 2.0);
  const double tg_gbs = sg.mean * tg_bytes / 1e9;
  Roofline roof;
  if (a.roofline) roof = measure_roofline(pool, *probe);
  // Each decode repetition against the better of the reads just before and just after it.
  std::vector<double> paired;
  for (size_t r = 0; r + 1 < read_around.size() && r < tg.size(); ++r)
    paired.push_back(tg[r] * tg_bytes / 1e9 / std::max(read_around[r], read_around[r + 1]));
  double paired_median = 0;
  if (!paired.empty()) {
    std::vector<double> sorted = paired;
    std::sort(sorted.begin(), sorted.end());
    const size_t k = sorted.size();
    paired_median = k % 2 ? sorted[k / 2] : 0.5 * (sorted[k / 2 - 1] + sorted[k / 2]);
  }
  nlohmann::ordered_json j;
  j["model"] = a.model;
  j["architecture"] = c.arch.name;
  j["parameters"] = m.n_params();
  j["weight_bytes"] = m.weight_bytes();
  j["isa"] = isa_name(kernels().isa);
  j["threads"] = pool.size();
  j["n_prompt"] = a.n_prompt;
  j["n_gen"] = a.n_gen;
  j["depth"] = a.depth;
  j["repetitions"] = a.reps;
  j["prefill_tokens_per_s"] = sp.mean;
  j["prefill_tokens_per_s_stddev"] = sp.stddev;
  j["decode_tokens_per_s"] = sg.mean;
  j["decode_tokens_per_s_stddev"] = sg.stddev;
  j["decode_weight_gb_per_s"] = sg.mean * stream_bytes / 1e9;
  j["decode_kv_gb_per_s"] = sg.mean * (tg_bytes - stream_bytes) / 1e9;
  j["repacked_bytes"] = m.repacked_bytes();
  if (!m.repack_note().empty()) j["repack_note"] = m.repack_note();
  j["repack_seconds"] = m.repack_seconds();
  j["rss_bytes"] = current_rss_bytes();
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["kv_cache_bytes"] = kv.bytes();
  j["prefill_thread_utilisation"] = pp_util;
  j["decode_thread_utilisation"] = tg_util;
  j["decode_serial_fraction"] = tg_serial;
  if (a.roofline) {
    j["roofline"] = {{"read_gb_per_s", roof.read_gbs},     {"fma_f32_gop_per_s", roof.fma_gops},
                     {"int8_dot_gop_per_s", roof.dot_gops}, {"prefill_gop_per_s", pp_gops},
                     {"prefill_gb_per_s", pp_gbs},          {"decode_gop_per_s", tg_gops},
                     {"decode_gb_per_s", tg_gbs}};
    if (!paired.empty()) {
      j["roofline"]["decode_read_around_gb_per_s"] = read_around;
      j["roofline"]["decode_fraction_of_read_around"] = paired;
      j["roofline"]["decode_fraction_of_read_around_median"] = paired_median;
    }
  }
  if (!verify.empty()) {
    j["verify"] = nlohmann::json::array();
    for (const auto& [nv, st] : verify)
      j["verify"].push_back({{"tokens", nv}, {"seconds", st.mean}, {"vs_decode_step", a.n_gen > 0 ? st.mean * sg.mean : 0.0}});
  }
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model: %s (%s, %.2f B params, %.2f GB weights), isa %s, %d threads\n", a.model.c_str(),
              c.arch.name.c_str(), m.n_params() / 1e9, m.weight_bytes() / 1e9, isa_name(kernels().isa), pool.size());
  if (m.repacked_bytes() > 0)
    std::printf("weights repacked for the decode kernels at load: %.2f GB in %.2f s (MODU_REPACK=0 keeps the file layout)\n",
                m.repacked_bytes() / 1e9, m.repack_seconds());
  if (!m.repack_note().empty()) std::printf("repacking: %s\n", m.repack_note().c_str());
  std::printf("| test           |     tokens/s |  stddev |\n|----------------|--------------|---------|\n");
  const std::string at = a.depth > 0 ? " @ d" + std::to_string(a.depth) : "";
  if (a.n_prompt > 0) std::printf("| %-14s | %12.2f | %7.2f |\n", ("pp" + std::to_string(a.n_prompt) + at).c_str(), sp.mean, sp.stddev);
  if (a.n_gen > 0) std::printf("| %-14s | %12.2f | %7.2f |\n", ("tg" + std::to_string(a.n_gen) + at).c_str(), sg.mean, sg.stddev);
  for (const auto& [nv, st] : verify)
    std::printf("| %-14s | %12.2f | %7.2f |  one pass of %d tokens (decode kernels) = %.2f one-token steps\n",
                ("verify" + std::to_string(nv) + at).c_str(), nv / st.mean, 0.0, nv, a.n_gen > 0 ? st.mean * sg.mean : 0.0);
  if (a.n_gen > 0)
    std::printf("decode streams %.2f GB/s of weights and %.2f GB/s of KV cache\n", sg.mean * stream_bytes / 1e9,
                sg.mean * (tg_bytes - stream_bytes) / 1e9);
  std::printf("threads busy: prefill %.0f%%, decode %.0f%% (rest is barrier wait / imbalance)\n", 100 * pp_util,
              100 * tg_util);
  if (a.n_gen > 0)
    std::printf("decode time outside parallel regions (one thread works, the others prefetch): %.1f%%\n", 100 * tg_serial);
  if (a.roofline) {
    std::printf("roofline (%s, %d threads): read %.1f GB/s, f32 FMA %.0f GOP/s, int8 dot %.0f GOP/s\n",
                isa_name(kernels().isa), pool.size(), roof.read_gbs, roof.fma_gops, roof.dot_gops);
    std::printf("| phase   |   GB/s | %% of read BW |  GOP/s | %% of int8 peak |\n|---------|--------|--------------|--------|----------------|\n");
    if (a.n_prompt > 0)
      std::printf("| prefill | %6.2f | %11.1f%% | %6.1f | %13.1f%% |\n", pp_gbs, 100 * pp_gbs / roof.read_gbs, pp_gops,
                  100 * pp_gops / roof.dot_gops);
    if (a.n_gen > 0)
      std::printf("| decode  | %6.2f | %11.1f%% | %6.1f | %13.1f%% |\n", tg_gbs, 100 * tg_gbs / roof.read_gbs, tg_gops,
                  100 * tg_gops / roof.dot_gops);
    if (!paired.empty()) {
      std::printf("decode vs the read measured just before/after each repetition (the better of the two): median %.1f%% (",
                  100 * paired_median);
      for (size_t r = 0; r < paired.size(); ++r)
        std::printf("%s%.1f%% of %.1f", r ? ", " : "", 100 * paired[r], std::max(read_around[r], read_around[r + 1]));
      std::printf(" GB/s)\n");
    }
  }
  std::printf("memory: RSS %.2f GB (peak %.2f GB), KV cache %.1f MB\n", current_rss_bytes() / 1e9,
              peak_rss_bytes() / 1e9, kv.bytes() / 1e6);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& rc) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand("bench", "Measure prefill and decode tokens/s");
  c->add_option("-m,--model", a->model, "GGUF model file or Hugging Face folder")->check(CLI::ExistingPath);
  c->add_option("--mmproj", a->mmproj,
                "Benchmark image encoding with this vision projector (its image size); with -m the text tests follow")
      ->check(CLI::ExistingPath);
  c->add_option("--image", a->image, "With --mmproj: also encode this image file as run / serve would (tiles included)")
      ->check(CLI::ExistingFile);
  add_lora_option(c, &a->lora);
  c->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens for the prefill test (0: skip)")->capture_default_str();
  c->add_option("-n,--n-gen", a->n_gen, "Tokens for the decode test (0: skip)")->capture_default_str();
  c->add_option("-d,--depth", a->depth,
                 "Context already in the KV cache when each test starts (prefill and decode attend to it)")
      ->capture_default_str();
  c->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("--verify", a->verify,
                 "Also time speculative verification: one pass over N tokens with the decode kernels (repeatable: "
                 "--verify 2 --verify 5 --verify 9), against one-token decode steps");
  c->add_flag("--beyond-ctx", a->beyond_ctx,
              "Allow -d past the model's training context (a speed test at depth, as llama-bench allows)");
  c->add_option("-r,--repetitions", a->reps, "Repetitions")->capture_default_str();
  c->add_flag("--json", a->json, "Print one JSON object");
  c->add_flag("--roofline", a->roofline,
              "Measure the machine's read bandwidth and int8/f32 multiply-add peaks and report each phase against them");
  c->callback([a, &rc] { rc = bench(*a); });
}

}  // namespace modu::cli
