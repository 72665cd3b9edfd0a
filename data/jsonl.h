// A small strict JSON reader (RFC 8259) for the data pipeline: JSON Lines files (one object per
// line) and whole-file JSON values such as the arrays of records that npm data packages ship.
//
// Strictness: the full grammar is checked (no trailing commas, comments, single quotes, NaN,
// leading zeros or '+'; control characters must be escaped; \u escapes must pair their
// surrogates; nesting deeper than 256 is refused). Bytes >= 0x80 inside strings are passed
// through unchecked, so callers decide what invalid UTF-8 means for them (the corpus readers
// keep it and count it, the retrieval-pair readers reject it); see first_invalid_utf8().
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mg {

// Malformed JSON or a record without the expected fields. The message names the source (file
// and line, or byte offset for in-memory text) and what is wrong.
class JsonError : public Error {
 public:
  using Error::Error;
};

struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };

  Kind kind = Kind::null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // members in source order

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

// Parses `text`, which must hold exactly one JSON value with optional surrounding whitespace.
// Throws JsonError "<what>: line L, column C: <problem>" (`what` names the source).
JsonValue parse_json(std::string_view text, std::string_view what = "JSON text");

// Reads and parses a file holding one JSON value. Errors name the file, line and column.
JsonValue read_json_file(const std::string& path);

// Member `key` of `obj` as a string; throws JsonError "<where>: <message>" when the member is
// missing or not a string.
const std::string& json_string_field(const JsonValue& obj, std::string_view key,
                                     std::string_view where);

// Reads a JSON Lines file front to back: every line (terminated by '\n', the last one may lack
// it; a '\r' before the '\n' is ignored) must hold exactly one JSON object. Blank lines are
// errors, as the format has no place for them.
class JsonlReader {
 public:
  // Throws JsonError naming the file when it cannot be opened.
  explicit JsonlReader(std::string path);

  // Parses the next line into `obj` and returns true, or returns false at the end of the file.
  // Throws JsonError "<path>:<line>: ..." for a line that is blank, not valid JSON, or valid JSON
  // other than an object.
  bool next(JsonValue& obj);

  // 1-based number of the line last returned by next() (0 before the first).
  std::size_t line() const { return line_; }
  const std::string& path() const { return path_; }
  // "<path>:<line>", for callers' messages about the current record.
  std::string where() const;

 private:
  std::string path_;
  std::ifstream in_;
  std::string buf_;
  std::size_t line_ = 0;
};

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are ill-formed), or npos when `s` is valid.
std::size_t first_invalid_utf8(std::string_view s);
// Number of bytes of `s` that are not part of a well-formed UTF-8 sequence.
std::size_t count_invalid_utf8(std::string_view s);

}  // namespace mg
