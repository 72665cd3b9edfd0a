#include "data/retrieval_pairs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "core/atomic_file.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/read_file.h"
#include "core/utf8.h"
#include "data/corpus.h"
#include "data/jsonl.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string trimmed(std::string s) {
  trim_ascii_whitespace(s);
  return s;
}

// Runs of ASCII whitespace become one space; the ends are trimmed.
std::string collapse_whitespace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char c : s) {
    if (is_space(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out += ' ';
      pending_space = false;
      out += c;
    }
  }
  return out;
}

void check_utf8(const std::string& text, std::string_view what, std::string_view where) {
  const std::size_t bad = first_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw PairsError(detail::concat(where, ": ", what, " is not valid UTF-8 (byte ", bad, ")"));
}

// ---------------------------------------------------------------------------------------------
// Reuters

std::string clean_headline(std::string_view title) {
  std::string no_tags;
  for (std::size_t i = 0; i < title.size(); ++i) {
    if (title[i] == '<') {
      const std::size_t close = title.find('>', i);
      if (close != std::string_view::npos) {
        no_tags += ' ';
        i = close;
        continue;
      }
    }
    no_tags += title[i];
  }
  std::string out = collapse_whitespace(no_tags);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

std::string clean_body(std::string body) {
  while (!body.empty() && (body.back() == '\x03' || is_space(body.back()))) body.pop_back();
  const std::size_t nl = body.find_last_of('\n');
  std::string last = collapse_whitespace(nl == std::string::npos ? std::string_view(body)
                                                                  : std::string_view(body).substr(nl + 1));
  while (!last.empty() && last.back() == '.') last.pop_back();
  for (char& c : last)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  if (nl != std::string::npos && (last == "reuter" || last == "reuters")) body.resize(nl);
  trim_ascii_whitespace(body);
  return body;
}

std::vector<std::string> reuters_files(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return {path};
  fs::path dir(path);
  if (fs::is_directory(dir / "data" / "full", ec)) dir = dir / "data" / "full";
  if (!fs::is_directory(dir, ec))
    throw PairsError(detail::concat(path, ": no such file or directory (install Reuters-21578 with "
                                          "scripts/install_corpus.sh reuters)"));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
  if (ec) throw PairsError(detail::concat(dir.string(), ": cannot list: ", ec.message()));
  if (files.empty()) throw PairsError(detail::concat(dir.string(), ": no *.json files"));
  std::sort(files.begin(), files.end());
  return files;
}

// An optional string member: nullptr when absent or null; error when another type.
const std::string* optional_string(const JsonValue& rec, std::string_view key, std::string_view where) {
  const JsonValue* v = rec.find(key);
  if (v == nullptr || v->kind == JsonValue::Kind::null) return nullptr;
  if (!v->is_string())
    throw PairsError(detail::concat(where, ": field \"", key, "\" is ", v->kind_phrase(),
                                    ", expected a string"));
  return &v->string;
}

// ---------------------------------------------------------------------------------------------
// roff (man(7)) rendering

struct Special {
  const char* name;
  const char* text;
};
constexpr Special kSpecialChars[] = {
    {"em", "\xE2\x80\x94"}, {"en", "\xE2\x80\x93"}, {"hy", "-"},   {"mi", "-"},  {"aq", "'"},
    {"dq", "\""},           {"lq", "\xE2\x80\x9C"}, {"rq", "\xE2\x80\x9D"},       {"oq", "\xE2\x80\x98"},
    {"cq", "\xE2\x80\x99"}, {"bu", "\xE2\x80\xA2"}, {"co", "\xC2\xA9"},           {"rg", "\xC2\xAE"},
    {"tm", "\xE2\x84\xA2"}, {"ti", "~"},            {"ha", "^"},   {"ga", "`"},  {"aa", "\xC2\xB4"},
    {"mu", "\xC3\x97"},     {"di", "\xC3\xB7"},     {"+-", "\xC2\xB1"},           {"<=", "\xE2\x89\xA4"},
    {">=", "\xE2\x89\xA5"}, {"!=", "\xE2\x89\xA0"}, {"->", "\xE2\x86\x92"},       {"<-", "\xE2\x86\x90"},
    {"rA", "\xE2\x87\x92"}, {"lA", "\xE2\x87\x90"}, {"bv", "|"},   {"ba", "|"},  {"or", "|"},
    {"sl", "/"},            {"rs", "\\"},           {"dg", "\xE2\x80\xA0"},       {"sc", "\xC2\xA7"},
    {"de", "\xC2\xB0"},     {"ps", "\xC2\xB6"},     {"ct", "\xC2\xA2"},           {"Po", "\xC2\xA3"},
    {"Eu", "\xE2\x82\xAC"}, {"eu", "\xE2\x82\xAC"}, {"mc", "\xC2\xB5"},           {"lh", "\xE2\x98\x9C"},
    {"rh", "\xE2\x98\x9E"}, {"at", "@"},            {"sh", "#"},   {"Do", "$"},  {"fm", "\xE2\x80\xB2"},
    {"ss", "\xC3\x9F"},     {"'e", "\xC3\xA9"},     {"`e", "\xC3\xA8"},           {":a", "\xC3\xA4"},
    {":o", "\xC3\xB6"},     {":u", "\xC3\xBC"},     {",c", "\xC3\xA7"},           {"~n", "\xC3\xB1"},
    {"'a", "\xC3\xA1"},     {"'o", "\xC3\xB3"},     {"'i", "\xC3\xAD"},           {"'u", "\xC3\xBA"},
    {"^e", "\xC3\xAA"},     {"`a", "\xC3\xA0"},     {"lB", "["},   {"rB", "]"},  {"lC", "{"},
    {"rC", "}"},            {"la", "\xE2\x9F\xA8"}, {"ra", "\xE2\x9F\xA9"},       {"ul", "_"},
    {"pl", "+"},            {"eq", "="},            {"**", "*"},   {"no", "\xC2\xAC"}, {"12", "\xC2\xBD"},
};
constexpr Special kStrings[] = {
    {"lq", "\xE2\x80\x9C"}, {"rq", "\xE2\x80\x9D"}, {"R", "\xC2\xAE"}, {"Tm", "\xE2\x84\xA2"},
    {"aq", "'"},
};

void append_codepoint(std::string& out, unsigned long cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return;
  append_utf8(out, uint32_t(cp));
}

void append_special(std::string& out, std::string_view name) {
  for (const Special& s : kSpecialChars)
    if (name == s.name) { out += s.text; return; }
  // \[u00E9] (Unicode) and \[char233] (code point) forms.
  auto hex_or_dec = [&](std::string_view digits, int base) {
    if (digits.empty() || digits.size() > 6) return;
    unsigned long cp = 0;
    for (char c : digits) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else return;
      cp = cp * unsigned(base) + unsigned(d);
    }
    append_codepoint(out, cp);
  };
  if (name.size() > 1 && name[0] == 'u') hex_or_dec(name.substr(1), 16);
  else if (name.substr(0, 4) == "char") hex_or_dec(name.substr(4), 10);
  // Anything else is a glyph we do not know; it is dropped.
}

