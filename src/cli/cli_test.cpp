// End-to-end tests of the modu binary: each subcommand on models and vocabularies made or shipped
// for tests; stdout must be exactly what the command promises.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <random>
#include <cmath>

#include "modu/core/threadpool.h"
#include "modu/gguf/gguf.h"
#include "modu/models/imatrix.h"
#include "modu/models/model.h"
#include "modu/runtime/generate.h"
#include "modu/runtime/multimodal.h"
#include "modu/tokenizer/tokenizer.h"
#include "modu/vision/vision_model.h"
#include "../vision/vision_reference.h"

namespace {

struct CmdResult {
  int rc;
  std::string out;
};

// Runs `modu ARGS` with stderr to a file; returns exit code and stdout.
CmdResult modu(const std::string& args) {
  std::string cmd = std::string(MODU_BIN) + " " + args + " 2>" + ::testing::TempDir() + "/modu_stderr.txt";
  FILE* p = popen(cmd.c_str(), "r");
  CmdResult r{-1, ""};
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string last_stderr() {
  std::ifstream f(::testing::TempDir() + "/modu_stderr.txt");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string shared(const std::string& rel) { return std::string(MODU_SHARED_DIR) + "/" + rel; }

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = ::testing::TempDir() + "/cli_tiny.gguf";
    CmdResult r = modu("init-model --preset tiny --layers 2 --d-model 64 --ff 128 --heads 4 --kv-heads 2 --vocab-from " +
                 shared("testdata/vocab/ggml-vocab-gpt-2.gguf") + " -o " + model_);
    ASSERT_EQ(r.rc, 0) << last_stderr();
  }
  static std::string model_;
};
std::string Cli::model_;

TEST_F(Cli, InfoJsonDescribesTheModel) {
  CmdResult r = modu("info --json " + model_);
  ASSERT_EQ(r.rc, 0) << last_stderr();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["embedding_length"], 64);
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["tokenizer"]["model"], "gpt2");
  EXPECT_EQ(j["vocab_size"], 50257);
  EXPECT_GT(j["memory_needed_bytes"].get<int64_t>(), j["weight_bytes"].get<int64_t>());
}

TEST_F(Cli, RunPrintsExactlyTheGreedyCompletion) {
  CmdResult r = modu("run -m " + model_ + " -p 'Hello world' -n 12 --temp 0 -t 2");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  // The same generation through the library.
  auto m = modu::Model::load(model_);
  ASSERT_TRUE(m.ok());
  auto tok = modu::Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  modu::ThreadPool pool(1);
  auto ids = (*tok)->encode("Hello world", true, true);
  modu::KvCache kv((*m)->config(), 1, 64, modu::KvType::kF16);
  modu::GenerateOptions o;
  o.n_predict = 12;
  o.sampling.temperature = 0;
  auto res = modu::generate(**m, **tok, kv, pool, ids, o, nullptr);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(r.out, res->text);
  EXPECT_EQ(res->tokens.size(), 12u);
  CmdResult again = modu("run -m " + model_ + " -p 'Hello world' -n 12 --temp 0 -t 1");
  EXPECT_EQ(again.out, r.out);
}

// Images: `modu run --mmproj --image` prints what the library gives for the same images spliced at
// the prompt's markers (and the same with small prefill batches, each image in one pass).
TEST_F(Cli, RunWithImages) {
  const std::string dir = ::testing::TempDir();
  modu::testing::MmprojSpec s;
  s.n_embd_text = 64;  // the test model's width
  s.n_ff = 64;
  s.mlp_hidden = 64;
  auto bytes = modu::testing::make_random_mmproj(s);
  const std::string mm = dir + "/cli_mmproj.gguf";
  std::ofstream(mm, std::ios::binary).write((const char*)bytes.data(), bytes.size());
  const std::string png = std::string(MODU_SOURCE_DIR) + "/src/vision/testdata/src_37x23.png";
  const std::string jpg = std::string(MODU_SOURCE_DIR) + "/src/vision/testdata/orient_6.jpg";
  CmdResult r = modu("run -m " + model_ + " --mmproj " + mm + " --image " + png + " --image " + jpg +
                     " -p 'Look<__media__>and<__media__>then' -n 10 --temp 0 -t 2");
  ASSERT_EQ(r.rc, 0) << last_stderr();

  auto m = modu::Model::load(model_);
  ASSERT_TRUE(m.ok());
  auto tok = modu::Tokenizer::from_gguf((*m)->gguf());
  auto vm = modu::vision::VisionModel::load(mm);
  ASSERT_TRUE(vm.ok()) << vm.status().to_string();
  modu::ThreadPool pool(1);
  std::vector<modu::vision::ImageEmbedding> imgs;
  for (const auto& path : {png, jpg}) {
    auto img = modu::vision::load_image_file(path);
    ASSERT_TRUE(img.ok());
    imgs.push_back(modu::vision::embed_image(**vm, *img, pool).value());
  }
  auto p = modu::build_multimodal_prompt(**tok, "Look<__media__>and<__media__>then", imgs, (*vm)->markers(), true, true);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->n_image_tokens, 32);
  ASSERT_EQ(p->spans.size(), 2u);
  for (int n_batch : {512, 3}) {
    modu::KvCache kv((*m)->config(), 1, 128, modu::KvType::kF16);
    modu::GenerateOptions o;
    o.n_predict = 10;
    o.sampling.temperature = 0;
    o.n_batch = n_batch;
    o.embd = p->spans;
    auto res = modu::generate(**m, **tok, kv, pool, p->ids, o, nullptr);
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    EXPECT_EQ(r.out, res->text) << "n_batch " << n_batch;
  }
  // The same image twice gives the same placeholder ids (the prefix cache key), another image others.
  auto twice = modu::build_multimodal_prompt(**tok, "<__media__><__media__>", {imgs[0], imgs[0]}, {}, false, true);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(std::vector<int32_t>(twice->ids.begin(), twice->ids.begin() + 16),
            std::vector<int32_t>(twice->ids.begin() + 16, twice->ids.end()));
  EXPECT_NE(p->ids[p->spans[0].begin], p->ids[p->spans[1].begin]);

  // Bad input: one clear error each, exit code 1.
  auto err = [&](const std::string& args, const std::string& want) {
    CmdResult e = modu("run -m " + model_ + " " + args + " -p hi -n 2 --temp 0");
    EXPECT_EQ(e.rc, 1) << args;
    EXPECT_NE(last_stderr().find(want), std::string::npos) << args << ": " << last_stderr();
  };
  err("--image " + png, "needs --mmproj");
  s.n_embd_text = 32;
  auto narrow = modu::testing::make_random_mmproj(s);
  std::ofstream(dir + "/cli_mmproj32.gguf", std::ios::binary).write((const char*)narrow.data(), narrow.size());
  err("--mmproj " + dir + "/cli_mmproj32.gguf --image " + png, "use the mmproj file made for this model");
  std::ofstream(dir + "/broken.png", std::ios::binary).write("\x89PNG\r\n\x1a\n\0\0", 10);
  err("--mmproj " + mm + " --image " + dir + "/broken.png", "broken.png");
  err("--mmproj " + mm + " --image " + png + " --max-image-pixels 100", "decompression bomb");
  err("--mmproj " + mm + " --image " + png + " -c 10", "image tokens");
  err("--mmproj " + model_ + " --image " + png, "not a multimodal projector");
  CmdResult two = modu("run -m " + model_ + " --mmproj " + mm + " --image " + png + " -p '<__media__><__media__>' -n 2");
  EXPECT_EQ(two.rc, 1);
  EXPECT_NE(last_stderr().find("2 image markers"), std::string::npos) << last_stderr();
}

