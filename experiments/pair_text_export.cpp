#include "experiments/pair_text_export.h"

#include <unordered_set>

#include "core/atomic_file.h"
#include "core/json.h"

namespace mg {

PairSide parse_pair_side(const std::string& name) {
  if (name == "queries") return PairSide::queries;
  if (name == "documents") return PairSide::documents;
  if (name == "both") return PairSide::both;
  throw Error("--side: expected queries, documents or both, got '" + name + "'");
}

std::vector<std::string> pair_side_texts(const std::vector<RetrievalPair>& pairs, PairSide side) {
  std::vector<std::string> out;
  out.reserve(side == PairSide::both ? 2 * pairs.size() : pairs.size());
  for (const RetrievalPair& p : pairs) {
    if (side != PairSide::documents) out.push_back(p.query);
    if (side != PairSide::queries) out.push_back(p.document);
  }
  return out;
}

std::vector<std::string> texts_not_in(const std::vector<std::string>& texts, const std::vector<std::string>& excluded,
                                      std::size_t& dropped) {
  const std::unordered_set<std::string> ex(excluded.begin(), excluded.end());
  std::vector<std::string> out;
  dropped = 0;
  for (const std::string& t : texts) {
    if (ex.count(t)) ++dropped;
    else out.push_back(t);
  }
  return out;
}

void write_text_jsonl(const std::string& path, const std::vector<std::string>& texts) {
  std::string text;
  for (const std::string& t : texts) {
    text += "{\"text\":";
    append_json_string(text, t);
    text += "}\n";
  }
  try {
    write_file_atomically(path, text);
  } catch (const AtomicFileError& e) {
    throw Error(std::string("cannot write the texts: ") + e.what());
  }
}

}  // namespace mg
