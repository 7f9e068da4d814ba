// Tests for the GGUF reader/writer: round trips, hand-built v2 files, one test per malformation,
// truncation and random-mutation sweeps, and the real vocab files in shared/testdata.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "modu/gguf/gguf.h"

namespace modu {
namespace {

using Bytes = std::vector<uint8_t>;

// Hand encoder, independent of GgufWriter, for building files the writer would refuse to make.
struct Builder {
  Bytes b;
  template <typename T>
  Builder& put(T v) {
    const size_t n = b.size();
    b.resize(n + sizeof(T));
    std::memcpy(b.data() + n, &v, sizeof(T));
    return *this;
  }
  Builder& raw(const std::string& s) { b.insert(b.end(), s.begin(), s.end()); return *this; }
  Builder& str(const std::string& s) { put<uint64_t>(s.size()); return raw(s); }
  Builder& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    raw("GGUF");
    put<uint32_t>(version);
    put<uint64_t>(n_tensors);
    return put<uint64_t>(n_kv);
  }
  Builder& kv_u32(const std::string& k, uint32_t v) { str(k); put<uint32_t>(4); return put<uint32_t>(v); }
  Builder& kv_str(const std::string& k, const std::string& v) { str(k); put<uint32_t>(8); return str(v); }
  Builder& tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
    str(name);
    put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) put<int64_t>(d);
    put<uint32_t>(type);
    return put<uint64_t>(offset);
  }
  Builder& pad(size_t a) { b.resize((b.size() + a - 1) / a * a, 0); return *this; }
  Builder& zeros(size_t n) { b.resize(b.size() + n, 0); return *this; }
};

Result<GgufFile> parse(const Bytes& b) { return GgufFile::parse(b.data(), b.size(), "test.gguf"); }
Result<GgufFile> parse(Bytes&&) = delete;  // the parsed file points into the buffer: keep it alive

template <typename T>
void poke(Bytes& b, size_t at, T v) {
  ASSERT_LE(at + sizeof(T), b.size());
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// Offset of the first occurrence of `s` (as raw bytes) in `b`.
size_t find(const Bytes& b, const std::string& s) {
  auto it = std::search(b.begin(), b.end(), s.begin(), s.end());
  EXPECT_NE(it, b.end()) << "'" << s << "' not found";
  return static_cast<size_t>(it - b.begin());
}

// Asserts a parse fails with kCorrupt, naming the file, containing every `needles` string, and
// (when at != npos) naming that byte offset.
void expect_corrupt(const Bytes& b, std::vector<std::string> needles, size_t at = std::string::npos) {
  Result<GgufFile> r = parse(b);
  ASSERT_FALSE(r.ok()) << "parse unexpectedly succeeded; wanted: " << needles[0];
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << r.status().to_string();
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("test.gguf"), std::string::npos) << m;
  EXPECT_NE(m.find("byte offset"), std::string::npos) << m;
  for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "missing '" << n << "' in: " << m;
  if (at != std::string::npos) {
    EXPECT_NE(m.find("byte offset " + std::to_string(at)), std::string::npos) << "want offset " << at << ": " << m;
  }
}

std::vector<float> ramp(size_t n, float scale = 0.37f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::sin(static_cast<float>(i) * scale) * 3.0f;
  return v;
}

// A small valid file: metadata and two float tensors; `alignment` 0 means the default.
Bytes small_file(uint32_t alignment = 0) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("test"));
  if (alignment) w.set_alignment(alignment);
  w.set("test.count", GgufValue::u32(7));
  w.set("test.list", GgufValue::i32_array({1, -2, 3}));
  auto a = ramp(6);
  EXPECT_TRUE(w.add_tensor_f32("alpha", DType::F32, {3, 2}, a.data()).ok());
  auto b = ramp(5);
  EXPECT_TRUE(w.add_tensor_f32("beta", DType::F16, {5}, b.data()).ok());
  return w.serialize();
}

