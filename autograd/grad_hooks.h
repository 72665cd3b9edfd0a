#pragma once
// Post-accumulate hooks: a callback on a leaf tensor that runs once per backward pass, right after
// the engine has added into leaf.grad everything that pass will add (every path to the leaf is
// summed before its AccumulateGrad node runs). Data-parallel training uses it to start a bucket's
// all-reduce while the rest of backward is still running (train/grad_reducer.h).
//
// Hooks run on the thread that called backward(), in the order the engine reaches the leaves
// (roughly the reverse of the forward), and only for leaves that this pass reaches with a gradient.
#include <cstdint>
#include <functional>
#include <memory>

#include "core/tensor.h"

namespace mg {

// `leaf` is the tensor whose .grad has just become final for this pass.
using PostAccumulateHook = std::function<void(const Tensor& leaf)>;

// Removes its hook when destroyed (or on remove()); movable, not copyable.
class PostAccumulateHookHandle {
 public:
  PostAccumulateHookHandle() = default;
  explicit PostAccumulateHookHandle(uint64_t id) : id_(id) {}
  PostAccumulateHookHandle(PostAccumulateHookHandle&& o) noexcept : id_(o.id_) { o.id_ = 0; }
  PostAccumulateHookHandle& operator=(PostAccumulateHookHandle&& o) noexcept;
  PostAccumulateHookHandle(const PostAccumulateHookHandle&) = delete;
  PostAccumulateHookHandle& operator=(const PostAccumulateHookHandle&) = delete;
  ~PostAccumulateHookHandle() { remove(); }
  void remove();

 private:
  uint64_t id_ = 0;
};

// Expects a defined leaf tensor that requires grad (throws mg::Error otherwise). The hook stays
// registered while the handle lives; it never keeps the leaf alive, and does not run for another
// tensor that later reuses the leaf's memory.
[[nodiscard]] PostAccumulateHookHandle add_post_accumulate_hook(const Tensor& leaf, PostAccumulateHook hook);

// Called by the backward engine after accumulating into `leaf`; a no-op costing one atomic load
// when no hook is registered anywhere.
void run_post_accumulate_hooks(const std::shared_ptr<TensorImpl>& leaf);

}  // namespace mg
