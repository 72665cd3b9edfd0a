// Writes the seed corpora of the fuzz targets with the project's own writers (no third-party
// text): mg_fuzz_seeds OUT_DIR SOURCE_DIR makes OUT_DIR/<target>/seed-N for every target in
// fuzz/. SOURCE_DIR is the repository root (its experiments/configs/*.yaml seed the config
// reader).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/factories.h"
#include "core/safetensors.h"
#include "data/bpe_tokenizer.h"
#include "data/retrieval_pairs.h"
#include "data/shards.h"

namespace fs = std::filesystem;
using namespace mg;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void put(const fs::path& dir, int n, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / ("seed-" + std::to_string(n)), std::ios::binary) << bytes;
}

// Writes with `write(path)` to a scratch file and returns its bytes.
template <class F>
std::string via_file(const fs::path& scratch, F write) {
  const fs::path p = scratch / "tmp-seed";
  write(p.string());
  std::string bytes = read(p);
  fs::remove(p);
  return bytes;
}

const std::vector<std::string> kTexts = {
    "The little robot counted the stars every night and wrote the number in a book.",
    "A small cat sat by the window. It watched the rain fall on the garden.",
    "Tom and Mia built a tower of blocks; it fell, so they built it again, taller.",
    "Unicode too: caf\xc3\xa9, na\xc3\xafve, \xe2\x82\xac 5, and a tab\there.",
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR SOURCE_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1], src = argv[2];
  const fs::path scratch = out / ".scratch";
  fs::create_directories(scratch);

  // safetensors: every dtype, metadata, scalars, empty and strided tensors.
  {
    const fs::path d = out / "fuzz_safetensors";
    int n = 0;
    auto save = [&](std::vector<std::pair<std::string, Tensor>> ts, std::map<std::string, std::string> meta) {
      put(d, n++, via_file(scratch, [&](const std::string& p) { save_safetensors(p, ts, meta); }));
    };
    save({{"w", randn({2, 3}, 1)}}, {});
    save({{"a", randn({4}, 2, TensorOptions{DType::f64})}, {"b", arange(6, TensorOptions{DType::i32}).reshape({2, 3})},
          {"c", randn({3, 2}, 3).to(DType::bf16)}},
         {{"format", "pt"}, {"step", "12"}});
    save({{"scalar", full({}, 2.5)}, {"empty", zeros({0, 4})}, {"t", randn({3, 4}, 4).t()}}, {{"note", "caf\xc3\xa9"}});
    save({}, {{"only", "metadata"}});
  }

  // Run configs: the project's own.
  {
    int n = 0;
    for (const auto& e : fs::directory_iterator(src / "experiments" / "configs"))
      if (e.path().extension() == ".yaml") put(out / "fuzz_run_config", n++, read(e.path()));
  }

  // JSON and JSON Lines.
  {
    const fs::path d = out / "fuzz_jsonl";
    std::vector<RetrievalPair> pairs;
    for (size_t i = 0; i < kTexts.size(); ++i) pairs.push_back({"p" + std::to_string(i), kTexts[i].substr(0, 20), kTexts[i]});
    put(d, 0, via_file(scratch, [&](const std::string& p) { write_jsonl_pairs(p, pairs); }));
    put(d, 1, "{\"text\": \"a \\u00e9 \\ud83d\\ude00 \\n\", \"n\": -1.5e3, \"ok\": true, \"x\": null, \"l\": [1, [2], {}]}\n");
    put(d, 2, "[{\"title\": \"T\", \"body\": \"B\", \"id\": \"1\"}, {\"title\": null}]");
  }

  // Tokenizer files and token shards.
  {
    const BpeTokenizer small = BpeTokenizer::train(kTexts, 300);
    BpeSpecialTokens sp;
    sp.extra = {"<|sep|>", "<|mask|>"};
    const BpeTokenizer special = BpeTokenizer::train(kTexts, 320, sp);
    int n = 0;
    for (const BpeTokenizer* t : {&small, &special})
      put(out / "fuzz_tokenizer", n++, via_file(scratch, [&](const std::string& p) { t->save(p); }));
    put(out / "fuzz_tokenizer", n++, via_file(scratch, [&](const std::string& p) { BpeTokenizer().save(p); }));

    n = 0;
    for (const BpeTokenizer* t : {&small, &special}) {
      put(out / "fuzz_shards", n++, via_file(scratch, [&](const std::string& p) {
            ShardWriter w(p, t->vocab_size(), tokenizer_fingerprint(*t));
            for (const std::string& s : kTexts) w.add_document(t->encode(s));
            w.finish();
          }));
    }
    put(out / "fuzz_shards", n++, via_file(scratch, [&](const std::string& p) {
          ShardWriter w(p, 1, 0);
          w.finish();
        }));
  }

  // Retrieval pairs: first byte 0 JSONL, 1 Reuters JSON, 2 a man page (see fuzz_retrieval_pairs).
  {
    const fs::path d = out / "fuzz_retrieval_pairs";
    std::vector<RetrievalPair> pairs;
    for (size_t i = 0; i < kTexts.size(); ++i) pairs.push_back({"id" + std::to_string(i), "query " + std::to_string(i), kTexts[i]});
    put(d, 0, std::string(1, '\0') + via_file(scratch, [&](const std::string& p) { write_jsonl_pairs(p, pairs); }));
    std::string reuters = "[";
    for (size_t i = 0; i < kTexts.size(); ++i) {
      std::string body;
      for (int k = 0; k < 4; ++k) body += kTexts[i] + " ";
      reuters += (i ? ", " : "") + std::string("{\"title\": \"<ROBO> HEADLINE ") + std::to_string(i) +
                 "\", \"body\": \"" + body + "\\nReuter\\n\\u0003\", \"id\": \"" + std::to_string(i + 1) + "\"}";
    }
    put(d, 1, std::string(1, '\1') + reuters + "]");
    put(d, 2, std::string(1, '\2') +
                  ".\\\" a comment\n.TH TOY 1 2024 mixgrad\n.SH NAME\ntoy \\- count the stars\n.SH SYNOPSIS\n"
                  ".B toy\n[\\fIoptions\\fR]\n.SH DESCRIPTION\n.B toy\ncounts \\(em slowly \\(aq and \\e.\n.PP\n"
                  ".nf\nline one\nline two\n.fi\n.TS\nl l.\na\tb\n.TE\n.BR one (1),\n.IR two .\n");
    put(d, 3, std::string(1, '\2') + ".so man1/other.1\n");
  }
  fs::remove_all(scratch);
  return 0;
}
