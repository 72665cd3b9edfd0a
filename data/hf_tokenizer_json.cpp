#include "data/hf_tokenizer_json.h"

#include <algorithm>
#include <array>
#include <map>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/json.h"
#include "core/read_file.h"
#include "core/utf8.h"
#include "data/unicode_classes.h"

namespace mg {

// Byte classes of bpe_pretokenize: whitespace 09-0D 20; digits 0-9; letters A-Z a-z and >= 0x80
// (so, on code points, everything from U+0080); every other ASCII byte is "other".
const char* const kMixgradPretokenizerRegex =
    "'(?:s|t|re|ve|m|ll|d)"
    "| ?[^\\x00-\\x40\\x5B-\\x60\\x7B-\\x7F]+"
    "| ?[0-9]+"
    "| ?[\\x00-\\x08\\x0E-\\x1F\\x21-\\x2F\\x3A-\\x40\\x5B-\\x60\\x7B-\\x7F]+"
    "|[\\x09-\\x0D\\x20]+(?=\\x20[^\\x09-\\x0D\\x20])"
    "|[\\x09-\\x0D\\x20]+";

const char* const kGpt2PretokenizerRegex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& msg) { throw TokenizerError(what + ": " + msg); }

// ---- GPT-2's byte <-> unicode table ----------------------------------------------------------

struct ByteLevelTable {
  std::array<char32_t, 256> to_char{};
  std::unordered_map<char32_t, std::uint8_t> to_byte;
  ByteLevelTable() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[size_t(b)] = printable ? char32_t(b) : char32_t(256 + n++);
      to_byte[to_char[size_t(b)]] = std::uint8_t(b);
    }
  }
};
const ByteLevelTable& byte_level() {
  static const ByteLevelTable t;
  return t;
}

// Decodes the code point at s[i] (n = its sequence length, 0 for an invalid byte, then the
// byte itself is returned with n = 1 and valid = false).
char32_t decode_at(std::string_view s, std::size_t i, std::size_t& n, bool& valid) {
  n = utf8_sequence_length(s, i);
  valid = n != 0;
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (!valid) {
    n = 1;
    return b0;
  }
  if (n == 1) return b0;
  char32_t cp = b0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

std::string byte_level_string(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) append_utf8(out, byte_level().to_char[b]);
  return out;
}

// ---- GPT-2 pre-tokenizer ---------------------------------------------------------------------

enum CharClass { kL, kN, kS, kO };

struct CodePoints {
  std::vector<std::size_t> start;  // byte offset of each code point, plus text.size()
  std::vector<CharClass> cls;
  std::vector<char32_t> cp;
};

CodePoints code_points(std::string_view text) {
  CodePoints c;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n;
    bool valid;
    const char32_t cp = decode_at(text, i, n, valid);
    c.start.push_back(i);
    c.cp.push_back(cp);
    c.cls.push_back(!valid                   ? kO
                    : unicode_is_space(cp)   ? kS
                    : unicode_is_letter(cp)  ? kL
                    : unicode_is_number(cp)  ? kN
                                             : kO);
    i += n;
  }
  c.start.push_back(text.size());
  return c;
}

}  // namespace

char32_t byte_level_char(std::uint8_t b) { return byte_level().to_char[b]; }

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  const CodePoints c = code_points(text);
  const std::size_t n = c.cls.size();
  std::vector<std::string_view> out;
  auto emit = [&](std::size_t a, std::size_t b) { out.push_back(text.substr(c.start[a], c.start[b] - c.start[a])); };
  std::size_t i = 0;
  while (i < n) {
    // 's 't 're 've 'm 'll 'd (ASCII, case-sensitive).
    if (c.cp[i] == '\'' && i + 1 < n) {
      const char32_t a = c.cp[i + 1], b = i + 2 < n ? c.cp[i + 2] : 0;
      std::size_t len = 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') len = 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) len = 3;
      if (len) {
        emit(i, i + len);
        i += len;
        continue;
      }
    }
    //  ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+
    std::size_t j = (c.cp[i] == ' ' && i + 1 < n && c.cls[i + 1] != kS) ? i + 1 : i;
    if (c.cls[j] != kS) {
      std::size_t e = j + 1;
      while (e < n && c.cls[e] == c.cls[j]) ++e;
      emit(i, e);
      i = e;
      continue;
    }
    // \s+(?!\S) | \s+ : a whitespace run, less its last character when a non-space follows
    // and the run is longer than one character.
    std::size_t e = i + 1;
    while (e < n && c.cls[e] == kS) ++e;
    if (e < n && e - i > 1) --e;
    emit(i, e);
    i = e;
  }
  return out;
}

