// Hugging Face model folders (config.json, tokenizer.json, tokenizer_config.json and one or more
// *.safetensors files) presented as a GgufFile: config keys become GGUF metadata keys, tensor
// names become GGUF tensor names, weights stay in the safetensors memory maps. Also the
// HF folder -> GGUF converter behind `modu convert`.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "modu/core/status.h"
#include "modu/gguf/gguf.h"
#include "modu/models/lora.h"

namespace modu {

// Metadata key (internal, never written by convert) saying the Q/K projection rows use the
// half-split (NeoX) rotary layout although the architecture's GGUF convention is adjacent pairs.
inline constexpr const char* kHfRopeNeoxKey = "modu.hf.rope_neox";

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

// True when `path` is a directory holding config.json.
bool is_hf_folder(const std::string& path);

// Opens a Hugging Face folder as a GgufFile (tensors are views into the safetensors maps, except
// stacked MoE experts and Gemma's (1 + w) norm weights, which are materialized once).
Result<GgufFile> open_hf_folder(const std::string& dir);

// A GGUF file or a Hugging Face folder.
Result<GgufFile> open_model_path(const std::string& path);

// True when the folder's config.json has a vision_config of a supported family (LLaVA, Gemma 3,
// Idefics3 / SmolVLM).
bool hf_folder_has_vision(const std::string& dir);
// The folder's vision tower and projector as a GgufFile in llama.cpp's mmproj layout (clip.*
// metadata from vision_config and preprocessor_config.json), for vision::VisionModel::from_gguf.
Result<GgufFile> open_hf_vision_folder(const std::string& dir);

// config.json text -> `{arch}.*` and general.* metadata (errors name the config key).
Result<GgufMetadata> hf_config_metadata(const std::string& config_json, const std::string& label);

// tokenizer.json (+ tokenizer_config.json, may be empty) -> tokenizer.ggml.* metadata and
// tokenizer.chat_template. Byte-level BPE vocabularies; the pre-tokenizer regex is mapped to a
// known tokenizer.ggml.pre name. The token list is padded with "[PAD<i>]" entries to `pad_to`
// (the model's vocab_size) as llama.cpp's converter does.
Result<GgufMetadata> hf_tokenizer_metadata(const std::string& tokenizer_json, const std::string& tokenizer_config_json,
                                           const std::string& label, int64_t pad_to = 0);

// Writes `src` (typically an opened HF folder) as a GGUF file other runtimes load: llama.cpp
// tensor names and keys, Q/K rows permuted to adjacent-pair rotary for llama-convention archs,
// llama3 rope scaling as rope_freqs.weight. `type`: quantize 2-D weight matrices (F16/BF16/Q8_0/
// Q4_K/...; rows whose length is not a multiple of the block size stay F16); nullopt keeps dtypes.
Status convert_to_gguf(const GgufFile& src, const std::string& out_path, std::optional<DType> type);

// The GGUF tensor name of a Hugging Face tensor name for `arch` ("model.layers.3.self_attn.q_proj.weight"
// -> "blk.3.attn_q.weight"), as the folder loader maps it; "" for tensors the loader skips.
Result<std::string> hf_tensor_to_gguf(const std::string& arch, const std::string& hf_name);

// A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors, as `peft` saves it) as an
// adapter for a base model with metadata `base`: r and lora_alpha (use_rslora: the scale is
// alpha / sqrt(r)), module names mapped like the folder loader's tensor names, and the Q/K B rows
// permuted to adjacent-pair rotary when the base is a llama-convention GGUF (converted from HF,
// as `modu convert` and llama.cpp do) while PEFT trained on HF's half-split layout. Per-module
// rank or alpha patterns, embedding adapters and DoRA are refused with a clear error.
Result<std::shared_ptr<const LoraAdapter>> load_peft_adapter(const std::string& dir, const GgufFile& base);

// Writes `adapter` as a PEFT LoRA folder for the base with metadata `base`: adapter_config.json
// (r, lora_alpha so that alpha / r is the adapter's scale, target_modules) and
// adapter_model.safetensors (F32 lora_A [r, in] and lora_B [out, r] under base_model.model.<HF
// module>), with the Q/K B rows put back in HF's half-split order when the base is a
// llama-convention GGUF: load_peft_adapter of the folder gives back the same adapter. Adapters
// mixing ranks, or adapting tensors with no HF module name, are refused.
Status save_peft_adapter(const LoraAdapter& adapter, const GgufFile& base, const std::string& dir);

}  // namespace modu
