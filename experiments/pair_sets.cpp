#include "experiments/pair_sets.h"

#include <filesystem>

#include "data/corpus.h"

namespace mg {

std::vector<RetrievalPair> load_pairs(const std::string& spec) {
  namespace fs = std::filesystem;
  if (spec == "reuters") {
    const std::string dir = default_corpus_root() + "/reuters-21578";
    MG_CHECK(fs::exists(dir), "pairs 'reuters': ", dir, " does not exist (run scripts/install_corpus.sh reuters)");
    return read_reuters_pairs(dir);
  }
  if (spec == "manpages") {
    const std::string dir = default_corpus_root() + "/manpages";
    MG_CHECK(fs::exists(dir), "pairs 'manpages': ", dir, " does not exist (run scripts/install_corpus.sh manpages)");
    return read_manpage_pairs(dir);
  }
  MG_CHECK(fs::is_regular_file(spec), "pairs '", spec, "': expected reuters, manpages or a .jsonl file");
  return read_jsonl_pairs(spec);
}

}  // namespace mg
