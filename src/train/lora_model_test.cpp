// The LoRA training forward and backward on every dense family modu runs, on small random models
// written with modu's GGUF writer (models/reference_model.cpp): with an adapter its logits equal
// the float64 reference decoder run on the merged weights W + s B A; its adapter gradients equal
// central finite differences in float64; a quantized base (Q8_0, Q4_0) is used as stored; and the
// adapter, exported as GGUF, gives the same logits in the inference engine.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "../models/reference_model.h"
#include "modu/gguf/gguf.h"
#include "modu/kernels/dtype.h"
#include "modu/models/lora.h"
#include "modu/models/model.h"
#include "modu/train/lora_model.h"
#include "modu/train/tune.h"

namespace modu::train {
namespace {

namespace fs = std::filesystem;
using testing::TestModelSpec;

// The families' distinguishing options, as the models tests exercise them.
TestModelSpec family(const std::string& arch) {
  TestModelSpec s = testing::arch_spec(arch == "mixtral" ? "llama" : arch);
  if (arch == "mixtral") s.n_expert = 4, s.n_expert_used = 2;  // Mixtral: llama with experts, renormalized top-2
  s.n_vocab = 64;
  if (arch == "phi3") s.n_ctx = 64, s.orig_ctx = 8;
  if (arch == "qwen2vl") s.qkv_bias = true, s.rope_sections = {2, 3, 3, 0};  // M-RoPE (text: equal positions)  // long factors: the training context (12) passes the original
  return s;
}

struct Written {
  fs::path path;
  std::vector<uint8_t> bytes;
};

Written write_model(const TestModelSpec& s, const std::string& tag) {
  Written w;
  w.bytes = testing::make_random_model(s);
  w.path = fs::temp_directory_path() / ("modu_lora_model_" + std::to_string(::getpid()) + "_" + tag + ".gguf");
  std::ofstream(w.path, std::ios::binary).write((const char*)w.bytes.data(), (std::streamsize)w.bytes.size());
  return w;
}

// Every matrix kind the model has (no targets named).
LoraSet full_set(const LoraBase& b, int64_t rank, float alpha) { return make_lora_set(b, {}, rank, alpha).value(); }

std::vector<double> random_lora(const LoraSet& s, uint64_t seed) {
  std::vector<double> v(s.total);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0, 1);
  for (const LoraSlot& sl : s.slots) {
    for (int64_t i = 0; i < s.rank * sl.cols; ++i) v[sl.a_offset + i] = nd(rng) / std::sqrt((double)sl.cols);
    for (int64_t i = 0; i < sl.rows * s.rank; ++i) v[sl.b_offset + i] = 0.5 * nd(rng) / std::sqrt((double)s.rank);
  }
  return v;
}

// The base with every adapted matrix replaced by W + s B A (the reference's float64 merge).
std::vector<uint8_t> merged(const GgufFile& base, const LoraSet& s, const std::vector<double>& lora) {
  testing::LoraPairs pairs;
  for (const LoraSlot& sl : s.slots)
    pairs[sl.name] = {std::vector<double>(lora.begin() + (long)sl.a_offset, lora.begin() + (long)(sl.a_offset + s.rank * sl.cols)),
                      std::vector<double>(lora.begin() + (long)sl.b_offset, lora.begin() + (long)(sl.b_offset + sl.rows * s.rank))};
  return testing::merge_lora(base, {{pairs, (double)s.scale()}});
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = (int32_t)(rng() % vocab);
  return t;
}

// Max |train - reference| over the logits, relative to the largest reference logit.
double forward_error(const TestModelSpec& spec, const std::string& tag) {
  const Written m = write_model(spec, tag);
  auto base = load_lora_base(m.path.string(), 12);
  EXPECT_TRUE(base.ok()) << base.status().to_string();
  if (!base.ok()) return 1e9;
  const LoraSet set = full_set(**base, 3, 6.0f);
  const std::vector<double> lora = random_lora(set, 21);
  const int64_t T = 12;
  const std::vector<int32_t> tok = random_tokens(T, spec.n_vocab, 5), tgt(T, 0);
  ThreadPool pool(2);
  std::vector<double> logits;
  lora_loss_grad<double>(**base, set, lora.data(), nullptr, tok.data(), tgt.data(), 1, T, pool, &logits);
  const std::vector<uint8_t> mb = merged((*base)->file, set, lora);
  auto mf = GgufFile::parse(mb.data(), mb.size(), "merged");
  EXPECT_TRUE(mf.ok());
  const auto ref = testing::reference_logits(*mf, spec, tok);
  double err = 0, scale = 1e-9;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t v = 0; v < spec.n_vocab; ++v) {
      err = std::max(err, std::fabs(logits[t * spec.n_vocab + v] - ref[t][v]));
      scale = std::max(scale, std::fabs(ref[t][v]));
    }
  fs::remove(m.path);
  return err / scale;
}