// ---- HfTokenizer -----------------------------------------------------------------------------

std::vector<std::int32_t> HfTokenizer::encode_ours(std::string_view text) const {
  if (pretokenizer == HfPretokenizer::mixgrad && !ignore_merges) return bpe.encode(text, /*allow_special=*/true);
  std::vector<std::int32_t> out;
  std::map<std::string, std::int32_t> whole;  // ignore_merges: token bytes -> our id
  if (ignore_merges)
    for (std::int32_t id = 0; id < bpe.vocab_size(); ++id)
      if (!bpe.is_special(id)) whole.emplace(bpe.token_bytes(id), id);
  auto plain = [&](std::string_view seg) {
    const auto chunks = pretokenizer == HfPretokenizer::gpt2 ? gpt2_pretokenize(seg) : bpe_pretokenize(seg);
    for (std::string_view ch : chunks) {
      if (ignore_merges) {
        auto it = whole.find(std::string(ch));
        if (it != whole.end()) {
          out.push_back(it->second);
          continue;
        }
      }
      const auto ids = ch.size() > 64 ? detail::bpe_merge_heap(bpe, ch) : detail::bpe_merge_scan(bpe, ch);
      out.insert(out.end(), ids.begin(), ids.end());
    }
  };
  // Special tokens first, leftmost and then longest, as HF's added-token matcher.
  const std::vector<std::string> specials = bpe.special_tokens().all();
  std::size_t from = 0;
  while (from <= text.size()) {
    std::size_t best_pos = std::string_view::npos, best = 0;
    for (std::size_t s = 0; s < specials.size(); ++s) {
      const std::size_t p = text.find(specials[s], from);
      if (p < best_pos || (p == best_pos && p != std::string_view::npos && specials[s].size() > specials[best].size())) {
        best_pos = p;
        best = s;
      }
    }
    if (best_pos == std::string_view::npos) {
      plain(text.substr(from));
      break;
    }
    plain(text.substr(from, best_pos - from));
    out.push_back(bpe.special_id(specials[best]));
    from = best_pos + specials[best].size();
  }
  return out;
}

std::vector<std::int32_t> HfTokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> ids = encode_ours(text);
  for (auto& id : ids) id = hf_ids[size_t(id)];
  return ids;
}

std::string HfTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::unordered_map<std::int32_t, std::int32_t> ours;
  for (std::size_t i = 0; i < hf_ids.size(); ++i) ours[hf_ids[i]] = std::int32_t(i);
  std::vector<std::int32_t> mapped;
  mapped.reserve(ids.size());
  for (std::size_t k = 0; k < ids.size(); ++k) {
    auto it = ours.find(ids[k]);
    if (it == ours.end())
      throw TokenizerError("decode: id " + std::to_string(ids[k]) + " at position " + std::to_string(k) +
                           " is not in the tokenizer.json vocabulary");
    mapped.push_back(it->second);
  }
  return bpe.decode(mapped);
}

bool HfTokenizer::same_as_bpe() const {
  if (pretokenizer != HfPretokenizer::mixgrad || ignore_merges) return false;
  for (std::size_t i = 0; i < hf_ids.size(); ++i)
    if (hf_ids[i] != std::int32_t(i)) return false;
  return true;
}

std::string HfTokenizer::pretokenizer_difference() const {
  if (pretokenizer == HfPretokenizer::mixgrad && !ignore_merges) return "";
  std::string s;
  if (pretokenizer == HfPretokenizer::gpt2)
    s = "the file pre-tokenizes with GPT-2's regex, mixgrad's tokenizer.bpe with its own rules: they cut differently "
        "around non-ASCII digits, punctuation and whitespace and around a whitespace run ending in another space "
        "character than ' ' (docs/interop.md)";
  if (ignore_merges) s += std::string(s.empty() ? "" : "; ") + "the file sets ignore_merges, tokenizer.bpe does not";
  return s;
}

// ---- writing ---------------------------------------------------------------------------------

