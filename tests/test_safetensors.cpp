// core/safetensors: round trips of every dtype and layout, a clear error for every kind of corrupt
// file, atomic writes, and files written by PyTorch's side (the golden fixtures).
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/safetensors.h"
#include "tests/temp_dir.h"
#include "tests/test_helpers.h"

using namespace mg;
namespace fs = std::filesystem;

namespace {

using test::read_file;
using test::TempDir;
using test::write_file;

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

// A safetensors file from a literal header and data section.
std::string st_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

// Loading `bytes` must throw mg::Error whose message names the file and contains `needle`.
void expect_load_error(const TempDir& tmp, const std::string& bytes, const std::string& needle) {
  const std::string path = tmp.file("corrupt.safetensors");
  write_file(path, bytes);
  std::string msg;
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO("message: " << msg);
  INFO("expected to contain: " << needle);
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find(needle) != std::string::npos);
}

template <class T>
std::vector<T> values_of(const Tensor& t) {
  return t.to_vector<T>();
}

// Element-exact equality of two tensors of any dtype (bf16 compared by bits).
void check_same(const Tensor& a, const Tensor& b) {
  REQUIRE(a.dtype() == b.dtype());
  REQUIRE(a.shape() == b.shape());
  switch (a.dtype()) {
    case DType::f32: CHECK(values_of<float>(a) == values_of<float>(b)); break;
    case DType::f64: CHECK(values_of<double>(a) == values_of<double>(b)); break;
    case DType::i32: CHECK(values_of<int32_t>(a) == values_of<int32_t>(b)); break;
    case DType::bf16: {
      auto x = values_of<bf16>(a), y = values_of<bf16>(b);
      REQUIRE(x.size() == y.size());
      for (size_t i = 0; i < x.size(); ++i) CHECK(x[i].bits == y[i].bits);
      break;
    }
  }
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, 0-dim, empty and non-contiguous tensors, with metadata") {
  TempDir tmp;
  const std::string path = tmp.file("model.safetensors");
  Tensor wide = randn({4, 6}, 3);
  std::vector<std::pair<std::string, Tensor>> ts = {
      {"f32", randn({3, 5}, 1)},
      {"f64", randn({2, 3, 7}, 2, TensorOptions{DType::f64})},
      {"i32", randint(-1000, 1000, {9}, 4)},
      {"bf16", randn({5, 3}, 5).to(DType::bf16)},
      {"scalar_f32", scalar_tensor(2.5)},
      {"scalar_i32", scalar_tensor(-7, TensorOptions{DType::i32})},
      {"scalar_bf16", scalar_tensor(1.5, TensorOptions{DType::bf16})},
      {"empty", zeros({0})},
      {"empty_mid", zeros({2, 0, 3}, TensorOptions{DType::f64})},
      {"transposed", wide.t()},                    // non-contiguous
      {"strided", wide.slice(1, 0, 6, 2)},         // non-contiguous
      {"wte.weight", randn({7, 3}, 6)},
      {"name with \"quotes\", \\ and\nnewline \xC3\xA9", ones({2})},
  };
  CHECK_FALSE(ts[9].second.is_contiguous());
  CHECK_FALSE(ts[10].second.is_contiguous());
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"step", "1234"}, {"note", "tab\there \"q\" \\ \xE2\x82\xAC"}, {"", "empty key"}};
  save_safetensors(path, ts, meta);

  // No temporary file is left behind, and the data section starts 8-byte aligned.
  CHECK(tmp.listing() == std::vector<std::string>{"model.safetensors"});
  const std::string raw = read_file(path);
  uint64_t header_len;
  std::memcpy(&header_len, raw.data(), 8);
  CHECK(header_len % 8 == 0);
  // Each tensor starts at a multiple of its element size within the file (8-byte dtypes first).
  for (const auto& entry : {std::pair{"f64", 8}, {"empty_mid", 8}, {"f32", 4}, {"i32", 4}, {"strided", 4},
                            {"bf16", 2}, {"scalar_bf16", 2}}) {
    const char* name = entry.first;
    const int size = entry.second;
    std::string key = "\"";
    key.append(name).append("\":{");
    const size_t at = raw.find(key);
    REQUIRE(at != std::string::npos);
    const size_t offs = raw.find("\"data_offsets\":[", at);
    REQUIRE(offs != std::string::npos);
    const uint64_t begin = std::stoull(raw.substr(offs + 16, 20));
    INFO(name << " begins at data byte " << begin);
    CHECK((8 + header_len + begin) % uint64_t(size) == 0);
  }
  CHECK(raw.find("\"f64\":{\"dtype\":\"F64\",\"shape\":[2,3,7],\"data_offsets\":[0,336]}") != std::string::npos);

  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == meta);
  CHECK(f.path == path);
  REQUIRE(f.tensors.size() == ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    INFO("tensor " << ts[i].first);
    CHECK(f.tensors[i].first == ts[i].first);  // header order is preserved
    // (Tensor::is_contiguous() is false for some zero-element shapes such as [2, 0, 3]; nothing to lay out there.)
    if (f.tensors[i].second.numel() > 0) CHECK(f.tensors[i].second.is_contiguous());
    CHECK(f.tensors[i].second.device() == kCPU);
    CHECK_FALSE(f.tensors[i].second.requires_grad());
    check_same(f.tensors[i].second, ts[i].second);
    CHECK(f.contains(ts[i].first));
    check_same(f.get(ts[i].first), ts[i].second);
  }
  CHECK(f.get("scalar_f32").dim() == 0);
  CHECK(f.get("scalar_f32").item() == 2.5);
  CHECK(f.get("empty_mid").shape() == Shape{2, 0, 3});
  CHECK_FALSE(f.contains("missing"));

  // Saving again over an existing file replaces it.
  save_safetensors(path, {{"only", full({2}, 3.0)}});
  SafetensorsFile g = load_safetensors(path);
  REQUIRE(g.tensors.size() == 1);
  CHECK(g.metadata.empty());
  CHECK(g.get("only").to_vector<float>() == std::vector<float>{3, 3});
  CHECK(tmp.listing() == std::vector<std::string>{"model.safetensors"});

  // No tensors at all is a valid file.
  save_safetensors(path, {}, {{"k", "v"}});
  SafetensorsFile h = load_safetensors(path);
  CHECK(h.tensors.empty());
  CHECK(h.metadata.at("k") == "v");
}

