// Fuzzes the JSON reader (core/json.h) and the JSON Lines reader (data/jsonl.h): the same bytes go
// to parse_json (one value, default and strict options) and through a JsonlReader (one object per
// line); each must succeed or raise mg::Error.
#include "data/jsonl.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = mg::fuzz::as_text(data, size);
  try {
    const mg::JsonValue v = mg::parse_json(text, "fuzz input");
    (void)v.kind_phrase();
  } catch (const mg::Error&) {
  }
  try {
    (void)mg::parse_json_value(text, {.max_depth = 64, .strict_utf8 = true, .unique_keys = true});
  } catch (const mg::JsonSyntaxError& e) {
    if (e.offset() > text.size()) mg::fuzz::violated("syntax error offset past the end of the text");
  } catch (const mg::Error&) {
  }
  const size_t bad = mg::first_invalid_utf8(text);
  if ((bad == std::string_view::npos) != (mg::count_invalid_utf8(text) == 0))
    mg::fuzz::violated("first_invalid_utf8 and count_invalid_utf8 disagree");
  try {
    mg::JsonlReader reader(mg::fuzz::write_file("in.jsonl", text));
    mg::JsonValue obj;
    size_t lines = 0;
    while (reader.next(obj)) {
      if (!obj.is_object()) mg::fuzz::violated("JsonlReader returned a non-object");
      if (++lines != reader.line()) mg::fuzz::violated("JsonlReader line numbers skip");
    }
  } catch (const mg::Error&) {
  }
  return 0;
}
