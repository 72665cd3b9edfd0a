// Fuzzes BpeTokenizer::load (data/bpe_tokenizer.h): any bytes must load or raise mg::Error, and a
// loaded tokenizer must round-trip text (decode(encode(s)) == s).
#include "data/bpe_tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes = mg::fuzz::as_text(data, size);
  try {
    const mg::BpeTokenizer tok = mg::BpeTokenizer::load(mg::fuzz::write_file("tokenizer.bpe", bytes));
    // The input itself is a text with the file's own token strings in it.
    const std::string_view text = bytes.substr(0, 256);
    if (tok.decode(tok.encode(text)) != text) mg::fuzz::violated("decode(encode(s)) != s");
    if (tok.decode(tok.encode(text, /*allow_special=*/true)) != text)
      mg::fuzz::violated("decode(encode(s, allow_special)) != s");
  } catch (const mg::Error&) {
  }
  return 0;
}