// Visits everything a parsed file exposes (so ASan sees any bad pointer) and returns a checksum.
uint64_t touch_all(const GgufFile& f) {
  uint64_t sum = 0;
  std::function<void(const GgufValue&)> visit = [&](const GgufValue& v) {
    if (auto s = v.as_string()) sum += s->size();
    if (auto i = v.as_uint()) sum += *i;
    for (const auto& e : v.elems()) visit(e);
  };
  for (const auto& [k, v] : f.metadata()) {
    sum += k.size();
    visit(v);
  }
  for (const auto& t : f.tensors()) {
    EXPECT_NE(t.data, nullptr);
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    sum += static_cast<uint64_t>(t.n_elements() + t.n_rows());
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(GgufValue, ConversionsAndNames) {
  EXPECT_EQ(*GgufValue::u64(std::numeric_limits<uint64_t>::max()).as_uint(), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(GgufValue::u64(std::numeric_limits<uint64_t>::max()).as_int().has_value());
  EXPECT_FALSE(GgufValue::i8(-1).as_uint().has_value());
  EXPECT_EQ(*GgufValue::i8(-1).as_int(), -1);
  EXPECT_EQ(*GgufValue::u16(7).as_float(), 7.0);
  EXPECT_FALSE(GgufValue::boolean(true).as_int().has_value());
  EXPECT_FALSE(GgufValue::u8(1).as_bool().has_value());
  EXPECT_FALSE(GgufValue::string("1").as_int().has_value());
  EXPECT_FALSE(GgufValue::f32(1.5f).as_int().has_value());
  EXPECT_TRUE(GgufValue::i16(3).is_integer());
  EXPECT_FALSE(GgufValue::boolean(true).is_integer());
  EXPECT_TRUE(GgufValue::f64(3).is_float());
  EXPECT_STREQ(gguf_type_name(GgufType::FLOAT64), "float64");
  EXPECT_STREQ(gguf_type_name(GgufType::ARRAY), "array");
}

TEST(GgufRoundTrip, EveryValueType) {
  const std::string weird("a\0b\xff\xfe\xc3(", 7);  // embedded NUL and invalid UTF-8
  GgufWriter w;
  w.set("u8", GgufValue::u8(255));
  w.set("i8", GgufValue::i8(-128));
  w.set("u16", GgufValue::u16(65535));
  w.set("i16", GgufValue::i16(-32768));
  w.set("u32", GgufValue::u32(4294967295u));
  w.set("i32", GgufValue::i32(std::numeric_limits<int32_t>::min()));
  w.set("u64", GgufValue::u64(std::numeric_limits<uint64_t>::max()));
  w.set("i64min", GgufValue::i64(std::numeric_limits<int64_t>::min()));
  w.set("i64max", GgufValue::i64(std::numeric_limits<int64_t>::max()));
  w.set("f32", GgufValue::f32(-3.25e-7f));
  w.set("f32inf", GgufValue::f32(std::numeric_limits<float>::infinity()));
  w.set("f64", GgufValue::f64(0.1 + 0.2));
  w.set("f64min", GgufValue::f64(std::numeric_limits<double>::denorm_min()));
  w.set("t", GgufValue::boolean(true));
  w.set("f", GgufValue::boolean(false));
  w.set("s", GgufValue::string("héllo"));
  w.set("empty", GgufValue::string(""));
  w.set("weird", GgufValue::string(weird));
  w.set("strs", GgufValue::string_array({"a", "", "ccc", weird}));
  w.set("f32s", GgufValue::f32_array({1.0f, -2.5f, 1e30f}));
  w.set("i32s", GgufValue::i32_array({std::numeric_limits<int32_t>::max(), 0, -1}));
  w.set("u8s", GgufValue::array(GgufType::UINT8, {GgufValue::u8(0), GgufValue::u8(200)}));
  w.set("i64s", GgufValue::array(GgufType::INT64, {GgufValue::i64(std::numeric_limits<int64_t>::min())}));
  w.set("u64s", GgufValue::array(GgufType::UINT64, {GgufValue::u64(std::numeric_limits<uint64_t>::max())}));
  w.set("f64s", GgufValue::array(GgufType::FLOAT64, {GgufValue::f64(-1e300), GgufValue::f64(2.5)}));
  w.set("bools", GgufValue::array(GgufType::BOOL, {GgufValue::boolean(true), GgufValue::boolean(false)}));
  w.set("i8s", GgufValue::array(GgufType::INT8, {GgufValue::i8(-5)}));
  w.set("u16s", GgufValue::array(GgufType::UINT16, {GgufValue::u16(9)}));
  w.set("i16s", GgufValue::array(GgufType::INT16, {GgufValue::i16(-9)}));
  w.set("u32s", GgufValue::array(GgufType::UINT32, {GgufValue::u32(1u << 31)}));
  w.set("empty_i32s", GgufValue::i32_array({}));
  w.set("empty_strs", GgufValue::string_array({}));
  w.set("nested", GgufValue::array(GgufType::ARRAY, {GgufValue::i32_array({1, 2}), GgufValue::i32_array({})}));
  const Bytes bytes = w.serialize();

  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const GgufFile& f = *r;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 33u);
  EXPECT_EQ(f.metadata().front().first, "u8");  // insertion order
  EXPECT_EQ(f.metadata().back().first, "nested");
  EXPECT_EQ(f.find("u8")->type(), GgufType::UINT8);
  EXPECT_EQ(*f.get_int("u8"), 255);
  EXPECT_EQ(*f.get_int("i8"), -128);
  EXPECT_EQ(*f.get_int("u16"), 65535);
  EXPECT_EQ(*f.get_int("i16"), -32768);
  EXPECT_EQ(*f.get_int("u32"), 4294967295LL);
  EXPECT_EQ(*f.get_int("i32"), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(*f.find("u64")->as_uint(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*f.get_int("i64min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*f.get_int("i64max"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(f.find("f32")->type(), GgufType::FLOAT32);
  EXPECT_EQ(static_cast<float>(*f.get_float("f32")), -3.25e-7f);
  EXPECT_TRUE(std::isinf(*f.get_float("f32inf")));
  EXPECT_EQ(*f.get_float("f64"), 0.1 + 0.2);
  EXPECT_EQ(*f.get_float("f64min"), std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(*f.get_float("u16"), 65535.0);  // integers convert to float
  EXPECT_TRUE(*f.get_bool("t"));
  EXPECT_FALSE(*f.get_bool("f"));
  EXPECT_EQ(*f.get_string("s"), "héllo");
  EXPECT_EQ(*f.get_string("empty"), "");
  EXPECT_EQ(*f.get_string("weird"), weird);

  const GgufValue* strs = f.find("strs");
  ASSERT_TRUE(strs && strs->is_array());
  EXPECT_EQ(strs->array_type(), GgufType::STRING);
  ASSERT_EQ(strs->size(), 4u);
  EXPECT_EQ(*strs->elems()[2].as_string(), "ccc");
  EXPECT_EQ(*strs->elems()[3].as_string(), weird);
  EXPECT_EQ(*f.find("f32s")->elems()[2].as_float(), static_cast<double>(1e30f));
  EXPECT_EQ(*f.find("i32s")->elems()[0].as_int(), std::numeric_limits<int32_t>::max());
  EXPECT_EQ(*f.find("u8s")->elems()[1].as_int(), 200);
  EXPECT_EQ(*f.find("i64s")->elems()[0].as_int(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*f.find("u64s")->elems()[0].as_uint(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*f.find("f64s")->elems()[0].as_float(), -1e300);
  EXPECT_EQ(*f.find("bools")->elems()[0].as_bool(), true);
  EXPECT_EQ(f.find("i8s")->array_type(), GgufType::INT8);
  EXPECT_EQ(f.find("u16s")->array_type(), GgufType::UINT16);
  EXPECT_EQ(f.find("i16s")->array_type(), GgufType::INT16);
  EXPECT_EQ(*f.find("u32s")->elems()[0].as_uint(), 1u << 31);
  EXPECT_EQ(f.find("empty_i32s")->size(), 0u);
  EXPECT_EQ(f.find("empty_i32s")->array_type(), GgufType::INT32);
  EXPECT_EQ(f.find("empty_strs")->array_type(), GgufType::STRING);
  const GgufValue* nested = f.find("nested");
  EXPECT_EQ(nested->array_type(), GgufType::ARRAY);
  ASSERT_EQ(nested->size(), 2u);
  EXPECT_EQ(*nested->elems()[0].elems()[1].as_int(), 2);
  EXPECT_EQ(nested->elems()[1].size(), 0u);

  // Re-encoding what was read gives identical bytes.
  GgufWriter w2;
  for (const auto& [k, v] : f.metadata()) w2.set(k, v);
  EXPECT_EQ(w2.serialize(), bytes);
}

TEST(GgufRoundTrip, SetReplacesInPlace) {
  GgufWriter w;
  w.set("a", GgufValue::u32(1));
  w.set("b", GgufValue::u32(2));
  w.set("a", GgufValue::string("x"));
  const Bytes bytes = w.serialize();
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->metadata().size(), 2u);
  EXPECT_EQ(r->metadata()[0].first, "a");
  EXPECT_EQ(*r->get_string("a"), "x");
}

TEST(GgufGetters, DefaultsMissingAndTypeErrors) {
  const Bytes bytes = small_file();
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const GgufFile& f = *r;
  EXPECT_EQ(*f.get_int("nope", 5), 5);
  EXPECT_EQ(*f.get_string("nope", std::string("d")), "d");
  EXPECT_EQ(*f.get_bool("nope", true), true);
  EXPECT_EQ(*f.get_float("nope", 2.5), 2.5);
  auto missing = f.get_int("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'nope'"), std::string::npos);

  auto bad = f.get_int("general.architecture");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'general.architecture'"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("string"), std::string::npos) << bad.status().message();
  auto bad2 = f.get_string("test.count", std::string("default is not used when the type is wrong"));
  ASSERT_FALSE(bad2.ok());
  EXPECT_NE(bad2.status().message().find("uint32"), std::string::npos) << bad2.status().message();
  auto bad3 = f.get_bool("test.list");
  ASSERT_FALSE(bad3.ok());
  EXPECT_NE(bad3.status().message().find("array of int32"), std::string::npos) << bad3.status().message();
  auto bad4 = f.get_float("general.architecture");
  ASSERT_FALSE(bad4.ok());

  GgufWriter w;
  w.set("big", GgufValue::u64(std::numeric_limits<uint64_t>::max()));
  const Bytes bytes2 = w.serialize();
  auto r2 = parse(bytes2);
  ASSERT_TRUE(r2.ok());
  auto big = r2->get_int("big");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("does not fit"), std::string::npos) << big.status().message();
}

// A file without tensors has no data section: a huge general.alignment read from such a file
// (the fuzzer found 2^30 in 71 bytes) must not make the writer pad the header to it.
TEST(GgufRoundTrip, NoTensorsHugeAlignmentStaysSmall) {
  GgufWriter w;
  w.set("general.name", GgufValue::string("empty"));
  w.set_alignment(1u << 30);
  const Bytes bytes = w.serialize();
  EXPECT_LT(bytes.size(), 4096u);
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->alignment(), 1u << 30);
  EXPECT_TRUE(r->tensors().empty());
}

TEST(GgufRoundTrip, TensorsOfSeveralDtypesAndOddShapes) {
  for (uint32_t alignment : {1u, 8u, 32u, 64u, 4096u}) {
    SCOPED_TRACE("alignment " + std::to_string(alignment));
    GgufWriter w;
    w.set("general.name", GgufValue::string("tensors"));
    w.set_alignment(alignment);
    const auto x = ramp(7 * 3 * 1 * 2);
    ASSERT_TRUE(w.add_tensor_f32("f32.t", DType::F32, {7, 3, 1, 2}, x.data()).ok());
    ASSERT_TRUE(w.add_tensor_f32("f16.t", DType::F16, {5, 3}, x.data()).ok());
    ASSERT_TRUE(w.add_tensor_f32("bf16.t", DType::BF16, {1, 1, 3}, x.data()).ok());
    // Quantized layouts from raw blocks (any bytes are valid block contents for the container).
    Bytes q4(dtype_row_bytes(DType::Q4_0, 64) * 3);
    for (size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<uint8_t>(i * 7 + 1);
    ASSERT_TRUE(w.add_tensor("q4_0.t", DType::Q4_0, {64, 3}, q4.data(), q4.size()).ok());
    Bytes qk(dtype_row_bytes(DType::Q4_K, 256));
    for (size_t i = 0; i < qk.size(); ++i) qk[i] = static_cast<uint8_t>(i ^ 0x5a);
    ASSERT_TRUE(w.add_tensor("q4_k.t", DType::Q4_K, {256}, qk.data(), qk.size()).ok());
    const Bytes bytes = w.serialize();

    auto r = parse(bytes);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const GgufFile& f = *r;
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(*f.get_int("general.alignment"), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    ASSERT_EQ(f.tensors().size(), 5u);
    EXPECT_EQ(f.tensors()[0].name, "f32.t");  // file order
    for (const GgufTensor& t : f.tensors()) {
      EXPECT_EQ(t.offset % alignment, 0u) << t.name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) - reinterpret_cast<uintptr_t>(bytes.data()),
                f.data_offset() + t.offset);
    }
    const GgufTensor* t = f.tensor("f32.t");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, DType::F32);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{7, 3, 1, 2}));
    EXPECT_EQ(t->n_elements(), 42);
    EXPECT_EQ(t->n_rows(), 6);
    EXPECT_EQ(t->nbytes, 42u * 4);
    EXPECT_EQ(std::memcmp(t->data, x.data(), t->nbytes), 0);

    const GgufTensor* h = f.tensor("f16.t");
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->nbytes, 30u);
    std::vector<float> back(15);
    dtype_traits(DType::F16)->dequantize(h->data, back.data(), 15);
    for (int i = 0; i < 15; ++i) EXPECT_NEAR(back[i], x[i], 2e-3f);

    const GgufTensor* b = f.tensor("bf16.t");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->shape, (std::vector<int64_t>{1, 1, 3}));
    EXPECT_EQ(b->n_rows(), 3);

    const GgufTensor* q = f.tensor("q4_0.t");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->nbytes, q4.size());
    EXPECT_EQ(std::memcmp(q->data, q4.data(), q4.size()), 0);
    const GgufTensor* k = f.tensor("q4_k.t");
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->dtype, DType::Q4_K);
    EXPECT_EQ(std::memcmp(k->data, qk.data(), qk.size()), 0);
    EXPECT_EQ(f.tensor("missing"), nullptr);
  }
}

