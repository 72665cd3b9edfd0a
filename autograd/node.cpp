#include "autograd/node.h"

#include <atomic>

#include "autograd/grad_mode.h"
#include "autograd/instrument.h"

namespace mg {

namespace {
std::atomic<uint64_t> g_sequence{1};  // from 1: 0 means "no node" to observers (autograd/instrument.h)
}  // namespace

bool needs_grad(const Tensor& t) { return grad_enabled() && t.defined() && t.requires_grad(); }

Node::Node(std::string n) : name(std::move(n)), sequence(g_sequence++), module_path(current_module_path_ref()) {}

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> l) : Node("AccumulateGrad"), leaf(std::move(l)) {}

std::vector<Tensor> FunctionNode::apply(const Tensor& grad_output) {
  MG_CHECK(fn != nullptr, "backward through a freed graph: node '", name,
           "' already released its saved tensors. Pass retain_graph=true to the first backward() "
           "to go through the graph twice.");
  return fn(grad_output);
}

void Tensor::retain_grad() {
  checked();
  if (is_leaf() || impl_->retains_grad) return;
  impl_->retains_grad = true;
  impl_->grad_fn->retained.push_back(impl_);
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined()) return nullptr;
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return impl->grad_fn;
  if (!impl->requires_grad) return nullptr;
  if (auto acc = impl->grad_accumulator.lock()) return acc;
  auto acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
  impl->grad_accumulator = acc;
  return acc;
}

Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, FunctionNode::Backward backward) {
  bool any = false;
  for (const Tensor& t : inputs) any = any || needs_grad(t);
  if (any) {
    auto node = std::make_shared<FunctionNode>(name, std::move(backward));
    node->next.reserve(inputs.size());
    for (const Tensor& t : inputs) node->next.push_back(gradient_edge(t));
    out.impl()->grad_fn = std::move(node);
  }
  if (observing()) detail::report_forward_event(name, out, int(inputs.size()), &inputs);
  return out;
}

}  // namespace mg
