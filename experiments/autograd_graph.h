#pragma once
// The autograd graph of one step as Graphviz DOT, for teaching (`mixgrad graph`): one node per
// backward node (the op that recorded it, with its output's shape and dtype), one box per
// parameter (state-dict name and shape), edges in the forward direction labelled with the
// shape that flows along them, and every op inside nested clusters named by its module path
// ("mixerblocks.0" containing "mixerblocks.0.conv"). Ops that record no backward node (integer
// ids, views of frozen tensors) are not in the graph. What a node saves for backward lives in
// its closure and is not shown.
#include <map>
#include <string>

#include "autograd/instrument.h"
#include "nn/module.h"

namespace mg {

// Records, while it lives, each forward op's output shape and module by its backward node.
class GraphCapture {
 public:
  GraphCapture();
  struct Info {
    std::string op, module, shape;
  };
  const std::map<uint64_t, Info>& nodes() const { return nodes_; }

 private:
  std::map<uint64_t, Info> nodes_;
  OpObserverGuard guard_;
};

// The graph behind `loss` (run its forward under a GraphCapture; before backward, which frees
// the graph). `title` heads the picture.
std::string autograd_graph_dot(const Tensor& loss, const Module& model, const GraphCapture& capture,
                               const std::string& title);

}  // namespace mg