TEST_CASE("safetensors: a hand-written file in the reference layout loads, I64 converts to i32") {
  TempDir tmp;
  const std::string path = tmp.file("ref.safetensors");
  // Tensors listed out of data order, unpadded header, escaped names: all legal.
  std::string ids(3 * 8, '\0');
  const int64_t idv[3] = {0, -5, 2147483647};
  std::memcpy(ids.data(), idv, sizeof idv);
  const std::string header =
      R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}, "ids" : {"shape":[3],"dtype":"I64","data_offsets":[0,24]},)"
      R"("__metadata__":{"format":"pt"},"\u00e9\ud83d\ude00":{"dtype":"F32","shape":[],"data_offsets":[32,36]}})";
  write_file(path, st_file(header, ids + floats({1.5f, -2.f}) + floats({7.f})));
  SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.tensors[0].first == "b");
  CHECK(f.tensors[1].first == "ids");
  CHECK(f.tensors[2].first == "\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(f.get("ids").dtype() == DType::i32);
  CHECK(f.get("ids").to_vector<int32_t>() == std::vector<int32_t>{0, -5, 2147483647});
  CHECK(f.get("b").to_vector<float>() == std::vector<float>{1.5f, -2.f});
  CHECK(f.tensors[2].second.item() == 7.0);
  CHECK(f.metadata.at("format") == "pt");
}

