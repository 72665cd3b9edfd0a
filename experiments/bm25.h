#pragma once
// Okapi BM25, the second classical retrieval baseline beside TF-IDF (experiments/tfidf.h), with
// the same words (tfidf_tokens: lower-cased runs of two or more word characters). For a query
// with words q_1..q_m (repeats counted, as rank_bm25 does) and a document D of |D| words:
//   score(Q, D) = sum_i idf(q_i) * f(q_i, D) (k1 + 1) / (f(q_i, D) + k1 (1 - b + b |D| / avgdl))
//   idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))   (Lucene's form: never negative)
// with f the count of the word in D, N the indexed documents, n(t) how many hold t and avgdl
// their mean length in words. Defaults k1 = 1.2, b = 0.75 (Lucene / Elasticsearch). Words never
// seen in the documents score 0.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mg {

class Bm25Index {
 public:
  // Indexes `documents`; k1 >= 0 and b in [0, 1], else throws mg::Error naming the parameter.
  explicit Bm25Index(const std::vector<std::string>& documents, double k1 = 1.2, double b = 0.75);

  // The ids of the query's words that occur in the documents, repeats kept.
  std::vector<int32_t> query_terms(std::string_view text) const;
  // BM25 of the query terms against each document in `docs`, written to out (same length).
  // Thread-safe.
  void score(std::span<const int32_t> query, std::span<const int64_t> docs, std::span<double> out) const;
  double idf(int32_t term) const { return idf_.at(size_t(term)); }
  double average_length() const { return avgdl_; }
  size_t num_documents() const { return docs_.size(); }

 private:
  double k1_, b_, avgdl_ = 0;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<double> idf_;
  // Per document: (term id, count) sorted by term id, and its length in words.
  std::vector<std::vector<std::pair<int32_t, int32_t>>> docs_;
  std::vector<int64_t> lengths_;
};

}  // namespace mg
