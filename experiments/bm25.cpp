#include "experiments/bm25.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "experiments/tfidf.h"

namespace mg {

Bm25Index::Bm25Index(const std::vector<std::string>& documents, double k1, double b) : k1_(k1), b_(b) {
  MG_CHECK(k1 >= 0 && std::isfinite(k1), "Bm25Index: k1 = ", k1, " must be >= 0 and finite");
  MG_CHECK(b >= 0 && b <= 1, "Bm25Index: b = ", b, " must be in [0, 1]");
  MG_CHECK(!documents.empty(), "Bm25Index: no documents to index");
  std::vector<int64_t> df;
  int64_t total = 0;
  for (const std::string& doc : documents) {
    std::map<int32_t, int32_t> counts;
    const std::vector<std::string> words = tfidf_tokens(doc);
    for (const std::string& w : words) {
      auto [it, added] = vocab_.try_emplace(w, int32_t(vocab_.size()));
      if (added) df.push_back(0);
      ++counts[it->second];
    }
    for (const auto& [t, c] : counts) ++df[size_t(t)];
    docs_.emplace_back(counts.begin(), counts.end());
    lengths_.push_back(int64_t(words.size()));
    total += int64_t(words.size());
  }
  avgdl_ = double(total) / double(documents.size());
  const double N = double(documents.size());
  idf_.resize(df.size());
  for (size_t t = 0; t < df.size(); ++t) idf_[t] = std::log(1.0 + (N - double(df[t]) + 0.5) / (double(df[t]) + 0.5));
}

std::vector<int32_t> Bm25Index::query_terms(std::string_view text) const {
  std::vector<int32_t> out;
  for (const std::string& w : tfidf_tokens(text)) {
    auto it = vocab_.find(w);
    if (it != vocab_.end()) out.push_back(it->second);
  }
  return out;
}

void Bm25Index::score(std::span<const int32_t> query, std::span<const int64_t> docs, std::span<double> out) const {
  MG_CHECK(docs.size() == out.size(), "Bm25Index::score: ", docs.size(), " documents but ", out.size(), " outputs");
  for (size_t i = 0; i < docs.size(); ++i) {
    const int64_t d = docs[i];
    MG_CHECK(d >= 0 && size_t(d) < docs_.size(), "Bm25Index::score: document ", d, " out of range [0, ",
             docs_.size(), ")");
    const auto& terms = docs_[size_t(d)];
    // An average-length document (avgdl 0 only when every document is empty) has norm 1.
    const double norm = k1_ * (1 - b_ + b_ * (avgdl_ > 0 ? double(lengths_[size_t(d)]) / avgdl_ : 1.0));
    double s = 0;
    for (int32_t t : query) {
      auto it = std::lower_bound(terms.begin(), terms.end(), std::make_pair(t, int32_t(0)));
      if (it == terms.end() || it->first != t) continue;
      const double f = double(it->second);
      s += idf_[size_t(t)] * f * (k1_ + 1) / (f + norm);
    }
    out[i] = s;
  }
}

}  // namespace mg
