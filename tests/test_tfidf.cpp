// experiments/tfidf: tokenisation, sklearn-default idf and normalisation, and ranking.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "experiments/tfidf.h"

using namespace mg;

TEST_SUITE("tfidf") {
  TEST_CASE("tokens: lower-cased runs of two or more word characters") {
    std::vector<std::string> expect = {"hello", "world", "i_b", "x2", "caf\xc3\xa9", "42"};
    CHECK(tfidf_tokens("Hello, WORLD! a I_b x2 caf\xc3\xa9 -- 42 z") == expect);
    CHECK(tfidf_tokens("").empty());
    CHECK(tfidf_tokens("a b c . ,").empty());
  }

  TEST_CASE("idf is smoothed, rows are L2-normalised") {
    TfidfIndex idx({"apple banana", "apple cherry apple"});
    CHECK(idx.num_documents() == 2);
    CHECK(idx.vocabulary_size() == 3);
    // apple: df 2 -> idf ln(3/3) + 1 = 1; banana, cherry: df 1 -> ln(3/2) + 1.
    const double rare = std::log(1.5) + 1;
    const SparseVector& d0 = idx.document_vector(0);
    REQUIRE(d0.size() == 2);
    const double n0 = std::sqrt(1 + rare * rare);
    // Term ids follow first appearance: apple 0, banana 1, cherry 2.
    CHECK(d0[0].first == 0);
    CHECK(d0[0].second == doctest::Approx(1 / n0));
    CHECK(d0[1].second == doctest::Approx(rare / n0));
    const SparseVector& d1 = idx.document_vector(1);
    const double n1 = std::sqrt(4 + rare * rare);
    CHECK(d1[0].second == doctest::Approx(2 / n1));  // apple counted twice
    CHECK(d1[1].first == 2);
    CHECK(d1[1].second == doctest::Approx(rare / n1));
    // A document scores 1 against itself.
    std::vector<int64_t> docs = {0, 1};
    std::vector<double> s(2);
    idx.score(idx.vectorize("apple cherry apple"), docs, s);
    CHECK(s[1] == doctest::Approx(1.0));
    CHECK(s[0] == doctest::Approx(2 / n1 / n0));
  }

  TEST_CASE("an exact-match document ranks first; unseen words score zero") {
    std::vector<std::string> docs = {
        "the central bank raised interest rates today", "oil prices fell sharply in new york trading",
        "the company reported higher quarterly earnings", "wheat exports to the soviet union rose",
        "the bank of japan intervened in currency markets"};
    TfidfIndex idx(docs);
    std::vector<int64_t> all = {0, 1, 2, 3, 4};
    std::vector<double> s(5);
    for (int64_t q = 0; q < 5; ++q) {
      idx.score(idx.vectorize(docs[size_t(q)]), all, s);
      for (int64_t d = 0; d < 5; ++d)
        if (d != q) CHECK(s[size_t(q)] > s[size_t(d)]);
    }
    idx.score(idx.vectorize("Oil PRICES fell"), all, s);
    CHECK(s[1] > 0);
    for (int64_t d : {0, 2, 3, 4}) CHECK(s[size_t(d)] == 0);
    CHECK(idx.vectorize("zebra quagga").empty());
    idx.score(idx.vectorize("zebra quagga"), all, s);
    for (double v : s) CHECK(v == 0);
  }

  TEST_CASE("bad arguments are errors") {
    TfidfIndex idx({"one two", "three four"});
    std::vector<int64_t> bad = {2};
    std::vector<double> s(1);
    CHECK_THROWS_AS(idx.score(idx.vectorize("one"), bad, s), Error);
    std::vector<int64_t> two = {0, 1};
    CHECK_THROWS_AS(idx.score(idx.vectorize("one"), two, s), Error);
  }
}
