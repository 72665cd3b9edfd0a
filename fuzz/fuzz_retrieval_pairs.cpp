// Fuzzes the retrieval-pair readers (data/retrieval_pairs.h). The first byte picks the reader:
// 0 JSONL pairs, 1 a Reuters JSON file, 2 a man-page directory (plus render_man_page and
// man_page_summary on the same text); the rest is the file. Every reader must return pairs that
// keep its documented guarantees or raise mg::Error.
#include <set>

#include "data/jsonl.h"
#include "data/retrieval_pairs.h"
#include "fuzz/fuzz_util.h"

namespace {

void check_pairs(const std::vector<mg::RetrievalPair>& pairs) {
  std::set<std::string> ids;
  for (const auto& p : pairs) {
    if (p.query.empty() || p.document.empty()) mg::fuzz::violated("empty query or document");
    if (mg::first_invalid_utf8(p.query) != std::string::npos || mg::first_invalid_utf8(p.document) != std::string::npos)
      mg::fuzz::violated("invalid UTF-8 in a pair");
    if (!ids.insert(p.id).second) mg::fuzz::violated("repeated id");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text = mg::fuzz::as_text(data + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0:
        check_pairs(mg::read_jsonl_pairs(mg::fuzz::write_file("pairs.jsonl", text)));
        break;
      case 1:
        check_pairs(mg::read_reuters_pairs(mg::fuzz::write_file("reuters/reuters-000.json", text)));
        break;
      case 2: {
        (void)mg::render_man_page(text, true);
        (void)mg::render_man_page(text, false);
        (void)mg::man_page_summary(text);
        mg::fuzz::write_file("man/man1/page.1", text);
        check_pairs(mg::read_manpage_pairs((mg::fuzz::scratch_dir() / "man").string()));
        break;
      }
    }
  } catch (const mg::Error&) {
  }
  return 0;
}