// A tiled projector (LLaVA-NeXT anyres) from `modu init-mmproj`: info describes the tiling, bench
// --image encodes a real file tile by tile, and run takes the image.
TEST_F(Cli, TiledProjectorInfoBenchRun) {
  const std::string mm = ::testing::TempDir() + "/cli_anyres.gguf";
  const std::string png = std::string(MODU_SOURCE_DIR) + "/src/vision/testdata/src_37x23.png";
  CmdResult mk = modu("init-mmproj -o " + mm + " --text-width 64 --image-size 32 --patch 8 --width 32 --ff 64 --heads 4 "
                      "--layers 2 --type f32 --grid-pinpoints 32x64,64x32,64x64");
  ASSERT_EQ(mk.rc, 0) << last_stderr();
  EXPECT_EQ(modu("init-mmproj -o " + mm + ".bad --text-width 64 --grid-pinpoints 32by64").rc, 1);
  CmdResult info = modu("info " + mm);
  ASSERT_EQ(info.rc, 0) << last_stderr();
  EXPECT_NE(info.out.find("tiles:         anyres: the best of 3 canvases (up to 4 tiles)"), std::string::npos) << info.out;
  CmdResult b = modu("bench --mmproj " + mm + " --image " + png + " --json -t 1 -r 1");
  ASSERT_EQ(b.rc, 0) << last_stderr();
  const auto j = nlohmann::json::parse(b.out);
  EXPECT_EQ(j["image"]["encoder_runs"], 3);  // 37 x 23 -> a 32 x 64 canvas: 1 x 2 tiles + the global view
  EXPECT_EQ(j["image"]["tokens"], 16 + 4 * (6 + 1));
  CmdResult r = modu("run -m " + model_ + " --mmproj " + mm + " --image " + png + " -p 'Describe' -n 4 --temp 0 -t 1");
  EXPECT_EQ(r.rc, 0) << last_stderr();
}

// `modu chat` with /image: the picture joins the next message; bad paths and a text-only model are
// reported and the conversation goes on; the same session twice prints the same answers.
TEST_F(Cli, ChatImageCommand) {
  const std::string dir = ::testing::TempDir();
  modu::testing::MmprojSpec s;
  s.projector = "gemma3";
  s.image_size = 56;
  s.patch_size = 7;
  s.n_embd_text = 64;
  s.n_ff = 64;
  s.use_gelu = true;
  auto bytes = modu::testing::make_random_mmproj(s);
  const std::string mm = dir + "/chat_mmproj.gguf";
  std::ofstream(mm, std::ios::binary).write((const char*)bytes.data(), bytes.size());
  const std::string png = std::string(MODU_SOURCE_DIR) + "/src/vision/testdata/src_37x23.png";
  const std::string script = dir + "/chat_script.txt";
  std::ofstream(script) << "/image " << png << "\n/image " << dir << "/missing.png\nWhat is this?\nAnd now?\n/exit\n";
  CmdResult a = modu("chat -m " + model_ + " --mmproj " + mm + " -n 6 --temp 0 < " + script);
  ASSERT_EQ(a.rc, 0) << last_stderr();
  const std::string err = last_stderr();
  EXPECT_NE(err.find("(image " + png + ": 37 x 23, 16 tokens"), std::string::npos) << err;
  EXPECT_NE(err.find("missing.png"), std::string::npos) << err;
  EXPECT_GE(std::count(a.out.begin(), a.out.end(), '\n'), 2) << a.out;  // two answers, each ended by a newline
  CmdResult b = modu("chat -m " + model_ + " --mmproj " + mm + " -n 6 --temp 0 < " + script);
  EXPECT_EQ(b.out, a.out);
  CmdResult text_only = modu("chat -m " + model_ + " -n 6 --temp 0 < " + script);
  EXPECT_EQ(text_only.rc, 0);
  EXPECT_NE(last_stderr().find("reads text only"), std::string::npos) << last_stderr();
}

