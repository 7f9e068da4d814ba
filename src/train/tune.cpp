// LoRA fine-tuning: the frozen base of any dtype plus s B A per target matrix (lora_model.cpp
// computes the loss and the adapter's gradient), AdamW with the pretraining schedule, checkpoints
// with exact resume, held-out loss, GGUF export.
#include "modu/train/tune.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "logplot.h"
#include "modu/gguf/gguf.h"
#include "modu/kernels/dtype.h"
#include "modu/models/config.h"
#include "modu/chat/chat_template.h"
#include "modu/tokenizer/tokenizer.h"
#include <fstream>
#include <nlohmann/json.hpp>

namespace modu::train {

ModelDims tune_dims(const LoraBase& base) {
  const ModelConfig& c = base.cfg;
  ModelDims d;
  d.n_vocab = c.n_vocab;
  d.n_embd = c.n_embd;
  d.n_layer = c.n_layer;
  d.n_head = c.n_head;
  d.n_head_kv = c.n_head_kv;
  d.head_dim = c.head_dim;
  d.n_ff = c.n_ff;
  d.n_ctx = c.n_ctx_train;
  d.rope_theta = c.rope_theta;
  d.rms_eps = c.rms_eps;
  return d;
}

std::vector<float> init_lora(const LoraSet& s, uint64_t seed) {
  std::vector<float> v(s.total, 0.0f);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const LoraSlot& sl : s.slots)
    for (int64_t i = 0; i < s.rank * sl.cols; ++i) v[sl.a_offset + i] = nd(rng) / std::sqrt((float)sl.cols);
  return v;
}

Status write_lora_gguf(const std::string& path, const std::string& arch, const LoraSet& s, const float* lora) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string(arch));
  w.set("general.type", GgufValue::string("adapter"));
  w.set("general.name", GgufValue::string("modu tune"));
  w.set("adapter.type", GgufValue::string("lora"));
  w.set("adapter.lora.alpha", GgufValue::f32(s.alpha));
  for (const LoraSlot& sl : s.slots) {
    MODU_RETURN_IF_ERROR(w.add_tensor_f32(sl.name + ".lora_a", DType::F32, {sl.cols, s.rank}, lora + sl.a_offset));
    MODU_RETURN_IF_ERROR(w.add_tensor_f32(sl.name + ".lora_b", DType::F32, {s.rank, sl.rows}, lora + sl.b_offset));
  }
  return w.write(path);
}