TEST_CASE("safetensors: every kind of corrupt file gives a clear error naming the file") {
  TempDir tmp;
  const std::string one = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data = floats({1, 2});
  // Sanity: the well-formed base case loads.
  write_file(tmp.file("ok.safetensors"), st_file(one, data));
  CHECK(load_safetensors(tmp.file("ok.safetensors")).get("a").to_vector<float>() == std::vector<float>{1, 2});

  SUBCASE("missing file") {
    const std::string path = tmp.file("nope.safetensors");
    CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains((path + ": cannot open").c_str()), Error);
  }
  SUBCASE("a directory") { CHECK_THROWS_AS(load_safetensors(tmp.path.string()), Error); }
  SUBCASE("truncated: shorter than the length prefix") { expect_load_error(tmp, "abc", "file truncated"); }
  SUBCASE("truncated: empty file") { expect_load_error(tmp, "", "file truncated"); }
  SUBCASE("header length beyond the file") {
    expect_load_error(tmp, le64(1000) + one, "header length 1000 goes beyond the file");
    expect_load_error(tmp, le64(~uint64_t(0)) + one, "goes beyond the file");
  }
  SUBCASE("truncated data section") {
    expect_load_error(tmp, st_file(one, data.substr(0, 6)), "go beyond the data section");
  }
  SUBCASE("malformed JSON") {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"", "expected a value"},
        {"{", "expected a quoted key"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},})", "expected a quoted key"},
        {R"({"a":{"dtype":"F32","shape":[2,],"data_offsets":[0,8]}})", "expected a value"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x)", "unexpected 'x' after the value"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", "end of input in object (expected ',' or '}')"},
        {R"({"a":{"dtype":"F32, "shape":[2],"data_offsets":[0,8]}})", "unexpected 's' in object (expected ',' or '}')"},
        {R"({"a" 1})", "expected ':'"},
        {R"({"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})", "leading zero"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}, "b":tru})", "invalid literal (expected 'true')"},
        {R"({'a':1})", "expected a quoted key"},
        {R"({"a\q":1})", "invalid escape"},
        {R"({"\ud800":1})", "high surrogate"},
        {R"({"\udc00":1})", "lone low surrogate"},
        {"{\"a\tb\":1}", "unescaped control character"},
        {"{\"\xC3\x28\":1}", "invalid UTF-8"},
        {"{\"\xC0\xAF\":1}", "invalid UTF-8"},  // overlong '/'
        {std::string("{\"a\":1}\0   ", 11), "unexpected '\\x00' after the value"},
        {std::string(100, '[') + std::string(100, ']'), "nesting deeper"},
        {"[1]", "header must be a JSON object"},
    };
    for (const auto& c : bad) {
      const auto& header = c.first;
      const auto& needle = c.second;
      INFO("header: " << header);
      expect_load_error(tmp, st_file(header, ""), needle);
    }
  }
  SUBCASE("headers that break the schema or disagree with the data") {
    const std::string none;
    const std::vector<std::array<std::string, 3>> bad = {  // header, data, expected in the message
        // dtype
        {R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", "abcd", "unknown or unsupported dtype \"F16\""},
        {R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,4]}})", "abcd", "dtype must be a string"},
        // shape and offsets disagree
        {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data,
         "needs 12 bytes, but data_offsets [0, 8] hold 8"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data, "end before begin"},
        {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data, "more bytes than fit"},
        // bad shape and offset entries
        {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data,
         "shape entry must be a non-negative integer, found -2"},
        {R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data, "found 2.0"},
        {R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", data, "shape must be an array"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data, "data_offsets must be an array [begin, end]"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", data,
         "data_offsets end must be a non-negative integer, found a string"},
        {R"({"a":{"dtype":"F32","shape":[2]}})", data, "missing data_offsets"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", data, "unknown key \"x\""},
        {R"({"a":[1]})", data, "tensor \"a\": expected an object, found an array"},
        {R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})", data, "at most 8 supported"},
        // out-of-range, overlapping and non-covering offsets
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", data, "go beyond the data section (8 bytes"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
         data, "tensors \"a\" and \"b\" overlap"},
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data, "data bytes [0, 4) belong to no tensor"},
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data, "4 bytes after the last tensor"},
        // duplicate names
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
         R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
         data, "duplicate key \"a\" (a tensor name may appear only once)"},
        // bad metadata
        {R"({"__metadata__":{"step":12}})", none, "__metadata__ value for \"step\" must be a string, found a number"},
        {R"({"__metadata__":"x"})", none, "__metadata__ must be an object"},
    };
    for (const auto& c : bad) {
      const std::string &header = c[0], &bytes = c[1], &needle = c[2];
      INFO("header: " << header);
      expect_load_error(tmp, st_file(header, bytes), needle);
    }
  }
  SUBCASE("a zero-size shape whose other dims overflow the strides") {
    // Zero bytes of data, so the byte check passes; the strides of [0, 2^40, 2^40] do not fit.
    expect_load_error(tmp, st_file(R"({"a":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}})", ""),
                      "tensor \"a\": strides of shape [0, 1099511627776, 1099511627776] overflows int64");
  }
  SUBCASE("I64 value out of i32 range") {
    std::string big(8, '\0');
    const int64_t v = int64_t(1) << 40;
    std::memcpy(big.data(), &v, 8);
    expect_load_error(tmp, st_file(R"({"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", big),
                      "I64 value 1099511627776 at element 0 does not fit i32");
  }
}