// ignore_eos: an end-of-generation token (forced here by a logit bias) does not end the text.
TEST_F(Cli, IgnoreEosGeneratesExactlyN) {
  auto m = modu::Model::load(model_);
  ASSERT_TRUE(m.ok());
  auto tok = modu::Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  ASSERT_GE((*tok)->eos_id(), 0);
  modu::ThreadPool pool(1);
  const auto ids = (*tok)->encode("Hello", true, true);
  modu::GenerateOptions o;
  o.n_predict = 7;
  o.sampling.temperature = 0;
  o.sampling.logit_bias = {{(*tok)->eos_id(), 100.0f}};
  for (bool ignore : {false, true}) {
    modu::KvCache kv((*m)->config(), 1, 64, modu::KvType::kF16);
    o.ignore_eos = ignore;
    auto res = modu::generate(**m, **tok, kv, pool, ids, o, nullptr);
    ASSERT_TRUE(res.ok());
    EXPECT_EQ(res->tokens.size(), ignore ? 7u : 0u);
    EXPECT_EQ(res->reason, ignore ? modu::StopReason::kLength : modu::StopReason::kEog);
  }
  CmdResult r = modu("run -m " + model_ + " -p 'Hello' -n 9 --temp 1 -t 1 --ignore-eos");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  EXPECT_NE(last_stderr().find("generated 9 tokens"), std::string::npos) << last_stderr();
}

// --lora: an adapter GGUF (llama.cpp's layout, written here) changes the greedy text exactly as
// the library's add_lora does; scale 0 gives the base text; a model file is not an adapter.
TEST_F(Cli, LoraAdapterOnTheCommandLine) {
  auto m = modu::Model::load(model_);
  ASSERT_TRUE(m.ok());
  modu::GgufWriter w;
  w.set("general.architecture", modu::GgufValue::string("llama"));
  w.set("general.type", modu::GgufValue::string("adapter"));
  w.set("adapter.type", modu::GgufValue::string("lora"));
  w.set("adapter.lora.alpha", modu::GgufValue::f32(16.0f));
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const auto& t : (*m)->gguf().tensors()) {
    if (t.name.find("attn_v.weight") == std::string::npos && t.name.find("ffn_down.weight") == std::string::npos) continue;
    const int64_t cols = t.shape[0], rows = t.shape[1], rank = 8;
    std::vector<float> a(rank * cols), b(rows * rank);
    for (auto& v : a) v = nd(rng) / std::sqrt((float)cols);
    for (auto& v : b) v = nd(rng);
    ASSERT_TRUE(w.add_tensor_f32(t.name + ".lora_a", modu::DType::F16, {cols, rank}, a.data()).ok());
    ASSERT_TRUE(w.add_tensor_f32(t.name + ".lora_b", modu::DType::F16, {rank, rows}, b.data()).ok());
  }
  const std::string adapter = ::testing::TempDir() + "/cli_lora.gguf";
  ASSERT_TRUE(w.write(adapter).ok());
  const std::string run = "run -m " + model_ + " -p 'Hello world' -n 12 --temp 0 -t 1";
  CmdResult base = modu(run);
  ASSERT_EQ(base.rc, 0) << last_stderr();
  CmdResult with = modu(run + " --lora " + adapter);
  ASSERT_EQ(with.rc, 0) << last_stderr();
  EXPECT_NE(last_stderr().find("LoRA " + adapter + " (scale 1, alpha 16, 4 matrices)"), std::string::npos) << last_stderr();
  EXPECT_NE(with.out, base.out);
  auto tok = modu::Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  auto ad = modu::LoraAdapter::load(adapter);
  ASSERT_TRUE(ad.ok()) << ad.status().to_string();
  ASSERT_TRUE((*m)->add_lora(*ad, 1.0f).ok());
  modu::ThreadPool pool(1);
  modu::KvCache kv((*m)->config(), 1, 64, modu::KvType::kF16);
  modu::GenerateOptions o;
  o.n_predict = 12;
  o.sampling.temperature = 0;
  auto res = modu::generate(**m, **tok, kv, pool, (*tok)->encode("Hello world", true, true), o, nullptr);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(with.out, res->text);
  EXPECT_EQ(modu(run + " --lora " + adapter + ":0").out, base.out);
  CmdResult bad = modu(run + " --lora " + model_);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(last_stderr().find("not an adapter file"), std::string::npos) << last_stderr();

  // `modu lora merge`: the merged model's logits equal the unmerged run's (F16 rounding of the
  // merged matrices), and merged-then-quantized ones within Q8_0's tolerance.
  const std::string merged = ::testing::TempDir() + "/cli_merged.gguf", merged_q = ::testing::TempDir() + "/cli_merged_q8.gguf";
  ASSERT_EQ(modu("lora merge " + model_ + " " + adapter + " " + merged).rc, 0) << last_stderr();
  ASSERT_EQ(modu("lora merge " + model_ + " " + adapter + ":1 " + merged_q + " --type q8_0").rc, 0) << last_stderr();
  auto logits_of = [&](const modu::Model& model) {
    modu::KvCache kv2(model.config(), 1, 64, modu::KvType::kF32);
    std::vector<modu::BatchToken> batch;
    const auto ids = (*tok)->encode("Hello world, 안녕하세요", true, true);
    for (size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], (int64_t)i, 0, true});
    std::vector<float> lg;
    EXPECT_TRUE(model.forward(batch, kv2, pool, lg).ok());
    return lg;
  };
  auto rel = [](const std::vector<float>& x, const std::vector<float>& y) {
    double mx = 0, err = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      mx = std::max(mx, (double)std::fabs(y[i]));
      err = std::max(err, (double)std::fabs(x[i] - y[i]));
    }
    return err / mx;
  };
  const std::vector<float> want = logits_of(**m);  // the base with the adapter attached
  auto mm = modu::Model::load(merged), mq = modu::Model::load(merged_q);
  ASSERT_TRUE(mm.ok() && mq.ok());
  EXPECT_LT(rel(logits_of(**mm), want), 5e-3);
  EXPECT_LT(rel(logits_of(**mq), want), 3e-2);
  EXPECT_EQ((*mq)->weights().layers[0].wv.dtype, modu::DType::Q8_0);
  auto base_only = modu::Model::load(model_);
  EXPECT_GT(rel(logits_of(**base_only), want), 1e-2);  // the adapter mattered
  EXPECT_EQ(modu("lora merge " + model_ + " " + model_ + " " + merged).rc, 1);

  // `modu lora export`: the same adapter as a PEFT folder gives the same output.
  const std::string peft = ::testing::TempDir() + "/cli_lora_peft";
  ASSERT_EQ(modu("lora export " + model_ + " " + adapter + " " + peft).rc, 0) << last_stderr();
  CmdResult via_peft = modu(run + " --lora " + peft);
  ASSERT_EQ(via_peft.rc, 0) << last_stderr();
  EXPECT_EQ(via_peft.out, with.out);
}

