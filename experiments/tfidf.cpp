#include "experiments/tfidf.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mg {

namespace {

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

// Sorts by term and L2-normalises (a zero vector stays zero).
void finish(SparseVector& v) {
  std::sort(v.begin(), v.end());
  double ss = 0;
  for (auto& [t, w] : v) ss += double(w) * w;
  if (ss > 0) {
    const double inv = 1.0 / std::sqrt(ss);
    for (auto& [t, w] : v) w = float(w * inv);
  }
}

}  // namespace

std::vector<std::string> tfidf_tokens(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !is_word_byte((unsigned char)text[i])) ++i;
    size_t j = i;
    while (j < text.size() && is_word_byte((unsigned char)text[j])) ++j;
    if (j - i >= 2) {
      std::string w(text.substr(i, j - i));
      for (char& c : w)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
      out.push_back(std::move(w));
    }
    i = j;
  }
  return out;
}

TfidfIndex::TfidfIndex(const std::vector<std::string>& documents) {
  std::vector<std::unordered_map<int32_t, int32_t>> counts(documents.size());
  std::vector<int64_t> df;
  for (size_t d = 0; d < documents.size(); ++d) {
    for (std::string& w : tfidf_tokens(documents[d])) {
      auto [it, added] = vocab_.try_emplace(std::move(w), int32_t(df.size()));
      if (added) df.push_back(0);
      if (counts[d][it->second]++ == 0) ++df[it->second];
    }
  }
  const double n = double(documents.size());
  idf_.resize(df.size());
  for (size_t t = 0; t < df.size(); ++t) idf_[t] = float(std::log((1 + n) / (1 + double(df[t]))) + 1);
  docs_.resize(documents.size());
  for (size_t d = 0; d < documents.size(); ++d) {
    SparseVector& v = docs_[d];
    v.reserve(counts[d].size());
    for (auto [t, c] : counts[d]) v.emplace_back(t, float(c) * idf_[t]);
    finish(v);
  }
}

SparseVector TfidfIndex::vectorize(std::string_view text) const {
  std::unordered_map<int32_t, int32_t> counts;
  for (const std::string& w : tfidf_tokens(text)) {
    auto it = vocab_.find(w);
    if (it != vocab_.end()) ++counts[it->second];
  }
  SparseVector v;
  v.reserve(counts.size());
  for (auto [t, c] : counts) v.emplace_back(t, float(c) * idf_[t]);
  finish(v);
  return v;
}

void TfidfIndex::score(const SparseVector& query, std::span<const int64_t> docs, std::span<double> out) const {
  MG_CHECK(docs.size() == out.size(), "TfidfIndex::score: ", docs.size(), " documents but ", out.size(),
           " outputs");
  for (size_t k = 0; k < docs.size(); ++k) {
    MG_CHECK(docs[k] >= 0 && size_t(docs[k]) < docs_.size(), "TfidfIndex::score: document ", docs[k],
             " out of range [0, ", docs_.size(), ")");
    // Merge of two sorted sparse vectors; queries are short, so this is cheap.
    const SparseVector& d = docs_[size_t(docs[k])];
    double s = 0;
    size_t i = 0, j = 0;
    while (i < query.size() && j < d.size()) {
      if (query[i].first < d[j].first) ++i;
      else if (query[i].first > d[j].first) ++j;
      else s += double(query[i++].second) * d[j++].second;
    }
    out[k] = s;
  }
}

}  // namespace mg
