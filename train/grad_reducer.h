#pragma once
// The gradient all-reduce of a data-parallel step in the default (non-deterministic) mode,
// overlapped with the backward pass (docs/distributed.md, "Overlap with backward").
//
// The parameters are split into buckets, filled from the last parameter back, because backward
// reaches the last layers first: a first bucket of at most 1 MiB, then buckets of at most
// `bucket_bytes` (PyTorch DDP's scheme). While armed, a post-accumulate hook on every parameter
// (autograd/grad_hooks.h) notes its gradient as final; when every parameter of a bucket is, the
// bucket's sum over ranks starts without blocking (MPI_Iallreduce on a host copy, or NCCL in
// place on the GPU) while backward computes the earlier layers. Buckets start in index order,
// the same on every rank, whatever order their gradients complete in.
//
// Every rank must construct it with the same parameters and make the same calls.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "autograd/grad_hooks.h"
#include "core/device_collectives.h"
#include "core/tensor.h"
#include "train/communicator.h"

namespace mg {

class GradReducer {
 public:
  // `device_comm`: NCCL (or another device library) for gradients on its device, or null to sum
  // host copies through `comm`. `overlap` false starts every bucket after backward instead.
  GradReducer(const std::vector<Tensor>& params, Communicator& comm, DeviceComm* device_comm, size_t bucket_bytes,
              bool overlap);
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Call just before the step's last backward pass (the last accumulation micro-step): the
  // gradients that pass finishes are final for the step.
  void arm();
  // Call after that backward: starts the buckets not yet started, waits for every sum, and
  // replaces each parameter's gradient by the sum over ranks times `scale`. A parameter without
  // a gradient here contributes zeros; it gets the sum if any rank had a gradient for it, and
  // keeps none if no rank had (one extra small sum per step counts them).
  void finish(double scale);

  size_t bucket_count() const { return buckets_.size(); }
  // Totals over all finish() calls: buckets started while backward ran, all buckets started,
  // and seconds spent in finish() waiting for sums to complete.
  int64_t started_during_backward() const { return early_; }
  int64_t started_total() const { return total_; }
  double wait_seconds() const { return wait_s_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    std::vector<float> host;     // host copies, reduced through MPI (unused with a DeviceComm)
    size_t ready = 0;
  };
  void on_ready(size_t i);
  void start(Bucket& b);

  std::vector<Tensor> params_;
  Communicator& comm_;
  DeviceComm* device_comm_;
  bool overlap_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_, offset_;  // per parameter: its bucket, its offset in b.host
  std::vector<bool> has_grad_;
  std::vector<PostAccumulateHookHandle> hooks_;
  size_t next_start_ = 0;  // buckets below this one have started
  bool armed_ = false;
  int64_t early_ = 0, total_ = 0;
  double wait_s_ = 0;
};

// The reduction without overlap, after backward (deterministic mode, or no reducer): replaces
// every parameter's gradient by its sum over the ranks of `comm` times `scale` (in f32). When
// deterministic the sum runs in rank order, ((g0 + g1) + g2) + ..., the order in which one
// process accumulates its micro-steps; otherwise in the library's order. As in finish(), a
// parameter some rank's loss reached takes part everywhere (zeros where this rank has no
// gradient, which then gets the sum), and one that no rank reached keeps no gradient.
void reduce_gradients(const std::vector<Tensor>& params, Communicator& comm, bool deterministic, double scale);

}  // namespace mg
