// experiments/pair_text_export.h: the texts of retrieval pairs written as a jsonl corpus, read
// back unchanged by the corpus reader the training run uses, and the training part's texts kept
// apart from the test part's.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/retrieval_pairs.h"
#include "experiments/pair_text_export.h"
#include "tests/temp_dir.h"

using namespace mg;
namespace fs = std::filesystem;

TEST_CASE("pair texts: the chosen side, written as jsonl, read back unchanged by the jsonl corpus") {
  const std::vector<RetrievalPair> pairs = {
      {"a", "u.s. rates \"steady\"", "Line one\nline two\twith a tab, a \\ and \xc3\xa9"},
      {"b", "oil <up>", "OPEC said\r\n{\"not\": \"an object\"} in text"},
  };
  CHECK(pair_side_texts(pairs, PairSide::documents) == std::vector<std::string>{pairs[0].document, pairs[1].document});
  CHECK(pair_side_texts(pairs, PairSide::queries) == std::vector<std::string>{pairs[0].query, pairs[1].query});
  const std::vector<std::string> both = pair_side_texts(pairs, PairSide::both);
  CHECK(both == std::vector<std::string>{pairs[0].query, pairs[0].document, pairs[1].query, pairs[1].document});

  test::TempDir dir("mg_pair_texts");
  const std::string path = dir.file("texts.jsonl");
  write_text_jsonl(path, both);
  auto reader = open_corpus(CorpusSpec{.format = "jsonl", .path = path});
  CHECK(read_documents(*reader) == both);
  // Written atomically: no temporary file is left beside it.
  CHECK(test::atomic_temp_files(path).empty());
  // A directory that does not exist: an error naming the file, and nothing written.
  const std::string missing = dir.file("no_dir/texts.jsonl");
  CHECK_THROWS_WITH_AS(write_text_jsonl(missing, both), doctest::Contains(missing.c_str()), Error);
  CHECK_FALSE(fs::exists(dir.file("no_dir")));
}

TEST_CASE("pair texts: texts also in the excluded list are dropped, order kept") {
  std::size_t dropped = 99;
  CHECK(texts_not_in({"a", "b", "c", "b", "d"}, {"b", "x", "d"}, dropped) == std::vector<std::string>{"a", "c"});
  CHECK(dropped == 3);
  CHECK(texts_not_in({"a"}, {}, dropped) == std::vector<std::string>{"a"});
  CHECK(dropped == 0);
  CHECK(parse_pair_side("both") == PairSide::both);
  CHECK_THROWS_WITH_AS(parse_pair_side("articles"), doctest::Contains("'articles'"), Error);
}