// Bytes of the character starting at s[i] (1 for a byte that starts no valid UTF-8 sequence):
// escapes take whole characters, so a page of valid UTF-8 renders to valid UTF-8.
std::size_t char_bytes(std::string_view s, std::size_t i) { return std::max<std::size_t>(1, utf8_sequence_length(s, i)); }

// Reads an escape's name argument at s[i]: "(xx", "[name]" or a single character (xx and the
// single character counted in UTF-8 characters). Returns the name and advances i past it.
std::string_view escape_name(std::string_view s, std::size_t& i) {
  if (i >= s.size()) return {};
  if (s[i] == '(') {
    std::size_t end = i + 1;
    for (int k = 0; k < 2 && end < s.size(); ++k) end += char_bytes(s, end);
    end = std::min(end, s.size());
    const std::string_view n = s.substr(i + 1, end - i - 1);
    i = end;
    return n;
  }
  if (s[i] == '[') {
    const std::size_t close = s.find(']', i + 1);
    const std::size_t end = close == std::string_view::npos ? s.size() : close;
    const std::string_view n = s.substr(i + 1, end - i - 1);
    i = close == std::string_view::npos ? s.size() : close + 1;
    return n;
  }
  const std::size_t n = std::min(char_bytes(s, i), s.size() - i);
  const std::string_view name = s.substr(i, n);
  i += n;
  return name;
}

