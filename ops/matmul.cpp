#include "ops/matmul.h"

#include "ops/autocast_policy.h"
#include "ops/common.h"

namespace mg {
using namespace detail;

namespace {

// One operand as the GEMM wants it: a row-major matrix (or its transpose) per batch entry,
// batch entries a fixed stride apart (0 = the same matrix for every entry).
struct GemmOperand {
  Tensor t;  // keeps the memory alive
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

bool batch_collapsible(const Tensor& x, int64_t& stride) {
  const int64_t nb = x.dim() - 2;
  bool all_zero = true;
  for (int64_t d = 0; d < nb; ++d) all_zero = all_zero && (x.strides()[size_t(d)] == 0 || x.shape()[size_t(d)] == 1);
  if (all_zero) {
    stride = 0;
    return true;
  }
  int64_t expect = -1;
  for (int64_t d = nb - 1; d >= 0; --d) {
    if (x.shape()[size_t(d)] == 1) continue;
    if (expect >= 0 && x.strides()[size_t(d)] != expect) return false;
    if (expect < 0) stride = x.strides()[size_t(d)];
    if (x.strides()[size_t(d)] == 0) return false;
    expect = x.strides()[size_t(d)] * x.shape()[size_t(d)];
  }
  return true;
}

GemmOperand as_operand(const Tensor& x) {
  const int64_t nd = x.dim();
  const int64_t R = x.shape()[size_t(nd - 2)], C = x.shape()[size_t(nd - 1)];
  const int64_t sr = x.strides()[size_t(nd - 2)], sc = x.strides()[size_t(nd - 1)];
  GemmOperand op;
  op.t = x;
  int64_t bs = 0;
  if (batch_collapsible(x, bs)) {
    if ((sc == 1 || C == 1) && (sr >= std::max<int64_t>(C, 1) || R == 1)) {
      op.ld = R == 1 ? std::max<int64_t>(C, 1) : sr;
      op.batch_stride = bs;
      return op;
    }
    if ((sr == 1 || R == 1) && (sc >= std::max<int64_t>(R, 1) || C == 1)) {
      op.trans = true;
      op.ld = C == 1 ? std::max<int64_t>(R, 1) : sc;
      op.batch_stride = bs;
      return op;
    }
  }
  op.t = contiguous_raw(x);
  op.ld = std::max<int64_t>(C, 1);
  op.batch_stride = R * C;
  return op;
}

// bias: undefined, or [N] added along the last dim in the GEMM's epilogue (C's dtype: f32 for
// bf16 operands, so the bias is added before the one rounding).
Tensor matmul_nd(const Tensor& a, const Tensor& b, const Tensor& bias = Tensor()) {
  OpScope op_scope;
  const int64_t M = a.shape()[size_t(a.dim() - 2)], K = a.shape()[size_t(a.dim() - 1)];
  const int64_t K2 = b.shape()[size_t(b.dim() - 2)], N = b.shape()[size_t(b.dim() - 1)];
  MG_CHECK(K == K2, "matmul: inner dims differ: ", a.desc(), " x ", b.desc(), " (", K, " vs ", K2, ")");
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul (batch dims)");
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {M, K});
  sb.insert(sb.end(), {K, N});
  so.insert(so.end(), {M, N});
  Tensor out = empty_as(so, a);
  if (out.numel() == 0) return out;
  const bool low = a.dtype() == DType::bf16;
  if (K == 0) {  // no GEMM: zeros, plus the bias
    Tensor r = low ? Tensor::empty(so, TensorOptions{DType::f32, a.device(), false}) : out;
    be(a).fill(r, 0.0);
    if (bias.defined()) be(a).binary(BinaryOp::add, r, broadcast_to_raw(bias, so), r);
    if (low) be(a).copy(r, out);
    return out;
  }
  // bf16 operands: the GEMM accumulates in f32 and rounds to bf16 once, tile by tile in its
  // epilogue (D); no f32 result is asked for (C null), so none need exist in memory.
  GemmOperand A = as_operand(broadcast_to_raw(a, sa)), B = as_operand(broadcast_to_raw(b, sb));
  GemmArgs g{.dtype = a.dtype(), .trans_a = A.trans, .trans_b = B.trans, .M = M, .N = N, .K = K,
             .A = A.t.raw_data(), .lda = A.ld, .stride_a = A.batch_stride,
             .B = B.t.raw_data(), .ldb = B.ld, .stride_b = B.batch_stride,
             .C = low ? nullptr : out.raw_data(), .ldc = N, .stride_c = M * N, .batch = numel(batch)};
  Tensor bias_c = bias.defined() ? contiguous_raw(bias) : Tensor();
  if (bias_c.defined()) g.bias = bias_c.raw_data();
  if (low) {
    g.D = out.raw_data();
    g.ldd = N;
    g.stride_d = M * N;
  }
  be(a).gemm(g);
  return out;
}

// A matmul operand's gradient, summed over the batch dims it was broadcast along.
Tensor reduce_to(const Tensor& g, const Shape& shape) {
  OpScope op_scope;
  return grad_sum_to(g, shape, g.dtype());
}

// b is a transposed contiguous matrix: w.t() of a contiguous w (every Linear's weight).
bool transposed_matrix(const Tensor& b) {
  return b.dim() == 2 && b.size(0) > 1 && b.size(1) > 1 && b.strides()[0] == 1 && b.strides()[1] == b.size(0);
}

// The gradient of b in a = [M, K] x b = [K, N]: a^T g. When b is w.t() it is computed as (g^T a)^T,
// so that it has w's layout: the transpose's backward then hands on a contiguous gradient, which
// AccumulateGrad takes as it is (or, under autocast, the cast widens densely) instead of copying a
// strided one element by element.
Tensor grad_of_b(const Tensor& sa, const Tensor& g, const Shape& shb, bool b_transposed) {
  if (b_transposed && sa.dim() == 2 && g.dim() == 2) return matmul(g.transpose(0, 1), sa).transpose(0, 1);
  return reduce_to(matmul(sa.transpose(-1, -2), g), shb);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  OpScope op_scope;
  if (autocast_lowers(a, b)) return matmul(autocast_lower(a), autocast_lower(b));
  check_same("matmul", a, b);
  MG_CHECK(a.dtype() == DType::f32 || a.dtype() == DType::f64 || a.dtype() == DType::bf16,
           "matmul: f32, f64 or bf16 expected, got ", a.desc());
  MG_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dim, got ", a.desc(), " x ", b.desc());
  if (a.dim() == 1 || b.dim() == 1) {
    Tensor r = matmul(a.dim() == 1 ? a.unsqueeze(0) : a, b.dim() == 1 ? b.unsqueeze(-1) : b);
    if (b.dim() == 1) r = r.squeeze(-1);
    if (a.dim() == 1) r = r.squeeze(-1 - (b.dim() == 1 ? 0 : 1));
    return r;
  }
  Tensor out = matmul_nd(a, b);
  const bool need_a = needs_grad(a), need_b = needs_grad(b);
  Tensor sa = need_b ? a.detach() : Tensor(), sb = need_a ? b.detach() : Tensor();
  Shape sha = a.shape(), shb = b.shape();
  const bool bt = transposed_matrix(b);
  return record("matmul", out, {a, b}, [sa, sb, sha, shb, bt](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga = sb.defined() ? reduce_to(matmul(g, sb.transpose(-1, -2)), sha) : Tensor();
    Tensor gb = sa.defined() ? grad_of_b(sa, g, shb, bt) : Tensor();
    return {ga, gb};
  });
}

Tensor matmul_bias(const Tensor& a, const Tensor& b, const Tensor& bias) {
  OpScope op_scope;
  if (!bias.defined()) return matmul(a, b);
  if (autocast_lowers(a, b)) return matmul_bias(autocast_lower(a), autocast_lower(b), bias);
  check_same("matmul_bias", a, b);
  MG_CHECK(a.dtype() == DType::f32 || a.dtype() == DType::f64 || a.dtype() == DType::bf16,
           "matmul_bias: f32, f64 or bf16 expected, got ", a.desc());
  MG_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul_bias: both operands need at least 2 dims, got ", a.desc(), " x ",
           b.desc());
  // The bias is added in the GEMM's result type: f32 for bf16 operands (as a master-weight bias
  // under autocast), the operands' own dtype otherwise.
  const DType acc_dtype = a.dtype() == DType::bf16 ? DType::f32 : a.dtype();
  MG_CHECK(bias.dtype() == acc_dtype && bias.device() == a.device(), "matmul_bias: bias must be ", dtype_name(acc_dtype),
           " on ", a.device().str(), " for ", a.desc(), ", got ", bias.desc());
  MG_CHECK(bias.dim() == 1 && bias.size(0) == b.size(-1), "matmul_bias: bias must be [", b.size(-1),
           "] (the product's last dim), got ", bias.desc());
  Tensor out = matmul_nd(a, b, bias.detach());
  const bool need_a = needs_grad(a), need_b = needs_grad(b), need_bias = needs_grad(bias);
  Tensor sa = need_b ? a.detach() : Tensor(), sb = need_a ? b.detach() : Tensor();
  Shape sha = a.shape(), shb = b.shape();
  const DType bias_dtype = bias.dtype();
  const int64_t n = bias.size(0);
  const bool bt = transposed_matrix(b);
  return record("matmul_bias", out, {a, b, bias},
                [sa, sb, sha, shb, need_bias, bias_dtype, n, bt](const Tensor& g) -> std::vector<Tensor> {
                  Tensor ga = sb.defined() ? reduce_to(matmul(g, sb.transpose(-1, -2)), sha) : Tensor();
                  Tensor gb = sa.defined() ? grad_of_b(sa, g, shb, bt) : Tensor();
                  Tensor gbias = need_bias ? grad_sum_to(g, Shape{n}, bias_dtype) : Tensor();
                  return {ga, gb, gbias};
                });
}

}  // namespace mg
