#pragma once
// A node of the backward graph. Each node made by an op has exactly one output; `next[i]` is
// the node that receives the gradient for the op's i-th input (null when that input needs none).
// Leaves that require grad are reached through an AccumulateGrad node.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mg {

struct Node {
  explicit Node(std::string name);
  virtual ~Node() = default;

  std::string name;                         // op name, reported by errors and the gradient audit
  std::vector<std::shared_ptr<Node>> next;  // one per differentiable input
  uint64_t sequence;                        // creation order: later nodes run first in backward
  std::vector<std::weak_ptr<TensorImpl>> retained;  // non-leaf outputs that asked for .grad
  std::shared_ptr<const std::string> module_path;   // module that recorded it (autograd/instrument.h)

  // Gradient w.r.t. each input given the gradient w.r.t. the output. Entries may be undefined
  // when an input gets no gradient.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Frees saved tensors; a later apply() must throw.
  virtual void release() {}
  virtual bool released() const { return false; }
};

// The gradient sink of a leaf tensor: adds incoming gradients into leaf.grad.
struct AccumulateGrad : Node {
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  std::shared_ptr<TensorImpl> leaf;
  std::vector<Tensor> apply(const Tensor& grad_output) override;
};

// A node whose backward is a closure; the closure owns the saved tensors, so release() frees
// them by dropping it.
struct FunctionNode : Node {
  using Backward = std::function<std::vector<Tensor>(const Tensor&)>;
  FunctionNode(std::string name, Backward fn) : Node(std::move(name)), fn(std::move(fn)) {}
  Backward fn;
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  void release() override { fn = nullptr; }
  bool released() const override { return !fn; }
};

// The node that feeds gradients into `t`: its grad_fn, its leaf accumulator, or null.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

// Whether an op running now must produce a gradient for its input `t`: grad mode is on and t is
// defined and requires grad (a frozen weight, integer ids, an absent optional input, or anything
// under NoGradGuard, does not). This is the one test ops use to decide which gradients are needed.
// An op asks it at forward time, saves only the tensors the needed gradients read, and its
// backward returns an undefined Tensor for an input that needs none, skipping that work
// (record() gives exactly these inputs an edge, so a gradient computed for another would be
// dropped anyway).
bool needs_grad(const Tensor& t);

// Attaches a backward node to `out` when some input needs a gradient (needs_grad).
// `backward` gets dL/d(out) and returns one gradient per input (same order, undefined allowed).
// Returns `out`.
Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, FunctionNode::Backward backward);

}  // namespace mg