Result<ChatTokens> tokenize_chat(const std::string& model_gguf, const std::string& jsonl_path) {
  MODU_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(model_gguf));
  MODU_ASSIGN_OR_RETURN(auto tok, Tokenizer::from_gguf(f));
  MODU_ASSIGN_OR_RETURN(std::string src, f.get_string("tokenizer.chat_template", std::string()));
  if (src.empty()) return invalid_argument(model_gguf + " has no chat template, which chat tuning renders conversations with");
  MODU_ASSIGN_OR_RETURN(auto tmpl, jinja::Template::parse(src));
  std::ifstream in(jsonl_path);
  if (!in) return not_found("cannot read " + jsonl_path);
  chat::ChatTemplateInputs base_in;
  if (tok->bos_id() >= 0) base_in.bos_token = tok->token_text(tok->bos_id());
  if (tok->eos_id() >= 0) base_in.eos_token = tok->token_text(tok->eos_id());
  auto encode = [&](const std::string& text) {
    const bool has_bos = !base_in.bos_token.empty() && text.rfind(base_in.bos_token, 0) == 0;
    return tok->encode(text, tok->add_bos() && !has_bos, /*parse_special=*/true);
  };
  auto render = [&](const nlohmann::ordered_json& msgs, bool gen) {
    chat::ChatTemplateInputs ci = base_in;
    ci.messages = msgs;
    ci.add_generation_prompt = gen;
    return chat::render_chat_template(tmpl, ci);
  };
  ChatTokens out;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = jsonl_path + ":" + std::to_string(line_no);
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
      return invalid_argument(where + ": expected {\"messages\": [{\"role\": ..., \"content\": ...}, ...]}");
    const auto& msgs = j["messages"];
    MODU_ASSIGN_OR_RETURN(std::string full_text, render(msgs, false));
    const std::vector<int32_t> full = encode(full_text);
    std::vector<uint8_t> pred(full.size(), 0);
    for (size_t i = 0; i < msgs.size(); ++i) {
      if (!msgs[i].is_object() || msgs[i].value("role", std::string()) != "assistant") continue;
      nlohmann::ordered_json before = nlohmann::ordered_json::array(), through = nlohmann::ordered_json::array();
      for (size_t k = 0; k < i; ++k) before.push_back(msgs[k]);
      through = before;
      through.push_back(msgs[i]);
      MODU_ASSIGN_OR_RETURN(std::string a, render(before, true));
      MODU_ASSIGN_OR_RETURN(std::string b, render(through, false));
      const std::vector<int32_t> ta = encode(a), tb = encode(b);
      // The turn's tokens are those of `through` after `before` + generation prompt; both must be
      // prefixes of the whole conversation's tokens (true at the special-token boundaries chat
      // templates put between turns).
      auto is_prefix = [&](const std::vector<int32_t>& p) {
        return p.size() <= full.size() && std::equal(p.begin(), p.end(), full.begin());
      };
      if (!is_prefix(ta) || !is_prefix(tb) || tb.size() < ta.size())
        return invalid_argument(where + ": the chat template renders assistant turn " + std::to_string(i) +
                                " so that its tokens cannot be told apart from the rest");
      for (size_t p = ta.size(); p < tb.size(); ++p) pred[p] = 1;
      out.assistant_tokens += (int64_t)(tb.size() - ta.size());
    }
    out.tokens.insert(out.tokens.end(), full.begin(), full.end());
    out.predict.insert(out.predict.end(), pred.begin(), pred.end());
    ++out.conversations;
  }
  if (out.assistant_tokens == 0) return invalid_argument(jsonl_path + " has no assistant turns to learn from");
  return out;
}

namespace {

bool is_jsonl(const std::string& path) { return path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0; }

// The tokens of a text file, or of chat JSON Lines with their predict mask.
Result<ChatTokens> load_data(const std::string& base, const std::string& path) {
  if (is_jsonl(path)) return tokenize_chat(base, path);
  MODU_ASSIGN_OR_RETURN(std::vector<int32_t> t, tokenize_corpus(base, path));
  ChatTokens c;
  c.tokens = std::move(t);
  return c;
}

std::string fmt_secs(double s) {
  char b[32];
  if (s < 90) std::snprintf(b, sizeof b, "%.0fs", s);
  else std::snprintf(b, sizeof b, "%dm%02ds", (int)(s / 60), (int)s % 60);
  return b;
}

// Mean loss over consecutive windows of `len` + 1 tokens (at most 32 of them), counting only
// predicted positions when the data has a mask (windows without any are skipped).
double eval_loss(const LoraBase& b, const LoraSet& s, const std::vector<float>& lora, const ChatTokens& data, int64_t len,
                 ThreadPool& pool) {
  double sum = 0;
  int n = 0;
  const auto& d = data.tokens;
  for (size_t off = 0; off + (size_t)len + 1 <= d.size() && n < 32; off += (size_t)len) {
    std::vector<int32_t> x(d.begin() + (long)off, d.begin() + (long)off + len), y(d.begin() + (long)off + 1, d.begin() + (long)off + len + 1);
    bool any = data.predict.empty();
    for (int64_t i = 0; i < len && !data.predict.empty(); ++i) {
      if (!data.predict[off + (size_t)i + 1]) y[(size_t)i] = -1;
      else any = true;
    }
    if (!any) continue;
    sum += lora_loss_grad<float>(b, s, lora.data(), nullptr, x.data(), y.data(), 1, len, pool);
    ++n;
  }
  return n ? sum / n : std::nan("");
}

}  // namespace

