#include "train/grad_reducer.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/backend.h"
#include "core/factories.h"
#include "ops/inplace.h"

namespace mg {

namespace {
// DDP's first bucket: small, so the first sum starts after only the last layers' backward.
constexpr size_t kFirstBucketBytes = size_t(1) << 20;

bool host_f32_contiguous(const Tensor& t) {
  return t.device().is_cpu() && t.dtype() == DType::f32 && t.is_contiguous();
}

// 1 for each parameter this rank's backward reached (it has a gradient), else 0: summed over the
// ranks, the count of ranks that reached it.
std::vector<float> reached_here(const std::vector<Tensor>& params) {
  std::vector<float> used(params.size());
  for (size_t i = 0; i < params.size(); ++i) used[i] = params[i].grad().defined() ? 1.0f : 0.0f;
  return used;
}
}  // namespace

GradReducer::GradReducer(const std::vector<Tensor>& params, Communicator& comm, DeviceComm* device_comm,
                         size_t bucket_bytes, bool overlap)
    : params_(params), comm_(comm), device_comm_(device_comm), overlap_(overlap) {
  MG_CHECK(bucket_bytes > 0, "gradient reducer: bucket size must be positive");
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  offset_.assign(n, 0);
  has_grad_.assign(n, false);
  size_t cap = std::min(kFirstBucketBytes, bucket_bytes), bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const size_t b = size_t(params_[k].numel()) * sizeof(float);  // gradients are reduced as f32
    if (buckets_.empty() || (bytes > 0 && bytes + b > cap)) {
      if (!buckets_.empty()) cap = bucket_bytes;
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& bk = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    offset_[k] = bytes / sizeof(float);
    bk.params.push_back(k);
    bytes += b;
    if (!device_comm_) bk.host.resize(bytes / sizeof(float));
  }
  if (overlap_) {
    hooks_.reserve(n);
    for (size_t k = 0; k < n; ++k)
      if (params_[k].requires_grad())
        hooks_.push_back(add_post_accumulate_hook(params_[k], [this, k](const Tensor&) { on_ready(k); }));
  }
}

void GradReducer::arm() {
  for (Bucket& b : buckets_) b.ready = 0;
  std::fill(has_grad_.begin(), has_grad_.end(), false);
  next_start_ = 0;
  armed_ = overlap_;
}

void GradReducer::on_ready(size_t i) {
  if (!armed_) return;  // an earlier accumulation micro-step, or a backward outside training
  MG_CHECK(!has_grad_[i], "gradient reducer: backward reached parameter ", i, " twice in one pass");
  has_grad_[i] = true;
  Bucket& b = buckets_[bucket_of_[i]];
  if (!device_comm_) {
    const Tensor g = params_[i].grad();
    const Tensor h = host_f32_contiguous(g) ? g : g.to(kCPU).to(DType::f32).contiguous();
    std::memcpy(b.host.data() + offset_[i], h.data_ptr<float>(), size_t(h.numel()) * sizeof(float));
  }
  ++b.ready;
  // In index order only: every rank must start the same sums in the same order.
  while (next_start_ < buckets_.size() && buckets_[next_start_].ready == buckets_[next_start_].params.size()) {
    start(buckets_[next_start_++]);
    ++early_;
  }
  comm_.progress();
}

void GradReducer::start(Bucket& b) {
  ++total_;
  if (device_comm_) {
    // Every rank passes every parameter of the bucket, so the collectives match even where ranks
    // differ in which parameters the loss reached: a missing gradient is summed as zeros, in a
    // zero gradient that finish() keeps only if some rank had one.
    std::vector<Tensor> grads;
    for (size_t i : b.params) {
      Tensor g = params_[i].grad();
      if (!g.defined()) {
        g = zeros_like(params_[i]);
        params_[i].set_grad(g);
      }
      grads.push_back(g);
    }
    device_comm_->start_allreduce_sum(grads);
  } else {
    comm_.start_allreduce_sum(b.host.data(), b.host.size());
  }
}

void GradReducer::finish(double scale) {
  armed_ = false;
  // Which parameters this pass reached here, before start() gives the missing ones zeros.
  std::vector<float> used = reached_here(params_);
  // Without overlap (or for parameters the pass did not reach) the copies are taken now.
  for (; next_start_ < buckets_.size(); ++next_start_) {
    Bucket& b = buckets_[next_start_];
    if (!device_comm_) {
      for (size_t i : b.params) {
        if (has_grad_[i]) continue;
        const Tensor g = params_[i].grad();
        float* dst = b.host.data() + offset_[i];
        const size_t n = size_t(params_[i].numel());
        if (!g.defined()) {
          std::fill(dst, dst + n, 0.0f);
          continue;
        }
        const Tensor h = host_f32_contiguous(g) ? g : g.to(kCPU).to(DType::f32).contiguous();
        std::memcpy(dst, h.data_ptr<float>(), n * sizeof(float));
      }
    }
    start(b);
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (device_comm_) device_comm_->wait_all();
  else comm_.wait_all();
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // A parameter reached on some ranks but not here gets the sum too, so every replica takes the
  // same step (PyTorch DDP's rule); one no rank reached keeps no gradient. Counting the ranks that
  // reached each parameter takes one small sum more per step.
  comm_.allreduce_sum(used.data(), used.size());
  const float s = float(scale);
  for (size_t i = 0; i < params_.size(); ++i) {
    if (used[i] == 0.0f) {
      if (device_comm_) params_[i].zero_grad();  // the zeros start() summed for it
      continue;
    }
    Tensor g = params_[i].grad();
    if (!g.defined() && !device_comm_) {
      g = zeros_like(params_[i]);
      params_[i].set_grad(g);
    }
    if (device_comm_) {
      backend_for(g.device()).unary(UnaryOp::mul_scalar, g, g, double(s));
      continue;
    }
    const float* src = buckets_[bucket_of_[i]].host.data() + offset_[i];
    const size_t n = size_t(g.numel());
    if (host_f32_contiguous(g)) {
      float* dst = g.data_ptr<float>();
      for (size_t k = 0; k < n; ++k) dst[k] = src[k] * s;
    } else {
      std::vector<float> v(src, src + n);
      for (float& x : v) x *= s;
      assign_(g, from_vector(v, g.shape()).to(g.device()).to(g.dtype()));
    }
  }
}

void reduce_gradients(const std::vector<Tensor>& params, Communicator& w, bool deterministic, double scale) {
  // Which parameters some rank's loss reached: those take part (zeros where this rank has no
  // gradient, which then gets the sum, as in PyTorch DDP), so every rank sends the same layout
  // even when ranks differ in the parameters they reached; the rest keep no gradient.
  std::vector<float> used = reached_here(params);
  if (w.size() > 1) w.allreduce_sum(used.data(), used.size());
  std::vector<float> flat;
  std::vector<std::pair<size_t, size_t>> spans(params.size(), {0, 0});
  for (size_t i = 0; i < params.size(); ++i) {
    if (used[i] == 0.0f) continue;
    Tensor g = params[i].grad();
    std::vector<float> v = g.defined() ? g.to(kCPU).to(DType::f32).contiguous().to_vector<float>()
                                       : std::vector<float>(size_t(params[i].numel()), 0.0f);
    spans[i] = {flat.size(), v.size()};
    flat.insert(flat.end(), v.begin(), v.end());
  }
  if (w.size() > 1) {
    if (deterministic) {
      // ((g0 + g1) + g2) + ...: the order in which one process accumulates its micro-steps.
      std::vector<float> all(flat.size() * size_t(w.size()));
      w.allgather(flat.data(), flat.size(), all.data());
      std::copy(all.begin(), all.begin() + long(flat.size()), flat.begin());
      for (int r = 1; r < w.size(); ++r) {
        const float* src = all.data() + size_t(r) * flat.size();
        for (size_t k = 0; k < flat.size(); ++k) flat[k] += src[k];
      }
    } else {
      w.allreduce_sum(flat.data(), flat.size());
    }
  }
  const float inv = float(scale);
  for (float& x : flat) x *= inv;
  for (size_t i = 0; i < params.size(); ++i) {
    if (used[i] == 0.0f) continue;
    Tensor g = params[i].grad();
    if (!g.defined()) {
      g = zeros_like(params[i]);
      Tensor(params[i]).set_grad(g);  // a copy is a handle on the same parameter
    }
    std::vector<float> v(flat.begin() + long(spans[i].first), flat.begin() + long(spans[i].first + spans[i].second));
    assign_(g, from_vector(v, g.shape()).to(g.device()));
  }
}

}  // namespace mg
