#pragma once
// A TF-IDF word-overlap scorer: the reference every learned retriever is compared with
// (on Reuters, full text: 0.935 / 0.882 / 0.767 top-1 at pools of 32 / 128 / 1024, docs/reproduction.md 3).
// It follows scikit-learn's TfidfVectorizer defaults, so numbers compare with that script:
// lower-cased tokens of two or more word characters, raw term counts, smoothed idf
// ln((1 + n) / (1 + df)) + 1 fitted on the indexed documents, rows L2-normalised; the score of
// a query and a document is the dot product of their vectors (their cosine).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mg {

// Lower-cased words: maximal runs of ASCII letters, digits, '_' or any non-ASCII byte (so UTF-8
// letters stay inside words), keeping runs of at least two bytes (sklearn's \b\w\w+\b).
std::vector<std::string> tfidf_tokens(std::string_view text);

// A sparse L2-normalised vector: (term id, weight) sorted by term id.
using SparseVector = std::vector<std::pair<int32_t, float>>;

class TfidfIndex {
 public:
  // Fits the vocabulary and idf on `documents` and stores their vectors.
  explicit TfidfIndex(const std::vector<std::string>& documents);

  // The vector of any text (a query); words never seen in the documents are dropped.
  SparseVector vectorize(std::string_view text) const;
  const SparseVector& document_vector(size_t doc) const { return docs_.at(doc); }
  size_t num_documents() const { return docs_.size(); }
  size_t vocabulary_size() const { return idf_.size(); }

  // Cosine of a query vector with each document in `docs`, written to out (same length).
  // Thread-safe.
  void score(const SparseVector& query, std::span<const int64_t> docs, std::span<double> out) const;

 private:
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<float> idf_;
  std::vector<SparseVector> docs_;
};

}  // namespace mg
