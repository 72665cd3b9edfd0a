#include "experiments/autograd_graph.h"

#include <functional>
#include <set>
#include <unordered_map>
#include <vector>

#include "autograd/node.h"

namespace mg {

namespace {

std::string shape_str_of(const Tensor& t) {
  std::string s = std::string(dtype_name(t.dtype())) + "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";  // DOT's centred line break
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A tree of clusters by module path.
struct Cluster {
  std::map<std::string, Cluster> children;
  std::vector<std::string> lines;  // node statements placed directly in this cluster
};

Cluster& cluster_for(Cluster& root, const std::string& path) {
  Cluster* c = &root;
  size_t start = 0;
  while (!path.empty() && start <= path.size()) {
    size_t dot = path.find('.', start);
    if (dot == std::string::npos) dot = path.size();
    c = &c->children[path.substr(0, dot)];
    start = dot + 1;
  }
  return *c;
}

void emit(const Cluster& c, const std::string& name, int depth, int& counter, std::string& out) {
  const std::string pad(size_t(depth) * 2, ' ');
  if (!name.empty()) {
    out += pad + "subgraph cluster_" + std::to_string(counter++) + " {\n";
    out += pad + "  label=" + quoted(name) + "; style=rounded; color=gray50; fontcolor=gray30;\n";
  }
  for (const auto& l : c.lines) out += pad + "  " + l + "\n";
  for (const auto& [n, child] : c.children) emit(child, n, depth + 1, counter, out);
  if (!name.empty()) out += pad + "}\n";
}

}  // namespace

GraphCapture::GraphCapture()
    : guard_([this](const OpEvent& ev) {
        if (ev.backward || !ev.node_id || !ev.output->defined()) return;
        nodes_[ev.node_id] = {ev.op, ev.module_path, shape_str_of(*ev.output)};
      }) {}

std::string autograd_graph_dot(const Tensor& loss, const Module& model, const GraphCapture& capture,
                               const std::string& title) {
  MG_CHECK(loss.defined() && loss.impl()->grad_fn, "graph: the loss has no autograd graph (no parameter requires grad?)");
  std::unordered_map<const TensorImpl*, std::string> param_names;
  for (const auto& [n, p] : model.named_parameters()) param_names[p.impl()] = n;

  Cluster root;
  std::vector<std::string> edges;
  std::unordered_map<const Node*, std::string> ids;
  std::vector<const Node*> stack;
  std::set<const Node*> done;
  stack = {loss.impl()->grad_fn.get()};
  ids[stack.back()] = "n0";
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (!done.insert(n).second) continue;
    const std::string me = ids.at(n);
    if (auto* acc = dynamic_cast<const AccumulateGrad*>(n)) {
      auto it = param_names.find(acc->leaf.get());
      const std::string name = it != param_names.end() ? it->second : "leaf";
      std::string shape = "[";
      for (size_t d = 0; d < acc->leaf->shape.size(); ++d) shape += (d ? ", " : "") + std::to_string(acc->leaf->shape[d]);
      shape += "]";
      const std::string module = name.rfind('.') == std::string::npos ? "" : name.substr(0, name.rfind('.'));
      const std::string leafname = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
      cluster_for(root, module).lines.push_back(me + " [shape=box, style=filled, fillcolor=lightyellow, label=" +
                                                quoted(leafname + "\n" + shape) + "];");
      continue;
    }
    auto info = capture.nodes().find(n->sequence);
    const std::string module = n->module_path ? *n->module_path : "";
    const std::string shape = info != capture.nodes().end() ? info->second.shape : "";
    const bool is_loss = n == loss.impl()->grad_fn.get();
    cluster_for(root, module).lines.push_back(
        me + " [shape=ellipse, style=filled, fillcolor=" + (is_loss ? "salmon" : "lightblue") + ", label=" +
        quoted(n->name + (shape.empty() ? "" : "\n" + shape)) + "];");
    for (size_t i = 0; i < n->next.size(); ++i) {
      const Node* in = n->next[i].get();
      if (!in) continue;
      auto [it, fresh] = ids.try_emplace(in, "n" + std::to_string(ids.size()));
      if (fresh) stack.push_back(in);
      std::string label;
      auto ii = capture.nodes().find(in->sequence);
      if (ii != capture.nodes().end()) label = ii->second.shape;
      edges.push_back(it->second + " -> " + me + (label.empty() ? "" : " [label=" + quoted(label) + "]") + ";");
    }
  }
  std::string out = "digraph autograd {\n  label=" + quoted(title) +
                    "; labelloc=t; fontsize=16; rankdir=BT; compound=true;\n"
                    "  node [fontname=\"Helvetica\", fontsize=10]; edge [fontname=\"Helvetica\", fontsize=8, color=gray40];\n";
  int counter = 0;
  emit(root, "", 0, counter, out);
  for (const auto& e : edges) out += "  " + e + "\n";
  out += "}\n";
  return out;
}

}  // namespace mg