std::string hf_tokenizer_json(const BpeTokenizer& tok) {
  const std::int32_t V = tok.vocab_size();
  std::vector<std::string> keys(static_cast<std::size_t>(V));
  std::map<std::string, std::int32_t> seen;
  for (std::int32_t id = 0; id < V; ++id) {
    keys[size_t(id)] = tok.is_special(id) ? tok.token_bytes(id) : byte_level_string(tok.token_bytes(id));
    auto [it, fresh] = seen.emplace(keys[size_t(id)], id);
    if (!fresh)
      throw TokenizerError("tokenizer.json: tokens " + std::to_string(it->second) + " and " + std::to_string(id) +
                           " have the same string '" + keys[size_t(id)] +
                           "'; a Hugging Face vocabulary (string -> id) cannot hold both");
  }
  std::string j = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [";
  bool first = true;
  for (std::int32_t id = 0; id < V; ++id) {
    if (!tok.is_special(id)) continue;
    j += first ? "\n    " : ",\n    ";
    first = false;
    j += "{\"id\": " + std::to_string(id) + ", \"content\": ";
    append_json_string(j, tok.token_bytes(id));
    j += ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}";
  }
  j += "\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n"
       "    {\"type\": \"Split\", \"pattern\": {\"Regex\": ";
  append_json_string(j, kMixgradPretokenizerRegex);
  j += "}, \"behavior\": \"Isolated\", \"invert\": false},\n"
       "    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n"
       "  \"post_processor\": null,\n"
       "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false},\n"
       "  \"model\": {\n    \"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null,\n"
       "    \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false,\n"
       "    \"vocab\": {";
  for (std::int32_t id = 0; id < V; ++id) {
    j += id ? ",\n      " : "\n      ";
    append_json_string(j, keys[size_t(id)]);
    j += ": " + std::to_string(id);
  }
  j += "\n    },\n    \"merges\": [";
  for (std::size_t k = 0; k < tok.merges().size(); ++k) {
    j += k ? ",\n      " : "\n      ";
    append_json_string(j, keys[size_t(tok.merges()[k].first)] + " " + keys[size_t(tok.merges()[k].second)]);
  }
  j += "\n    ]\n  }\n}\n";
  return j;
}

void save_hf_tokenizer_json(const std::string& path, const BpeTokenizer& tok) {
  const std::string text = hf_tokenizer_json(tok);
  try {
    write_file_atomically(path, text);
  } catch (const Error& e) {
    throw TokenizerError(std::string("tokenizer.json: ") + e.what());
  }
}

// ---- reading ---------------------------------------------------------------------------------

namespace {

bool is_null(const JsonValue* v) { return v == nullptr || v->kind == JsonValue::Kind::null; }

bool json_bool(const JsonValue* v, bool fallback, const std::string& what, const std::string& key) {
  if (is_null(v)) return fallback;
  if (v->kind != JsonValue::Kind::boolean) fail(what, key + " must be true or false, got " + v->kind_phrase());
  return v->boolean;
}

std::int64_t json_int(const JsonValue& v, const std::string& what, const std::string& key) {
  if (v.kind != JsonValue::Kind::number || v.number != double(std::int64_t(v.number)) || v.number < 0 || v.number > 2e9)
    fail(what, key + " must be a non-negative integer id");
  return std::int64_t(v.number);
}

HfPretokenizer read_pretokenizer(const JsonValue* p, const std::string& what) {
  if (is_null(p)) fail(what, "pre_tokenizer is null; only byte-level BPE (a ByteLevel pre-tokenizer) is supported");
  const JsonValue* type = p->find("type");
  const std::string t = type && type->is_string() ? type->string : "";
  auto check_byte_level = [&](const JsonValue& b, bool want_regex, const std::string& where) {
    if (json_bool(b.find("add_prefix_space"), true, what, where + ".add_prefix_space"))
      fail(what, where + ".add_prefix_space is true: unsupported (mixgrad never adds a leading space)");
    const bool use_regex = json_bool(b.find("use_regex"), true, what, where + ".use_regex");
    if (use_regex != want_regex)
      fail(what, where + ".use_regex is " + (use_regex ? "true" : "false") + ", expected " + (want_regex ? "true" : "false"));
  };
  if (t == "ByteLevel") {
    check_byte_level(*p, true, "pre_tokenizer");
    return HfPretokenizer::gpt2;
  }
  if (t == "Sequence") {
    const JsonValue* list = p->find("pretokenizers");
    if (list && list->kind == JsonValue::Kind::array && list->array.size() == 2) {
      const JsonValue& split = list->array[0];
      const JsonValue& bl = list->array[1];
      const JsonValue* st = split.find("type");
      const JsonValue* bt = bl.find("type");
      const JsonValue* pat = split.find("pattern");
      const JsonValue* regex = pat ? pat->find("Regex") : nullptr;
      const JsonValue* behavior = split.find("behavior");
      if (st && st->is_string() && st->string == "Split" && bt && bt->is_string() && bt->string == "ByteLevel" && regex &&
          regex->is_string() && behavior && behavior->is_string() && behavior->string == "Isolated" &&
          !json_bool(split.find("invert"), false, what, "pre_tokenizer.pretokenizers[0].invert")) {
        check_byte_level(bl, false, "pre_tokenizer.pretokenizers[1]");
        if (regex->string == kMixgradPretokenizerRegex) return HfPretokenizer::mixgrad;
        if (regex->string == kGpt2PretokenizerRegex) return HfPretokenizer::gpt2;
        fail(what, "pre_tokenizer Split pattern '" + regex->string +
                       "' is neither mixgrad's nor GPT-2's regex; no other pattern is supported");
      }
    }
    fail(what, "pre_tokenizer Sequence is not [Split(Regex, Isolated), ByteLevel(use_regex=false)]; unsupported");
  }
  fail(what, "pre_tokenizer type '" + t + "' is unsupported (ByteLevel, or mixgrad's Split + ByteLevel Sequence)");
}

}  // namespace