TEST(GgufWriter, QuantizesWithTheDtypeKernel) {
  const auto x = ramp(64 * 3, 0.11f);
  GgufWriter w;
  ASSERT_TRUE(w.add_tensor_f32("q", DType::Q8_0, {64, 3}, x.data()).ok());
  const Bytes bytes = w.serialize();
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const GgufTensor* t = r->tensor("q");
  ASSERT_NE(t, nullptr);
  const DTypeTraits* tr = dtype_traits(DType::Q8_0);
  Bytes expect(dtype_row_bytes(DType::Q8_0, 64) * 3);
  tr->quantize(x.data(), expect.data(), 64 * 3);
  ASSERT_EQ(t->nbytes, expect.size());
  EXPECT_EQ(std::memcmp(t->data, expect.data(), expect.size()), 0);
  std::vector<float> back(x.size());
  tr->dequantize(t->data, back.data(), static_cast<int64_t>(back.size()));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(back[i], x[i], 0.03f) << i;
}

TEST(GgufWriter, RejectsBadTensors) {
  GgufWriter w;
  float buf[64] = {};
  EXPECT_EQ(w.add_tensor("a", DType::F32, {4}, buf, 12).code(), StatusCode::kInvalidArgument);  // needs 16
  Status s = w.add_tensor("a", DType::F32, {4}, buf, 12);
  EXPECT_NE(s.message().find("needs 16"), std::string::npos) << s.message();
  EXPECT_FALSE(w.add_tensor("a", DType::F32, {}, buf, 4).ok());
  EXPECT_FALSE(w.add_tensor("a", DType::F32, {1, 1, 1, 1, 1}, buf, 4).ok());
  EXPECT_FALSE(w.add_tensor("a", DType::F32, {0}, buf, 0).ok());
  EXPECT_FALSE(w.add_tensor("a", DType::F32, {-4}, buf, 16).ok());
  EXPECT_FALSE(w.add_tensor("", DType::F32, {4}, buf, 16).ok());
  EXPECT_FALSE(w.add_tensor("a", static_cast<DType>(99), {4}, buf, 16).ok());
  EXPECT_FALSE(w.add_tensor("a", DType::F32, {int64_t{1} << 40, int64_t{1} << 40}, buf, 16).ok());
  s = w.add_tensor("a", DType::Q8_0, {33}, buf, 34);
  EXPECT_NE(s.message().find("block size"), std::string::npos) << s.message();
  EXPECT_FALSE(w.add_tensor_f32("a", DType::Q4_0, {48}, buf).ok());
  EXPECT_FALSE(w.add_tensor_f32("a", static_cast<DType>(77), {4}, buf).ok());
  ASSERT_TRUE(w.add_tensor("a", DType::F32, {4}, buf, 16).ok());
  s = w.add_tensor("a", DType::F32, {4}, buf, 16);
  EXPECT_NE(s.message().find("duplicate"), std::string::npos) << s.message();
  const Bytes bytes = w.serialize();
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tensors().size(), 1u);
}

