#include "ops/reduce.h"

#include <algorithm>

#include "ops/common.h"
#include "ops/elementwise.h"

namespace mg {
using namespace detail;

namespace {

struct ReducePlan {
  std::vector<bool> reduced;  // per dim
  Shape keep_shape;           // x's shape with reduced dims set to 1
  Shape out_shape;            // keep_shape, or without the reduced dims
  int64_t count = 1;          // elements per output
};

ReducePlan plan(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  ReducePlan p;
  const int64_t nd = x.dim();
  p.reduced.assign(size_t(nd), dims.empty());
  for (int64_t d : dims) {
    int nd_ = normalize_dim(d, nd, op);
    MG_CHECK(!p.reduced[size_t(nd_)], op, ": dim ", d, " listed twice");
    p.reduced[size_t(nd_)] = true;
  }
  for (int64_t i = 0; i < nd; ++i) {
    bool r = p.reduced[size_t(i)];
    p.keep_shape.push_back(r ? 1 : x.shape()[size_t(i)]);
    if (r) p.count *= x.shape()[size_t(i)];
    if (!r || keepdim) p.out_shape.push_back(r ? 1 : x.shape()[size_t(i)]);
  }
  return p;
}

// Sum over leading dims of a contiguous tensor (bias gradients: [rows, out] -> [out]) as a
// ones-vector GEMM, which reads x once in its own layout instead of transposing a copy.
bool sum_leading_as_gemm(const Tensor& x, const ReducePlan& p, const Tensor& out) {
  if (!x.is_contiguous() || (x.dtype() != DType::f32 && x.dtype() != DType::f64)) return false;
  size_t lead = 0;
  while (lead < p.reduced.size() && p.reduced[lead]) ++lead;
  for (size_t i = lead; i < p.reduced.size(); ++i)
    if (p.reduced[i]) return false;
  if (lead == 0 || lead == p.reduced.size()) return false;
  sum_rows_as_gemm(x, p.count, out);
  return true;
}

// Moves the reduced dims last, makes the result contiguous and reduces each row.
Tensor reduce_raw(ReduceOp op, const char* name, const Tensor& x, const ReducePlan& p) {
  OpScope op_scope;
  check_floating(name, x);
  if (op == ReduceOp::sum && p.count > 0 && x.numel() > 0) {
    Tensor out = empty_as(p.out_shape, x);
    if (sum_leading_as_gemm(x, p, out)) return out;
  }
  std::vector<int64_t> perm;
  for (size_t i = 0; i < p.reduced.size(); ++i)
    if (!p.reduced[i]) perm.push_back(int64_t(i));
  for (size_t i = 0; i < p.reduced.size(); ++i)
    if (p.reduced[i]) perm.push_back(int64_t(i));
  Shape ps, pst;
  for (int64_t d : perm) {
    ps.push_back(x.shape()[size_t(d)]);
    pst.push_back(x.strides()[size_t(d)]);
  }
  Tensor xp = contiguous_raw(make_view(x, ps, pst, x.offset()));
  Tensor out = empty_as(p.out_shape, x);
  if (out.numel() == 0) return out;
  MG_CHECK(p.count > 0 || op == ReduceOp::sum, name, ": cannot reduce over an empty dim of ", x.desc());
  if (p.count == 0) {
    be(x).fill(out, 0.0);
    return out;
  }
  be(x).reduce_rows(op, xp, out);
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  OpScope op_scope;
  ReducePlan p = plan("sum", x, dims, keepdim);
  Tensor out = reduce_raw(ReduceOp::sum, "sum", x, p);
  Shape xs = x.shape(), ks = p.keep_shape;
  return record("sum", out, {x}, [xs, ks](const Tensor& g) -> std::vector<Tensor> {
    return {g.reshape(ks).expand(xs)};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  OpScope op_scope;
  ReducePlan p = plan("mean", x, dims, keepdim);
  MG_CHECK(p.count > 0, "mean: reducing over an empty dim of ", x.desc());
  return div(sum(x, dims, keepdim), double(p.count));
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  OpScope op_scope;
  ReducePlan p = plan("max", x, dims, keepdim);
  Tensor out = reduce_raw(ReduceOp::max, "max", x, p);
  Tensor sx = x.detach(), so = out.detach();
  Shape ks = p.keep_shape;
  std::vector<int64_t> d = dims;
  return record("max", out, {x}, [sx, so, ks, d](const Tensor& g) -> std::vector<Tensor> {
    Tensor mask = eq(sx, so.reshape(ks));
    Tensor count = sum(mask, d, true);
    return {mul(div(g.reshape(ks), count), mask)};
  });
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  OpScope op_scope;
  ReducePlan p = plan("var", x, dims, keepdim);
  MG_CHECK(p.count - correction > 0, "var: ", p.count, " elements per output with correction ", correction,
           " leave no degrees of freedom");
  Tensor d = sub(x, mean(x, dims, true));
  return div(sum(mul(d, d), dims, keepdim), double(p.count - correction));
}

}  // namespace mg