// `modu tune ... -o A.gguf --peft A.peft`: the adapter it trains, loaded from its GGUF and from its
// PEFT folder (all seven matrices, Q/K rows reordered for HF in the folder), gives identical output.
TEST_F(Cli, TuneWritesGgufAndPeftThatAgree) {
  const std::string dir = ::testing::TempDir();
  const std::string text = dir + "/cli_tune.txt";
  {
    std::ofstream f(text);
    for (int i = 0; i < 40; ++i) f << "모두의 인공지능은 누구나 쓸 수 있습니다. Everyone can use modu. " << i << "\n";
  }
  const std::string out = dir + "/cli_tuned.gguf", peft = dir + "/cli_tuned.peft";
  CmdResult t = modu("tune -m " + model_ + " --text " + text + " --steps 8 --batch 2 --ctx 32 --lr 0.05 --warmup 1 -t 1 -o " +
                     out + " --peft " + peft);
  ASSERT_EQ(t.rc, 0) << last_stderr();
  std::ifstream cfg(peft + "/adapter_config.json");
  const auto j = nlohmann::json::parse(cfg);
  EXPECT_EQ(j["target_modules"].size(), 7u) << j.dump();
  EXPECT_EQ(j["r"], 8);
  const std::string run = "run -m " + model_ + " -p '모두의 인공지능은' -n 16 --temp 0 -t 1";
  CmdResult base = modu(run), g = modu(run + " --lora " + out), p = modu(run + " --lora " + peft);
  ASSERT_EQ(g.rc, 0) << last_stderr();
  ASSERT_EQ(p.rc, 0) << last_stderr();
  EXPECT_EQ(p.out, g.out);
  EXPECT_NE(g.out, base.out) << "the tuned adapter changes the output";
}

// QLoRA through the CLI: a Qwen3 model (Q/K norms) quantized to Q8_0 is tuned as stored; the
// held-out loss drops, and the adapter loads on the quantized base and changes its output.
TEST_F(Cli, TuneAQuantizedQwen3Base) {
  const std::string dir = ::testing::TempDir();
  const std::string f16 = dir + "/cli_qwen3.gguf", q8 = dir + "/cli_qwen3_q8.gguf", text = dir + "/cli_qlora.txt",
                    valid = dir + "/cli_qlora_valid.txt", out = dir + "/cli_qlora.gguf";
  ASSERT_EQ(modu("init-model --preset tiny --arch qwen3 --layers 2 --d-model 64 --ff 128 --heads 4 --kv-heads 2 --vocab-from " +
                 shared("testdata/vocab/ggml-vocab-gpt-2.gguf") + " -o " + f16).rc, 0) << last_stderr();
  ASSERT_EQ(modu("quantize " + f16 + " " + q8 + " q8_0").rc, 0) << last_stderr();
  {
    std::ofstream f(text), v(valid);
    for (int i = 0; i < 60; ++i) f << "공공 서비스 안내: 전입신고는 이사 후 14일 안에 합니다. " << i % 7 << "\n";
    v << "공공 서비스 안내: 전입신고는 이사 후 14일 안에 합니다. 3\n";
  }
  CmdResult t = modu("tune -m " + q8 + " --text " + text + " --valid " + valid + " --steps 12 --batch 2 --ctx 32 --lr 0.02 "
                     "--warmup 1 -t 1 -o " + out);
  ASSERT_EQ(t.rc, 0) << last_stderr();
  const std::string err = last_stderr();
  EXPECT_NE(err.find("qwen3"), std::string::npos) << err;
  EXPECT_NE(err.find("base frozen as q8_0"), std::string::npos) << err;
  double before = 0, after = 0;
  ASSERT_EQ(std::sscanf(err.c_str() + err.rfind("held-out loss "), "held-out loss %lf -> %lf", &before, &after), 2) << err;
  EXPECT_LT(after, before - 0.5) << err;
  const std::string run = "run -m " + q8 + " -p '공공 서비스 안내:' -n 12 --temp 0 -t 1";
  CmdResult base = modu(run), tuned = modu(run + " --lora " + out);
  ASSERT_EQ(tuned.rc, 0) << last_stderr();
  EXPECT_NE(tuned.out, base.out);
}

// Speculative decoding from the command line: --lookup and --draft give the same greedy text as
// plain decoding, say how many drafts were kept, and a draft model with another tokenizer is refused.
TEST_F(Cli, SpeculativeRunGivesTheSameText) {
  const std::string tiny = std::string(MODU_SOURCE_DIR) + "/models/modu-tiny.gguf";
  const std::string run = "run -m " + tiny + " -p '데비안 패키지를 설치합니다. 데비안 패키지를 설치합니다. 데비안' -n 40 --temp 0 -t 1";
  CmdResult base = modu(run);
  ASSERT_EQ(base.rc, 0) << last_stderr();
  CmdResult look = modu(run + " --lookup --draft-max 5");
  ASSERT_EQ(look.rc, 0) << last_stderr();
  EXPECT_EQ(look.out, base.out);
  EXPECT_NE(last_stderr().find("accepted"), std::string::npos) << last_stderr();
  CmdResult draft = modu(run + " --draft " + tiny);
  ASSERT_EQ(draft.rc, 0) << last_stderr();
  EXPECT_EQ(draft.out, base.out);
  EXPECT_NE(last_stderr().find("(100 %)"), std::string::npos) << last_stderr();
  EXPECT_NE(modu(run + " --draft " + model_).rc, 0);
  EXPECT_NE(last_stderr().find("same tokenizer"), std::string::npos) << last_stderr();
}