TEST_CASE("safetensors: get() on a missing name lists the closest names") {
  SafetensorsFile f;
  f.path = "ckpt.safetensors";
  f.tensors = {{"wte.weight", zeros({1})}, {"mixerblocks.0.conv.weight", zeros({1})}, {"lm_head.weight", zeros({1})}};
  CHECK_THROWS_WITH_AS(f.get("mixerblocks.0.conv.wieght"),
                       doctest::Contains("ckpt.safetensors: no tensor named \"mixerblocks.0.conv.wieght\" (the file has 3 "
                                         "tensors); closest: \"mixerblocks.0.conv.weight\""),
                       Error);
  CHECK_THROWS_WITH_AS(f.get("wte"), doctest::Contains("closest: \"wte.weight\""), Error);
  CHECK_THROWS_WITH_AS(f.get("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), doctest::Contains("first names: \"wte.weight\""), Error);
}

TEST_CASE("safetensors: a failed write leaves neither a temporary nor a partial file") {
  TempDir tmp;
  SUBCASE("directory does not exist") {
    const std::string path = tmp.file("no_such_dir/model.safetensors");
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"a", ones({2})}}), doctest::Contains("cannot create temporary file"),
                         Error);
    CHECK(tmp.listing().empty());
  }
  SUBCASE("rename fails after the temporary file was written") {
    // The target is an existing non-empty directory, so the final rename fails.
    const std::string path = tmp.file("target");
    fs::create_directories(path);
    write_file(path + "/keep", "x");
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"a", ones({2})}}), doctest::Contains("cannot rename"), Error);
    CHECK(tmp.listing() == std::vector<std::string>{"target"});
  }
  SUBCASE("invalid arguments are rejected before anything is written, and an old file survives") {
    const std::string path = tmp.file("m.safetensors");
    save_safetensors(path, {{"a", ones({2})}});
    const std::string before = read_file(path);
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"a", ones({2})}, {"a", ones({3})}}),
                         doctest::Contains("duplicate tensor name \"a\""), Error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"", ones({2})}}), doctest::Contains("empty name"), Error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"__metadata__", ones({2})}}), doctest::Contains("reserved"), Error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"u", Tensor()}}), doctest::Contains("\"u\" is undefined"), Error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"\xFF", ones({1})}}), doctest::Contains("not valid UTF-8"), Error);
    CHECK(read_file(path) == before);
    CHECK(tmp.listing() == std::vector<std::string>{"m.safetensors"});
  }
}

TEST_CASE("safetensors: files written from PyTorch's side (golden fixtures) load") {
  const std::string path = MG_SOURCE_DIR "/tests/golden/embedding.safetensors";
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.count("torch_version") == 1);
  CHECK(f.metadata.at("op") == "embedding");
  // The ids were written by torch as int64 and come back as i32.
  const Tensor& ids = f.get("rows.ids");
  CHECK(ids.dtype() == DType::i32);
  CHECK(ids.shape() == Shape{3, 5});
  CHECK(ids.to_vector<int32_t>() == std::vector<int32_t>{3, 16, 3, 0, 5, 5, 5, 9, 3, 1, 0, 12, 16, 7, 3});
  CHECK(f.get("rows.weight.f32").dtype() == DType::f32);
  CHECK(f.get("rows.weight").dtype() == DType::f64);
  CHECK(f.get("rows.weight").shape() == Shape{17, 6});
  // The f32 copy holds the same (f32-representable) values as the f64 one.
  CHECK(f.get("rows.weight.f32").to(DType::f64).to_vector<double>() == f.get("rows.weight").to_vector<double>());
  // Saving what we loaded reproduces the same tensors.
  TempDir tmp;
  save_safetensors(tmp.file("copy.safetensors"), f.tensors, f.metadata);
  SafetensorsFile g = load_safetensors(tmp.file("copy.safetensors"));
  REQUIRE(g.tensors.size() == f.tensors.size());
  for (size_t i = 0; i < f.tensors.size(); ++i) check_same(g.tensors[i].second, f.tensors[i].second);
  CHECK(g.metadata == f.metadata);
}