// Skips a delimited argument such as 'xxx' starting at s[i] (the delimiter is the character at
// s[i]; UTF-8 is self-synchronising, so finding its bytes again finds the character).
void skip_delimited(std::string_view s, std::size_t& i) {
  if (i >= s.size()) return;
  const std::size_t n = std::min(char_bytes(s, i), s.size() - i);
  const std::size_t close = s.find(s.substr(i, n), i + n);
  i = close == std::string_view::npos ? s.size() : close + n;
}

// Renders the escapes of one input line. Sets `join` when the line ends in \c (no break or
// space before the next line).
std::string render_escapes(std::string_view s, bool* join = nullptr) {
  std::string out;
  out.reserve(s.size());
  if (join) *join = false;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i++];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i >= s.size()) break;  // a trailing lone backslash continues the line: drop it
    const char e = s[i++];
    switch (e) {
      case '"': return out;  // comment to the end of the line
      case '#': return out;
      case 'f': case 'F': case 'm': case 'M': case 'n': case 'g': case 'Y': case 'V':
        (void)escape_name(s, i);  // font, colour, register, string-as-macro: no text
        break;
      case 'k': case 'z':
        if (i < s.size()) i = std::min(s.size(), i + char_bytes(s, i));
        break;
      case 's':
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (i < s.size() && (s[i] == '(' || s[i] == '[')) (void)escape_name(s, i);
        else if (i < s.size() && s[i] == '\'') skip_delimited(s, i);
        else if (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        break;
      case 'h': case 'v': case 'w': case 'l': case 'L': case 'b': case 'o': case 'D':
      case 'X': case 'Z': case 'N': case 'x': case 'R': case 'A': case 'B':
        skip_delimited(s, i);
        break;
      case '(': case '[': {
        --i;
        append_special(out, escape_name(s, i));
        break;
      }
      case 'C': {
        const std::size_t start = i, n = i < s.size() ? char_bytes(s, i) : 0;  // n: the delimiter's bytes
        skip_delimited(s, i);
        if (i > start + 2 * n) append_special(out, s.substr(start + n, i - start - 2 * n));
        break;
      }
      case '*': {
        const std::string_view name = escape_name(s, i);
        for (const Special& st : kStrings)
          if (name == st.name) { out += st.text; break; }
        break;
      }
      case '-': out += '-'; break;
      case 'e': case '\\': out += '\\'; break;
      case '~': case ' ': case '0': out += ' '; break;
      case 't': out += '\t'; break;
      case '.': out += '.'; break;
      case '\'': out += '\''; break;
      case '`': out += '`'; break;
      case 'c':
        if (join && i >= s.size()) *join = true;
        break;
      case '&': case '|': case '^': case '%': case ':': case ')': case ',': case '/':
      case 'd': case 'u': case 'r': case 'p': case 'a': case '{': case '}': case '!':
        break;
      default: out += e; break;
    }
  }
  return out;
}

// Splits a request line's arguments: spaces separate, "..." quotes ("" is a literal quote),
// escapes stay attached to their argument.
std::vector<std::string> request_args(std::string_view s) {
  std::vector<std::string> args;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    std::string a;
    if (s[i] == '"') {
      ++i;
      while (i < s.size()) {
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') { a += '"'; i += 2; continue; }
          ++i;
          break;
        }
        if (s[i] == '\\' && i + 1 < s.size()) { a += s[i]; a += s[i + 1]; i += 2; continue; }
        a += s[i++];
      }
    } else {
      while (i < s.size() && s[i] != ' ' && s[i] != '\t') {
        if (s[i] == '\\' && i + 1 < s.size()) {
          if (s[i + 1] == '"') { i = s.size(); break; }  // comment
          a += s[i];
          a += s[i + 1];
          i += 2;
          continue;
        }
        a += s[i++];
      }
    }
    args.push_back(std::move(a));
  }
  return args;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t p = 0;
  while (p < text.size()) {
    std::size_t e = text.find('\n', p);
    if (e == std::string_view::npos) e = text.size();
    std::string_view l = text.substr(p, e - p);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
    p = e + 1;
  }
  return lines;
}