TEST(GgufWriter, WritesAtomicallyAndOpenMapsIt) {
  const auto dir = std::filesystem::temp_directory_path() / ("modu_gguf_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.gguf").string();
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  const auto x = ramp(10);
  ASSERT_TRUE(w.add_tensor_f32("w", DType::F32, {10}, x.data()).ok());
  ASSERT_TRUE(w.write(path).ok());
  ASSERT_TRUE(w.write(path).ok());  // overwrite is fine
  size_t n_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) { (void)e; ++n_files; }
  EXPECT_EQ(n_files, 1u) << "temporary file left behind";
  {
    std::ifstream in(path, std::ios::binary);
    Bytes disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(disk, w.serialize());
  }
  GgufFile f;
  {
    auto r = GgufFile::open(path);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    f = std::move(r).value();  // tensor pointers survive the move (the map is shared)
  }
  EXPECT_EQ(f.name(), path);
  EXPECT_EQ(*f.get_string("general.architecture"), "llama");
  ASSERT_NE(f.tensor("w"), nullptr);
  EXPECT_EQ(std::memcmp(f.tensor("w")->data, x.data(), 40), 0);
  EXPECT_EQ(f.file_size(), std::filesystem::file_size(path));

  auto missing = GgufFile::open((dir / "nope.gguf").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("nope.gguf"), std::string::npos);
  Status bad_dir = w.write((dir / "no_such_dir" / "x.gguf").string());
  EXPECT_EQ(bad_dir.code(), StatusCode::kIoError);

  // A corrupt file on disk names the path.
  { std::ofstream(path, std::ios::binary) << "GGUF\x01"; }
  auto c = GgufFile::open(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(c.status().message().find(path), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(GgufReader, ReadsHandBuiltV2File) {
  Builder b;
  b.header(2, 1, 2).kv_str("general.architecture", "v2").kv_u32("general.alignment", 16);
  b.tensor("t", {2, 2}, 0, 0).pad(16);
  const float v[4] = {1, 2, 3, 4};
  for (float x : v) b.put(x);
  auto r = parse(b.b);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->version(), 2u);
  EXPECT_EQ(r->alignment(), 16u);
  EXPECT_EQ(r->data_offset() % 16, 0u);
  const GgufTensor* t = r->tensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(std::memcmp(t->data, v, 16), 0);
}

TEST(GgufReader, MetadataOnlyFileMayEndBeforeAlignedDataOffset) {
  Builder b;
  b.header(3, 0, 1).kv_str("general.architecture", "x");  // 4+4+8+8 + 8+20+4+8+1 = 65 bytes, unpadded
  auto r = parse(b.b);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->data_offset(), 96u);
  EXPECT_TRUE(r->tensors().empty());
}

