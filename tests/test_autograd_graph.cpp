// `mixgrad graph` (experiments/autograd_graph.h): the DOT of a tiny mixer's step is well formed
// and shows its ops, parameters and module clusters.
#include <doctest/doctest.h>

#include <regex>
#include <set>
#include <string>

#include "experiments/autograd_graph.h"
#include "nn/lm.h"
#include "nn/lm_loss.h"
#include "tests/model_configs.h"

using namespace mg;

namespace {

// Node statements `nK [...]` and edges `nA -> nB`; braces balanced outside quoted strings.
struct Parsed {
  std::set<std::string> nodes;
  std::vector<std::pair<std::string, std::string>> edges;
  int depth_min = 0, depth_end = 0;
};

Parsed parse(const std::string& dot) {
  Parsed p;
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i < dot.size(); ++i) {
    const char c = dot[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    if (c == '{') ++depth;
    if (c == '}') --depth;
    p.depth_min = std::min(p.depth_min, depth);
  }
  p.depth_end = depth;
  std::regex node(R"(^\s*(n\d+) \[)"), edge(R"(^\s*(n\d+) -> (n\d+))");
  size_t start = 0;
  while (start < dot.size()) {
    size_t end = dot.find('\n', start);
    if (end == std::string::npos) end = dot.size();
    const std::string line = dot.substr(start, end - start);
    std::smatch m;
    if (std::regex_search(line, m, edge)) p.edges.emplace_back(m[1], m[2]);
    else if (std::regex_search(line, m, node)) p.nodes.insert(m[1]);
    start = end + 1;
  }
  return p;
}

}  // namespace

TEST_CASE("graph: a tiny mixer's autograd graph as well-formed DOT with its ops, parameters and modules") {
  Generator gen(1);
  ModelConfig cfg = test::tiny_model(ModelKind::masked_mixer);
  cfg.n_layers = 1;
  auto model = make_model(cfg, gen);
  Tensor ids = test::tiny_sequence_ids();
  std::string dot;
  {
    GraphCapture capture;
    Tensor loss = shifted_lm_loss(model->forward(ids), ids);
    dot = autograd_graph_dot(loss, *model, capture, "tiny \"mixer\"");
  }
  CHECK(dot.rfind("digraph autograd {", 0) == 0);
  const Parsed p = parse(dot);
  CHECK(p.depth_min == 0);
  CHECK(p.depth_end == 0);
  CHECK(p.nodes.size() > 15);
  for (const auto& edge : p.edges) {
    const std::string& a = edge.first;
    const std::string& b = edge.second;
    CHECK_MESSAGE(p.nodes.count(a), a);
    CHECK_MESSAGE(p.nodes.count(b), b);
  }
  CHECK(p.edges.size() >= p.nodes.size() - 1);  // connected: everything reaches the loss
  for (const char* op : {"masked_token_mix", "layer_norm", "matmul", "bias_gelu", "embedding", "cross_entropy", "add"})
    CHECK_MESSAGE(dot.find(std::string("label=\"") + op + "\\n") != std::string::npos, std::string(op));
  CHECK(dot.find("label=\"mixerblocks.0.conv\"") != std::string::npos);      // module clusters
  CHECK(dot.find("label=\"mixerblocks.0.patch_ff.0\"") != std::string::npos);
  CHECK(dot.find("label=\"weight\\n[6, 6, 1]\"") != std::string::npos);       // the conv's parameter
  CHECK(dot.find("f32[1, 6, 8]") != std::string::npos);                        // shapes on ops and edges
  CHECK(dot.find("tiny \\\"mixer\\\"") != std::string::npos);                  // quotes escaped
}