TEST_F(Cli, SameSeedSameSampledText) {
  CmdResult a = modu("run -m " + model_ + " -p '안녕하세요' -n 10 --temp 1.0 --seed 5");
  CmdResult b = modu("run -m " + model_ + " -p '안녕하세요' -n 10 --temp 1.0 --seed 5");
  ASSERT_EQ(a.rc, 0) << last_stderr();
  EXPECT_EQ(a.out, b.out);
}

// --json-schema: whatever the random model prefers, stdout is JSON matching the schema.
TEST_F(Cli, RunWithJsonSchema) {
  const std::string schema = ::testing::TempDir() + "/cli_schema.json";
  std::ofstream(schema) << R"({"type":"object","properties":{"도시":{"enum":["서울","부산"]},"ok":{"type":"boolean"}},
                              "required":["도시","ok"],"additionalProperties":false})";
  for (const char* temp : {"0", "1.0"}) {
    CmdResult r = modu("run -m " + model_ + " -p 'city: ' -n 1000 -c 1024 --temp " + temp + " --json-schema " + schema);
    ASSERT_EQ(r.rc, 0) << last_stderr();
    const nlohmann::json v = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(v.is_discarded()) << r.out;
    ASSERT_TRUE(v.is_object() && v.size() == 2) << r.out;
    EXPECT_TRUE(v["도시"] == "서울" || v["도시"] == "부산") << r.out;
    EXPECT_TRUE(v["ok"].is_boolean()) << r.out;
  }
  CmdResult bad = modu("run -m " + model_ + " -p x --json-schema " + shared("testdata/vocab/ggml-vocab-gpt-2.gguf"));
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(last_stderr().find("not valid JSON"), std::string::npos) << last_stderr();
}

TEST_F(Cli, QuantizeThenRun) {
  const std::string q = ::testing::TempDir() + "/cli_tiny_q8.gguf";
  ASSERT_EQ(modu("quantize " + model_ + " " + q + " q8_0").rc, 0) << last_stderr();
  CmdResult info = modu("info --json " + q);
  auto j = nlohmann::json::parse(info.out);
  EXPECT_TRUE(j["dtypes"].contains("q8_0"));
  CmdResult r = modu("run -m " + q + " -p 'x' -n 4 --temp 0");
  EXPECT_EQ(r.rc, 0) << last_stderr();
  EXPECT_NE(modu("quantize " + model_ + " " + q + " q9_9").rc, 0);
  EXPECT_NE(last_stderr().find("valid:"), std::string::npos);
  EXPECT_NE(last_stderr().find("q4_k_m"), std::string::npos) << "the error names the mixes too";
}

// `modu quantize ... q4_k_m`: llama.cpp's recipe on an 8-layer model with 256-wide rows: attn_v and
// ffn_down in Q6_K at layers 0, 3, 6 and 7, output Q6_K, everything else Q4_K; file_type 15; it
// runs, and its logits stay near the F16 model's.
TEST_F(Cli, QuantizeMixQ4KM) {
  const std::string dir = ::testing::TempDir();
  const std::string f16 = dir + "/cli_mix_f16.gguf", q = dir + "/cli_mix_q4km.gguf";
  ASSERT_EQ(modu("init-model --preset tiny --layers 8 --d-model 256 --ff 512 --heads 4 --kv-heads 1 --type f16 --vocab-from " +
                 shared("testdata/vocab/ggml-vocab-gpt-2.gguf") + " -o " + f16).rc, 0) << last_stderr();
  ASSERT_EQ(modu("quantize " + f16 + " " + q + " q4_k_m").rc, 0) << last_stderr();
  EXPECT_NE(last_stderr().find("(matrices: 49 q4_k, 9 q6_k)"), std::string::npos) << last_stderr();
  auto g = modu::GgufFile::open(q);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g->get_int("general.file_type"), 15);
  for (int i = 0; i < 8; ++i) {
    const bool more = i == 0 || i == 3 || i == 6 || i == 7;
    for (const char* w : {"attn_v", "ffn_down"})
      EXPECT_EQ(g->tensor("blk." + std::to_string(i) + "." + w + ".weight")->dtype, more ? modu::DType::Q6_K : modu::DType::Q4_K)
          << i << " " << w;
    EXPECT_EQ(g->tensor("blk." + std::to_string(i) + ".attn_q.weight")->dtype, modu::DType::Q4_K);
  }
  EXPECT_EQ(g->tensor("output.weight")->dtype, modu::DType::Q6_K);
  EXPECT_EQ(g->tensor("blk.0.attn_norm.weight")->dtype, modu::DType::F32);
  auto a = modu::Model::load(f16), b = modu::Model::load(q);
  ASSERT_TRUE(a.ok() && b.ok());
  modu::ThreadPool pool(1);
  auto logits = [&](const modu::Model& m) {
    modu::KvCache kv(m.config(), 1, 64, modu::KvType::kF32);
    std::vector<modu::BatchToken> batch;
    for (int i = 0; i < 12; ++i) batch.push_back({(int32_t)(100 + 37 * i), (int64_t)i, 0, true});
    std::vector<float> lg;
    EXPECT_TRUE(m.forward(batch, kv, pool, lg).ok());
    return lg;
  };
  const auto la = logits(**a), lb = logits(**b);
  double mx = 0, err = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    mx = std::max(mx, (double)std::fabs(la[i]));
    err = std::max(err, (double)std::fabs(la[i] - lb[i]));
  }
  EXPECT_LT(err / mx, 0.15) << "Q4_K_M logits near F16";
  EXPECT_GT(err / mx, 0.0) << "it did quantize";
  EXPECT_EQ(modu("run -m " + q + " -p 'x' -n 4 --temp 0").rc, 0) << last_stderr();
}

