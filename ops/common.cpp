#include "ops/common.h"

#include <algorithm>

#include "core/factories.h"
#include "ops/autocast_policy.h"
#include "ops/reduce.h"

namespace mg::detail {

void check_same(const char* op, const Tensor& a, const Tensor& b) {
  MG_CHECK(a.defined() && b.defined(), op, ": undefined tensor argument");
  MG_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.desc(), " vs ", b.desc());
  MG_CHECK(a.device() == b.device(), op, ": device mismatch: ", a.desc(), " vs ", b.desc());
}

void check_floating(const char* op, const Tensor& t) {
  MG_CHECK(t.defined(), op, ": undefined tensor argument");
  MG_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::bf16, op,
           ": expected a floating tensor, got ", t.desc());
}

Tensor broadcast_to_raw(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  const size_t n = shape.size(), k = t.shape().size();
  Shape st(n, 0);
  for (size_t i = 0; i < k; ++i) {
    size_t j = n - k + i;
    st[j] = t.shape()[i] == 1 && shape[j] != 1 ? 0 : t.strides()[i];
  }
  return make_view(t, shape, st, t.offset());
}

Tensor contiguous_raw(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = empty_as(t.shape(), t);
  if (out.numel()) be(t).copy(t, out);
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const size_t n = g.shape().size(), k = shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < n; ++i) {
    if (i < n - k) dims.push_back(int64_t(i));
    else if (shape[i - (n - k)] == 1 && g.shape()[i] != 1) dims.push_back(int64_t(i));
  }
  Tensor r = dims.empty() ? g : sum(g, dims, true);
  return r.reshape(shape);
}

Tensor grad_sum_to(const Tensor& g, const Shape& shape, DType dtype) {
  if (g.dtype() != DType::bf16 || g.shape() == shape) return cast_raw(sum_to(g, shape), dtype);
  // A contiguous bf16 g summed over its leading dims (a bias gradient: [rows, n] -> [n]) is a
  // ones-row bf16 GEMM: every product 1 * g is exact and the sum runs in f32, as for a widened
  // copy, without writing that f32 copy of g (twice g's size) and reading it back.
  const size_t k = shape.size();
  const bool trailing = k <= g.shape().size() && std::equal(shape.begin(), shape.end(), g.shape().end() - ptrdiff_t(k));
  if (trailing && g.is_contiguous() && g.numel() > 0) {
    Tensor out = Tensor::empty(shape, TensorOptions{DType::f32, g.device(), false});
    sum_rows_as_gemm(g, g.numel() / numel(shape), out);
    return cast_raw(out, dtype);
  }
  return cast_raw(sum_to(cast_raw(g, DType::f32), shape), dtype);
}

void sum_rows_as_gemm(const Tensor& x, int64_t rows, const Tensor& out) {
  const int64_t n = out.numel();
  const Tensor ones = full({1, rows}, 1.0, TensorOptions{x.dtype(), x.device(), false});
  backend_for(x.device()).gemm({.dtype = x.dtype(), .M = 1, .N = n, .K = rows, .A = ones.raw_data(), .lda = rows,
                                .B = x.raw_data(), .ldb = n, .C = out.raw_data(), .ldc = n});
}

Tensor as_rows(const Tensor& x) {
  const int64_t n = x.dim() ? x.shape().back() : 1, rows = n ? x.numel() / n : 0;
  return make_view(x, {rows, n}, {n, 1}, x.offset());
}

std::string index_str(int64_t flat, const Shape& s) {
  Shape idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return shape_str(idx);
}

}  // namespace mg::detail
