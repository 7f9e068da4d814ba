// Training config (JSON) and GGUF export of a trained model as arch "llama" with standard names.
#include <nlohmann/json.hpp>

#include "modu/gguf/gguf.h"
#include "modu/train/model.h"
#include "modu/train/trainer.h"

namespace modu::train {

Status add_model_to_gguf(GgufWriter& w, const ModelDims& d, const Layout& L, const float* params,
                         const std::string& name) {
  const std::string a = "llama.";
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("general.name", GgufValue::string(name));
  w.set("general.file_type", GgufValue::u32(0));
  w.set(a + "context_length", GgufValue::u32((uint32_t)d.n_ctx));
  w.set(a + "embedding_length", GgufValue::u32((uint32_t)d.n_embd));
  w.set(a + "block_count", GgufValue::u32((uint32_t)d.n_layer));
  w.set(a + "feed_forward_length", GgufValue::u32((uint32_t)d.n_ff));
  w.set(a + "attention.head_count", GgufValue::u32((uint32_t)d.n_head));
  w.set(a + "attention.head_count_kv", GgufValue::u32((uint32_t)d.n_head_kv));
  w.set(a + "attention.key_length", GgufValue::u32((uint32_t)d.head_dim));
  w.set(a + "attention.value_length", GgufValue::u32((uint32_t)d.head_dim));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(d.rms_eps));
  w.set(a + "rope.freq_base", GgufValue::f32(d.rope_theta));
  w.set(a + "rope.dimension_count", GgufValue::u32((uint32_t)d.head_dim));
  w.set(a + "vocab_size", GgufValue::u32((uint32_t)d.n_vocab));
  for (const ParamTensor& t : L.tensors)
    MODU_RETURN_IF_ERROR(w.add_tensor_f32(t.name, DType::F32, t.shape, params + t.offset).with_context(t.name));
  return Status::Ok();
}

Result<TrainConfig> parse_train_config(const std::string& text) {
  TrainConfig c;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    auto get = [&](const char* key, auto& dst) {
      if (j.contains(key)) dst = j.at(key).get<std::decay_t<decltype(dst)>>();
    };
    get("name", c.name); get("tokenizer", c.tokenizer); get("train_text", c.train_text); get("out_dir", c.out_dir);
    get("steps", c.steps); get("batch", c.batch); get("lr", c.lr); get("min_lr_ratio", c.min_lr_ratio);
    get("warmup", c.warmup); get("weight_decay", c.weight_decay); get("beta1", c.beta1); get("beta2", c.beta2);
    get("adam_eps", c.adam_eps); get("grad_clip", c.grad_clip); get("seed", c.seed);
    get("checkpoint_every", c.checkpoint_every); get("log_every", c.log_every);
    for (const auto& [k, v] : j.items()) {
      static const char* known[] = {"name", "tokenizer", "train_text", "out_dir", "steps", "batch", "lr",
                                    "min_lr_ratio", "warmup", "weight_decay", "beta1", "beta2", "adam_eps",
                                    "grad_clip", "seed", "checkpoint_every", "log_every", "model", "comment"};
      if (std::find(std::begin(known), std::end(known), k) == std::end(known))
        return invalid_argument("unknown config key '" + k + "'");
    }
    if (j.contains("model")) {
      const auto& m = j.at("model");
      ModelDims& d = c.model;
      const std::pair<const char*, int64_t*> ints[] = {{"n_vocab", &d.n_vocab}, {"n_embd", &d.n_embd},
          {"n_layer", &d.n_layer}, {"n_head", &d.n_head}, {"n_head_kv", &d.n_head_kv}, {"head_dim", &d.head_dim},
          {"n_ff", &d.n_ff}, {"n_ctx", &d.n_ctx}};
      d.n_vocab = 0;
      for (const auto& [k, p] : ints)
        if (m.contains(k)) *p = m.at(k).get<int64_t>();
      if (m.contains("rope_theta")) d.rope_theta = m.at("rope_theta").get<float>();
      if (m.contains("rms_eps")) d.rms_eps = m.at("rms_eps").get<float>();
    }
  } catch (const std::exception& e) {
    return invalid_argument(std::string("training config: ") + e.what());
  }
  if (c.tokenizer.empty() || c.train_text.empty() || c.out_dir.empty())
    return invalid_argument("training config needs \"tokenizer\", \"train_text\" and \"out_dir\"");
  if (c.steps < 1 || c.batch < 1 || c.warmup < 1 || c.checkpoint_every < 1 || c.log_every < 1)
    return invalid_argument("steps, batch, warmup, checkpoint_every and log_every must be >= 1");
  return c;
}

std::string train_config_json(const TrainConfig& c) {
  const ModelDims& d = c.model;
  nlohmann::ordered_json j;
  j["name"] = c.name;
  j["model"] = {{"n_vocab", d.n_vocab}, {"n_embd", d.n_embd}, {"n_layer", d.n_layer}, {"n_head", d.n_head},
                {"n_head_kv", d.n_head_kv}, {"head_dim", d.head_dim}, {"n_ff", d.n_ff}, {"n_ctx", d.n_ctx},
                {"rope_theta", d.rope_theta}, {"rms_eps", d.rms_eps}};
  j["tokenizer"] = c.tokenizer; j["train_text"] = c.train_text; j["out_dir"] = c.out_dir;
  j["steps"] = c.steps; j["batch"] = c.batch; j["lr"] = c.lr; j["min_lr_ratio"] = c.min_lr_ratio;
  j["warmup"] = c.warmup; j["weight_decay"] = c.weight_decay; j["beta1"] = c.beta1; j["beta2"] = c.beta2;
  j["adam_eps"] = c.adam_eps; j["grad_clip"] = c.grad_clip; j["seed"] = c.seed;
  j["checkpoint_every"] = c.checkpoint_every; j["log_every"] = c.log_every;
  return j.dump(2) + "\n";
}

}  // namespace modu::train