// `modu imatrix` then `modu quantize --imatrix`: the file covers every matrix with the counts of
// whole windows, the quantized model records where its importances came from, differs from the one
// quantized without them, runs, and an imatrix of another model is refused.
TEST_F(Cli, ImatrixThenQuantize) {
  const std::string dir = ::testing::TempDir();
  const std::string f16 = dir + "/cli_im_f16.gguf", other = dir + "/cli_im_other.gguf", text = dir + "/cli_im.txt";
  const std::string im = dir + "/cli_im.gguf", im_other = dir + "/cli_im_other_im.gguf";
  const std::string plain = dir + "/cli_im_plain.gguf", weighted = dir + "/cli_im_weighted.gguf";
  const std::string vocab = shared("testdata/vocab/ggml-vocab-gpt-2.gguf");
  ASSERT_EQ(modu("init-model --preset tiny --layers 2 --d-model 256 --ff 512 --heads 4 --kv-heads 1 --type f16 --vocab-from " +
                 vocab + " -o " + f16).rc, 0) << last_stderr();
  ASSERT_EQ(modu("init-model --preset tiny --layers 2 --d-model 128 --ff 256 --heads 4 --kv-heads 1 --type f16 --vocab-from " +
                 vocab + " -o " + other).rc, 0) << last_stderr();
  {
    std::ofstream f(text);
    for (int i = 0; i < 20; ++i)
      f << "The quick brown fox jumps over the lazy dog " << i << ". 모두를 위한 인공지능은 누구나 쓸 수 있어야 한다.\n";
  }
  CmdResult r = modu("imatrix -m " + f16 + " -f " + text + " -o " + im + " -c 32 --chunks 4 -t 1");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  EXPECT_NE(r.out.find("4 windows of 32 tokens"), std::string::npos) << r.out;
  auto g = modu::GgufFile::open(im);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g->get_string("general.type"), "imatrix");
  EXPECT_EQ(*g->get_int("imatrix.chunk_count"), 4);
  const modu::GgufTensor* counts = g->tensor("blk.1.ffn_down.weight.counts");
  ASSERT_NE(counts, nullptr);
  EXPECT_EQ(reinterpret_cast<const float*>(counts->data)[0], 4 * 32.0f);
  auto loaded = modu::Imatrix::load(im);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  const size_t n_entries = loaded->size();
  EXPECT_GE(n_entries, (size_t)14) << "7 matrices in each of 2 layers (+ the output head)";

  ASSERT_EQ(modu("quantize " + f16 + " " + plain + " q4_k_m").rc, 0) << last_stderr();
  ASSERT_EQ(modu("quantize --imatrix " + im + " " + f16 + " " + weighted + " q4_k_m").rc, 0) << last_stderr();
  EXPECT_NE(last_stderr().find(std::to_string(n_entries) + " matrices quantized by importance"), std::string::npos)
      << last_stderr();
  auto p = modu::GgufFile::open(plain), w = modu::GgufFile::open(weighted);
  ASSERT_TRUE(p.ok() && w.ok());
  EXPECT_EQ(*w->get_string("quantize.imatrix.file"), im);
  EXPECT_EQ(*w->get_string("quantize.imatrix.dataset"), text);
  EXPECT_EQ(*w->get_int("quantize.imatrix.entries_count"), (int64_t)n_entries);
  EXPECT_EQ(*w->get_int("quantize.imatrix.chunks_count"), 4);
  EXPECT_EQ(p->find("quantize.imatrix.file"), nullptr);
  const modu::GgufTensor *qp = p->tensor("blk.0.attn_q.weight"), *qw = w->tensor("blk.0.attn_q.weight");
  ASSERT_EQ(qp->dtype, qw->dtype);
  ASSERT_EQ(qp->nbytes, qw->nbytes);
  EXPECT_NE(std::memcmp(qp->data, qw->data, qp->nbytes), 0) << "the importances changed the quantization";
  EXPECT_EQ(modu("run -m " + weighted + " -p 'x' -n 4 --temp 0").rc, 0) << last_stderr();
  // modu eval --kl-base: zero against itself, positive for the quantized file, top tokens mostly agree.
  CmdResult self = modu("eval -m " + f16 + " --kl-base " + f16 + " -f " + text + " -c 32 --json -t 1");
  ASSERT_EQ(self.rc, 0) << last_stderr();
  auto js = nlohmann::json::parse(self.out);
  EXPECT_EQ(js["kl_divergence"].get<double>(), 0.0);
  EXPECT_EQ(js["same_top1"].get<double>(), 1.0);
  CmdResult q = modu("eval -m " + weighted + " --kl-base " + f16 + " -f " + text + " -c 32 --json -t 1");
  ASSERT_EQ(q.rc, 0) << last_stderr();
  auto jq = nlohmann::json::parse(q.out);
  EXPECT_GT(jq["kl_divergence"].get<double>(), 0.0);
  EXPECT_LT(jq["kl_divergence"].get<double>(), 0.5);
  EXPECT_TRUE(jq.contains("kl_divergence_p99"));
  EXPECT_GT(jq["same_top1"].get<double>(), 0.5);
  EXPECT_EQ(modu("eval -m " + f16 + " -f " + text + " -c 32 --json -t 1").out.find("kl_divergence"), std::string::npos)
      << "no KL without --kl-base";

  ASSERT_EQ(modu("imatrix -m " + other + " -f " + text + " -o " + im_other + " -c 32 --chunks 1 -t 1").rc, 0) << last_stderr();
  EXPECT_NE(modu("quantize --imatrix " + im_other + " " + f16 + " " + plain + " q4_k_m").rc, 0);
  EXPECT_NE(last_stderr().find("another model"), std::string::npos) << last_stderr();
  EXPECT_NE(modu("quantize --imatrix " + f16 + " " + f16 + " " + plain + " q4_k_m").rc, 0) << "a model is not an imatrix";
  EXPECT_NE(last_stderr().find("no imatrix entries"), std::string::npos) << last_stderr();
}