HfTokenizer parse_hf_tokenizer_json(std::string_view text, const std::string& what) {
  JsonValue root;
  try {
    root = parse_json(text, what);
  } catch (const JsonError& e) {
    throw TokenizerError(e.what());
  }
  if (!root.is_object()) fail(what, "not a JSON object");
  if (!is_null(root.find("normalizer"))) fail(what, "normalizer is set; only tokenizers without a normalizer are supported");
  HfTokenizer out;
  out.pretokenizer = read_pretokenizer(root.find("pre_tokenizer"), what);
  const JsonValue* model = root.find("model");
  if (!model || !model->is_object()) fail(what, "no \"model\" object");
  const JsonValue* type = model->find("type");
  if (type && !(type->is_string() && type->string == "BPE"))
    fail(what, "model.type is '" + (type->is_string() ? type->string : type->kind_phrase()) + "'; only BPE is supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const JsonValue* v = model->find(key);
    if (!is_null(v) && !(v->is_string() && v->string.empty()))
      fail(what, std::string("model.") + key + " is set; unsupported for byte-level BPE");
  }
  if (const JsonValue* d = model->find("dropout"); !is_null(d) && !(d->kind == JsonValue::Kind::number && d->number == 0))
    fail(what, "model.dropout is set; BPE dropout is unsupported");
  out.ignore_merges = json_bool(model->find("ignore_merges"), false, what, "model.ignore_merges");

  // Special tokens (added_tokens with special=true).
  std::vector<std::pair<std::string, std::int32_t>> specials;
  if (const JsonValue* added = root.find("added_tokens"); !is_null(added)) {
    if (added->kind != JsonValue::Kind::array) fail(what, "added_tokens must be an array");
    for (std::size_t i = 0; i < added->array.size(); ++i) {
      const JsonValue& a = added->array[i];
      const std::string where = "added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object()) fail(what, where + " is not an object");
      const JsonValue* content = a.find("content");
      const JsonValue* id = a.find("id");
      if (!content || !content->is_string() || !id) fail(what, where + " needs \"id\" and \"content\"");
      if (!json_bool(a.find("special"), false, what, where + ".special"))
        fail(what, where + " '" + content->string + "' is not special; only special added tokens are supported");
      specials.emplace_back(content->string, std::int32_t(json_int(*id, what, where + ".id")));
    }
  }

  const JsonValue* vocab = model->find("vocab");
  if (!vocab || !vocab->is_object()) fail(what, "model.vocab must be an object (token -> id)");
  std::map<std::string, std::int32_t> hf_id_of;  // vocab string -> file id
  std::map<std::int32_t, std::string> string_of;
  for (const auto& [key, v] : vocab->object) {
    const auto id = std::int32_t(json_int(v, what, "model.vocab['" + key + "']"));
    if (!hf_id_of.emplace(key, id).second) fail(what, "model.vocab repeats the token '" + key + "'");
    if (!string_of.emplace(id, key).second)
      fail(what, "model.vocab gives id " + std::to_string(id) + " to both '" + string_of[id] + "' and '" + key + "'");
  }
  for (const auto& [content, id] : specials) {
    auto it = string_of.find(id);
    if (it != string_of.end() && it->second != content)
      fail(what, "special token '" + content + "' has id " + std::to_string(id) + ", which model.vocab gives to '" +
                     it->second + "'");
    string_of[id] = content;
    hf_id_of[content] = id;
  }

  // Our layout: the 256 bytes, then one token per merge, then the specials.
  std::map<std::string, std::int32_t> our_id_of;  // vocab string -> our id
  std::vector<std::int32_t> hf_ids;
  for (int b = 0; b < 256; ++b) {
    const std::string key = byte_level_string(std::string(1, char(b)));
    auto it = hf_id_of.find(key);
    if (it == hf_id_of.end())
      fail(what, "model.vocab lacks the byte token '" + key + "' (byte " + std::to_string(b) +
                     "); byte-level BPE here needs all 256 (train with initial_alphabet=ByteLevel.alphabet())");
    our_id_of[key] = b;
    hf_ids.push_back(it->second);
  }
  const JsonValue* merges = model->find("merges");
  if (!merges || merges->kind != JsonValue::Kind::array) fail(what, "model.merges must be an array");
  std::vector<std::pair<std::int32_t, std::int32_t>> our_merges;
  for (std::size_t k = 0; k < merges->array.size(); ++k) {
    const JsonValue& m = merges->array[k];
    const std::string where = "model.merges[" + std::to_string(k) + "]";
    std::string a, b;
    if (m.is_string()) {
      const std::size_t sp = m.string.find(' ');
      if (sp == std::string::npos || m.string.find(' ', sp + 1) != std::string::npos)
        fail(what, where + " '" + m.string + "' is not two tokens separated by one space");
      a = m.string.substr(0, sp);
      b = m.string.substr(sp + 1);
    } else if (m.kind == JsonValue::Kind::array && m.array.size() == 2 && m.array[0].is_string() && m.array[1].is_string()) {
      a = m.array[0].string;
      b = m.array[1].string;
    } else {
      fail(what, where + " must be \"a b\" or [\"a\", \"b\"]");
    }
    auto ia = our_id_of.find(a), ib = our_id_of.find(b);
    if (ia == our_id_of.end() || ib == our_id_of.end())
      fail(what, where + " uses '" + (ia == our_id_of.end() ? a : b) + "', which no earlier byte or merge produces");
    const std::string ab = a + b;
    auto h = hf_id_of.find(ab);
    if (h == hf_id_of.end()) fail(what, where + " produces '" + ab + "', which is not in model.vocab");
    if (our_id_of.count(ab))
      fail(what, where + " produces '" + ab + "', which a byte or an earlier merge already produces; unsupported");
    our_id_of[ab] = 256 + std::int32_t(k);
    our_merges.emplace_back(ia->second, ib->second);
    hf_ids.push_back(h->second);
  }
  if (specials.size() < 2)
    fail(what, "has " + std::to_string(specials.size()) +
                   " special added token(s); mixgrad needs two (an end-of-text and a padding token)");
  // eos: a conventional end-of-text name, else the first special; pad likewise; the rest extra.
  auto pick = [&](std::initializer_list<const char*> names, std::size_t skip) {
    for (const char* n : names)
      for (std::size_t i = 0; i < specials.size(); ++i)
        if (i != skip && specials[i].first == n) return i;
    for (std::size_t i = 0; i < specials.size(); ++i)
      if (i != skip) return i;
    return std::size_t(0);
  };
  const std::size_t eos = pick({"<|endoftext|>", "</s>", "<eos>", "<|eos|>", "[SEP]"}, specials.size());
  const std::size_t pad = pick({"<|pad|>", "<pad>", "[PAD]", "<|padding|>"}, eos);
  BpeSpecialTokens st;
  st.eos = specials[eos].first;
  st.pad = specials[pad].first;
  hf_ids.push_back(specials[eos].second);
  hf_ids.push_back(specials[pad].second);
  for (std::size_t i = 0; i < specials.size(); ++i)
    if (i != eos && i != pad) {
      st.extra.push_back(specials[i].first);
      hf_ids.push_back(specials[i].second);
    }
  for (const auto& [content, id] : specials) our_id_of[content] = 0;  // accounted for
  for (const auto& [key, id] : hf_id_of)
    if (!our_id_of.count(key))
      fail(what, "model.vocab entry '" + key + "' (id " + std::to_string(id) +
                     ") is no byte, merge result or special token; unsupported");
  try {
    out.bpe = BpeTokenizer(std::move(our_merges), std::move(st));
  } catch (const TokenizerError& e) {
    fail(what, e.what());
  }
  out.hf_ids = std::move(hf_ids);
  return out;
}

HfTokenizer load_hf_tokenizer_json(const std::string& path) {
  return parse_hf_tokenizer_json(read_file_or_throw<TokenizerError>(path), path);
}

}  // namespace mg
