// Tensor's differentiable view and conversion methods. Views share storage with their base;
// each records a node whose backward maps the gradient back to the base's geometry.
#include <numeric>

#include "ops/common.h"
#include "ops/elementwise.h"

namespace mg {
using namespace detail;

namespace {

Shape infer_shape(const Shape& req, int64_t n, const char* op, const Tensor& x) {
  Shape s = req;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      MG_CHECK(infer < 0, op, ": only one dim may be -1 in ", shape_str(req));
      infer = int(i);
    } else {
      MG_CHECK(s[i] >= 0, op, ": invalid size ", s[i], " in ", shape_str(req));
      known = checked_mul(known, s[i], req, op);
    }
  }
  if (infer >= 0) {
    MG_CHECK(known != 0 && n % known == 0, op, ": shape ", shape_str(req), " is invalid for ", x.desc());
    s[size_t(infer)] = n / known;
  }
  MG_CHECK(numel(s) == n, op, ": shape ", shape_str(req), " is invalid for ", x.desc(), " (", n, " elements)");
  return s;
}

// Strides for viewing (shape, strides) as new_shape without copying, if possible (the
// algorithm of PyTorch's computeStride: split/merge only runs of contiguous dims).
bool view_strides(const Shape& shape, const Shape& strides, const Shape& ns, Shape& out) {
  out.assign(ns.size(), 0);
  if (numel(shape) <= 1) {
    out = contiguous_strides(ns);
    return true;
  }
  int64_t view_d = int64_t(ns.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = int64_t(shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= shape[size_t(td)];
    if (td == 0 || (shape[size_t(td - 1)] != 1 && strides[size_t(td - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || ns[size_t(view_d)] == 1)) {
        out[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= ns[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = strides[size_t(td - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Tensor reshape_backward_node(const char* name, Tensor out, const Tensor& x) {
  OpScope op_scope;
  Shape xs = x.shape();
  return record(name, out, {x}, [xs](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(xs)}; });
}

}  // namespace

Tensor Tensor::view(const Shape& req) const {
  OpScope op_scope;
  Shape s = infer_shape(req, numel(), "view", *this);
  Shape st;
  MG_CHECK(view_strides(shape(), strides(), s, st), "view: cannot view ", desc(), " with strides ",
           shape_str(strides()), " as ", shape_str(s), " without a copy; use reshape()");
  return reshape_backward_node("view", make_view(*this, s, st, offset()), *this);
}

Tensor Tensor::reshape(const Shape& req) const {
  OpScope op_scope;
  Shape s = infer_shape(req, numel(), "reshape", *this);
  Shape st;
  if (view_strides(shape(), strides(), s, st)) return reshape_backward_node("reshape", make_view(*this, s, st, offset()), *this);
  return contiguous().view(s);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  OpScope op_scope;
  if (dim() == 0) return reshape({1});
  int a = normalize_dim(start, dim(), "flatten"), b = normalize_dim(end, dim(), "flatten");
  MG_CHECK(a <= b, "flatten: start dim ", start, " after end dim ", end);
  Shape s(shape().begin(), shape().begin() + a);
  int64_t m = 1;
  for (int i = a; i <= b; ++i) m *= shape()[size_t(i)];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + b + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  OpScope op_scope;
  MG_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims given for ", desc());
  Shape s, st;
  std::vector<int64_t> inv(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int d = normalize_dim(dims[i], dim(), "permute");
    MG_CHECK(inv[size_t(d)] < 0, "permute: dim ", dims[i], " repeated");
    inv[size_t(d)] = int64_t(i);
    s.push_back(shape()[size_t(d)]);
    st.push_back(strides()[size_t(d)]);
  }
  return record("permute", make_view(*this, s, st, offset()), {*this},
                [inv](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inv)}; });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  OpScope op_scope;
  int a = normalize_dim(d0, dim(), "transpose"), b = normalize_dim(d1, dim(), "transpose");
  std::vector<int64_t> perm(static_cast<size_t>(dim()));
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[size_t(a)], perm[size_t(b)]);
  return permute(perm);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  OpScope op_scope;
  int dd = normalize_dim(d, dim(), "slice");
  MG_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape()[size_t(dd)];
  auto clampi = [n](int64_t v) { v = v < 0 ? v + n : v; return std::min(std::max<int64_t>(v, 0), n); };
  start = clampi(start);
  end = std::max(clampi(end), start);
  Shape s = shape(), st = strides();
  s[size_t(dd)] = (end - start + step - 1) / step;
  st[size_t(dd)] = strides()[size_t(dd)] * step;
  Tensor out = make_view(*this, s, st, offset() + start * strides()[size_t(dd)]);
  Shape xs = shape();
  return record("slice", out, {*this}, [xs, dd, start, end, step](const Tensor& g) -> std::vector<Tensor> {
    Tensor full = zeros(xs, opts_of(g));
    Tensor win = full.slice(dd, start, end, step);
    if (win.numel()) be(g).copy(g, win);
    return {full};
  });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  OpScope op_scope;
  int dd = normalize_dim(d, dim(), "narrow");
  const int64_t n = shape()[size_t(dd)];
  MG_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: [", start, ", ", start + length,
           ") out of range for dim ", d, " of ", desc());
  return slice(dd, start, start + length, 1);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  OpScope op_scope;
  int dd = normalize_dim(d, dim(), "select");
  const int64_t n = shape()[size_t(dd)];
  MG_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of ", desc());
  if (index < 0) index += n;
  return narrow(dd, index, 1).squeeze(dd);
}

Tensor Tensor::expand(const Shape& req) const {
  OpScope op_scope;
  MG_CHECK(req.size() >= shape().size(), "expand: cannot expand ", desc(), " to fewer dims ", shape_str(req));
  Shape s = req;
  const size_t lead = req.size() - shape().size();
  for (size_t i = 0; i < req.size(); ++i) {
    if (i < lead) {
      MG_CHECK(req[i] >= 0, "expand: new leading dim ", i, " must be given, got ", req[i]);
      continue;
    }
    int64_t have = shape()[i - lead];
    if (req[i] == -1) s[i] = have;
    MG_CHECK(s[i] >= 0, "expand: invalid size ", req[i], " at dim ", i, " in ", shape_str(req));
    MG_CHECK(have == s[i] || have == 1, "expand: cannot expand ", desc(), " to ", shape_str(req), " (dim ", i,
             ": ", have, " vs ", s[i], ")");
  }
  checked_numel(s, "expand");  // a broadcast view still needs a representable element count
  Tensor out = broadcast_to_raw(*this, s);
  if (out.same(*this)) out = make_view(*this, s, strides(), offset());
  Shape xs = shape();
  return record("expand", out, {*this}, [xs](const Tensor& g) -> std::vector<Tensor> { return {sum_to(g, xs)}; });
}

Tensor Tensor::squeeze(int64_t d) const {
  OpScope op_scope;
  int dd = normalize_dim(d, dim(), "squeeze");
  if (shape()[size_t(dd)] != 1) return reshape(shape());
  Shape s = shape(), st = strides();
  s.erase(s.begin() + dd);
  st.erase(st.begin() + dd);
  return reshape_backward_node("squeeze", make_view(*this, s, st, offset()), *this);
}

Tensor Tensor::squeeze() const {
  OpScope op_scope;
  Shape s, st;
  for (size_t i = 0; i < shape().size(); ++i)
    if (shape()[i] != 1) {
      s.push_back(shape()[i]);
      st.push_back(strides()[i]);
    }
  return reshape_backward_node("squeeze", make_view(*this, s, st, offset()), *this);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  OpScope op_scope;
  int dd = normalize_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape(), st = strides();
  int64_t stride = size_t(dd) < st.size() ? st[size_t(dd)] * s[size_t(dd)] : 1;
  s.insert(s.begin() + dd, 1);
  st.insert(st.begin() + dd, stride);
  return reshape_backward_node("unsqueeze", make_view(*this, s, st, offset()), *this);
}

Tensor Tensor::clone() const {
  OpScope op_scope;
  Tensor out = empty_as(shape(), *this);
  if (out.numel()) be(*this).copy(*this, out);
  return record("clone", out, {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

Tensor Tensor::contiguous() const {
  OpScope op_scope;
  if (is_contiguous()) return *this;
  Tensor out = contiguous_raw(*this);
  return record("contiguous", out, {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

Tensor Tensor::to(DType dt) const {
  OpScope op_scope;
  if (dt == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), TensorOptions{dt, device(), false});
  if (out.numel()) be(*this).copy(*this, out);
  if (!is_floating(dt)) return out;  // integer results carry no gradient
  DType from = dtype();
  return record("to_dtype", out, {*this}, [from](const Tensor& g) -> std::vector<Tensor> { return {g.to(from)}; });
}

Tensor Tensor::to(Device dev) const {
  OpScope op_scope;
  if (dev == device()) return *this;
  Tensor src = contiguous_raw(*this);
  Tensor out = Tensor::empty(shape(), TensorOptions{dtype(), dev, false});
  const size_t nbytes = size_t(numel()) * dtype_size(dtype());
  if (nbytes) {
    if (device().is_cpu()) {
      backend_for(dev).copy_from_host(out.raw_data(), src.raw_data(), nbytes);
    } else if (dev.is_cpu()) {
      backend_for(device()).copy_to_host(out.raw_data(), src.raw_data(), nbytes);
    } else {
      Tensor host = src.to(kCPU);
      backend_for(dev).copy_from_host(out.raw_data(), host.raw_data(), nbytes);
    }
  }
  Device from = device();
  return record("to_device", out, {*this}, [from](const Tensor& g) -> std::vector<Tensor> { return {g.to(from)}; });
}

}  // namespace mg
