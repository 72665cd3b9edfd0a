#pragma once
// UTF-8: the one validator (RFC 3629), the encoder, and JSON string escapes. Used by the JSON
// reader (core/json.cpp), safetensors names, the corpus readers' byte counts and the SGML entity
// decoder of data/retrieval_pairs.cpp.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mg {

// Length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0 when the byte there
// starts none: overlong forms, surrogates, code points above U+10FFFF and truncated sequences
// are ill-formed (RFC 3629). Expects i < s.size().
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t n;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 == 0xE0) { n = 3; lo = 0xA0; }  // no overlong 3-byte forms
  else if (b0 >= 0xE1 && b0 <= 0xEC) n = 3;
  else if (b0 == 0xED) { n = 3; hi = 0x9F; }  // no surrogates
  else if (b0 >= 0xEE && b0 <= 0xEF) n = 3;
  else if (b0 == 0xF0) { n = 4; lo = 0x90; }  // no overlong 4-byte forms
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

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence, or npos when
// `s` is valid UTF-8.
inline std::size_t first_invalid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

inline bool valid_utf8(std::string_view s) { return first_invalid_utf8(s) == std::string_view::npos; }

// Number of bytes of `s` that are not part of a well-formed UTF-8 sequence.
inline std::size_t count_invalid_utf8(std::string_view s) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      ++bad;
      ++i;
    } else {
      i += n;
    }
  }
  return bad;
}

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
