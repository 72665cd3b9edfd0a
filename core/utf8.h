#pragma once
// UTF-8 encoding and JSON string escapes, shared by the JSON readers (core/safetensors.cpp,
// data/jsonl.cpp) and the SGML entity decoder of data/retrieval_pairs.cpp.
#include <cstdint>
#include <string>
#include <string_view>

namespace mg {

// Appends code point cp (expects cp <= 0x10FFFF) to out as UTF-8 (1 to 4 bytes).
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// The value of one hexadecimal digit (0-9, a-f, A-F), or -1 for any other character.
inline int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes one JSON string escape (RFC 8259 section 7). Expects s[pos] to be the character after
// the backslash. On success appends the decoded text (UTF-8; a \uD8xx\uDCxx surrogate pair
// becomes one code point) to out, moves pos past the escape and returns an empty string. On
// failure returns a message naming the problem and leaves pos at the escape character.
inline std::string decode_json_escape(std::string_view s, size_t& pos, std::string& out) {
  if (pos >= s.size()) return "unterminated escape";
  const char e = s[pos];
  const char* simple = nullptr;
  switch (e) {
    case '"': simple = "\""; break;
    case '\\': simple = "\\"; break;
    case '/': simple = "/"; break;
    case 'b': simple = "\b"; break;
    case 'f': simple = "\f"; break;
    case 'n': simple = "\n"; break;
    case 'r': simple = "\r"; break;
    case 't': simple = "\t"; break;
    case 'u': break;
    default: {
      const bool printable = e > 0x20 && e < 0x7f;
      return printable ? std::string("invalid escape '\\") + e + "'" : std::string("invalid escape after '\\'");
    }
  }
  if (simple != nullptr) {
    out += simple;
    ++pos;
    return {};
  }
  size_t p = pos + 1;
  std::string err;
  auto hex4 = [&](uint32_t& v) {
    if (p + 4 > s.size()) return (err = "truncated \\u escape"), false;
    v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int d = hex_digit_value(s[p + k]);
      if (d < 0) return (err = "bad hex digit in \\u escape"), false;
      v = v << 4 | uint32_t(d);
    }
    p += 4;
    return true;
  };
  uint32_t cp = 0;
  if (!hex4(cp)) return err;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return "lone low surrogate in \\u escape";
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    uint32_t lo = 0;
    if (s.substr(p, 2) != "\\u") return "high surrogate not followed by a low surrogate";
    p += 2;
    if (!hex4(lo)) return err;
    if (lo < 0xDC00 || lo > 0xDFFF) return "high surrogate not followed by a low surrogate";
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  append_utf8(out, cp);
  pos = p;
  return {};
}

}  // namespace mg