// ---------------------------------------------------------------------------------------------
// Malformations: each gives one kCorrupt naming the problem and its byte offset.

TEST(GgufCorrupt, EmptyAndTinyInputs) {
  expect_corrupt({}, {"truncated", "magic"}, 0);
  expect_corrupt({'G', 'G'}, {"truncated", "magic"}, 0);
  auto r = GgufFile::parse(nullptr, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("<memory>"), std::string::npos);
}

TEST(GgufCorrupt, BadMagic) {
  Bytes b = small_file();
  b[0] = 'G'; b[1] = 'G'; b[2] = 'M'; b[3] = 'L';
  expect_corrupt(b, {"bad magic", "GGML"}, 0);
  b[3] = 0x01;
  expect_corrupt(b, {"bad magic", "\\x01"}, 0);
}

TEST(GgufCorrupt, UnsupportedVersions) {
  Bytes b = small_file();
  poke<uint32_t>(b, 4, 1);
  expect_corrupt(b, {"GGUF version 1", "only versions 2 and 3"}, 4);
  poke<uint32_t>(b, 4, 4);
  expect_corrupt(b, {"unsupported GGUF version 4"}, 4);
  poke<uint32_t>(b, 4, 0);
  expect_corrupt(b, {"unsupported GGUF version 0"}, 4);
  poke<uint32_t>(b, 4, 0x03000000u);
  expect_corrupt(b, {"big-endian"}, 4);
}

