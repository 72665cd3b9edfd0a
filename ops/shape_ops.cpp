#include "ops/shape_ops.h"

#include "ops/common.h"

namespace mg {
using namespace detail;

Tensor cat(const std::vector<Tensor>& ts, int64_t dim) {
  OpScope op_scope;
  MG_CHECK(!ts.empty(), "cat: no tensors given");
  const Tensor& first = ts[0];
  int d = normalize_dim(dim, first.dim(), "cat");
  Shape s = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    check_same("cat", first, ts[i]);
    MG_CHECK(ts[i].dim() == first.dim(), "cat: tensor ", i, " is ", ts[i].desc(), ", tensor 0 is ", first.desc());
    for (int64_t k = 0; k < first.dim(); ++k)
      MG_CHECK(k == d || ts[i].shape()[size_t(k)] == s[size_t(k)], "cat: tensor ", i, " ", ts[i].desc(),
               " differs from tensor 0 ", first.desc(), " in dim ", k);
    total += ts[i].shape()[size_t(d)];
  }
  s[size_t(d)] = total;
  Tensor out = empty_as(s, first);
  std::vector<int64_t> sizes;
  int64_t at = 0;
  for (const Tensor& t : ts) {
    int64_t n = t.shape()[size_t(d)];
    sizes.push_back(n);
    Shape st = out.strides();
    Shape sh = out.shape();
    sh[size_t(d)] = n;
    Tensor win = make_view(out, sh, st, out.offset() + at * st[size_t(d)]);
    if (win.numel()) be(t).copy(t, win);
    at += n;
  }
  return record("cat", out, ts, [sizes, d](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> gs;
    int64_t at = 0;
    for (int64_t n : sizes) {
      gs.push_back(g.narrow(d, at, n));
      at += n;
    }
    return gs;
  });
}

Tensor stack(const std::vector<Tensor>& ts, int64_t dim) {
  OpScope op_scope;
  MG_CHECK(!ts.empty(), "stack: no tensors given");
  int d = normalize_dim(dim, ts[0].dim() + 1, "stack");
  std::vector<Tensor> us;
  for (size_t i = 0; i < ts.size(); ++i) {
    MG_CHECK(ts[i].shape() == ts[0].shape(), "stack: tensor ", i, " is ", ts[i].desc(), ", tensor 0 is ",
             ts[0].desc());
    us.push_back(ts[i].unsqueeze(d));
  }
  return cat(us, d);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  OpScope op_scope;
  MG_CHECK(index.dtype() == DType::i32 && index.dim() == 1, "index_select: index must be a 1-D i32 tensor, got ",
           index.desc());
  MG_CHECK(index.device() == x.device(), "index_select: index on ", index.device().str(), ", input ", x.desc());
  int d = normalize_dim(dim, x.dim(), "index_select");
  Tensor xc = contiguous_raw(x), ic = contiguous_raw(index);
  Shape s = x.shape();
  s[size_t(d)] = index.numel();
  Tensor out = empty_as(s, x);
  if (out.numel()) be(x).index_select(xc, d, ic, out);
  Shape xs = x.shape();
  return record("index_select", out, {x}, [xs, d, ic](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = zeros(xs, opts_of(g));
    if (g.numel()) be(g).index_add(gx, d, ic, contiguous_raw(g));
    return {gx};
  });
}

}  // namespace mg
