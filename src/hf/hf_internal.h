// Internal helpers of the Hugging Face folder loaders (text models in hf_model.cpp, vision towers
// in hf_vision.cpp): text files, safetensors shards, dtypes, and what the GgufFile views point into.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "modu/core/status.h"
#include "modu/hf/safetensors.h"
#include "modu/kernels/dtype.h"

namespace modu {

struct HfOwner {  // everything a folder's GgufFile tensor views point into
  std::vector<SafetensorsFile> files;
  std::vector<std::vector<uint8_t>> owned;
};

// A file's text; "" when absent and not required.
Result<std::string> read_text(const std::string& path, bool required);
// model.safetensors, or the shards model.safetensors.index.json names.
Result<std::vector<SafetensorsFile>> open_hf_shards(const std::string& dir);
Result<DType> map_dtype(const SafetensorsTensor& t, const std::string& label);
// Gemma's RMSNorm multiplies by (1 + w); GGUF stores 1 + w (llama.cpp's converter adds the 1).
std::vector<uint8_t> plus_one_f32(const SafetensorsTensor& t, DType dt, int64_t n);

}  // namespace modu
