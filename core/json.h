#pragma once
// The project's one JSON reader (RFC 8259) and string writer: safetensors headers
// (core/safetensors.cpp), JSON Lines and JSON data files (data/jsonl.h, data/corpus.cpp,
// data/retrieval_pairs.cpp).
//
// Strictness: the full grammar is checked (no trailing commas, comments, single quotes, NaN,
// leading zeros or '+'; control characters must be escaped; \u escapes must pair their
// surrogates; nesting is bounded so the stack is). By default bytes >= 0x80 inside strings pass
// through unchecked, so callers decide what invalid UTF-8 means for them (core/utf8.h), and a
// repeated object key is kept (find() returns the last one, as JavaScript does); JsonOptions
// refuses either where a format forbids it.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mg {

// Malformed JSON, or a JSON value without the fields a reader expects. The message names the
// source (file and line, byte offset, ...) and what is wrong.
class JsonError : public Error {
 public:
  using Error::Error;
};

struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };

  Kind kind = Kind::null;
  bool boolean = false;
  double number = 0;   // a number's value (out-of-range literals saturate to +-inf or 0)
  std::string string;  // a string's value; for a number, its literal text (exact integers)
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // members in source order

  // Declared here and defaulted below the class: clang (with libstdc++ in C++20) instantiates
  // std::pair<std::string, JsonValue> while defining implicit members inside the class, where
  // JsonValue is still incomplete.
  JsonValue();
  JsonValue(const JsonValue&);
  JsonValue(JsonValue&&) noexcept;
  JsonValue& operator=(const JsonValue&);
  JsonValue& operator=(JsonValue&&) noexcept;
  ~JsonValue();

  bool is_object() const { return kind == Kind::object; }
  bool is_string() const { return kind == Kind::string; }
  // The value of member `key` of an object (the last one if repeated), or nullptr when this is
  // not an object or has no such member.
  const JsonValue* find(std::string_view key) const;
  // "null", "boolean", "number", "string", "array" or "object", for messages.
  const char* kind_name() const;
  // The same with an article: "a number", "an array", ... ("null" stays "null").
  std::string kind_phrase() const;
};
inline JsonValue::JsonValue() = default;
inline JsonValue::JsonValue(const JsonValue&) = default;
inline JsonValue::JsonValue(JsonValue&&) noexcept = default;
inline JsonValue& JsonValue::operator=(const JsonValue&) = default;
inline JsonValue& JsonValue::operator=(JsonValue&&) noexcept = default;
inline JsonValue::~JsonValue() = default;

struct JsonOptions {
  int max_depth = 256;       // arrays and objects nested deeper than this are refused
  bool strict_utf8 = false;  // refuse a string holding invalid UTF-8
  bool unique_keys = false;  // refuse an object that repeats a key
};

// Where and why a text is not JSON: the byte offset of the problem, the problem in words
// ("expected ':' after an object key, found '1'"), and how many arrays/objects enclose it.
// what() is "byte <offset>: <problem>"; readers that know more (a file, a line) say it themselves.
class JsonSyntaxError : public JsonError {
 public:
  JsonSyntaxError(std::size_t offset, std::string problem, int depth, bool duplicate_key);
  std::size_t offset() const { return offset_; }
  const std::string& problem() const { return problem_; }
  int depth() const { return depth_; }
  bool duplicate_key() const { return duplicate_key_; }  // a repeated key under unique_keys

 private:
  std::size_t offset_;
  std::string problem_;
  int depth_;
  bool duplicate_key_;
};

// Parses `text`, which must hold exactly one JSON value with optional surrounding whitespace.
// Throws JsonSyntaxError otherwise.
JsonValue parse_json_value(std::string_view text, const JsonOptions& options = {});

// The same with default options, for text from a named source: throws JsonError
// "<what>: line L, column C: <problem>".
JsonValue parse_json(std::string_view text, std::string_view what = "JSON text");

// Reads and parses a file holding one JSON value. Errors name the file, line and column.
JsonValue read_json_file(const std::string& path);

// Member `key` of `obj` as a string; throws JsonError "<where>: <message>" when the member is
// missing or not a string.
const std::string& json_string_field(const JsonValue& obj, std::string_view key, std::string_view where);

// Appends `s` as a JSON string literal: quotes and backslashes escaped, \n \r \t as such, other
// control characters as \u00xx, every other byte as it is.
void append_json_string(std::string& out, std::string_view s);

}  // namespace mg
