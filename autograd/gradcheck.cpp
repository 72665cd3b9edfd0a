#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/factories.h"

namespace mg {

namespace {
// Storage offset of logical element `k` of a strided view.
int64_t storage_index(const Tensor& t, int64_t k) {
  int64_t off = 0;
  for (int d = int(t.dim()) - 1; d >= 0; --d) {
    int64_t n = t.shape()[d];
    off += (k % n) * t.strides()[d];
    k /= n;
  }
  return off;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, GradcheckOptions opts) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    MG_CHECK(x.dtype() == DType::f64 && x.device().is_cpu() && x.is_leaf(), "gradcheck: input ", i, " is ",
             x.desc(), "; differentiable inputs must be f64 CPU leaves");
  }
  GradcheckResult res;

  Tensor out = f(inputs);
  MG_CHECK(out.dtype() == DType::f64, "gradcheck: f returned ", out.desc(), ", expected f64");
  Generator gen(opts.seed);
  Tensor v = uniform(out.shape(), -1.0, 1.0, gen, TensorOptions{DType::f64});
  std::vector<double> vv = v.to_vector<double>();

  std::vector<Tensor> saved_grads;
  for (const Tensor& x : inputs) {
    saved_grads.push_back(x.defined() ? x.grad() : Tensor());
    if (x.defined()) const_cast<Tensor&>(x).zero_grad();
  }
  if (out.requires_grad()) out.backward(v);

  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor g = x.grad();
    std::vector<double> analytic = g.defined() ? g.to_vector<double>() : std::vector<double>(size_t(x.numel()), 0.0);
    double* base = static_cast<double*>(x.storage()->data());
    for (int64_t k = 0; k < x.numel(); ++k) {
      double* p = base + x.offset() + storage_index(x, k);
      const double orig = *p;
      *p = orig + opts.eps;
      double fp = dot(f(inputs).to_vector<double>(), vv);
      *p = orig - opts.eps;
      double fm = dot(f(inputs).to_vector<double>(), vv);
      *p = orig;
      double numeric = (fp - fm) / (2 * opts.eps);
      double a = analytic[size_t(k)];
      double excess = std::abs(a - numeric) - (opts.atol + opts.rtol * std::abs(numeric));
      if (!std::isfinite(a)) excess = INFINITY;
      if (excess > res.worst_excess || (res.input < 0 && excess > 0)) {
        res.worst_excess = excess;
        res.input = int(i);
        res.index = k;
        res.analytical = a;
        res.numerical = numeric;
      }
    }
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined()) const_cast<Tensor&>(inputs[i]).set_grad(saved_grads[i]);

  res.ok = res.input < 0;
  std::ostringstream os;
  if (res.ok) {
    os << "gradcheck passed";
  } else {
    os << "gradcheck failed: input " << res.input << " (" << inputs[size_t(res.input)].desc() << "), element "
       << res.index << ": analytical " << res.analytical << " vs numerical " << res.numerical
       << " (exceeds atol+rtol*|numerical| by " << res.worst_excess << ")";
  }
  res.message = os.str();
  return res;
}

}  // namespace mg
