// GGUF metadata values (GgufValue), their conversions, and GgufFile's typed metadata/tensor lookups.
#include <cmath>
#include <limits>
#include <string>

#include "modu/gguf/gguf.h"

namespace modu {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "uint8";
    case GgufType::INT8: return "int8";
    case GgufType::UINT16: return "uint16";
    case GgufType::INT16: return "int16";
    case GgufType::UINT32: return "uint32";
    case GgufType::INT32: return "int32";
    case GgufType::FLOAT32: return "float32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "uint64";
    case GgufType::INT64: return "int64";
    case GgufType::FLOAT64: return "float64";
  }
  return "unknown";
}

namespace {

bool is_unsigned_type(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64;
}
bool is_signed_type(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}

// "string", "array of uint32", "array of array of string"...
std::string describe_type(const GgufValue& v) {
  if (!v.is_array()) return gguf_type_name(v.type());
  std::string s = "array of ";
  s += gguf_type_name(v.array_type());
  return s;
}

}  // namespace

// Scalars: unsigned integers live in the uint64_t alternative, signed ones in int64_t, floats in
// double (float -> double -> float round-trips exactly), bool in bool.
#define MODU_GGUF_SCALAR(fn, ctype, tag, store)  \
  GgufValue GgufValue::fn(ctype v) {             \
    GgufValue r;                                 \
    r.type_ = GgufType::tag;                     \
    r.v_ = static_cast<store>(v);                \
    return r;                                    \
  }
MODU_GGUF_SCALAR(u8, uint8_t, UINT8, uint64_t)
MODU_GGUF_SCALAR(i8, int8_t, INT8, int64_t)
MODU_GGUF_SCALAR(u16, uint16_t, UINT16, uint64_t)
MODU_GGUF_SCALAR(i16, int16_t, INT16, int64_t)
MODU_GGUF_SCALAR(u32, uint32_t, UINT32, uint64_t)
MODU_GGUF_SCALAR(i32, int32_t, INT32, int64_t)
MODU_GGUF_SCALAR(u64, uint64_t, UINT64, uint64_t)
MODU_GGUF_SCALAR(i64, int64_t, INT64, int64_t)
MODU_GGUF_SCALAR(f32, float, FLOAT32, double)
MODU_GGUF_SCALAR(f64, double, FLOAT64, double)
MODU_GGUF_SCALAR(boolean, bool, BOOL, bool)
#undef MODU_GGUF_SCALAR

GgufValue GgufValue::string(std::string v) {
  GgufValue r;
  r.type_ = GgufType::STRING;
  r.v_ = std::move(v);
  return r;
}

GgufValue GgufValue::array(GgufType elem_type, std::vector<GgufValue> elems) {
  // A mixed-type array cannot be represented in GGUF: building one is a bug in the caller.
  for (const GgufValue& e : elems)
    MODU_CHECK_MSG(e.type() == elem_type, std::string("GgufValue::array: element of type ") +
                                              gguf_type_name(e.type()) + " in array of " +
                                              gguf_type_name(elem_type));
  GgufValue r;
  r.type_ = GgufType::ARRAY;
  r.array_type_ = elem_type;
  r.elems_ = std::move(elems);
  return r;
}

GgufValue GgufValue::string_array(std::vector<std::string> v) {
  std::vector<GgufValue> elems;
  elems.reserve(v.size());
  for (auto& s : v) elems.push_back(string(std::move(s)));
  return array(GgufType::STRING, std::move(elems));
}

GgufValue GgufValue::f32_array(const std::vector<float>& v) {
  std::vector<GgufValue> elems;
  elems.reserve(v.size());
  for (float x : v) elems.push_back(f32(x));
  return array(GgufType::FLOAT32, std::move(elems));
}

GgufValue GgufValue::i32_array(const std::vector<int32_t>& v) {
  std::vector<GgufValue> elems;
  elems.reserve(v.size());
  for (int32_t x : v) elems.push_back(i32(x));
  return array(GgufType::INT32, std::move(elems));
}

bool GgufValue::is_integer() const { return is_unsigned_type(type_) || is_signed_type(type_); }
bool GgufValue::is_float() const { return type_ == GgufType::FLOAT32 || type_ == GgufType::FLOAT64; }

std::optional<int64_t> GgufValue::as_int() const {
  if (is_signed_type(type_)) return std::get<int64_t>(v_);
  if (is_unsigned_type(type_)) {
    const uint64_t u = std::get<uint64_t>(v_);
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  return std::nullopt;
}

std::optional<uint64_t> GgufValue::as_uint() const {
  if (is_unsigned_type(type_)) return std::get<uint64_t>(v_);
  if (is_signed_type(type_)) {
    const int64_t i = std::get<int64_t>(v_);
    if (i < 0) return std::nullopt;
    return static_cast<uint64_t>(i);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::as_float() const {
  if (is_float()) return std::get<double>(v_);
  if (is_signed_type(type_)) return static_cast<double>(std::get<int64_t>(v_));
  if (is_unsigned_type(type_)) return static_cast<double>(std::get<uint64_t>(v_));
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ == GgufType::BOOL) return std::get<bool>(v_);
  return std::nullopt;
}

const std::string* GgufValue::as_string() const {
  if (type_ != GgufType::STRING) return nullptr;
  return &std::get<std::string>(v_);
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // the reader and writer reject shapes whose product overflows
  return n;
}

// ---------------------------------------------------------------------------------------------
// GgufFile lookups.

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::tensor(std::string_view tensor_name) const {
  auto it = tensor_index_.find(tensor_name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Status missing_key(const std::string& file, std::string_view key) {
  return not_found(file + ": metadata key '" + std::string(key) + "' not found");
}

Status wrong_type(const std::string& file, std::string_view key, const GgufValue& v, const char* expected) {
  return corrupt(file + ": metadata key '" + std::string(key) + "' has type " + describe_type(v) +
                 ", expected " + expected);
}

}  // namespace

Result<int64_t> GgufFile::get_int(std::string_view key, std::optional<int64_t> def) const {
  const GgufValue* v = find(key);
  if (v == nullptr) {
    if (def) return *def;
    return missing_key(name_, key);
  }
  if (!v->is_integer()) return wrong_type(name_, key, *v, "an integer");
  std::optional<int64_t> i = v->as_int();
  if (!i) {
    return corrupt(name_ + ": metadata key '" + std::string(key) + "' (uint64) value " +
                   std::to_string(*v->as_uint()) + " does not fit in int64");
  }
  return *i;
}

Result<double> GgufFile::get_float(std::string_view key, std::optional<double> def) const {
  const GgufValue* v = find(key);
  if (v == nullptr) {
    if (def) return *def;
    return missing_key(name_, key);
  }
  std::optional<double> f = v->as_float();
  if (!f) return wrong_type(name_, key, *v, "a number");
  return *f;
}

Result<bool> GgufFile::get_bool(std::string_view key, std::optional<bool> def) const {
  const GgufValue* v = find(key);
  if (v == nullptr) {
    if (def) return *def;
    return missing_key(name_, key);
  }
  std::optional<bool> b = v->as_bool();
  if (!b) return wrong_type(name_, key, *v, "bool");
  return *b;
}

Result<std::string> GgufFile::get_string(std::string_view key, std::optional<std::string> def) const {
  const GgufValue* v = find(key);
  if (v == nullptr) {
    if (def) return std::move(*def);
    return missing_key(name_, key);
  }
  const std::string* s = v->as_string();
  if (s == nullptr) return wrong_type(name_, key, *v, "string");
  return *s;
}

}  // namespace modu