// Worst relative error of the analytic adapter gradient against central differences.
double gradient_error(const TestModelSpec& spec, const std::string& tag, int* checked) {
  const Written m = write_model(spec, tag);
  auto base = load_lora_base(m.path.string(), 6);
  EXPECT_TRUE(base.ok()) << base.status().to_string();
  if (!base.ok()) return 1e9;
  const LoraSet set = full_set(**base, 2, 4.0f);
  std::vector<double> lora = random_lora(set, 3);
  const int64_t n_seq = 2, len = 6;
  const std::vector<int32_t> tok = random_tokens(n_seq * len, spec.n_vocab, 8);
  std::vector<int32_t> tgt = random_tokens(n_seq * len, spec.n_vocab, 9);
  tgt[3] = -1;  // a position without loss
  ThreadPool pool(2);
  std::vector<double> grad(set.total);
  lora_loss_grad<double>(**base, set, lora.data(), grad.data(), tok.data(), tgt.data(), n_seq, len, pool);
  double worst = 0;
  const size_t stride = std::max<size_t>(1, set.total / 40);
  auto loss_at = [&](size_t i, double x) {
    const double keep = lora[i];
    lora[i] = x;
    const double l = lora_loss_grad<double>(**base, set, lora.data(), nullptr, tok.data(), tgt.data(), n_seq, len, pool);
    lora[i] = keep;
    return l;
  };
  for (size_t i = 0; i < set.total; i += stride, ++*checked) {
    // Central differences at h and h/2, Richardson-extrapolated: the h^2 term cancels.
    const double h = 1e-4, x = lora[i];
    const double d1 = (loss_at(i, x + h) - loss_at(i, x - h)) / (2 * h);
    const double d2 = (loss_at(i, x + h / 2) - loss_at(i, x - h / 2)) / h;
    const double fd = (4 * d2 - d1) / 3;
    worst = std::max(worst, std::fabs(fd - grad[i]) / std::max(1e-4, std::fabs(fd)));
  }
  fs::remove(m.path);
  return worst;
}

class LoraFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraFamily, ForwardEqualsFloat64ReferenceOfMergedWeights) {
  EXPECT_LT(forward_error(family(GetParam()), GetParam()), 1e-5);
}

TEST_P(LoraFamily, GradientsMatchFiniteDifferences) {
  int checked = 0;
  EXPECT_LT(gradient_error(family(GetParam()), GetParam(), &checked), 1e-5);
  EXPECT_GE(checked, 30);
}

INSTANTIATE_TEST_SUITE_P(Families, LoraFamily,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen3", "exaone", "exaone4", "gemma2", "gemma3", "granite",
                                           "phi3", "qwen2vl", "qwen2moe", "qwen3moe", "mixtral"));

