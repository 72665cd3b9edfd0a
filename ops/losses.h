#pragma once
// Reconstruction and retrieval losses, and the normalisations they are built from. All are
// differentiable in every floating input (targets included) and accept any layout.
#include <cstdint>

#include "core/tensor.h"
#include "ops/reduction.h"

namespace mg {

// |input - target| and (input - target)^2, elementwise, then reduced (none keeps the shape).
// input and target must have the same shape, dtype and device: unlike torch, which broadcasts
// with a warning, a shape mismatch here is an error, since it is almost always a bug.
// The gradient of |d| at d = 0 is 0, as in torch.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::mean);

// x / max(||x||_2, eps) along dim (torch.nn.functional.normalize with p = 2). Where the norm is
// below eps the vector is divided by eps, and its gradient is that of x / eps (torch's clamp_min).
Tensor l2_normalize(const Tensor& x, int64_t dim = -1, double eps = 1e-12);

// torch.nn.functional.cosine_similarity (torch >= 1.12): a and b broadcast to a common shape,
// then sum(a / max(||a||, eps) * b / max(||b||, eps)) along dim (dim removed). Each norm is
// clamped separately, so the result stays in [-1, 1]. Gradients are the exact derivatives of
// that value; they equal torch's except inside the clamp (||a|| < eps), where torch's in-place
// no-grad clamp makes its gradient differ from the derivative of its own output.
Tensor cosine_similarity(const Tensor& a, const Tensor& b, int64_t dim = -1, double eps = 1e-8);

// InfoNCE with in-batch negatives: queries [N, D] and docs [N, D], doc i the positive of query i.
// S = l2_normalize(q) @ l2_normalize(d)^T / temperature  [N, N];
// loss = mean_i (logsumexp(S[i]) - S[i, i]).
Tensor info_nce_loss(const Tensor& queries, const Tensor& docs, double temperature = 0.02);

// The paper's grouped InfoNCE (docs/paper.md E.3): query g [G, D] against its own candidates
// [G, C, D], candidate 0 the positive and the others its negatives.
// S[g, c] = cos(q_g, cand_{g,c}) / temperature;  loss = mean_g (logsumexp(S[g]) - S[g, 0]).
Tensor info_nce_loss_grouped(const Tensor& queries, const Tensor& candidates, double temperature = 0.02);

}  // namespace mg