TEST(GgufCorrupt, AbsurdCounts) {
  Bytes b = small_file();
  poke<uint64_t>(b, 8, uint64_t{1} << 40);
  expect_corrupt(b, {"tensor count 1099511627776"}, 8);
  b = small_file();
  poke<uint64_t>(b, 16, ~uint64_t{0});
  expect_corrupt(b, {"metadata key/value count"}, 16);
  b = small_file();
  poke<uint64_t>(b, 8, 3);  // one more tensor info than present: runs into the data/padding
  EXPECT_FALSE(parse(b).ok());
}

TEST(GgufCorrupt, AbsurdStringLengths) {
  Bytes b = small_file();
  const size_t key = find(b, "general.architecture") - 8;
  poke<uint64_t>(b, key, uint64_t{1} << 62);
  expect_corrupt(b, {"metadata key #0 length", "exceeds"}, key);
  b = small_file();
  const size_t val = find(b, "test") - 8;  // value "test" of general.architecture
  poke<uint64_t>(b, val, b.size());
  expect_corrupt(b, {"string length", "general.architecture", "exceeds"}, val);
  b = small_file();
  const size_t tname = find(b, "alpha") - 8;
  poke<uint64_t>(b, tname, ~uint64_t{0});
  expect_corrupt(b, {"tensor #0 name length", "exceeds"}, tname);
}

TEST(GgufCorrupt, AbsurdArrayLength) {
  Bytes b = small_file();
  const size_t count = find(b, "test.list") + 9 + 4 + 4;  // key, value type, element type
  poke<uint64_t>(b, count, uint64_t{1} << 60);
  expect_corrupt(b, {"array", "test.list", "claims 1152921504606846976 elements"}, count);
}

TEST(GgufCorrupt, UnknownValueTypes) {
  Bytes b = small_file();
  const size_t type = find(b, "test.count") + 10;
  poke<uint32_t>(b, type, 13);
  expect_corrupt(b, {"'test.count'", "unknown value type 13"}, type);
  b = small_file();
  const size_t elem = find(b, "test.list") + 9 + 4;
  poke<uint32_t>(b, elem, 0xdeadbeef);
  expect_corrupt(b, {"test.list", "unknown element type 3735928559"}, elem);
}

TEST(GgufCorrupt, TooManyMetadataElements) {
  // 2^25 + 1 one-byte elements, all present in the file: rejected by the element budget before
  // any GgufValue is allocated for them.
  const uint64_t n = (uint64_t{1} << 25) + 1;
  Builder b;
  b.header(3, 0, 1).str("big").put<uint32_t>(9).put<uint32_t>(0).put<uint64_t>(n).zeros(n);
  expect_corrupt(b.b, {"'big'", "33554433 elements", "metadata array elements"}, 24 + 11 + 4 + 4);
}

TEST(GgufCorrupt, InvalidBool) {
  Builder b;
  b.header(3, 0, 1).str("flag").put<uint32_t>(7).put<uint8_t>(2);
  expect_corrupt(b.b, {"bool", "'flag'", "must be 0 or 1"}, 8 + 16 + 12 + 4);
}

TEST(GgufCorrupt, ArrayNestingDepthLimit) {
  auto nested = [](int depth) {
    Builder b;
    b.header(3, 0, 1).str("deep").put<uint32_t>(9);
    for (int i = 0; i < depth; ++i) b.put<uint32_t>(9).put<uint64_t>(1);
    b.put<uint32_t>(4).put<uint64_t>(1).put<uint32_t>(42);  // innermost: [u32 42]
    return b.b;
  };
  const Bytes seven = nested(7);
  auto ok = parse(seven);  // 8 array levels in total: the limit
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  const GgufValue* v = ok->find("deep");
  for (int i = 0; i < 8; ++i) v = &v->elems()[0];
  EXPECT_EQ(*v->as_int(), 42);
  expect_corrupt(nested(8), {"'deep'[0][0][0][0][0][0][0][0]", "nests deeper than 8"});
  expect_corrupt(nested(100000), {"nests deeper"});  // bounded recursion even for huge nesting
}

