#include "data/jsonl.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/utf8.h"

namespace mg {

namespace {

constexpr int kMaxDepth = 256;

// Thrown inside the parser with a byte offset; parse_json turns it into a line and column.
struct ParseFailure {
  std::size_t pos;
  std::string message;
};

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  JsonValue parse_document() {
    skip_ws();
    JsonValue v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected '" + describe(s_[pos_]) + "' after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(std::string message) const { throw ParseFailure{pos_, std::move(message)}; }

  static std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return buf;
  }

  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  void expect_literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) fail("invalid literal (expected '" + std::string(lit) + "')");
    pos_ += lit.size();
  }

  JsonValue parse_value(int depth) {
    if (pos_ >= s_.size()) fail("unexpected end of input (expected a value)");
    JsonValue v;
    const char c = s_[pos_];
    switch (c) {
      case '{': parse_object(v, depth + 1); break;
      case '[': parse_array(v, depth + 1); break;
      case '"':
        v.kind = JsonValue::Kind::string;
        parse_string(v.string);
        break;
      case 't': expect_literal("true"); v.kind = JsonValue::Kind::boolean; v.boolean = true; break;
      case 'f': expect_literal("false"); v.kind = JsonValue::Kind::boolean; break;
      case 'n': expect_literal("null"); break;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          v.kind = JsonValue::Kind::number;
          v.number = parse_number();
        } else {
          fail("unexpected '" + describe(c) + "' (expected a value)");
        }
    }
    return v;
  }

  void parse_object(JsonValue& v, int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    v.kind = JsonValue::Kind::object;
    ++pos_;  // '{'
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return; }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key in object");
      std::string key;
      parse_string(key);
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':' after object key");
      ++pos_;
      skip_ws();
      JsonValue member = parse_value(depth);
      v.object.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (pos_ >= s_.size()) fail("unexpected end of input in object (expected ',' or '}')");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == '}') { ++pos_; return; }
      fail("unexpected '" + describe(s_[pos_]) + "' in object (expected ',' or '}')");
    }
  }

  void parse_array(JsonValue& v, int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    v.kind = JsonValue::Kind::array;
    ++pos_;  // '['
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return; }
    for (;;) {
      skip_ws();
      v.array.push_back(parse_value(depth));
      skip_ws();
      if (pos_ >= s_.size()) fail("unexpected end of input in array (expected ',' or ']')");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == ']') { ++pos_; return; }
      fail("unexpected '" + describe(s_[pos_]) + "' in array (expected ',' or ']')");
    }
  }

  void parse_string(std::string& out) {
    ++pos_;  // opening quote
    for (;;) {
      // Copy the run of plain bytes in one go: most strings have few escapes.
      const std::size_t start = pos_;
      while (pos_ < s_.size()) {
        const auto u = static_cast<unsigned char>(s_[pos_]);
        if (u == '"' || u == '\\' || u < 0x20) break;
        ++pos_;
      }
      out.append(s_.data() + start, pos_ - start);
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') { ++pos_; return; }
      if (c != '\\') fail("unescaped control character " + describe(c) + " in string");
      ++pos_;
      if (pos_ >= s_.size()) fail("unterminated string");
      const std::string err = decode_json_escape(s_, pos_, out);
      if (!err.empty()) fail(err + " in string");
    }
  }

  double parse_number() {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t d0 = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d0;
    };
    if (s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
      if (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') fail("leading zero in number");
    } else if (digits() == 0) {
      fail("invalid number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail("invalid number (no digits after '.')");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("invalid number (no digits in exponent)");
    }
    // strtod needs a terminated buffer; numbers are short.
    const std::string text(s_.substr(start, pos_ - start));
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) fail("invalid number");
    return v;  // out-of-range values saturate to +-inf / 0, as most JSON readers do
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

// 1-based line and column of byte `pos`.
std::pair<std::size_t, std::size_t> line_col(std::string_view s, std::size_t pos) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < pos && i < s.size(); ++i) {
    if (s[i] == '\n') { ++line; col = 1; } else { ++col; }
  }
  return {line, col};
}

