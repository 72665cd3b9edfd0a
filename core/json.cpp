#include "core/json.h"

#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/read_file.h"
#include "core/utf8.h"

namespace mg {

namespace {

class Parser {
 public:
  Parser(std::string_view s, const JsonOptions& options) : s_(s), opt_(options) {}

  JsonValue parse_document() {
    skip_ws();
    JsonValue v = parse_value(0);
    skip_ws();
    if (!at_end()) fail(unexpected() + " after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(std::string problem, bool duplicate_key = false) const {
    throw JsonSyntaxError(pos_, std::move(problem), depth_, duplicate_key);
  }

  // 'x' for a printable character, '\xNN' for any other byte.
  static std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "'\\x%02x'", u);
    return buf;
  }
  // "'x'" or "end of input": what stands at pos_.
  std::string what_is_here() const { return at_end() ? std::string("end of input") : describe(s_[pos_]); }
  std::string unexpected() const { return "unexpected " + what_is_here(); }

  bool at_end() const { return pos_ >= s_.size(); }
  bool at(char c) const { return !at_end() && s_[pos_] == c; }
  bool at_digit() const { return !at_end() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  // `depth` arrays/objects enclose the value.
  JsonValue parse_value(int depth) {
    if (at_end()) fail(unexpected() + " (expected a value)");
    JsonValue v;
    const char c = s_[pos_];
    switch (c) {
      case '{': parse_object(v, depth + 1); break;
      case '[': parse_array(v, depth + 1); break;
      case '"':
        v.kind = JsonValue::Kind::string;
        parse_string(v.string);
        break;
      case 't': parse_literal("true"); v.kind = JsonValue::Kind::boolean; v.boolean = true; break;
      case 'f': parse_literal("false"); v.kind = JsonValue::Kind::boolean; break;
      case 'n': parse_literal("null"); break;
      default:
        if (c != '-' && !at_digit()) fail(unexpected() + " (expected a value)");
        v.kind = JsonValue::Kind::number;
        parse_number(v);
    }
    return v;
  }

  void parse_literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word)
      fail("invalid literal (expected '" + std::string(word) + "')");
    pos_ += word.size();
  }

  // Enters the array or object at pos_, `depth` deep; false when it closes at once (empty).
  bool open(int depth, char closer) {
    if (depth > opt_.max_depth) fail("nesting deeper than " + std::to_string(opt_.max_depth));
    depth_ = depth;
    ++pos_;
    skip_ws();
    return !close_if(closer, depth);
  }
  // After an item of an array or object: true when a ',' announces another, false when `closer`
  // ends the container.
  bool more_items(char closer, int depth, const char* container) {
    skip_ws();
    if (at(',')) {
      ++pos_;
      skip_ws();
      return true;
    }
    if (close_if(closer, depth)) return false;
    fail(unexpected() + " in " + container + " (expected ',' or '" + closer + "')");
  }
  bool close_if(char closer, int depth) {
    if (!at(closer)) return false;
    ++pos_;
    depth_ = depth - 1;
    return true;
  }

  void parse_object(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::object;
    if (!open(depth, '}')) return;
    std::set<std::string> seen;
    do {
      if (!at('"')) fail("expected a quoted key in object (found " + what_is_here() + ")");
      const std::size_t key_pos = pos_;
      std::string key;
      parse_string(key);
      if (opt_.unique_keys && !seen.insert(key).second) {
        pos_ = key_pos;
        fail("duplicate key \"" + key + "\"", true);
      }
      skip_ws();
      if (!at(':')) fail("expected ':' after object key (found " + what_is_here() + ")");
      ++pos_;
      skip_ws();
      JsonValue member = parse_value(depth);
      v.object.emplace_back(std::move(key), std::move(member));
    } while (more_items('}', depth, "object"));
  }

  void parse_array(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::array;
    if (!open(depth, ']')) return;
    do {
      v.array.push_back(parse_value(depth));
    } while (more_items(']', depth, "array"));
  }

  void parse_string(std::string& out) {
    ++pos_;  // opening quote
    for (;;) {
      // Copy the run of plain bytes in one go: most strings have few escapes.
      const std::size_t start = pos_;
      while (!at_end()) {
        const auto u = static_cast<unsigned char>(s_[pos_]);
        if (u == '"' || u == '\\' || u < 0x20) break;
        if (u < 0x80 || !opt_.strict_utf8) {
          ++pos_;
          continue;
        }
        const std::size_t n = utf8_sequence_length(s_, pos_);
        if (n == 0) fail("invalid UTF-8 in string");
        pos_ += n;
      }
      out.append(s_.data() + start, pos_ - start);
      if (at_end()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return;
      }
      if (c != '\\') fail("unescaped control character " + describe(c) + " in string");
      ++pos_;
      if (at_end()) fail("unterminated string");
      const std::string err = decode_json_escape(s_, pos_, out);
      if (!err.empty()) fail(err + " in string");
    }
  }

  void parse_number(JsonValue& v) {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t d0 = pos_;
      while (at_digit()) ++pos_;
      return pos_ - d0;
    };
    if (at('-')) ++pos_;
    if (at('0')) {
      ++pos_;
      if (at_digit()) fail("leading zero in number");
    } else if (digits() == 0) {
      fail("invalid number (no digits)");
    }
    if (at('.')) {
      ++pos_;
      if (digits() == 0) fail("invalid number (no digits after '.')");
    }
    if (at('e') || at('E')) {
      ++pos_;
      if (at('+') || at('-')) ++pos_;
      if (digits() == 0) fail("invalid number (no digits in exponent)");
    }
    v.string.assign(s_.substr(start, pos_ - start));
    // The grammar above is strtod's, so it reads the whole literal (from a terminated copy).
    char* end = nullptr;
    v.number = std::strtod(v.string.c_str(), &end);  // out of range: saturates, as most readers do
    if (end != v.string.c_str() + v.string.size()) fail("invalid number");
  }

  std::string_view s_;
  const JsonOptions& opt_;
  std::size_t pos_ = 0;
  int depth_ = 0;  // arrays/objects enclosing pos_, for errors
};

// 1-based line and column of byte `pos`.
std::pair<std::size_t, std::size_t> line_col(std::string_view s, std::size_t pos) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < pos && i < s.size(); ++i) {
    if (s[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

}  // namespace

JsonSyntaxError::JsonSyntaxError(std::size_t offset, std::string problem, int depth, bool duplicate_key)
    : JsonError(detail::concat("byte ", offset, ": ", problem)),
      offset_(offset),
      problem_(std::move(problem)),
      depth_(depth),
      duplicate_key_(duplicate_key) {}

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

JsonValue parse_json_value(std::string_view text, const JsonOptions& options) {
  return Parser(text, options).parse_document();
}

JsonValue parse_json(std::string_view text, std::string_view what) {
  try {
    return parse_json_value(text);
  } catch (const JsonSyntaxError& e) {
    const auto [line, col] = line_col(text, e.offset());
    throw JsonError(detail::concat(what, ": line ", line, ", column ", col, ": ", e.problem()));
  }
}

JsonValue read_json_file(const std::string& path) { return parse_json(read_file_or_throw<JsonError>(path), path); }

const std::string& json_string_field(const JsonValue& obj, std::string_view key, std::string_view where) {
  const JsonValue* v = obj.find(key);
  if (v == nullptr) throw JsonError(detail::concat(where, ": missing field \"", key, "\""));
  if (!v->is_string())
    throw JsonError(detail::concat(where, ": field \"", key, "\" is ", v->kind_phrase(), ", expected a string"));
  return v->string;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace mg
