#include "core/factories.h"

#include <cmath>

#include "core/backend.h"

namespace mg {

namespace {
Tensor finish(Tensor t, const TensorOptions& opts) {
  if (opts.requires_grad) t.set_requires_grad(true);
  return t;
}
TensorOptions no_grad_opts(TensorOptions o) { return o.with_requires_grad(false); }
}  // namespace

Tensor full(const Shape& shape, double value, TensorOptions opts) {
  Tensor t = Tensor::empty(shape, no_grad_opts(opts));
  if (t.numel()) backend_for(t.device()).fill(t, value);
  return finish(t, opts);
}
Tensor zeros(const Shape& shape, TensorOptions opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape& shape, TensorOptions opts) { return full(shape, 1.0, opts); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), TensorOptions{t.dtype(), t.device(), false}); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), TensorOptions{t.dtype(), t.device(), false}); }
Tensor scalar_tensor(double value, TensorOptions opts) { return full({}, value, opts); }

Tensor arange(double start, double end, double step, TensorOptions opts) {
  MG_CHECK(step != 0, "arange: step must be non-zero");
  int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = start + double(i) * step;
  if (opts.dtype == DType::i32) {
    std::vector<int32_t> iv(v.begin(), v.end());
    return from_vector(iv, Shape{n}, opts);
  }
  return from_vector(v, Shape{n}, opts);
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts) {
  MG_CHECK(int64_t(values.size()) == mg::numel(shape), "from_vector: ", values.size(),
           " values do not fill shape ", shape_str(shape), " (", mg::numel(shape), " elements)");
  TensorOptions host{dtype_of<T>::value, kCPU, false};
  Tensor src = Tensor::empty(shape, host);
  if (!values.empty()) backend_for(kCPU).copy_from_host(src.raw_data(), values.data(), values.size() * sizeof(T));
  Tensor out = src;
  if (opts.dtype != src.dtype()) {
    out = Tensor::empty(shape, TensorOptions{opts.dtype, kCPU, false});
    if (out.numel()) backend_for(kCPU).copy(src, out);
  }
  if (!(opts.device == kCPU)) {
    Tensor dev = Tensor::empty(shape, TensorOptions{opts.dtype, opts.device, false});
    if (dev.numel()) backend_for(opts.device).copy_from_host(dev.raw_data(), out.raw_data(), size_t(out.numel()) * dtype_size(opts.dtype));
    out = dev;
  }
  return finish(out, opts);
}
template Tensor from_vector(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<int32_t>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<bf16>&, const Shape&, TensorOptions);

namespace {
Tensor random_tensor(const Shape& shape, RandomKind kind, double a, double b, uint64_t seed, uint64_t offset,
                     TensorOptions opts) {
  if (kind == RandomKind::randint) {
    MG_CHECK(opts.dtype == DType::i32, "randint: produces i32, options ask for ", dtype_name(opts.dtype));
    MG_CHECK(b > a, "randint: empty range [", a, ", ", b, ")");
  } else {
    MG_CHECK(opts.dtype == DType::f32 || opts.dtype == DType::f64, "random: floating dtype f32/f64 expected, got ",
             dtype_name(opts.dtype));
  }
  Tensor t = Tensor::empty(shape, no_grad_opts(opts));
  if (t.numel()) backend_for(t.device()).random(t, kind, seed, offset, a, b);
  return finish(t, opts);
}
}  // namespace

Tensor rand(const Shape& s, Generator& g, TensorOptions o) {
  return random_tensor(s, RandomKind::uniform, 0, 1, g.seed(), g.next_offset(), o);
}
Tensor uniform(const Shape& s, double lo, double hi, Generator& g, TensorOptions o) {
  return random_tensor(s, RandomKind::uniform, lo, hi, g.seed(), g.next_offset(), o);
}
Tensor randn(const Shape& s, Generator& g, TensorOptions o) {
  return random_tensor(s, RandomKind::normal, 0, 1, g.seed(), g.next_offset(), o);
}
Tensor normal(const Shape& s, double mean, double std, Generator& g, TensorOptions o) {
  return random_tensor(s, RandomKind::normal, mean, std, g.seed(), g.next_offset(), o);
}
Tensor randint(int32_t lo, int32_t hi, const Shape& s, Generator& g, TensorOptions o) {
  o.dtype = DType::i32;
  return random_tensor(s, RandomKind::randint, lo, hi, g.seed(), g.next_offset(), o);
}
Tensor rand(const Shape& s, uint64_t seed, TensorOptions o) {
  return random_tensor(s, RandomKind::uniform, 0, 1, seed, 0, o);
}
Tensor randn(const Shape& s, uint64_t seed, TensorOptions o) {
  return random_tensor(s, RandomKind::normal, 0, 1, seed, 0, o);
}
Tensor randint(int32_t lo, int32_t hi, const Shape& s, uint64_t seed, TensorOptions o) {
  o.dtype = DType::i32;
  return random_tensor(s, RandomKind::randint, lo, hi, seed, 0, o);
}

}  // namespace mg
