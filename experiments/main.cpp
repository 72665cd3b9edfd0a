// mixgrad: the paper's experiments as one program. Every failure ends in one message naming the
// problem and a non-zero exit.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "experiments/commands.h"
#include "train/communicator.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const std::vector<std::string>&);
  const char* help;
};

const Command kCommands[] = {
    {"example", mg::run_example, "fit a tiny MLP by gradient descent and print its falling loss"},
    {"tokenize", mg::run_tokenize, "CONFIG.yaml: train the tokenizer and write the token shards"},
    {"train", mg::run_train,
     "CONFIG.yaml [--resume] [--steps N] [--out-dir D] [--stop-after N]: train a model\n"
     "               (data-parallel: mpirun -np N mixgrad train CONFIG.yaml; see train --help)"},
    {"generate", mg::run_generate, "--checkpoint P [--prompt T] [--tokens N] [--temperature X] [--top-k K]"},
    {"reproduce", mg::run_reproduce, "--quick | --standard | --paper [--dry-run] [--only NAME] [--out DIR] [--resume] [--skip-represent] [--skip-retrieval]: mixer vs transformer, with a report"},
    {"retrieve", mg::run_retrieve,
     "train|eval|embed|frozen|texts --pairs reuters|manpages|PATH.jsonl [...]: retrieval (docs/paper.md E), TF-IDF baseline"},
    {"represent", mg::run_represent,
     "[--kinds K,..|--checkpoint P,..|--config Y,..] [--layers all|1,4,8] [--out DIR]: input-representation test (Fig. 3)"},
    {"eval", mg::run_eval, "--checkpoint P [--batches N | --ids IDS.safetensors]: validation loss of a checkpoint"},
    {"export", mg::run_export, "--checkpoint P --to pytorch|hf OUT_DIR: weights, config.json, tokenizer.json (docs/interop.md)"},
    {"import", mg::run_import,
     "--from pytorch|hf W.safetensors [--config C] --tokenizer T --out DIR: a run dir from PyTorch/HF weights"},
    {"autoencode", mg::run_autoencode,
     "train CONFIG.yaml | eval --run DIR | retrieve --run DIR --pairs reuters | encoder --run DIR --out DIR | plot:\n"
     "               autoencoders (docs/paper.md F); `encoder` writes the encoder as a language model for `retrieve`"},
    {"audit", mg::run_audit,
     "CONFIG.yaml | --checkpoint P [--out DIR] [--fd-samples K] [--bound B] [--activations] [--detect-anomaly]:\n"
     "               gradients vs f64 finite differences, norms, masked-gradient zeros (docs/audit.md)"},
    {"profile", mg::run_profile,
     "CONFIG.yaml [--steps N] [--out DIR]: one training step timed per op and module, Chrome trace (docs/audit.md)"},
    {"graph", mg::run_graph, "CONFIG.yaml [--out FILE.dot] [--layers L]: the autograd graph of one step as DOT/SVG"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: mixgrad <command> [args]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(args);
    } catch (const std::exception& e) {
      const std::string msg = std::string("mixgrad ") + c.name + ": error: " + e.what();
      // In a data-parallel run the other ranks may be waiting in a collective: end them all.
      if (mg::world().size() > 1) mg::world().abort(msg);
      std::fprintf(stderr, "%s\n", msg.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "mixgrad: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