TEST(GgufCorrupt, TensorDims) {
  Bytes base = small_file();
  const size_t ndims = find(base, "alpha") + 5;
  Bytes b = base;
  poke<uint32_t>(b, ndims, 5);
  expect_corrupt(b, {"'alpha'", "n_dims 5"}, ndims);
  b = base;
  poke<uint32_t>(b, ndims, 0);
  expect_corrupt(b, {"'alpha'", "n_dims 0"}, ndims);
  b = base;
  poke<int64_t>(b, ndims + 4 + 8, -2);
  expect_corrupt(b, {"'alpha'", "dimension 1 is -2"}, ndims + 12);
  b = base;
  poke<int64_t>(b, ndims + 4, 0);
  expect_corrupt(b, {"'alpha'", "dimension 0 is 0"}, ndims + 4);
}

TEST(GgufCorrupt, ElementCountOverflowAndAbsurdSizes) {
  Builder b;
  b.header(3, 1, 0).tensor("big", {int64_t{1} << 32, int64_t{1} << 32}, 0, 0);
  expect_corrupt(b.b, {"'big'", "element count overflows", "dimension 1"}, 8 + 16 + 8 + 3 + 4 + 8);
  Builder c;
  c.header(3, 1, 0).tensor("huge", {int64_t{1} << 30, int64_t{1} << 30}, 0, 0);  // 2^60 * 4 bytes
  expect_corrupt(c.b, {"'huge'", "larger than the whole file"}, 24);
  Builder d;  // fits in int64 elements but not in bytes
  d.header(3, 1, 0).tensor("f32max", {int64_t{1} << 31, int64_t{1} << 31}, 0, 0);
  expect_corrupt(d.b, {"'f32max'", "larger than the whole file"});
}

TEST(GgufCorrupt, UnknownDtypeAndBlockMultiple) {
  Bytes b = small_file();
  const size_t type = find(b, "alpha") + 5 + 4 + 16;
  poke<uint32_t>(b, type, 99);
  expect_corrupt(b, {"'alpha'", "unknown ggml type id 99"}, type);
  Builder q;
  q.header(3, 1, 0).tensor("q", {33, 2}, static_cast<uint32_t>(DType::Q8_0), 0).pad(32).zeros(34 * 2 * 2);
  expect_corrupt(q.b, {"'q'", "row length 33", "q8_0 block size 32"}, 24);
}

TEST(GgufCorrupt, TensorDataOutOfFile) {
  Bytes b = small_file();
  const size_t off = find(b, "beta") + 4 + 4 + 8 + 4;
  poke<uint64_t>(b, off, 1 << 20);
  expect_corrupt(b, {"'beta'", "extends past the end of the file"}, off);
  b = small_file();
  poke<uint64_t>(b, off, ~uint64_t{0} - 31);  // aligned, and offset + size overflows
  expect_corrupt(b, {"'beta'", "extends past the end"}, off);
}

TEST(GgufCorrupt, MisalignedOffset) {
  Bytes b = small_file();
  const size_t off = find(b, "beta") + 4 + 4 + 8 + 4;
  poke<uint64_t>(b, off, 33);
  expect_corrupt(b, {"'beta'", "data offset 33", "alignment 32"}, off);
}

TEST(GgufCorrupt, DuplicateNames) {
  Builder t;
  t.header(3, 2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad(32).zeros(64);
  expect_corrupt(t.b, {"duplicate tensor name 'w'"}, 24 + 8 + 1 + 4 + 8 + 4 + 8);
  Builder k;
  k.header(3, 0, 2).kv_u32("a.b", 1).kv_str("a.b", "again");
  expect_corrupt(k.b, {"duplicate metadata key 'a.b'"}, 24 + 8 + 3 + 4 + 4);
  Builder e;
  e.header(3, 0, 1).kv_u32("", 1);
  expect_corrupt(e.b, {"key #0 is empty"}, 24);
}

TEST(GgufCorrupt, Alignment) {
  Bytes b = small_file(64);
  const size_t val = find(b, "general.alignment") + 17 + 4;
  poke<uint32_t>(b, val, 48);
  expect_corrupt(b, {"general.alignment", "48", "power of two"}, val);
  poke<uint32_t>(b, val, 0);
  expect_corrupt(b, {"general.alignment", "power of two"}, val);
  Builder w;
  w.header(3, 0, 1).str("general.alignment").put<uint32_t>(10).put<uint64_t>(32);
  expect_corrupt(w.b, {"general.alignment has type uint64, expected uint32"}, 24 + 8 + 17);
  Builder s;
  s.header(3, 0, 1).kv_str("general.alignment", "32");
  expect_corrupt(s.b, {"general.alignment has type string"});
}

TEST(GgufReader, InvalidUtf8InStringsIsAccepted) {
  Builder b;
  b.header(3, 1, 1).kv_str("k\xff", std::string("\xc3\x28\x00\xfe", 4)).tensor("t\x80", {8}, 0, 0).pad(32).zeros(32);
  auto r = parse(b.b);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r->get_string("k\xff"), std::string("\xc3\x28\x00\xfe", 4));
  EXPECT_NE(r->tensor("t\x80"), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Sweeps

TEST(GgufSweep, EveryTruncationFailsCleanly) {
  const Bytes full = small_file();
  auto ok = parse(full);
  ASSERT_TRUE(ok.ok());
  size_t needed = 0;  // the file is valid exactly from the end of the last tensor's data on
  for (const auto& t : ok->tensors()) needed = std::max<size_t>(needed, ok->data_offset() + t.offset + t.nbytes);
  ASSERT_LT(needed, full.size());  // the last tensor is padded
  for (size_t n = 0; n <= full.size(); ++n) {
    Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));  // exact-size heap buffer for ASan
    auto r = parse(prefix);
    if (n < needed) {
      ASSERT_FALSE(r.ok()) << "prefix " << n;
      ASSERT_EQ(r.status().code(), StatusCode::kCorrupt);
      ASSERT_NE(r.status().message().find("byte offset"), std::string::npos) << r.status().message();
    } else {
      ASSERT_TRUE(r.ok()) << "prefix " << n << ": " << r.status().to_string();
    }
  }
}