bool is_control(std::string_view line) {
  return !line.empty() && (line[0] == '.' || line[0] == '\'');
}

// Request name and the rest of a control line.
std::pair<std::string_view, std::string_view> split_request(std::string_view line) {
  std::size_t i = 1;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  std::size_t j = i;
  while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
  return {line.substr(i, j - i), j < line.size() ? line.substr(j) : std::string_view{}};
}

std::string upper_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

class ManRenderer {
 public:
  explicit ManRenderer(bool keep_name) : keep_name_(keep_name) {}

  std::string render(std::string_view roff) {
    const auto lines = split_lines(roff);
    for (std::size_t k = 0; k < lines.size(); ++k) {
      std::string_view line = lines[k];
      if (skip_until_dots_) {
        if (line.substr(0, 2) == "..") skip_until_dots_ = false;
        continue;
      }
      if (in_table_) {
        table_line(line);
        continue;
      }
      if (is_control(line)) request(line);
      else text(line);
    }
    flush_para();
    std::string out = std::move(out_);
    // At most one blank line anywhere, none at the ends.
    std::string squeezed;
    squeezed.reserve(out.size());
    int newlines = 0;
    for (char c : out) {
      if (c == '\n') {
        if (++newlines > 2) continue;
      } else {
        newlines = 0;
      }
      squeezed += c;
    }
    trim_ascii_whitespace(squeezed);
    return squeezed;
  }

 private:
  bool suppressed() const { return in_name_ && !keep_name_; }

  void emit_line(std::string_view s) {
    if (suppressed()) return;
    out_.append(s);
    out_ += '\n';
  }
  void flush_para() {
    if (!para_.empty()) emit_line(para_);
    para_.clear();
  }
  void para_break() {
    flush_para();
    if (!suppressed() && !out_.empty() && out_.back() == '\n' &&
        (out_.size() < 2 || out_[out_.size() - 2] != '\n'))
      out_ += '\n';
  }
  // Adds rendered words to the current filled paragraph (or as a line in no-fill mode).
  void add_text(const std::string& words) {
    if (nofill_) {
      flush_para();
      emit_line(words);
      return;
    }
    if (words.empty()) return;
    if (!para_.empty() && !join_) para_ += ' ';
    para_ += words;
    join_ = false;
    if (break_after_line_) {
      break_after_line_ = false;
      flush_para();
    }
  }

  void text(std::string_view line) {
    if (heading_pending_) {
      heading_pending_ = false;
      heading(render_escapes(line));
      return;
    }
    bool join = false;
    std::string r = render_escapes(line, &join);
    if (nofill_) {
      add_text(r);
      return;
    }
    if (collapse_whitespace(r).empty()) {
      para_break();
      return;
    }
    if (line[0] == ' ' || line[0] == '\t') flush_para();  // leading space forces a break
    add_text(collapse_whitespace(r));
    join_ = join;
  }

  void heading(const std::string& title) {
    para_break();
    const std::string t = collapse_whitespace(title);
    in_name_ = upper_ascii(t) == "NAME";
    emit_line(t);
  }

