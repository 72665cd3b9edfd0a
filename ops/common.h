#pragma once
// Helpers shared by the op implementations (not part of the public API).
#include <string>

#include "autograd/instrument.h"
#include "autograd/node.h"
#include "core/backend.h"
#include "core/factories.h"

namespace mg::detail {

inline TensorOptions opts_of(const Tensor& t) { return TensorOptions{t.dtype(), t.device(), false}; }
inline Tensor empty_as(const Shape& shape, const Tensor& like) { return Tensor::empty(shape, opts_of(like)); }
inline Backend& be(const Tensor& t) { return backend_for(t.device()); }

// Throws naming `op` unless a and b agree in dtype and device.
void check_same(const char* op, const Tensor& a, const Tensor& b);
void check_floating(const char* op, const Tensor& t);
// Broadcast view (stride 0 on expanded dims) without autograd.
Tensor broadcast_to_raw(const Tensor& t, const Shape& shape);
// Contiguous copy (or t itself when already contiguous) without autograd.
Tensor contiguous_raw(const Tensor& t);
// Sums g down to `shape` (undoing NumPy broadcasting); differentiable.
Tensor sum_to(const Tensor& g, const Shape& shape);
// A gradient summed down to `shape` and returned as `dtype`. A bf16 g is summed in f32 (there are
// no bf16 reductions; over leading dims, a bf16 GEMM with a ones row) and rounded once at the
// end; other dtypes sum in their own.
Tensor grad_sum_to(const Tensor& g, const Shape& shape, DType dtype);
// out[j] = sum over i of x[i, j], x contiguous seen as [rows, n] (out.numel() == n), as one GEMM
// with a ones row: x is read once in its own layout. out has x's dtype, or f32 for a bf16 x (every
// product 1 * x is exact, the sum runs in f32). No autograd.
void sum_rows_as_gemm(const Tensor& x, int64_t rows, const Tensor& out);
// x (contiguous) seen as [rows, n] over its last dim (a 0-d tensor as [1, 1]), without autograd.
Tensor as_rows(const Tensor& x);
// "[i, j, ...]": the multi-index of flat element `flat` of a tensor of shape `s`, for messages.
std::string index_str(int64_t flat, const Shape& s);

}  // namespace mg::detail
