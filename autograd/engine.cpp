// The backward engine: one pass over the graph in reverse creation order (a valid reverse
// topological order, since a node is always created after its inputs' nodes), summing the
// gradients that reach each node before running it.
#include <queue>
#include <unordered_map>

#include "autograd/grad_hooks.h"
#include "autograd/grad_mode.h"
#include "autograd/instrument.h"
#include "autograd/node.h"
#include "core/backend.h"
#include "core/factories.h"

namespace mg {

namespace {

Tensor add_grads(const Tensor& a, const Tensor& b) {
  MG_CHECK(a.shape() == b.shape() && a.dtype() == b.dtype(), "backward: gradients ", a.desc(), " and ",
           b.desc(), " reaching the same tensor disagree");
  Tensor out = Tensor::empty(a.shape(), TensorOptions{a.dtype(), a.device(), false});
  if (out.numel()) backend_for(a.device()).binary(BinaryOp::add, a, b, out);
  return out;
}

Tensor owned_copy(const Tensor& g) {
  Tensor out = Tensor::empty(g.shape(), TensorOptions{g.dtype(), g.device(), false});
  if (out.numel()) backend_for(g.device()).copy(g, out);
  return out;
}

// True when nothing but the engine can see g's memory: one handle, sole owner of a storage
// that holds exactly g. Such a gradient can become .grad without a copy.
bool exclusively_owned(const Tensor& g) {
  const auto& st = g.storage();
  return g.impl_ptr().use_count() == 1 && st.use_count() == 1 && g.offset() == 0 && g.is_contiguous() &&
         size_t(g.numel()) * dtype_size(g.dtype()) == st->nbytes();
}

void accumulate_into(TensorImpl* impl, const Tensor& g, bool may_take) {
  if (!impl->grad) {
    // Otherwise keep a private copy: g may alias a caller's tensor or another gradient.
    impl->grad = may_take && exclusively_owned(g) ? g.impl_ptr() : owned_copy(g).impl_ptr();
  } else {
    impl->grad = add_grads(Tensor(impl->grad), g).impl_ptr();
  }
}

struct ByLatest {
  bool operator()(const Node* a, const Node* b) const { return a->sequence < b->sequence; }
};

}  // namespace

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  MG_CHECK(grad_output.shape() == leaf->shape, "backward: gradient ", grad_output.desc(),
           " does not match leaf of shape ", shape_str(leaf->shape));
  accumulate_into(leaf.get(), grad_output, /*may_take=*/true);
  run_post_accumulate_hooks(leaf);  // a node runs once per pass, after all its inputs are summed
  return {};
}

void Tensor::backward(const Tensor& grad_in, bool retain_graph) const {
  MG_CHECK(defined(), "backward: called on an undefined tensor");
  MG_CHECK(requires_grad(), "backward: tensor ", desc(),
           " does not require grad and has no grad_fn (did any input have requires_grad set?)");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    MG_CHECK(numel() == 1, "backward: implicit gradient only for one-element outputs; tensor ", desc(),
             " needs an explicit gradient");
    grad = ones(shape(), TensorOptions{dtype(), device(), false});
  }
  MG_CHECK(grad.shape() == shape() && grad.dtype() == dtype() && grad.device() == device(),
           "backward: gradient ", grad.desc(), " does not match tensor ", desc());

  std::shared_ptr<Node> root = gradient_edge(*this);
  NoGradGuard no_grad;

  // Count, for every reachable node, how many edges lead into it.
  std::unordered_map<Node*, int> deps;
  {
    std::vector<Node*> stack{root.get()};
    deps[root.get()] = 0;
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (auto& nx : n->next) {
        if (!nx) continue;
        auto [it, inserted] = deps.try_emplace(nx.get(), 0);
        ++it->second;
        if (inserted) stack.push_back(nx.get());
      }
    }
  }

  std::unordered_map<Node*, Tensor> buffer;
  buffer[root.get()] = grad;
  std::priority_queue<Node*, std::vector<Node*>, ByLatest> ready;
  ready.push(root.get());
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    Tensor g;
    if (auto it = buffer.find(node); it != buffer.end()) {
      g = std::move(it->second);
      buffer.erase(it);
    }
    std::vector<Tensor> grads;
    if (g.defined()) {
      for (auto& w : node->retained)
        if (auto impl = w.lock()) accumulate_into(impl.get(), g, /*may_take=*/false);  // g flows on
      if (observing()) {
        // Ops a backward closure calls are part of this node: they report nothing themselves.
        detail::timing_sync();
        double t0 = detail::now_seconds();
        {
          detail::BackwardNodeScope inside;
          grads = node->apply(g);
        }
        detail::timing_sync();
        detail::report_backward(*node, grads, detail::now_seconds() - t0);
      } else {
        grads = node->apply(g);
      }
      MG_CHECK(grads.size() == node->next.size() || grads.empty(), "backward of '", node->name, "' returned ",
               grads.size(), " gradients for ", node->next.size(), " inputs");
    }
    for (size_t i = 0; i < node->next.size(); ++i) {
      Node* nx = node->next[i].get();
      if (!nx) continue;
      if (i < grads.size() && grads[i].defined()) {
        auto it = buffer.find(nx);
        if (it == buffer.end()) buffer.emplace(nx, grads[i]);
        else if (observing()) {
          detail::timing_sync();
          double t0 = detail::now_seconds();
          it->second = add_grads(it->second, grads[i]);
          detail::timing_sync();
          detail::report_grad_sum(*nx, it->second, detail::now_seconds() - t0);
        } else {
          it->second = add_grads(it->second, grads[i]);
        }
      }
      if (--deps[nx] == 0) ready.push(nx);
    }
    if (!retain_graph) node->release();
  }
}

}  // namespace mg
