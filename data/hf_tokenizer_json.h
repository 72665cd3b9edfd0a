#pragma once
// Hugging Face `tokenizer.json` for byte-level BPE, both ways (docs/interop.md).
//
// Writing: a BpeTokenizer becomes a tokenizer.json whose ids are ours (vocab entry i is our
// token i, bytes spelled with GPT-2's byte-to-unicode table; merges "a b" in rank order; the
// special tokens as added tokens with special=true) and whose pre-tokenizer is a Split on
// kMixgradPretokenizerRegex (our bpe_pretokenize written as a regex) followed by ByteLevel
// without its own regex, so the Hugging Face libraries (Rust and JavaScript) cut the text where
// bpe_pretokenize does and give our ids.
//
// Reading: a tokenizer.json with model.type BPE (merges as "a b" strings or ["a", "b"] arrays,
// ignore_merges honoured), no normalizer, and one of two pre-tokenizers:
//   - ByteLevel(add_prefix_space=false, use_regex=true): GPT-2's regex (gpt2_pretokenize), what
//     the HF library's byte-level BPE trainers write;
//   - Sequence[Split(kMixgradPretokenizerRegex, Isolated), ByteLevel(use_regex=false)]: ours.
// Anything else (another model type, a normalizer, add_prefix_space, byte_fallback, an unknown
// pre-tokenizer, a vocabulary that is not 256 bytes + one token per merge + special tokens) is
// refused with a TokenizerError naming the field.
//
// Ids: the file's ids may be in any order (HF trainers put special tokens first, then the byte
// alphabet in character order, then merges). HfTokenizer keeps the tokenizer in our layout (a
// BpeTokenizer: bytes 0..255, merge k = 256 + k, specials last) plus the permutation to the
// file's ids, so encode() returns exactly the file's ids.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/bpe_tokenizer.h"

namespace mg {

// bpe_pretokenize as a regex (Oniguruma / Rust regex / JavaScript syntax), for HF's Split
// pre-tokenizer with behavior Isolated. Valid-UTF-8 text only: HF works on code points, where
// "a byte >= 0x80" becomes "a code point >= U+0080" (the same chunks).
extern const char* const kMixgradPretokenizerRegex;
// GPT-2's pre-tokenizer regex, as HF's ByteLevel(use_regex=true) applies it.
extern const char* const kGpt2PretokenizerRegex;

enum class HfPretokenizer { mixgrad, gpt2 };

// GPT-2's regex 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ on
// UTF-8 text, \s being Unicode White_Space (data/unicode_classes.h). A byte that starts no
// valid UTF-8 sequence counts as one code point of the "other" class. Chunks are views into
// text; their concatenation is text.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

// GPT-2's byte-to-unicode table: the code point standing for byte b in vocab and merge strings.
char32_t byte_level_char(std::uint8_t b);

struct HfTokenizer {
  BpeTokenizer bpe;                 // our layout
  std::vector<std::int32_t> hf_ids; // our id -> the file's id (size bpe.vocab_size())
  HfPretokenizer pretokenizer = HfPretokenizer::mixgrad;
  bool ignore_merges = false;       // a chunk that is a whole vocab entry is that token

  // The file's ids for text, as the HF library encodes it (special tokens are always matched,
  // as HF's added tokens are).
  std::vector<std::int32_t> encode(std::string_view text) const;
  // Our ids for the same text (encode() before the id permutation).
  std::vector<std::int32_t> encode_ours(std::string_view text) const;
  // Text of the file's ids; throws TokenizerError for an id outside the vocabulary.
  std::string decode(std::span<const std::int32_t> ids) const;
  // True when the file's ids are ours (hf_ids[i] == i) and its pre-tokenizer is ours: then
  // bpe alone tokenizes as the file does.
  bool same_as_bpe() const;
  // Where bpe's own encode can differ from encode_ours ("" when never): the GPT-2 regex.
  std::string pretokenizer_difference() const;
};

// The tokenizer.json text for tok (see the top of this file); deterministic.
std::string hf_tokenizer_json(const BpeTokenizer& tok);
// Writes it atomically (core/atomic_file.h). Throws TokenizerError naming the path.
void save_hf_tokenizer_json(const std::string& path, const BpeTokenizer& tok);

// Parses tokenizer.json text; `what` names the source in errors.
HfTokenizer parse_hf_tokenizer_json(std::string_view text, const std::string& what);
// Reads a file; TokenizerError names the file for a missing or malformed one.
HfTokenizer load_hf_tokenizer_json(const std::string& path);

}  // namespace mg
