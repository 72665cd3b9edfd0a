// `mixgrad graph`: the autograd graph of one step of a config's model as Graphviz DOT (and SVG
// when Graphviz's `dot` is installed). experiments/autograd_graph.h draws it.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "experiments/args.h"
#include "experiments/autograd_graph.h"
#include "experiments/commands.h"
#include "experiments/step_bench.h"

namespace mg {

namespace {
constexpr const char* kUsage =
    "usage: mixgrad graph CONFIG.yaml [--out FILE.dot] [--layers L] [--batch B] [--ctx T]\n"
    "  the autograd graph of one training step of the config's model: ops with output shapes,\n"
    "  parameters, edges labelled with shapes, clustered by module path. Writes FILE.dot (default\n"
    "  runs/graph/graph.dot) and FILE.svg when Graphviz's `dot` is on PATH. --layers L builds the\n"
    "  model with L blocks (1 reads at a glance); --batch and --ctx shrink the batch's shape.\n";
}  // namespace

int run_graph(const std::vector<std::string>& argv) {
  Args a("graph", argv, {"out", "layers", "batch", "ctx"}, {"help"});
  if (a.flag("help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  const std::string config = a.positional("CONFIG.yaml");
  std::string out = "runs/graph/graph.dot";
  int64_t layers = 0, batch = 0, ctx = 0;
  a.read("out", out);
  a.read("layers", layers);
  a.read("batch", batch);
  a.read("ctx", ctx);
  MG_CHECK(layers >= 0 && batch >= 0 && ctx >= 0, "graph: --layers, --batch and --ctx must be positive");
  MG_CHECK(out.size() > 4 && out.substr(out.size() - 4) == ".dot", "graph: --out must name a .dot file, got '", out, "'");
  RunConfig rc = load_run_config(config);
  if (batch > 0) rc.train.batch_size = batch;
  if (ctx > 0) {
    MG_CHECK(ctx <= rc.model.n_ctx, "graph: --ctx ", ctx, " exceeds the model's n_ctx ", rc.model.n_ctx);
    rc.model.n_ctx = ctx;
  }
  StepBench b = make_step_bench(rc, layers);
  std::string dot;
  {
    GraphCapture capture;
    Tensor loss = forward_loss(b);
    dot = autograd_graph_dot(loss, *b.model, capture,
                             rc.name + ": " + b.rc.model.summary() + ", batch [" + std::to_string(b.ids.size(0)) +
                                 ", " + std::to_string(b.ids.size(1)) + "]");
  }
  const std::filesystem::path p(out);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  write_file_atomically(out, dot);
  std::printf("wrote %s\n", out.c_str());
  const std::string svg = out.substr(0, out.size() - 4) + ".svg";
  if (std::system("command -v dot > /dev/null 2>&1") != 0) {
    std::printf("Graphviz's `dot` is not installed: no SVG (apt-get install graphviz, then: dot -Tsvg %s -o %s)\n",
                out.c_str(), svg.c_str());
    return 0;
  }
  const std::string tmp = svg + ".tmp";
  const std::string cmd = "dot -Tsvg '" + out + "' -o '" + tmp + "'";
  MG_CHECK(out.find('\'') == std::string::npos, "graph: --out must not contain a quote");
  if (std::system(cmd.c_str()) != 0) {
    std::filesystem::remove(tmp);
    throw Error("graph: `" + cmd + "` failed");
  }
  std::filesystem::rename(tmp, svg);
  std::printf("wrote %s\n", svg.c_str());
  return 0;
}

}  // namespace mg