std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t n;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 == 0xE0) { n = 3; lo = 0xA0; }
  else if (b0 >= 0xE1 && b0 <= 0xEC) n = 3;
  else if (b0 == 0xED) { n = 3; hi = 0x9F; }  // no surrogates
  else if (b0 >= 0xEE && b0 <= 0xEF) n = 3;
  else if (b0 == 0xF0) { n = 4; lo = 0x90; }
  else if (b0 >= 0xF1 && b0 <= 0xF3) n = 4;
  else if (b0 == 0xF4) { n = 4; hi = 0x8F; }  // <= U+10FFFF
  else return 0;
  if (i + n > s.size()) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return n;
}

}  // namespace

const JsonValue* JsonValue::find(std::string_view key) const {
  if (kind != Kind::object) return nullptr;
  for (auto it = object.rbegin(); it != object.rend(); ++it)
    if (it->first == key) return &it->second;
  return nullptr;
}

const char* JsonValue::kind_name() const {
  switch (kind) {
    case Kind::null: return "null";
    case Kind::boolean: return "boolean";
    case Kind::number: return "number";
    case Kind::string: return "string";
    case Kind::array: return "array";
    case Kind::object: return "object";
  }
  return "?";
}

std::string JsonValue::kind_phrase() const {
  switch (kind) {
    case Kind::null: return "null";
    case Kind::array: return "an array";
    case Kind::object: return "an object";
    default: return std::string("a ") + kind_name();
  }
}

JsonValue parse_json(std::string_view text, std::string_view what) {
  try {
    return Parser(text).parse_document();
  } catch (const ParseFailure& f) {
    const auto [line, col] = line_col(text, f.pos);
    throw JsonError(detail::concat(what, ": line ", line, ", column ", col, ": ", f.message));
  }
}

JsonValue read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JsonError(detail::concat(path, ": cannot open: ", std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw JsonError(detail::concat(path, ": read error"));
  return parse_json(ss.str(), path);
}

const std::string& json_string_field(const JsonValue& obj, std::string_view key,
                                     std::string_view where) {
  const JsonValue* v = obj.find(key);
  if (v == nullptr)
    throw JsonError(detail::concat(where, ": missing field \"", key, "\""));
  if (!v->is_string())
    throw JsonError(detail::concat(where, ": field \"", key, "\" is ", v->kind_phrase(),
                                   ", expected a string"));
  return v->string;
}

JsonlReader::JsonlReader(std::string path) : path_(std::move(path)), in_(path_, std::ios::binary) {
  if (!in_) throw JsonError(detail::concat(path_, ": cannot open: ", std::strerror(errno)));
}

bool JsonlReader::next(JsonValue& obj) {
  if (!std::getline(in_, buf_)) {
    if (in_.bad()) throw JsonError(detail::concat(path_, ": read error after line ", line_));
    return false;
  }
  ++line_;
  if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
  if (buf_.find_first_not_of(" \t") == std::string::npos)
    throw JsonError(detail::concat(where(), ": blank line (JSON Lines needs one object per line)"));
  JsonValue v;
  try {
    v = Parser(buf_).parse_document();
  } catch (const ParseFailure& f) {
    throw JsonError(detail::concat(where(), ", column ", f.pos + 1, ": ", f.message));
  }
  if (!v.is_object())
    throw JsonError(detail::concat(where(), ": line holds ", v.kind_phrase(), ", expected an object"));
  obj = std::move(v);
  return true;
}

std::string JsonlReader::where() const { return detail::concat(path_, ":", line_); }

std::size_t first_invalid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::size_t count_invalid_utf8(std::string_view s) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) { ++bad; ++i; } else { i += n; }
  }
  return bad;
}

}  // namespace mg