Result<std::pair<double, double>> run_tune(TuneConfig c, const TuneOptions& opt) {
  namespace fs = std::filesystem;
  MODU_ASSIGN_OR_RETURN(std::unique_ptr<LoraBase> based, load_lora_base(c.base, c.ctx));
  const LoraBase& base = *based;
  const ModelDims dims = tune_dims(base);
  const int64_t len = c.ctx > 0 ? std::min(c.ctx, dims.n_ctx) : dims.n_ctx;
  MODU_ASSIGN_OR_RETURN(LoraSet set, make_lora_set(base, c.targets, c.rank, c.alpha));
  MODU_ASSIGN_OR_RETURN(ChatTokens train_data, load_data(c.base, c.train_text));
  const std::vector<int32_t>& data = train_data.tokens;
  const std::vector<uint8_t>* predict = train_data.predict.empty() ? nullptr : &train_data.predict;
  ChatTokens valid;
  if (!c.valid_text.empty()) {
    MODU_ASSIGN_OR_RETURN(valid, load_data(c.base, c.valid_text));
  }
  if ((int64_t)data.size() < len + 2) return invalid_argument(c.train_text + " has fewer tokens than one training window");
  if (predict)
    std::fprintf(stderr, "modu tune: %lld conversations, %lld assistant tokens of %zu (the loss counts only those)\n",
                 (long long)train_data.conversations, (long long)train_data.assistant_tokens, data.size());
  if (c.out_dir.empty()) c.out_dir = c.out + ".tune";
  std::error_code ec;
  fs::create_directories(c.out_dir, ec);
  if (ec) return io_error("cannot create " + c.out_dir + ": " + ec.message());
  const std::string ckpt = c.out_dir + "/checkpoint.bin", csv = c.out_dir + "/loss.csv";
  TrainConfig& o = c.optim;
  ThreadPool pool(opt.threads);
  TrainState st;
  if (opt.resume && fs::exists(ckpt)) {
    MODU_ASSIGN_OR_RETURN(st, load_checkpoint(ckpt, dims, set.total));
    std::fprintf(stderr, "modu tune: resuming at step %lld\n", (long long)st.step);
  } else {
    st.params = init_lora(set, o.seed);
    st.m.assign(set.total, 0.0f);
    st.v.assign(set.total, 0.0f);
  }
  LossLog log;
  log.load(csv, st.step);
  const double before = valid.tokens.empty() ? std::nan("") : eval_loss(base, set, st.params, valid, len, pool);
  if (!valid.tokens.empty()) std::fprintf(stderr, "modu tune: held-out loss %.4f at step %lld\n", before, (long long)st.step);
  std::fprintf(stderr, "modu tune: %s, rank %lld, alpha %g, %zu matrices, %.2fM adapter parameters (base frozen as %s), %zu tokens\n",
               base.cfg.arch.name.c_str(), (long long)set.rank, set.alpha, set.slots.size(), set.total / 1e6,
               base.matrix_dtypes().c_str(), data.size());
  const bool tty = isatty(2);
  const int64_t tok_per_step = o.batch * len * std::max<int64_t>(1, c.accum);
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first = st.step;
  std::vector<int32_t> x, y;
  const int64_t accum = std::max<int64_t>(1, c.accum);
  std::vector<float> g(set.total), gj(accum > 1 ? set.total : 0);
  while (st.step < o.steps) {
    const auto t0 = std::chrono::steady_clock::now();
    // Gradient accumulation: the mean over `accum` micro-batches, each drawn from its own seed.
    double loss = 0;
    std::fill(g.begin(), g.end(), 0.0f);
    for (int64_t j = 0; j < accum; ++j) {
      sample_batch(data, o.seed + (uint64_t)j * 0x9E3779B97F4A7C15ull, st.step, o.batch, len, x, y, predict);
      loss += lora_loss_grad<float>(base, set, st.params.data(), accum == 1 ? g.data() : gj.data(), x.data(), y.data(), o.batch,
                                    len, pool) / (double)accum;
      if (accum > 1)
        for (size_t i = 0; i < set.total; ++i) g[i] += gj[i] / (float)accum;
    }
    if (!std::isfinite(loss)) return internal_error("loss is not finite at step " + std::to_string(st.step));
    double norm = 0;
    for (float v : g) norm += (double)v * v;
    norm = std::sqrt(norm);
    const float clip = o.grad_clip > 0 && norm > o.grad_clip ? (float)(o.grad_clip / norm) : 1.0f;
    const double lr = lr_at(o, st.step);
    const int64_t t = st.step + 1;
    const float b1 = (float)o.beta1, b2 = (float)o.beta2;
    const float bc1 = (float)(1.0 - std::pow(o.beta1, (double)t)), bc2 = (float)(1.0 - std::pow(o.beta2, (double)t));
    for (size_t i = 0; i < set.total; ++i) {
      const float gi = g[i] * clip;
      st.m[i] = b1 * st.m[i] + (1 - b1) * gi;
      st.v[i] = b2 * st.v[i] + (1 - b2) * gi * gi;
      const float upd = (st.m[i] / bc1) / (std::sqrt(st.v[i] / bc2) + (float)o.adam_eps);
      st.params[i] -= (float)lr * (upd + (float)o.weight_decay * st.params[i]);
    }
    ++st.step;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.elapsed_s += dt;
    log.add({st.step, loss, lr, norm, tok_per_step / dt, st.elapsed_s});
    const double run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    const double per_step = run_s / (double)(st.step - first);
    if (opt.progress && (tty || st.step % o.log_every == 0 || st.step == o.steps)) {
      const int width = 24, filled = (int)(width * st.step / std::max<int64_t>(1, o.steps));
      std::string bar(filled, '#');
      bar.resize(width, '.');
      std::fprintf(stderr, "%s[%s] step %lld/%lld  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %s%s", tty ? "\r" : "",
                   bar.c_str(), (long long)st.step, (long long)o.steps, loss, lr, norm, tok_per_step / per_step,
                   fmt_secs(per_step * (double)(o.steps - st.step)).c_str(), tty ? "  " : "\n");
    }
    if (c.eval_every > 0 && st.step % c.eval_every == 0 && !valid.tokens.empty())
      std::fprintf(stderr, "%smodu tune: held-out loss %.4f at step %lld\n", tty ? "\n" : "",
                   eval_loss(base, set, st.params, valid, len, pool), (long long)st.step);
    if (st.step % o.checkpoint_every == 0 || st.step == o.steps) {
      MODU_RETURN_IF_ERROR(save_checkpoint(ckpt, dims, st));
      MODU_RETURN_IF_ERROR(log.save(csv));
      MODU_RETURN_IF_ERROR(write_loss_svg(log, c.out_dir + "/loss.svg", "modu tune"));
    }
  }
  if (tty && opt.progress) std::fprintf(stderr, "\n");
  const double after = valid.tokens.empty() ? std::nan("") : eval_loss(base, set, st.params, valid, len, pool);
  if (!valid.tokens.empty()) std::fprintf(stderr, "modu tune: held-out loss %.4f -> %.4f\n", before, after);
  MODU_RETURN_IF_ERROR(write_lora_gguf(c.out, base.cfg.arch.name, set, st.params.data()));
  std::fprintf(stderr, "modu tune: wrote %s (%s of training)\n", c.out.c_str(), fmt_secs(st.elapsed_s).c_str());
  return std::make_pair(before, after);
}

}  // namespace modu::train