TEST(GgufSweep, RandomMutationsNeverCrash) {
  const std::vector<Bytes> seeds = {small_file(), small_file(64), small_file(1)};
  std::mt19937_64 rng(12345);
  const uint64_t interesting[] = {0, 1, 2, 3, 4, 5, 9, 12, 13, 31, 32, 33, 255, 0x7fffffff, 0xffffffff,
                                  uint64_t{1} << 32, uint64_t{1} << 62, ~uint64_t{0}, ~uint64_t{0} >> 1};
  int n_ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes b = seeds[iter % seeds.size()];
    const int n_mut = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < n_mut; ++m) {
      const size_t at = rng() % b.size();
      switch (rng() % 4) {
        case 0: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: b[at] = static_cast<uint8_t>(rng()); break;
        case 2: {  // an interesting little-endian integer, 4 or 8 bytes wide
          const uint64_t v = interesting[rng() % std::size(interesting)];
          const size_t w = (rng() & 1) ? 8 : 4;
          for (size_t i = 0; i < w && at + i < b.size(); ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
          break;
        }
        case 3: b.resize(at + 1); break;
      }
    }
    auto r = parse(b);
    if (r.ok()) {
      ++n_ok;
      touch_all(*r);
    } else {
      ASSERT_EQ(r.status().code(), StatusCode::kCorrupt) << r.status().message();
      ASSERT_NE(r.status().message().find("byte offset"), std::string::npos) << r.status().message();
    }
  }
  EXPECT_GT(n_ok, 100);  // mutations in tensor data or string contents keep files valid
}

// ---------------------------------------------------------------------------------------------
// Real files

TEST(GgufRealFiles, VocabFiles) {
  const std::filesystem::path dir = std::filesystem::path(MODU_SHARED_DIR) / "testdata" / "vocab";
  ASSERT_TRUE(std::filesystem::exists(dir)) << dir << " not present: the shared test data must sit beside the repo";
  struct Expect { const char* file; const char* model; };
  const Expect expects[] = {{"ggml-vocab-llama-spm.gguf", "llama"}, {"ggml-vocab-gpt-2.gguf", "gpt2"},
                            {"ggml-vocab-bert-bge.gguf", "bert"}, {"ggml-vocab-falcon.gguf", "gpt2"},
                            {"ggml-vocab-deepseek-coder.gguf", "gpt2"}};
  for (const Expect& e : expects) {
    SCOPED_TRACE(e.file);
    auto r = GgufFile::open((dir / e.file).string());
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const GgufFile& f = *r;
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(*f.get_string("tokenizer.ggml.model"), e.model);
    const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->array_type(), GgufType::STRING);
    EXPECT_GT(tokens->size(), 20000u);
    if (const GgufValue* types = f.find("tokenizer.ggml.token_type")) {
      EXPECT_EQ(types->size(), tokens->size());
    }
    EXPECT_TRUE(f.tensors().empty());
    touch_all(f);
  }
  auto llama = GgufFile::open((dir / "ggml-vocab-llama-spm.gguf").string());
  ASSERT_TRUE(llama.ok());
  EXPECT_EQ(llama->find("tokenizer.ggml.tokens")->size(), 32000u);
  EXPECT_EQ(*llama->find("tokenizer.ggml.tokens")->elems()[1].as_string(), "<s>");
  EXPECT_EQ(*llama->get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(*llama->get_string("general.architecture"), "llama");
  auto gpt2 = GgufFile::open((dir / "ggml-vocab-gpt-2.gguf").string());
  ASSERT_TRUE(gpt2.ok());
  EXPECT_EQ(gpt2->find("tokenizer.ggml.tokens")->size(), 50257u);
  EXPECT_EQ(gpt2->find("tokenizer.ggml.merges")->array_type(), GgufType::STRING);
}

}  // namespace
}  // namespace modu
