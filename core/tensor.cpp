#include "core/tensor.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>

#include "core/backend.h"

namespace mg {

Tensor Tensor::empty(const Shape& shape, TensorOptions opts) {
  MG_CHECK(shape.size() <= size_t(kMaxDims), "empty: ", shape.size(), " dims requested, at most ",
           kMaxDims, " supported");
  for (int64_t d : shape) MG_CHECK(d >= 0, "empty: negative size in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->strides = contiguous_strides(shape);  // checks the size products before allocating
  impl->storage = std::make_shared<Storage>(shape_nbytes(shape, dtype_size(opts.dtype)), opts.device);
  impl->shape = shape;
  impl->dtype = opts.dtype;
  impl->device = opts.device;
  Tensor t(std::move(impl));
  if (opts.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  MG_CHECK(shape.size() <= size_t(kMaxDims), "view: ", shape.size(), " dims, at most ", kMaxDims);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->device = base.device();
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to lay out (PyTorch agrees)
  const auto& sh = shape();
  const auto& st = strides();
  int64_t expected = 1;
  for (int i = int(sh.size()) - 1; i >= 0; --i) {
    if (sh[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= sh[i];
  }
  return true;
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " on " + device().str();
}

void* Tensor::raw_data() const {
  const auto& s = checked();
  if (!s.storage || !s.storage->data()) return nullptr;
  return static_cast<char*>(s.storage->data()) + s.offset * int64_t(dtype_size(s.dtype));
}

template <class T> std::vector<T> Tensor::to_vector() const {
  MG_CHECK(dtype_of<T>::value == dtype(), "to_vector: tensor is ", dtype_name(dtype()), ", asked for ",
           dtype_name(dtype_of<T>::value));
  std::vector<T> out(static_cast<size_t>(numel()));
  if (out.empty()) return out;
  // Make a contiguous copy on the tensor's own device, then bring it home.
  Tensor dense = Tensor::empty(shape(), TensorOptions{}.with_dtype(dtype()).with_device(device()));
  Backend& be = backend_for(device());
  be.copy(*this, dense);
  be.copy_to_host(out.data(), dense.raw_data(), out.size() * sizeof(T));
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<bf16> Tensor::to_vector<bf16>() const;

double Tensor::item() const {
  MG_CHECK(numel() == 1, "item: tensor ", desc(), " has ", numel(), " elements, expected 1");
  switch (dtype()) {
    case DType::f32: return to_vector<float>()[0];
    case DType::f64: return to_vector<double>()[0];
    case DType::i32: return to_vector<int32_t>()[0];
    case DType::bf16: return float(to_vector<bf16>()[0]);
  }
  return 0;
}

bool Tensor::requires_grad() const {
  const auto& s = checked();
  return s.requires_grad || s.grad_fn != nullptr;
}

Tensor& Tensor::set_requires_grad(bool r) {
  MG_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad (this one was made by an op; use detach())");
  MG_CHECK(!r || is_floating(dtype()), "set_requires_grad: only floating tensors can require grad, got ", desc());
  impl_->requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const { return Tensor(checked().grad); }

void Tensor::set_grad(const Tensor& g) {
  checked();
  if (g.defined())
    MG_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(), "set_grad: gradient ",
             g.desc(), " does not match tensor ", desc());
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() { checked(); impl_->grad.reset(); }

Tensor Tensor::detach() const {
  Tensor v = make_view(*this, shape(), strides(), offset());
  return v;
}

// ---- printing ------------------------------------------------------------------------------
namespace {
void print_value(std::ostream& os, double v, DType dt) {
  char buf[32];
  if (dt == DType::i32) std::snprintf(buf, sizeof buf, "%lld", (long long)v);
  else std::snprintf(buf, sizeof buf, "% .4g", v);
  os << buf;
}

void print_rec(std::ostream& os, const std::vector<double>& v, const Shape& sh, const Shape& st, size_t d,
               int64_t base, DType dt, int indent) {
  const int64_t n = sh[d], edge = 3;
  const bool summarize = n > 2 * edge + 1 && mg::numel(sh) > 1000;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && i == edge) {
      os << (d + 1 == sh.size() ? " ..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - edge - 1;
      continue;
    }
    if (d + 1 == sh.size()) {
      print_value(os, v[size_t(base + i * st[d])], dt);
      if (i + 1 < n) os << ", ";
    } else {
      print_rec(os, v, sh, st, d + 1, base + i * st[d], dt, indent + 1);
      if (i + 1 < n) os << ",\n" << std::string(indent + 1, ' ');
    }
  }
  os << "]";
}
}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::vector<double> vals(static_cast<size_t>(t.numel()));
  switch (t.dtype()) {
    case DType::f32: { auto v = t.to_vector<float>(); std::copy(v.begin(), v.end(), vals.begin()); break; }
    case DType::f64: vals = t.to_vector<double>(); break;
    case DType::i32: { auto v = t.to_vector<int32_t>(); std::copy(v.begin(), v.end(), vals.begin()); break; }
    case DType::bf16: { auto v = t.to_vector<bf16>(); for (size_t i = 0; i < v.size(); ++i) vals[i] = float(v[i]); break; }
  }
  os << "tensor(shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype())
     << ", device=" << t.device().str();
  if (t.requires_grad()) os << ", requires_grad";
  os << ")\n";
  if (t.dim() == 0) print_value(os, vals[0], t.dtype());
  else print_rec(os, vals, t.shape(), contiguous_strides(t.shape()), 0, 0, t.dtype(), 0);
  return os;
}

}  // namespace mg