TEST_F(Cli, BenchJson) {
  CmdResult r = modu("bench -m " + model_ + " -p 16 -n 4 -r 2 --json");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["prefill_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["decode_tokens_per_s"].get<double>(), 0);
  EXPECT_TRUE(j.contains("prefill_tokens_per_s_stddev"));
  EXPECT_TRUE(j.contains("decode_tokens_per_s_stddev"));
}

// --depth: every test starts after that many cached positions; the decode reads them back.
TEST_F(Cli, BenchDepth) {
  CmdResult r = modu("bench -m " + model_ + " -p 4 -n 2 -d 40 -r 1 --json");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["depth"].get<int>(), 40);
  EXPECT_GT(j["decode_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["decode_kv_gb_per_s"].get<double>(), 0);
  CmdResult t = modu("bench -m " + model_ + " -p 4 -n 2 -d 40 -r 1");
  ASSERT_EQ(t.rc, 0) << last_stderr();
  EXPECT_NE(t.out.find("tg2 @ d40"), std::string::npos) << t.out;
  EXPECT_NE(modu("bench -m " + model_ + " -p 4 -n 2 -d 100000000 -r 1").rc, 0);
  EXPECT_NE(last_stderr().find("lower -d"), std::string::npos) << last_stderr();
  EXPECT_NE(modu("bench -m " + model_ + " -d -3").rc, 0);
}

// A watermarked generation is detected with its key and no weights; plain text and another key
// are not.
TEST_F(Cli, WatermarkRunThenDetect) {
  const std::string dir = ::testing::TempDir();
  CmdResult r = modu("run -m " + model_ + " -p 'Hello' -n 120 --temp 1 -s 9 -t 1 --watermark-key k1 > " + dir + "/wm_on.txt");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  EXPECT_NE(last_stderr().find("watermark wm-"), std::string::npos) << last_stderr();
  r = modu("run -m " + model_ + " -p 'Hello' -n 120 --temp 1 -s 9 -t 1 > " + dir + "/wm_off.txt");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  const std::string vocab = shared("testdata/vocab/ggml-vocab-gpt-2.gguf");  // the tokenizer alone
  r = modu("detect --key k1 --tokenizer " + vocab + " --json " + dir + "/wm_on.txt");
  EXPECT_EQ(r.rc, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["watermarked"].get<bool>()) << r.out;
  EXPECT_GT(j["z"].get<double>(), 4) << r.out;
  r = modu("detect --key k1 --tokenizer " + vocab + " --json " + dir + "/wm_off.txt");
  EXPECT_EQ(r.rc, 3) << r.out;
  r = modu("detect --key k2 --tokenizer " + vocab + " --json " + dir + "/wm_on.txt");
  EXPECT_EQ(r.rc, 3) << r.out;
}

// The AI notice (stderr, in the user's language or the operator's text) and the visible label.
TEST_F(Cli, AiNoticeAndLabel) {
  CmdResult r = modu("run -m " + model_ + " -p 'Hello' -n 4 --temp 0 -t 1");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  EXPECT_NE(last_stderr().find("modu: [AI] This content was generated by artificial intelligence (AI) (model: cli_tiny.gguf)."),
            std::string::npos) << last_stderr();
  const std::string plain = r.out;
  r = modu("run -m " + model_ + " -p 'Hello' -n 4 --temp 0 -t 1 --label");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  EXPECT_EQ(r.out, "[AI-generated] " + plain);
  r = modu("run -m " + model_ + " -p 'Hello' -n 4 --temp 0 -t 1 --label --ai-notice '시범 서비스: AI 답변'");
  EXPECT_NE(last_stderr().find("modu: [AI] 시범 서비스: AI 답변"), std::string::npos) << last_stderr();
  r = {-1, ""};
  const std::string cmd = "LC_ALL=ko_KR.UTF-8 " + std::string(MODU_BIN) + " run -m " + model_ + " -p 'Hello' -n 4 --temp 0 -t 1 --label 2>" +
                          ::testing::TempDir() + "/modu_stderr.txt";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  EXPECT_EQ(pclose(p), 0);
  EXPECT_EQ(r.out, "[AI 생성] " + plain);
  EXPECT_NE(last_stderr().find("인공지능(AI)이 생성했습니다"), std::string::npos) << last_stderr();
}

// `modu detect --jsonl` scores many texts in one run, each line as its own text.
TEST_F(Cli, DetectManyTexts) {
  const std::string dir = ::testing::TempDir();
  CmdResult r = modu("run -m " + model_ + " -p 'Hi' -n 100 --temp 1 -s 3 -t 1 --watermark-key kk > " + dir + "/m1.txt");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  std::ifstream in(dir + "/m1.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  {
    std::ofstream out(dir + "/many.jsonl");
    // (A random model's bytes may not be UTF-8: JSON carries them as U+FFFD, a few tokens fewer.)
    out << nlohmann::json(ss.str()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n"
        << nlohmann::json{{"text", "plain human words, nothing more"}}.dump() << "\n";
  }
  r = modu("detect --key kk --tokenizer " + shared("testdata/vocab/ggml-vocab-gpt-2.gguf") + " --jsonl " + dir + "/many.jsonl");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  std::istringstream lines(r.out);
  std::string l1, l2;
  std::getline(lines, l1);
  std::getline(lines, l2);
  EXPECT_TRUE(nlohmann::json::parse(l1)["watermarked"].get<bool>()) << l1;
  EXPECT_FALSE(nlohmann::json::parse(l2)["watermarked"].get<bool>()) << l2;
  EXPECT_EQ(nlohmann::json::parse(l2)["line"], 2);
  {
    std::ofstream out(dir + "/bad.jsonl");
    out << "[1,2]\n";
  }
  r = modu("detect --key kk --tokenizer " + shared("testdata/vocab/ggml-vocab-gpt-2.gguf") + " --jsonl " + dir + "/bad.jsonl");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(last_stderr().find("line 1"), std::string::npos) << last_stderr();
}

// `modu audit` on a log modu serve would write; a clear error for a missing one. The agent's
// high-impact mode refuses to run unsupervised or unrecorded.
TEST_F(Cli, AuditAndHighImpactErrors) {
  CmdResult r = modu("audit verify " + ::testing::TempDir() + "/no-such-audit.jsonl");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(last_stderr().find("does not exist"), std::string::npos) << last_stderr();
  r = modu("audit show " + ::testing::TempDir() + "/x.jsonl --since yesterday");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(last_stderr().find("--since 'yesterday'"), std::string::npos) << last_stderr();
  r = modu("agent -m " + model_ + " --high-impact 'task'");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(last_stderr().find("--high-impact needs --audit-log"), std::string::npos) << last_stderr();
  r = modu("agent -m " + model_ + " --high-impact --audit-log " + ::testing::TempDir() + "/a.jsonl --approve-all 'task'");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(last_stderr().find("--approve-all is refused"), std::string::npos) << last_stderr();
}

TEST(CliTokenize, MatchesSharedExpectedIds) {
  // The first Korean case of the gpt-2 vocabulary, through the command line.
  std::ifstream in(shared("testdata/vocab/korean.inp"), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  std::string first = all.substr(0, all.find("\n__ggml_vocab_test__\n"));
  const std::string path = ::testing::TempDir() + "/cli_korean.txt";
  std::ofstream(path, std::ios::binary) << first;
  std::ifstream out(shared("testdata/vocab/ggml-vocab-gpt-2.gguf.korean.out"));
  std::string line;
  std::getline(out, line);
  std::vector<int> expected;
  std::stringstream ls(line);
  int v;
  while (ls >> v) expected.push_back(v);
  CmdResult r = modu("tokenize -m " + shared("testdata/vocab/ggml-vocab-gpt-2.gguf") + " -f " + path + " --json");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"].get<std::vector<int>>(), expected);
  std::string ids;
  for (int id : expected) {
    if (!ids.empty()) ids += ',';
    ids += std::to_string(id);
  }
  CmdResult d = modu("detokenize -m " + shared("testdata/vocab/ggml-vocab-gpt-2.gguf") + " --ids " + ids);
  EXPECT_EQ(d.out, first);
}

TEST(CliTemplate, RendersSharedCaseExactly) {
  std::ifstream in(shared("testdata/templates/Qwen-Qwen2.5-7B-Instruct.expected.json"));
  auto spec = nlohmann::ordered_json::parse(in);
  const auto& c = spec["cases"][0];
  const std::string ctx = ::testing::TempDir() + "/cli_ctx.json";
  std::ofstream(ctx) << c["context"].dump();
  CmdResult r = modu("template --template " + shared("testdata/templates/Qwen-Qwen2.5-7B-Instruct.jinja") + " --context " +
               ctx + " --now " + spec["now_utc"].get<std::string>());
  ASSERT_EQ(r.rc, 0) << last_stderr();
  EXPECT_EQ(r.out, c["expected"].get<std::string>());
}

// `modu toolcalls parse`: raw output (running on past the end of the turn) on stdin, one JSON
// object out with arguments typed by the tools' schemas.
TEST(CliToolcalls, ParsePrintsContentReasoningAndCalls) {
  const std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/tc_tools.json") << R"([{"type":"function","function":{"name":"get_weather","parameters":{
      "type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}}}}}])";
  std::ofstream(dir + "/tc_out.txt") << "<think>\n비가 오나?\n</think>\n\n확인할게요.\n<tool_call>\n<function=get_weather>\n"
                                        "<parameter=city>\n서울 \"강남\"\n</parameter>\n<parameter=days>\n3\n</parameter>\n"
                                        "</function>\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_call>";
  CmdResult r = modu("toolcalls parse --template " + shared("testdata/templates/Qwen3.5-4B.jinja") + " --tools " + dir +
                     "/tc_tools.json < " + dir + "/tc_out.txt");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["content"], "확인할게요.");
  EXPECT_EQ(j["reasoning_content"], "비가 오나?");
  ASSERT_EQ(j["tool_calls"].size(), 1u) << r.out;
  EXPECT_EQ(j["tool_calls"][0]["name"], "get_weather");
  EXPECT_EQ(j["tool_calls"][0]["arguments"], nlohmann::json::parse(R"({"city": "서울 \"강남\"", "days": 3})"));
  // Without tools, an unknown format name is an error; a plain reply is all content.
  r = modu("toolcalls parse --format nope < " + dir + "/tc_out.txt");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(last_stderr().find("nope"), std::string::npos);
  std::ofstream(dir + "/tc_plain.txt") << "Hello.";
  r = modu("toolcalls parse --template " + shared("testdata/templates/Qwen3.5-4B.jinja") + " < " + dir + "/tc_plain.txt");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::parse(R"({"content":"Hello.","reasoning_content":"","tool_calls":[]})"));
  // A template that ends turns with {{ eos_token }}: the usual EOS texts end the reply.
  std::ofstream(dir + "/tc_mistral.txt") << "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Seoul\"}</s>[INST]next[/INST]";
  r = modu("toolcalls parse --template " + shared("testdata/templates/Mistral-Small-3.2-24B-Instruct-2506.jinja") + " < " + dir +
           "/tc_mistral.txt");
  ASSERT_EQ(r.rc, 0) << last_stderr();
  EXPECT_EQ(nlohmann::json::parse(r.out),
            nlohmann::json::parse(R"({"content":"Sure.","reasoning_content":"","tool_calls":[{"name":"get_weather","arguments":{"city":"Seoul"}}]})"));
}

TEST(CliErrors, BadFilesGiveOneClearMessage) {
  const std::string bad = ::testing::TempDir() + "/cli_bad.gguf";
  std::ofstream(bad, std::ios::binary) << "GGUF\x03\x00\x00\x00garbage";
  CmdResult r = modu("run -m " + bad + " -p hi");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(last_stderr().find("corrupt"), std::string::npos) << last_stderr();
  EXPECT_EQ(r.out, "");
  CmdResult vocab_only = modu("run -m " + shared("testdata/vocab/ggml-vocab-gpt-2.gguf") + " -p hi");
  EXPECT_EQ(vocab_only.rc, 1);
  EXPECT_NE(last_stderr().find("modu:"), std::string::npos);
}

}  // namespace
