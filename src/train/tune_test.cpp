// Tests for LoRA tuning runs (the forward and gradients per family are in lora_model_test.cpp): a
// short run on modu-tiny lowers the held-out loss; the exported GGUF adapter, loaded by the
// inference side, gives the loss the training side computed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "modu/models/lora.h"
#include "modu/models/model.h"
#include "modu/train/tune.h"
#include "modu/tokenizer/tokenizer.h"

namespace modu::train {
namespace {

namespace fs = std::filesystem;

TEST(Tune, ModuTinyLearnsAGlossaryAndTheAdapterLoads) {
  const std::string base = std::string(MODU_SOURCE_DIR) + "/models/modu-tiny.gguf";
  const fs::path dir = fs::temp_directory_path() / ("modu_tune_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // A small domain text: public-service glossary lines, repeated with variations.
  std::string train, valid;
  const char* terms[][2] = {{"주민등록등본", "주민등록표의 전체 내용을 옮겨 적은 증명서"},
                            {"가족관계증명서", "가족의 인적 사항을 증명하는 서류"},
                            {"전입신고", "새 주소로 이사한 뒤 14일 안에 하는 신고"},
                            {"정부24", "민원 서류를 온라인으로 신청하고 발급받는 누리집"}};
  for (int rep = 0; rep < 12; ++rep)
    for (auto& t : terms) train += std::string("용어: ") + t[0] + "\n뜻: " + t[1] + ".\n\n";
  for (auto& t : terms) valid += std::string("용어: ") + t[0] + "\n뜻: " + t[1] + ".\n\n";
  std::ofstream(dir / "train.txt") << train;
  std::ofstream(dir / "valid.txt") << valid;
  TuneConfig c;
  c.base = base;
  c.train_text = (dir / "train.txt").string();
  c.valid_text = (dir / "valid.txt").string();
  c.out = (dir / "glossary.gguf").string();
  c.rank = 4;
  c.alpha = 8;
  c.ctx = 48;
  c.optim.steps = 40;
  c.optim.batch = 2;
  c.optim.lr = 3e-3;
  c.optim.warmup = 4;
  c.optim.weight_decay = 0;
  c.optim.checkpoint_every = 20;
  TuneOptions opt;
  opt.progress = false;
  opt.threads = 2;
  auto r = run_tune(c, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_LT(r->second, r->first - 0.3) << "held-out loss " << r->first << " -> " << r->second;
  EXPECT_TRUE(fs::exists(dir / "glossary.gguf.tune" / "loss.svg"));
  // The exported adapter on the inference side: the mean loss of the held-out window equals the
  // training side's with the same adapter.
  auto tb = load_lora_base(base);
  ASSERT_TRUE(tb.ok());
  auto set = make_lora_set(**tb, c.targets, c.rank, c.alpha);
  ASSERT_TRUE(set.ok());
  auto ad = LoraAdapter::load(c.out);
  ASSERT_TRUE(ad.ok()) << ad.status().to_string();
  std::vector<float> lora(set->total);
  for (const auto& sl : set->slots) {
    const LoraPair& p = ad->get()->pairs().at(sl.name);
    std::copy(p.a.begin(), p.a.end(), lora.begin() + (long)sl.a_offset);
    std::copy(p.b.begin(), p.b.end(), lora.begin() + (long)sl.b_offset);
  }
  auto m = Model::load(base);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->add_lora(*ad, 1.0f).ok());
  auto toks = tokenize_corpus(base, c.valid_text);
  ASSERT_TRUE(toks.ok());
  const int64_t len = 32;
  ASSERT_GT((int64_t)toks->size(), len + 1);
  std::vector<int32_t> x(toks->begin(), toks->begin() + len), y(toks->begin() + 1, toks->begin() + len + 1);
  ThreadPool pool(2);
  const double train_side = lora_loss_grad<float>(**tb, *set, lora.data(), nullptr, x.data(), y.data(), 1, len, pool);
  KvCache kv((*m)->config(), 1, 64, KvType::kF32);
  std::vector<BatchToken> batch;
  for (int64_t i = 0; i < len; ++i) batch.push_back({x[i], i, 0, true});
  std::vector<float> logits;
  ASSERT_TRUE((*m)->forward(batch, kv, pool, logits).ok());
  const int64_t nv = (*m)->config().n_vocab;
  double ce = 0;
  for (int64_t i = 0; i < len; ++i) {
    const float* l = logits.data() + i * nv;
    double mx = l[0], sum = 0;
    for (int64_t v = 0; v < nv; ++v) mx = std::max(mx, (double)l[v]);
    for (int64_t v = 0; v < nv; ++v) sum += std::exp(l[v] - mx);
    ce += std::log(sum) + mx - l[y[i]];
  }
  EXPECT_NEAR(ce / len, train_side, 2e-3);
  fs::remove_all(dir);
}

// Chat JSON Lines: rendered with modu-tiny's ChatML template; only the assistant turns (content
// and end marker) are targets; tuning on them lowers their held-out loss.
TEST(Tune, ChatDataTrainsOnAssistantTokensOnly) {
  const std::string base = std::string(MODU_SOURCE_DIR) + "/models/modu-tiny.gguf";
  const fs::path dir = fs::temp_directory_path() / ("modu_tune_chat_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "chat.jsonl");
    for (int i = 0; i < 24; ++i)
      out << R"({"messages": [{"role": "system", "content": "민원 안내 도우미입니다."}, {"role": "user", "content": "전입신고는 언제 하나요? )" << i
          << R"("}, {"role": "assistant", "content": "이사한 날부터 14일 안에 하면 됩니다."}, {"role": "user", "content": "어디서요?"}, )"
          << R"({"role": "assistant", "content": "정부24나 주민센터에서 할 수 있습니다."}]})" << "\n";
    out << "\n";  // blank lines are allowed
  }
  auto ct = tokenize_chat(base, (dir / "chat.jsonl").string());
  ASSERT_TRUE(ct.ok()) << ct.status().to_string();
  EXPECT_EQ(ct->conversations, 24);
  ASSERT_EQ(ct->tokens.size(), ct->predict.size());
  int64_t n_pred = 0;
  for (uint8_t p : ct->predict) n_pred += p;
  EXPECT_EQ(n_pred, ct->assistant_tokens);
  // The first conversation's predicted tokens are exactly its two answers with their end markers.
  auto m = Model::load(base);
  ASSERT_TRUE(m.ok());
  auto tok = Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  std::vector<std::string> answers;  // runs of consecutive predicted tokens, decoded
  std::vector<int32_t> run;
  for (size_t i = 0; i < ct->tokens.size() && answers.size() < 4; ++i) {
    if (ct->predict[i]) {
      run.push_back(ct->tokens[i]);
    } else if (!run.empty()) {
      answers.push_back((*tok)->decode(run, true));
      run.clear();
    }
  }
  ASSERT_GE(answers.size(), 2u);
  EXPECT_EQ(answers[0], "이사한 날부터 14일 안에 하면 됩니다.<|im_end|>\n");
  EXPECT_EQ(answers[1], "정부24나 주민센터에서 할 수 있습니다.<|im_end|>\n");
  std::string predicted;
  for (const auto& a : answers) predicted += a;
  EXPECT_EQ(predicted.find("전입신고"), std::string::npos);
  // Tuning on the answers lowers their loss.
  TuneConfig c;
  c.base = base;
  c.train_text = c.valid_text = (dir / "chat.jsonl").string();
  c.out = (dir / "chat.gguf").string();
  c.rank = 4;
  c.ctx = 64;
  c.optim.steps = 25;
  c.optim.batch = 2;
  c.optim.lr = 3e-3;
  c.optim.warmup = 3;
  c.optim.weight_decay = 0;
  TuneOptions opt;
  opt.progress = false;
  opt.threads = 2;
  auto r = run_tune(c, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_LT(r->second, r->first - 0.5) << r->first << " -> " << r->second;
  // Bad lines name themselves.
  std::ofstream(dir / "bad.jsonl") << R"({"messages": [{"role": "user", "content": "x"}]})" << "\n" << "[1, 2]\n";
  auto bad = tokenize_chat(base, (dir / "bad.jsonl").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.jsonl:2"), std::string::npos) << bad.status().to_string();
  fs::remove_all(dir);
}

// A run killed (SIGKILL) at two different moments and resumed writes the same adapter, byte for
// byte, as an uninterrupted one.
TEST(Tune, KillNineThenResumeIsBitIdentical) {
  const fs::path dir = fs::temp_directory_path() / ("modu_tune_kill_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string text;
  for (int i = 0; i < 30; ++i) text += "민원 서류는 정부24에서 신청합니다. 번호 " + std::to_string(i) + ".\n\n";
  std::ofstream(dir / "t.txt") << text;
  auto config = [&](const std::string& name) {
    TuneConfig c;
    c.base = std::string(MODU_SOURCE_DIR) + "/models/modu-tiny.gguf";
    c.train_text = (dir / "t.txt").string();
    c.out = (dir / (name + ".gguf")).string();
    c.rank = 4;
    c.ctx = 32;
    c.optim.steps = 24;
    c.optim.batch = 2;
    c.optim.warmup = 3;
    c.optim.weight_decay = 0;
    c.optim.checkpoint_every = 1;
    return c;
  };
  TuneOptions o;
  o.progress = false;
  o.threads = 2;
  ASSERT_TRUE(run_tune(config("a"), o).ok());
  // Gradient accumulation (two micro-batches of one sequence per step) trains too: the mean loss
  // of the last four steps is below that of the first four.
  {
    TuneConfig acc = config("acc");
    acc.optim.batch = 1;
    acc.accum = 2;
    ASSERT_TRUE(run_tune(acc, o).ok());
    std::ifstream csv(acc.out + ".tune/loss.csv");
    std::string line;
    std::vector<double> losses;
    std::getline(csv, line);  // header
    while (std::getline(csv, line)) losses.push_back(std::stod(line.substr(line.find(',') + 1)));
    ASSERT_EQ(losses.size(), 24u);
    double head = 0, tail = 0;
    for (int i = 0; i < 4; ++i) head += losses[i], tail += losses[losses.size() - 1 - i];
    EXPECT_LT(tail, head);
  }
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string want = slurp((dir / "a.gguf").string());
  ASSERT_FALSE(want.empty());
  for (int delay_ms : {150, 400}) {
    const TuneConfig b = config("b");
    fs::remove_all(b.out + ".tune");
    fs::remove(b.out);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      (void)run_tune(b, o);
      _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    TuneOptions resume = o;
    resume.resume = true;
    ASSERT_TRUE(run_tune(b, resume).ok());
    EXPECT_EQ(slurp(b.out), want) << "killed after " << delay_ms << " ms";
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace modu::train