  std::string joined_args(const std::vector<std::string>& args, const char* sep) {
    std::string s;
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (i) s += sep;
      s += render_escapes(args[i]);
    }
    return s;
  }

  void request(std::string_view line) {
    const auto [name, rest] = split_request(line);
    if (name.empty() || name.substr(0, 2) == "\\\"") return;  // "." alone or a comment
    const std::vector<std::string> args = request_args(rest);
    if (name == "SH" || name == "SS") {
      if (args.empty()) heading_pending_ = true;
      else heading(joined_args(args, " "));
    } else if (name == "TH" || name == "so") {
      // title line (groff prints it as a header) / an include we do not follow
    } else if (name == "PP" || name == "LP" || name == "P" || name == "sp" || name == "HP" ||
               name == "YS" || name == "ne") {
      if (name != "ne") para_break();
    } else if (name == "br") {
      flush_para();
    } else if (name == "TP" || name == "TQ") {
      if (name == "TP") para_break(); else flush_para();
      break_after_line_ = true;
    } else if (name == "IP") {
      para_break();
      if (!args.empty() && !args[0].empty()) emit_line(render_escapes(args[0]));
    } else if (name == "B" || name == "I" || name == "SM" || name == "SB") {
      if (!args.empty()) add_text(joined_args(args, " "));
    } else if (name == "BR" || name == "BI" || name == "IB" || name == "IR" || name == "RB" ||
               name == "RI") {
      add_text(joined_args(args, ""));
    } else if (name == "MR") {
      if (!args.empty())
        add_text(render_escapes(args[0]) + (args.size() > 1 ? "(" + render_escapes(args[1]) + ")" : "") +
                 (args.size() > 2 ? render_escapes(args[2]) : ""));
    } else if (name == "SY") {
      para_break();
      if (!args.empty()) add_text(joined_args(args, " "));
    } else if (name == "OP") {
      if (!args.empty()) add_text("[" + joined_args(args, " ") + "]");
    } else if (name == "UE" || name == "ME") {
      if (!args.empty()) {
        para_ += joined_args(args, "");
      }
    } else if (name == "nf" || name == "EX") {
      flush_para();
      nofill_ = true;
    } else if (name == "fi" || name == "EE") {
      flush_para();
      nofill_ = false;
    } else if (name == "TS") {
      flush_para();
      in_table_ = true;
      table_format_done_ = false;
      table_tab_ = '\t';
    } else if (name == "de" || name == "ig" || name == "am") {
      skip_until_dots_ = true;
    }
    // Every other request (RS, RE, in, ad, na, hy, nh, ft, ps, ta, PD, UR, MT, ...) only
    // changes layout or starts a link whose text follows as ordinary lines.
  }

  void table_line(std::string_view line) {
    if (is_control(line)) {
      const auto [name, rest] = split_request(line);
      if (name == "TE") {
        in_table_ = false;
        para_break();
      }
      return;  // layout requests inside text blocks
    }
    if (!table_format_done_) {
      // Options line ("tab(;) allbox;") then format lines; the last format line ends in '.'.
      std::string_view t = line;
      while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
      if (!t.empty() && t.back() == ';') {
        const std::size_t tab = t.find("tab(");
        if (tab != std::string_view::npos && tab + 5 < t.size()) table_tab_ = t[tab + 4];
        return;
      }
      if (!t.empty() && t.back() == '.') table_format_done_ = true;
      return;
    }
    std::string_view t = line;
    if (t == "_" || t == "=") return;
    std::string row;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t.substr(i, 2) == "T{" || t.substr(i, 2) == "T}") { ++i; continue; }
      row += t[i] == table_tab_ ? '\t' : t[i];
    }
    std::string r = render_escapes(row);
    std::string cells;
    std::size_t start = 0;
    for (;;) {
      const std::size_t tab = r.find('\t', start);
      std::string cell = collapse_whitespace(std::string_view(r).substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (!cell.empty()) {
        if (!cells.empty()) cells += "  ";
        cells += cell;
      }
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (!cells.empty()) emit_line(cells);
  }

  bool keep_name_;
  std::string out_, para_;
  bool nofill_ = false, join_ = false, break_after_line_ = false, heading_pending_ = false;
  bool in_name_ = false, in_table_ = false, table_format_done_ = false, skip_until_dots_ = false;
  char table_tab_ = '\t';
};

bool is_so_stub(std::string_view roff) {
  for (std::string_view line : split_lines(roff)) {
    if (line.substr(0, 3) == ".\\\"" || line.empty()) continue;
    return line.substr(0, 4) == ".so ";
  }
  return false;
}