// QLoRA: quantized bases are read as stored; tied output, partial rotary and rope_freqs factors too.
TEST(LoraModel, QuantizedAndOtherBases) {
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::F16}) {
    TestModelSpec s = family("llama");
    s.weight_type = s.embd_type = dt;
    s.n_ff = 64;  // rows of whole blocks
    EXPECT_LT(forward_error(s, std::string("q") + dtype_name(dt)), 1e-5) << dtype_name(dt);
    int checked = 0;
    EXPECT_LT(gradient_error(s, std::string("g") + dtype_name(dt), &checked), 1e-5) << dtype_name(dt);
  }
  TestModelSpec tied = family("llama");
  tied.tied_output = true;
  tied.n_rot = 4;
  tied.scaling = "llama3";
  tied.rope_freqs_tensor = true;
  EXPECT_LT(forward_error(tied, "tied"), 1e-5);
  TestModelSpec yarn = family("llama");  // YaRN: interpolation ramp and magnitude
  yarn.scaling = "yarn";
  yarn.scaling_factor = 4.0;
  yarn.orig_ctx = 8;
  EXPECT_LT(forward_error(yarn, "yarn"), 1e-5);
  int checked = 0;
  EXPECT_LT(gradient_error(yarn, "yarn_g", &checked), 1e-5);
  TestModelSpec short_factors = family("phi3");  // LongRoPE within the original context: short factors
  short_factors.orig_ctx = 64;
  EXPECT_LT(forward_error(short_factors, "phi3_short"), 1e-5);
}

TEST(LoraModel, NamesTheTargetsAModelHas) {
  const Written l = write_model(family("phi3"), "names");
  auto base = load_lora_base(l.path.string());
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  auto bad = make_lora_set(**base, {"attn_q"}, 2, 4.0f);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("attn_qkv"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(make_lora_set(**base, {"attn_qkv"}, 0, 4.0f).ok());
  fs::remove(l.path);
}

// The adapter written as GGUF and loaded by the inference engine gives the training side's
// logits (float) on families with biases, Q/K norms, soft caps and fused matrices.
TEST(LoraModel, ExportedAdapterGivesTheSameLogitsInTheEngine) {
  for (const std::string arch : {"qwen2", "gemma2", "phi3", "exaone4", "gemma3", "qwen2moe"}) {
    const TestModelSpec spec = family(arch);
    const Written m = write_model(spec, "engine_" + arch);
    auto base = load_lora_base(m.path.string());
    ASSERT_TRUE(base.ok()) << base.status().to_string();
    const LoraSet set = full_set(**base, 3, 6.0f);
    const std::vector<double> ld = random_lora(set, 77);
    const std::vector<float> lf(ld.begin(), ld.end());
    const fs::path ap = m.path.string() + ".lora.gguf";
    ASSERT_TRUE(write_lora_gguf(ap.string(), spec.arch, set, lf.data()).ok());
    const int64_t T = 10;
    const std::vector<int32_t> tok = random_tokens(T, spec.n_vocab, 6), tgt(T, 0);
    ThreadPool pool(2);
    std::vector<float> train_logits;
    lora_loss_grad<float>(**base, set, lf.data(), nullptr, tok.data(), tgt.data(), 1, T, pool, &train_logits);
    auto model = Model::load(m.path.string());
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    auto ad = LoraAdapter::load(ap.string());
    ASSERT_TRUE(ad.ok()) << ad.status().to_string();
    ASSERT_TRUE((*model)->add_lora(*ad, 1.0f).ok());
    KvCache kv((*model)->config(), 1, 64, KvType::kF32);
    std::vector<BatchToken> batch;
    for (int64_t i = 0; i < T; ++i) batch.push_back({tok[i], i, 0, true});
    std::vector<float> logits;
    ASSERT_TRUE((*model)->forward(batch, kv, pool, logits).ok());
    double err = 0, scale = 1e-9;
    for (size_t i = 0; i < logits.size(); ++i) {
      err = std::max(err, (double)std::fabs(logits[i] - train_logits[i]));
      scale = std::max(scale, (double)std::fabs(train_logits[i]));
    }
    EXPECT_LT(err / scale, 1e-3) << arch;
    fs::remove(m.path);
    fs::remove(ap);
  }
}

}  // namespace
}  // namespace modu::train
