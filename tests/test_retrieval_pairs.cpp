// data/: retrieval pair readers (Reuters-21578 JSON, man pages, generic JSON Lines), the roff
// renderer, every malformed-input error, and the deterministic train/test split. All inputs
// are small files the tests write; no installed third-party data is read.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/temp_dir.h"
#include "tests/test_helpers.h"
#include "core/utf8.h"
#include "data/retrieval_pairs.h"

namespace {

namespace fs = std::filesystem;
using namespace mg;

using test::error_of;
using test::TempDir;

// A body over 200 bytes once cleaned, with the wire service's sign-off.
std::string long_body(const std::string& lead, const std::string& signoff = "\\n Reuter\\n\\u0003") {
  std::string s = lead + "\\n";
  for (int i = 0; i < 12; ++i) s += "More news text here. ";
  return s + signoff;
}
std::string cleaned_long_body(const std::string& lead) {
  std::string s = lead + "\n";
  for (int i = 0; i < 12; ++i) s += "More news text here. ";
  s.pop_back();
  return s;
}

const char* const kPage = R"(.\" A comment line
.TH FOO 1 2024-01-01 "Test pages"
.SH NAME
foo, bar \- do \fBthings\fR quickly
.SH SYNOPSIS
.nf
.B foo
.RI [ options ] " file"
.fi
.SH DESCRIPTION
The
.B foo
command does things\(emfast. \" an inline comment
It uses \fIfiles\fP and \-v flags.
.PP
Second paragraph with \e backslash and \(aqquotes\(aq.
.TP
.B \-v
Be verbose.
.SS "Exit status"
Zero on success.
.TS
tab(;);
l l.
A;B
_
C;D
.TE
.SH "SEE ALSO"
.BR bar (1),
.MR baz 2 .
)";

}  // namespace

TEST_SUITE("retrieval_pairs") {

TEST_CASE("Reuters: cleaning, unique headlines, short bodies, missing fields") {
  TempDir dir;
  dir.write("pkg/data/full/reuters-000.json",
            "[\n"
            "{\"title\": \"ACME <ACM> TO BUY WIDGET CO\", \"body\": \"" + long_body("Acme said.") +
                "\", \"id\": \"1\", \"topics\": [\"acq\"]},\n"
            "{\"title\": \"YEAR NET\", \"body\": \"" + long_body("One.") + "\", \"id\": \"2\"},\n"
            "{\"title\": \"YEAR  NET \", \"body\": \"" + long_body("Two.") + "\", \"id\": \"3\"},\n"
            "{\"title\": \"SHORT ONE\", \"body\": \"Too short.\\n Reuter\\n\\u0003\", \"id\": \"4\"},\n"
            "{\"body\": \"" + long_body("No title.") + "\", \"id\": \"5\"},\n"
            "{\"title\": \"NO BODY\", \"id\": \"6\", \"body\": null},\n"
            "{\"title\": \"Mixed <X.L> Case\", \"body\": \"" + long_body("Seven.", "\\n REUTERS\\n\\u0003") +
                "\", \"id\": \"7\"}\n"
            "]");
  dir.write("pkg/data/full/reuters-001.json",
            "[{\"title\": \"SECOND FILE\", \"body\": \"" + long_body("Eight.", "\\n reuter...\\n\\u0003") +
                "\", \"id\": \"8\"}]");
  PairStats st;
  const auto pairs = read_reuters_pairs((dir.path / "pkg").string(), {}, &st);
  REQUIRE(pairs.size() == 3);
  CHECK(pairs[0] == RetrievalPair{"reuters-1", "acme to buy widget co", cleaned_long_body("Acme said.")});
  CHECK(pairs[1] == RetrievalPair{"reuters-7", "mixed case", cleaned_long_body("Seven.")});
  CHECK(pairs[2] == RetrievalPair{"reuters-8", "second file", cleaned_long_body("Eight.")});
  CHECK(st.records == 8);
  CHECK(st.missing == 2);
  CHECK(st.repeated_queries == 2);  // both "year net" records
  CHECK(st.short_documents == 1);
  CHECK(st.pairs == 3);

  // The data/full folder or a single file work too; options relax the filters.
  CHECK(read_reuters_pairs((dir.path / "pkg/data/full").string()) == pairs);
  CHECK(read_reuters_pairs((dir.path / "pkg/data/full/reuters-001.json").string()).size() == 1);
  ReutersOptions loose;
  loose.unique_queries = false;
  loose.min_document_bytes = 1;
  CHECK(read_reuters_pairs((dir.path / "pkg").string(), loose).size() == 6);
}

TEST_CASE("Reuters: malformed files name the file, the record and the problem") {
  TempDir dir;
  struct Case {
    std::string content, expect;
  } cases[] = {
      {"[1]", "r.json: record 1: is a number, expected an object"},
      {R"([{"title": "A", "body": "b", "id": "1"}, {"title": 5, "body": "b", "id": "2"}])",
       "r.json: record 2: field \"title\" is a number, expected a string"},
      {R"([{"title": "A", "body": ["b"], "id": "1"}])",
       "r.json: record 1: field \"body\" is an array, expected a string"},
      {R"([{"title": "A", "body": "b"}])", "r.json: record 1: missing \"id\""},
      {R"([{"title": "A", "body": "b", "id": "1"}, {"id": "1"}])",
       "r.json: record 2: id \"1\" repeats "},
      {"[{\"title\": \"A\xFF\", \"body\": \"b\", \"id\": \"1\"}]",
       "r.json: record 1: title is not valid UTF-8 (byte 1)"},
      {"[\n{\"title\": \"A\",\n \"body\" \"b\"}]", "r.json: line 3, column 9: expected ':'"},
      {R"({"title": "A"})", "r.json: holds an object, expected an array of records"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.content);
    const std::string path = dir.write("r.json", c.content);
    const std::string msg = error_of<PairsError>([&] { read_reuters_pairs(path); });
    CHECK_MESSAGE(msg.find(dir.path.string() + "/" + c.expect) == 0, msg);
  }
  CHECK(error_of<PairsError>([&] { read_reuters_pairs((dir.path / "none").string()); }).find("install_corpus.sh") !=
        std::string::npos);
}

TEST_CASE("render_man_page: headings, fill, no-fill, fonts, escapes, tags, tables") {
  const std::string expect_body =
      "SYNOPSIS\n"
      "foo\n"
      "[options] file\n"
      "\n"
      "DESCRIPTION\n"
      "The foo command does things\xE2\x80\x94" "fast. It uses files and -v flags.\n"
      "\n"
      "Second paragraph with \\ backslash and 'quotes'.\n"
      "\n"
      "-v\n"
      "Be verbose.\n"
      "\n"
      "Exit status\n"
      "Zero on success.\n"
      "A  B\n"
      "C  D\n"
      "\n"
      "SEE ALSO\n"
      "bar(1), baz(2).";
  CHECK(render_man_page(kPage, false) == expect_body);
  CHECK(render_man_page(kPage, true) == "NAME\nfoo, bar - do things quickly\n\n" + expect_body);
  CHECK(render_man_page(kPage) == render_man_page(kPage, true));
  CHECK(man_page_summary(kPage) == "do things quickly");
  CHECK(man_page_summary(".TH X 1\n.SH DESCRIPTION\nno name section\n").empty());
  // A NAME heading given on the next line, and a plain " - " separator.
  CHECK(man_page_summary(".SH\nNAME\nzap - remove things\n.SH SYNOPSIS\nzap\n") == "remove things");
  // Unicode escapes, size changes, strings, \c joins, special characters.
  CHECK(render_man_page("caf\\[u00E9] \\s-1SMALL\\s0 \\*(lqq\\*(rq a\\c\nb \\(<= \\[char65]") ==
        "caf\xC3\xA9 SMALL \xE2\x80\x9Cq\xE2\x80\x9D ab \xE2\x89\xA4 A");
  // Macro definitions and ignored blocks are skipped.
  CHECK(render_man_page(".de XX\nhidden\n..\nshown\n.ig\nalso hidden\n..\n") == "shown");
}

TEST_CASE("render_man_page: escapes take whole UTF-8 characters, so valid UTF-8 stays valid") {
  // Found by fuzz/fuzz_retrieval_pairs: "\(e" followed by U+04AF took the escape name "e\xD2" and
  // left the lone continuation byte \xAF in the text.
  const std::string ue = "\xD2\xAF";  // U+04AF, two bytes
  const std::string euro = "\xE2\x82\xAC";  // U+20AC, three bytes
  for (const std::string& page :
       {"counts \\(e" + ue + "P", "a \\(" + ue + ue + " b", "\\f" + ue + "bold", "\\k" + euro + "x", "\\z" + ue + "y",
        "\\h" + euro + "1m" + euro + " after", "\\*" + ue + " s", "\\C" + ue + "em" + ue + " c",
        ".SH NAME\nzap \\- \\(" + euro + "x removes\n"}) {
    CAPTURE(page);
    REQUIRE(first_invalid_utf8(page) == std::string::npos);
    CHECK(first_invalid_utf8(render_man_page(page)) == std::string::npos);
    CHECK(first_invalid_utf8(man_page_summary(page)) == std::string::npos);
  }
  CHECK(render_man_page("counts \\(e" + ue + "P") == "counts P");  // the unknown glyph "e<U+04AF>" is dropped
  CHECK(render_man_page("x\\h" + euro + "1m" + euro + " after") == "x after");  // the whole \h argument goes
}

TEST_CASE("man page pairs: summaries, stubs, symlinks, repeats") {
  TempDir dir;
  dir.write("man/man1/foo.1", kPage);
  dir.write("man/man2/bar.2", std::string(kPage));  // same summary: dropped as a repeat
  dir.write("man/man3/stub.3", ".so man1/foo.1\n");
  dir.write("man/man3/noname.3", ".TH NONAME 3\n.SH DESCRIPTION\nNothing.\n");
  dir.write("man/man7/other.7", ".TH OTHER 7\n.SH NAME\nother \\- another page\n.SH DESCRIPTION\nText.\n");
  dir.write("man/.complete", "marker");
  fs::create_symlink("foo.1", dir.path / "man/man1/alias.1");
  PairStats st;
  const auto pairs = read_manpage_pairs((dir.path / "man").string(), {}, &st);
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[0].id == "man-foo.1");
  CHECK(pairs[0].query == "do things quickly");
  CHECK(pairs[0].document == render_man_page(kPage, false));
  CHECK(pairs[1] == RetrievalPair{"man-other.7", "another page", "DESCRIPTION\nText."});
  CHECK(st.records == 5);
  CHECK(st.stubs == 1);
  CHECK(st.missing == 1);
  CHECK(st.repeated_queries == 1);
  CHECK(st.pairs == 2);

  ManPageOptions keep;
  keep.keep_name_section = true;
  keep.unique_queries = false;
  const auto all = read_manpage_pairs((dir.path / "man").string(), keep);
  CHECK(all.size() == 3);
  CHECK(all[0].document.find("NAME\nfoo, bar - do things quickly") == 0);

  dir.write("bad/man1/x.1", ".SH NAME\nx \\- bad \xC3\n");
  CHECK(error_of<PairsError>([&] { read_manpage_pairs((dir.path / "bad").string()); })
            .find("x.1: page is not valid UTF-8") != std::string::npos);
  dir.write("gz/man1/y.1.gz", "\x1f\x8b");
  CHECK(error_of<PairsError>([&] { read_manpage_pairs((dir.path / "gz").string()); }).find("compressed man page") !=
        std::string::npos);
  CHECK(error_of<PairsError>([&] { read_manpage_pairs((dir.path / "none").string()); }).find("not a directory") !=
        std::string::npos);
}

TEST_CASE("JSONL pairs: reading, ids, and every malformed record") {
  TempDir dir;
  const std::string good = dir.write(
      "p.jsonl",
      "{\"query\": \"a cat\", \"document\": \"The cat sat.\"}\n"
      "{\"id\": \"x7\", \"query\": \"caf\\u00e9\", \"document\": \"Line one\\nline two\", \"extra\": [1]}\n");
  const auto pairs = read_jsonl_pairs(good);
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[0] == RetrievalPair{"1", "a cat", "The cat sat."});
  CHECK(pairs[1] == RetrievalPair{"x7", "caf\xC3\xA9", "Line one\nline two"});

  struct Case {
    std::string content, expect;
  } cases[] = {
      {"{\"query\": \"q\", \"document\": \"d\"}\n{\"document\": \"d\"}\n", ":2: missing field \"query\""},
      {"{\"query\": \"q\"}\n", ":1: missing field \"document\""},
      {"{\"query\": \"q\", \"document\": \"  \\n\"}\n", ":1: field \"document\" is empty"},
      {"{\"query\": \"\", \"document\": \"d\"}\n", ":1: field \"query\" is empty"},
      {"{\"query\": 3, \"document\": \"d\"}\n", ":1: field \"query\" is a number, expected a string"},
      {"{\"query\": \"q\\u00e9\", \"document\": \"bad \xE9 byte\"}\n",
       ":1: field \"document\" is not valid UTF-8 (byte 4)"},
      {"{\"query\": \"q\", \"document\": \"d\"}\n{\"query\": \"q\", \"document\": \"d\"\n",
       ":2, column 31: unexpected end of input in object"},
      {"{\"query\": \"q\", \"document\": \"d\"}\n\n", ":2: blank line"},
      {"[\"q\", \"d\"]\n", ":1: line holds an array, expected an object"},
      {"{\"id\": \"a\", \"query\": \"q\", \"document\": \"d\"}\n{\"id\": \"a\", \"query\": \"r\", \"document\": \"e\"}\n",
       ":2: id \"a\" repeats line 1"},
      {"{\"id\": 4, \"query\": \"q\", \"document\": \"d\"}\n", ":1: field \"id\" is a number, expected a string"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.content);
    const std::string path = dir.write("bad.jsonl", c.content);
    const std::string msg = error_of<PairsError>([&] { read_jsonl_pairs(path); });
    CHECK_MESSAGE(msg.find(path + c.expect) == 0, msg);
  }
  CHECK(error_of<PairsError>([&] { read_jsonl_pairs(dir.path.string() + "/none.jsonl"); }).find("cannot open") !=
        std::string::npos);
}

TEST_CASE("JSONL pairs round trip through write_jsonl_pairs") {
  TempDir dir;
  const std::vector<RetrievalPair> pairs = {
      {"a", "quote \" and backslash \\", "tab\there\nnewline, control \x01 and \x1f, caf\xC3\xA9 \xF0\x9F\x98\x80"},
      {"b/2", "second", "{\"json\": [1, 2]}"},
  };
  const std::string path = (dir.path / "out.jsonl").string();
  write_jsonl_pairs(path, pairs);
  CHECK(test::atomic_temp_files(path).empty());
  CHECK(read_jsonl_pairs(path) == pairs);
  CHECK_THROWS_AS(write_jsonl_pairs((dir.path / "no/dir/x.jsonl").string(), pairs), PairsError);
}

TEST_CASE("train/test split is deterministic, disjoint and depends only on ids") {
  std::vector<RetrievalPair> pairs;
  for (int i = 0; i < 5000; ++i) pairs.push_back({"id-" + std::to_string(i), "q", "d"});
  const PairSplit s = split_pairs(pairs, 0.2);
  CHECK(s.train.size() + s.test.size() == pairs.size());
  CHECK(std::abs(double(s.test.size()) - 1000.0) < 120.0);  // sd ~ 28
  std::set<std::string> test_ids;
  for (const auto& p : s.test) test_ids.insert(p.id);
  for (const auto& p : s.train) CHECK(test_ids.count(p.id) == 0);
  // Input order kept within each part.
  CHECK(std::is_sorted(s.test.begin(), s.test.end(), [](const RetrievalPair& a, const RetrievalPair& b) {
    return std::stoi(a.id.substr(3)) < std::stoi(b.id.substr(3));
  }));
  // Same split again; same membership for a reversed and shortened input.
  CHECK(split_pairs(pairs, 0.2).test == s.test);
  std::vector<RetrievalPair> rev(pairs.rbegin(), pairs.rend() - 1000);
  for (const auto& p : split_pairs(rev, 0.2).test) CHECK(test_ids.count(p.id) == 1);
  for (const auto& p : pairs) CHECK(is_test_pair(p.id, 0.2) == (test_ids.count(p.id) == 1));
  // Another seed moves pairs; the extremes are all-train and all-test.
  CHECK(split_pairs(pairs, 0.2, 1).test != s.test);
  CHECK(split_pairs(pairs, 0.0).test.empty());
  CHECK(split_pairs(pairs, 1.0).train.empty());
  CHECK_THROWS_AS(split_pairs(pairs, 1.5), Error);
}

}  // TEST_SUITE