// FNV-1a of the id from a seeded basis, then splitmix64: FNV alone mixes its high bits poorly.
std::uint64_t hash_id(std::string_view id, std::uint64_t seed) { return splitmix64(fnv1a(id, kFnv1aOffset ^ seed)); }

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<RetrievalPair> read_reuters_pairs(const std::string& path, const ReutersOptions& options,
                                              PairStats* stats_out) {
  struct Candidate {
    std::string id, query, document;
  };
  std::vector<Candidate> candidates;
  PairStats stats;
  std::unordered_map<std::string, std::string> id_where;
  for (const std::string& file : reuters_files(path)) {
    JsonValue root;
    try {
      root = read_json_file(file);
    } catch (const JsonError& e) {
      throw PairsError(e.what());
    }
    if (root.kind != JsonValue::Kind::array)
      throw PairsError(detail::concat(file, ": holds ", root.kind_phrase(),
                                      ", expected an array of records"));
    for (std::size_t r = 0; r < root.array.size(); ++r) {
      const std::string where = detail::concat(file, ": record ", r + 1);
      const JsonValue& rec = root.array[r];
      ++stats.records;
      if (!rec.is_object())
        throw PairsError(detail::concat(where, ": is ", rec.kind_phrase(), ", expected an object"));
      const std::string* title = optional_string(rec, "title", where);
      const std::string* body = optional_string(rec, "body", where);
      const std::string* id = optional_string(rec, "id", where);
      if (id == nullptr || id->empty()) throw PairsError(detail::concat(where, ": missing \"id\""));
      const std::string full_id = "reuters-" + *id;
      if (auto [it, fresh] = id_where.emplace(full_id, where); !fresh)
        throw PairsError(detail::concat(where, ": id \"", *id, "\" repeats ", it->second));
      if (title == nullptr || body == nullptr || trimmed(*title).empty() || trimmed(*body).empty()) {
        ++stats.missing;
        continue;
      }
      Candidate c{full_id, clean_headline(*title), clean_body(*body)};
      check_utf8(c.query, "title", where);
      check_utf8(c.document, "body", where);
      if (c.query.empty()) {  // a title made only of ticker tags
        ++stats.missing;
        continue;
      }
      candidates.push_back(std::move(c));
    }
  }
  std::unordered_map<std::string, std::uint32_t> query_count;
  for (const Candidate& c : candidates) ++query_count[c.query];
  std::vector<RetrievalPair> pairs;
  for (Candidate& c : candidates) {
    if (options.unique_queries && query_count[c.query] > 1) {
      ++stats.repeated_queries;
      continue;
    }
    if (c.document.size() < options.min_document_bytes) {
      ++stats.short_documents;
      continue;
    }
    pairs.push_back({std::move(c.id), std::move(c.query), std::move(c.document)});
  }
  stats.pairs = pairs.size();
  if (stats_out) *stats_out = stats;
  return pairs;
}

std::string render_man_page(std::string_view roff, bool keep_name_section) {
  return ManRenderer(keep_name_section).render(roff);
}

std::string man_page_summary(std::string_view roff) {
  std::string raw;
  bool in_name = false, heading_next = false;
  for (std::string_view line : split_lines(roff)) {
    if (heading_next && !is_control(line)) {  // ".SH" alone: the heading is the next line
      heading_next = false;
      in_name = upper_ascii(collapse_whitespace(render_escapes(line))) == "NAME";
      continue;
    }
    if (is_control(line)) {
      const auto [name, rest] = split_request(line);
      if (name == "SH") {
        if (in_name) break;
        const auto args = request_args(rest);
        std::string title;
        for (const auto& a : args) {
          if (!title.empty()) title += ' ';
          title += render_escapes(a);
        }
        heading_next = args.empty();
        in_name = upper_ascii(collapse_whitespace(title)) == "NAME";
        continue;
      }
      if (!in_name) continue;
      // Text-carrying requests inside NAME keep their words.
      if (name == "B" || name == "I" || name == "BR" || name == "IR" || name == "RB" || name == "RI") {
        const auto args = request_args(rest);
        for (const auto& a : args) {
          raw += ' ';
          raw += a;
        }
      }
      continue;
    }
    if (in_name) {
      raw += ' ';
      raw.append(line);
    }
  }
  std::size_t dash = raw.find("\\-");
  std::size_t skip = 2;
  if (dash == std::string::npos) {
    dash = raw.find(" - ");
    skip = 3;
  }
  if (dash == std::string::npos) return {};
  return collapse_whitespace(render_escapes(std::string_view(raw).substr(dash + skip)));
}

