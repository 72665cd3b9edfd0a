#include "nn/layers.h"

#include <cmath>

#include "ops/activation.h"
#include "ops/autocast_policy.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace mg {

namespace {

void check_features(const char* layer, const Tensor& x, int64_t expected) {
  MG_CHECK(x.defined(), layer, ": undefined input");
  MG_CHECK(x.dim() >= 1 && x.size(-1) == expected, layer, ": input ", x.desc(), " must end in ", expected,
           " features");
}

// x [..., in] @ w ([in, out], possibly a transposed view) with the leading dims folded into the
// GEMM's rows: one GEMM forward and one per gradient, instead of a batched one whose weight
// gradient would need a reduction over the batch.
// With a bias, it is added in the GEMM's epilogue (matmul_bias).
Tensor matmul_rows(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor()) {
  const int64_t in = w.size(0);
  Shape out_shape = x.shape();
  out_shape.back() = w.size(1);
  if (x.dim() == 2) return matmul_bias(x, w, bias);
  Tensor x2 = x.reshape({in == 0 ? 0 : x.numel() / in, in});
  return matmul_bias(x2, w, bias).reshape(out_shape);
}

}  // namespace

// ---- Linear -------------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, bool has_bias, Generator& gen, Init init,
               TensorOptions opts) {
  MG_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got in=", in_features,
           " out=", out_features);
  if (init.kind == Init::Kind::torch_default) {
    const double bound = 1.0 / std::sqrt(double(in_features));
    weight = register_parameter("weight", init_uniform({out_features, in_features}, bound, gen, opts));
    if (has_bias) bias = register_parameter("bias", init_uniform({out_features}, bound, gen, opts));
  } else {
    weight = register_parameter("weight", init_normal({out_features, in_features}, init.std, gen, opts));
    if (has_bias) bias = register_parameter("bias", init_constant({out_features}, 0.0, opts));
  }
}

Linear::Linear(const Tensor& shared_weight) {
  MG_CHECK(shared_weight.defined() && shared_weight.dim() == 2, "Linear: a shared weight must be 2-D [out, in]");
  weight = register_parameter("weight", shared_weight);
}

Tensor Linear::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  check_features("Linear", x, in_features());
  // Lowered before the transpose: the leaf's bf16 copy is cached and converted contiguously.
  return matmul_rows(x, detail::autocast_lower(weight).t(), bias);
}

Tensor Linear::forward_no_bias(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  check_features("Linear", x, in_features());
  return matmul_rows(x, detail::autocast_lower(weight).t());
}

// ---- Conv1D (Hugging Face) ----------------------------------------------------------------

Conv1D::Conv1D(int64_t in_features, int64_t out_features, Generator& gen, Init init, TensorOptions opts) {
  MG_CHECK(in_features > 0 && out_features > 0, "Conv1D: features must be positive, got in=", in_features,
           " out=", out_features);
  if (init.kind == Init::Kind::torch_default) {
    // Not a torch default layer; use Linear's rule with the same fan_in.
    const double bound = 1.0 / std::sqrt(double(in_features));
    weight = register_parameter("weight", init_uniform({in_features, out_features}, bound, gen, opts));
    bias = register_parameter("bias", init_uniform({out_features}, bound, gen, opts));
  } else {
    weight = register_parameter("weight", init_normal({in_features, out_features}, init.std, gen, opts));
    bias = register_parameter("bias", init_constant({out_features}, 0.0, opts));
  }
}

Tensor Conv1D::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  check_features("Conv1D", x, weight.size(0));
  return matmul_rows(x, weight, bias);
}

Tensor Conv1D::forward_no_bias(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  check_features("Conv1D", x, weight.size(0));
  return matmul_rows(x, weight);
}

// ---- Embedding ----------------------------------------------------------------------------

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Generator& gen, Init init, TensorOptions opts) {
  MG_CHECK(num_embeddings > 0 && dim > 0, "Embedding: sizes must be positive, got ", num_embeddings, " x ", dim);
  const double std = init.kind == Init::Kind::torch_default ? 1.0 : init.std;
  weight = register_parameter("weight", init_normal({num_embeddings, dim}, std, gen, opts));
}

Tensor Embedding::forward(const Tensor& ids) const {
  ModuleScope scope = forward_scope();
  return embedding(weight, ids);
}

// ---- norms --------------------------------------------------------------------------------

LayerNorm::LayerNorm(int64_t dim, double eps_, TensorOptions opts) : eps(eps_) {
  MG_CHECK(dim > 0 && eps_ > 0, "LayerNorm: dim must be positive and eps > 0, got ", dim, ", ", eps_);
  weight = register_parameter("weight", init_constant({dim}, 1.0, opts));
  bias = register_parameter("bias", init_constant({dim}, 0.0, opts));
}

Tensor LayerNorm::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  check_features("LayerNorm", x, weight.size(0));
  return layer_norm(x, weight, bias, eps);
}

RMSNorm::RMSNorm(int64_t dim, double eps_, TensorOptions opts) : eps(eps_) {
  MG_CHECK(dim > 0 && eps_ > 0, "RMSNorm: dim must be positive and eps > 0, got ", dim, ", ", eps_);
  weight = register_parameter("weight", init_constant({dim}, 1.0, opts));
}

Tensor RMSNorm::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  check_features("RMSNorm", x, weight.size(0));
  return rms_norm(x, weight, eps);
}

// ---- MLPs ---------------------------------------------------------------------------------

FeedForward::FeedForward(int64_t dim, int64_t hidden, Generator& gen, Init init, TensorOptions opts, bool tanh)
    : in_proj(dim, hidden, true, gen, init, opts), out_proj(hidden, dim, true, gen, init, opts), tanh_gelu(tanh) {
  // nn.Sequential(Linear, GELU, Linear) numbers its children 0, 1, 2; the GELU has no parameters.
  register_module("0", in_proj);
  register_module("2", out_proj);
}

Tensor FeedForward::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  // The first bias is added inside the GELU's pass (one read and one write of the [.., hidden]
  // activation instead of two of each).
  Tensor h = in_proj.bias.defined() ? bias_gelu(in_proj.forward_no_bias(x), in_proj.bias, tanh_gelu)
                                    : gelu(in_proj.forward(x), tanh_gelu);
  return out_proj.forward(h);
}

SwiGLUMLP::SwiGLUMLP(int64_t dim, int64_t hidden, Generator& gen, Init init, TensorOptions opts)
    : gate_proj(dim, hidden, false, gen, init, opts),
      up_proj(dim, hidden, false, gen, init, opts),
      down_proj(hidden, dim, false, gen, init, opts) {
  register_module("gate_proj", gate_proj);
  register_module("up_proj", up_proj);
  register_module("down_proj", down_proj);
}

Tensor SwiGLUMLP::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  return down_proj.forward(swiglu(gate_proj.forward(x), up_proj.forward(x)));
}

}  // namespace mg
