#include "ops/op_cost.h"

#include <cstring>

namespace mg {

namespace {

double bytes_of(const Tensor& t) { return t.defined() ? double(t.numel()) * double(dtype_size(t.dtype())) : 0; }

struct PerElement {
  const char* op;
  double flops;  // per output element (per input element for the row reductions)
};

// Rough per-element counts: the arithmetic of the CPU kernels' formulas (e.g. layer_norm:
// mean, centre, square, sum, scale, shift, affine).
constexpr PerElement kPointwise[] = {
    {"add", 1},        {"sub", 1},         {"mul", 1},          {"div", 1},        {"add_scalar", 1},
    {"sub_scalar", 1}, {"rsub_scalar", 1}, {"mul_scalar", 1},   {"div_scalar", 1}, {"rdiv_scalar", 2},
    {"neg", 1},        {"abs", 1},         {"exp", 1},          {"log", 1},        {"sqrt", 1},
    {"rsqrt", 2},      {"pow", 1},         {"tanh", 1},         {"relu", 1},       {"silu", 4},
    {"gelu", 8},       {"bias_gelu", 9},   {"swiglu", 5},       {"rope", 3},       {"dropout", 1},
    {"layer_norm", 8}, {"rms_norm", 5},    {"softmax", 5},      {"log_softmax", 5}, {"l2_normalize", 3},
    {"tril", 0},
};

// Ops whose cost is counted per INPUT element (they reduce).
constexpr PerElement kReducing[] = {{"sum", 1}, {"max", 1}, {"cross_entropy", 5}};

}  // namespace

OpCost forward_op_cost(const char* name, const std::vector<Tensor>& in, const Tensor& out) {
  OpCost c;
  for (const Tensor& t : in) c.bytes += bytes_of(t);
  c.bytes += bytes_of(out);
  if (!out.defined()) return c;
  const double n_out = double(out.numel());
  if (!std::strcmp(name, "matmul") && in.size() >= 2 && in[0].dim() >= 1) {
    c.flops = 2.0 * n_out * double(in[0].size(in[0].dim() - 1));
  } else if (!std::strcmp(name, "matmul_bias") && in.size() >= 3 && in[0].dim() >= 1) {
    c.bias_flops = n_out;
    c.flops = 2.0 * n_out * double(in[0].size(in[0].dim() - 1)) + c.bias_flops;
  } else if ((!std::strcmp(name, "masked_token_mix") || !std::strcmp(name, "masked_token_mix_heads")) &&
             in.size() >= 2 && in[1].dim() >= 1) {
    // Output row i mixes tokens 0..i: (C + 1) / 2 products per output on average.
    c.flops = n_out * double(in[1].size(in[1].dim() - 1) + 1);
  } else if (!std::strcmp(name, "scaled_dot_product_attention") && in.size() >= 2 && in[1].dim() >= 2) {
    // Q K^T and P V over the causal half (every model of nn/ calls it causal).
    c.flops = 2.0 * double(in[0].numel()) * double(in[1].size(in[1].dim() - 2) + 1);
  } else {
    for (const PerElement& p : kPointwise)
      if (!std::strcmp(name, p.op)) c.flops = p.flops * n_out;
    for (const PerElement& p : kReducing)
      if (!std::strcmp(name, p.op) && !in.empty() && in[0].defined()) c.flops = p.flops * double(in[0].numel());
  }
  return c;
}

double input_grad_flops(const char* name, const OpCost& forward, int input_index) {
  if (forward.bias_flops > 0 && !std::strcmp(name, "matmul_bias"))
    return input_index == 2 ? forward.bias_flops : forward.flops - forward.bias_flops;
  return forward.flops;
}

}  // namespace mg