std::vector<RetrievalPair> read_manpage_pairs(const std::string& dir, const ManPageOptions& options,
                                              PairStats* stats_out) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw PairsError(detail::concat(dir, ": not a directory (install the man pages with "
                                         "scripts/install_corpus.sh manpages)"));
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_symlink() || !it->is_regular_file()) continue;
    if (it->path().filename().string().front() == '.') continue;  // .complete marker etc.
    files.push_back(it->path());
  }
  if (ec) throw PairsError(detail::concat(dir, ": cannot list: ", ec.message()));
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.generic_string() < b.generic_string();
  });

  PairStats stats;
  std::vector<RetrievalPair> pairs;
  std::unordered_set<std::string> seen_queries, seen_ids;
  for (const fs::path& f : files) {
    const std::string path = f.string();
    if (f.extension() == ".gz")
      throw PairsError(detail::concat(path, ": compressed man page; read pages decompressed, as "
                                            "scripts/install_corpus.sh manpages stores them"));
    const std::string roff = read_file_or_throw<PairsError>(path);
    ++stats.records;
    if (is_so_stub(roff)) {
      ++stats.stubs;
      continue;
    }
    check_utf8(roff, "page", path);
    std::string summary = man_page_summary(roff);
    if (summary.empty()) {
      ++stats.missing;
      continue;
    }
    std::string doc = render_man_page(roff, options.keep_name_section);
    if (doc.size() < std::max<std::size_t>(1, options.min_document_bytes)) {
      ++stats.short_documents;
      continue;
    }
    if (options.unique_queries && !seen_queries.insert(summary).second) {
      ++stats.repeated_queries;
      continue;
    }
    std::string id = "man-" + f.filename().string();
    if (!seen_ids.insert(id).second) id = "man-" + f.lexically_relative(dir).generic_string();
    pairs.push_back({std::move(id), std::move(summary), std::move(doc)});
  }
  stats.pairs = pairs.size();
  if (stats_out) *stats_out = stats;
  return pairs;
}

std::vector<RetrievalPair> read_jsonl_pairs(const std::string& path) {
  std::vector<RetrievalPair> pairs;
  std::unordered_map<std::string, std::size_t> id_line;
  try {
    JsonlReader reader(path);
    JsonValue obj;
    while (reader.next(obj)) {
      const std::string where = reader.where();
      auto field = [&](const char* key) -> std::string {
        const JsonValue* v = obj.find(key);
        if (v == nullptr) throw PairsError(detail::concat(where, ": missing field \"", key, "\""));
        if (!v->is_string())
          throw PairsError(detail::concat(where, ": field \"", key, "\" is ", v->kind_phrase(),
                                          ", expected a string"));
        if (trimmed(v->string).empty())
          throw PairsError(detail::concat(where, ": field \"", key, "\" is empty"));
        check_utf8(v->string, detail::concat("field \"", key, "\""), where);
        return v->string;
      };
      RetrievalPair p;
      p.query = field("query");
      p.document = field("document");
      p.id = obj.find("id") != nullptr ? field("id") : std::to_string(reader.line());
      if (auto [it, fresh] = id_line.emplace(p.id, reader.line()); !fresh)
        throw PairsError(detail::concat(where, ": id \"", p.id, "\" repeats line ", it->second));
      pairs.push_back(std::move(p));
    }
  } catch (const JsonError& e) {
    throw PairsError(e.what());
  }
  return pairs;
}

void write_jsonl_pairs(const std::string& path, const std::vector<RetrievalPair>& pairs) {
  std::string text;
  for (const RetrievalPair& p : pairs) {
    text += "{\"id\":";
    append_json_string(text, p.id);
    text += ",\"query\":";
    append_json_string(text, p.query);
    text += ",\"document\":";
    append_json_string(text, p.document);
    text += "}\n";
  }
  try {
    write_file_atomically(path, text);
  } catch (const AtomicFileError& e) {
    throw PairsError(e.what());
  }
}

bool is_test_pair(std::string_view id, double test_fraction, std::uint64_t seed) {
  if (!(test_fraction > 0)) return false;
  if (test_fraction >= 1) return true;
  return double(hash_id(id, seed)) < test_fraction * 18446744073709551616.0;
}

PairSplit split_pairs(const std::vector<RetrievalPair>& pairs, double test_fraction, std::uint64_t seed) {
  MG_CHECK(test_fraction >= 0 && test_fraction <= 1, "split_pairs: test fraction ", test_fraction,
           " is outside [0, 1]");
  PairSplit split;
  for (const RetrievalPair& p : pairs)
    (is_test_pair(p.id, test_fraction, seed) ? split.test : split.train).push_back(p);
  return split;
}

}  // namespace mg
