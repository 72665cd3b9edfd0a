// experiments/bm25: Okapi BM25 scores against values worked out by hand, query-word repeats,
// unknown words, and bad parameters.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "experiments/bm25.h"

using namespace mg;

TEST_SUITE("bm25") {
  // Three documents: lengths 2, 3 and 1 words, avgdl 2; N = 3.
  const std::vector<std::string> kDocs = {"Apple banana", "apple, cherry; APPLE", "durian"};

  TEST_CASE("idf and average length") {
    Bm25Index idx(kDocs);
    CHECK(idx.num_documents() == 3);
    CHECK(idx.average_length() == doctest::Approx(2.0));
    const auto apple = idx.query_terms("apple"), banana = idx.query_terms("banana");
    REQUIRE(apple.size() == 1);
    REQUIRE(banana.size() == 1);
    // apple: n = 2 -> ln(1 + (3 - 2 + 0.5) / (2 + 0.5)) = ln 1.6; banana: n = 1 -> ln(1 + 2.5 / 1.5).
    CHECK(idx.idf(apple[0]) == doctest::Approx(std::log(1.6)));
    CHECK(idx.idf(banana[0]) == doctest::Approx(std::log(1.0 + 2.5 / 1.5)));
  }

  TEST_CASE("scores worked out by hand (k1 1.2, b 0.75)") {
    Bm25Index idx(kDocs);
    const std::vector<int32_t> q = idx.query_terms("apple banana");
    std::vector<int64_t> docs = {0, 1, 2};
    std::vector<double> s(3);
    idx.score(q, docs, s);
    // Doc 0 (length 2 = avgdl): length norm k1 (1 - b + b) = 1.2; f = 1 for both words, so each
    // contributes idf * 1 * 2.2 / (1 + 1.2) = idf.
    CHECK(s[0] == doctest::Approx(std::log(1.6) + std::log(1.0 + 2.5 / 1.5)).epsilon(1e-12));
    // Doc 1 (length 3): norm 1.2 (0.25 + 0.75 * 1.5) = 1.65; apple f = 2: idf * 2 * 2.2 / 3.65.
    CHECK(s[1] == doctest::Approx(std::log(1.6) * 4.4 / 3.65).epsilon(1e-12));
    CHECK(s[2] == 0.0);
    // A repeated query word counts twice; unknown words are dropped.
    const std::vector<int32_t> q2 = idx.query_terms("apple zebra APPLE");
    CHECK(q2.size() == 2);
    idx.score(q2, docs, s);
    CHECK(s[0] == doctest::Approx(2 * std::log(1.6)).epsilon(1e-12));
    // b = 0 ignores length; k1 = 0 reduces every matched word to its idf.
    Bm25Index flat(kDocs, 1.2, 0.0), binary(kDocs, 0.0, 0.75);
    flat.score(q, docs, s);
    CHECK(s[1] == doctest::Approx(std::log(1.6) * 4.4 / 3.2).epsilon(1e-12));
    binary.score(q, docs, s);
    CHECK(s[1] == doctest::Approx(std::log(1.6)).epsilon(1e-12));
  }

  TEST_CASE("ranking and subsets of documents") {
    Bm25Index idx(kDocs);
    std::vector<int64_t> docs = {2, 1};
    std::vector<double> s(2);
    idx.score(idx.query_terms("cherry"), docs, s);
    CHECK(s[0] == 0.0);
    CHECK(s[1] > 0.0);
    std::vector<int64_t> missing = {3};
    std::vector<double> one(1);
    CHECK_THROWS_WITH_AS(idx.score(idx.query_terms("cherry"), missing, one), doctest::Contains("out of range"), Error);
  }

  TEST_CASE("bad parameters are refused") {
    CHECK_THROWS_WITH_AS(Bm25Index(kDocs, -1.0), doctest::Contains("k1 = -1"), Error);
    CHECK_THROWS_WITH_AS(Bm25Index(kDocs, 1.2, 1.5), doctest::Contains("b = 1.5"), Error);
    CHECK_THROWS_WITH_AS(Bm25Index(std::vector<std::string>{}), doctest::Contains("no documents"), Error);
  }
}
