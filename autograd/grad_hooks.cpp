#include "autograd/grad_hooks.h"

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace mg {

namespace {

struct Entry {
  uint64_t id;
  std::weak_ptr<TensorImpl> leaf;  // tells a live leaf from a new tensor at the same address
  PostAccumulateHook hook;
};

struct Registry {
  std::mutex mu;
  std::unordered_map<const TensorImpl*, std::vector<Entry>> by_leaf;
  std::atomic<size_t> count{0};
  uint64_t next_id = 1;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

PostAccumulateHookHandle& PostAccumulateHookHandle::operator=(PostAccumulateHookHandle&& o) noexcept {
  if (this != &o) {
    remove();
    id_ = o.id_;
    o.id_ = 0;
  }
  return *this;
}

void PostAccumulateHookHandle::remove() {
  if (id_ == 0) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (auto it = r.by_leaf.begin(); it != r.by_leaf.end(); ++it) {
    auto& v = it->second;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].id != id_) continue;
      v.erase(v.begin() + long(i));
      if (v.empty()) r.by_leaf.erase(it);
      r.count.fetch_sub(1);
      id_ = 0;
      return;
    }
  }
  id_ = 0;
}

PostAccumulateHookHandle add_post_accumulate_hook(const Tensor& leaf, PostAccumulateHook hook) {
  MG_CHECK(leaf.defined() && leaf.is_leaf() && leaf.requires_grad(),
           "add_post_accumulate_hook: expects a leaf tensor that requires grad");
  MG_CHECK(hook != nullptr, "add_post_accumulate_hook: empty hook");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  const uint64_t id = r.next_id++;
  r.by_leaf[leaf.impl()].push_back(Entry{id, leaf.impl_ptr(), std::move(hook)});
  r.count.fetch_add(1);
  return PostAccumulateHookHandle(id);
}

void run_post_accumulate_hooks(const std::shared_ptr<TensorImpl>& leaf) {
  Registry& r = registry();
  if (r.count.load(std::memory_order_relaxed) == 0) return;
  std::vector<PostAccumulateHook> run;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.by_leaf.find(leaf.get());
    if (it == r.by_leaf.end()) return;
    for (const Entry& e : it->second)
      if (e.leaf.lock() == leaf) run.push_back(e.hook);
  }
  // Outside the lock: a hook may add or remove hooks.
  const Tensor t(leaf);
  for (auto& h : run) h(t);
}

}  // namespace mg
