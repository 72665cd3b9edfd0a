#pragma once
// The arithmetic and memory cost of one op call, from its name (record()'s, see
// autograd/instrument.h) and its operands: what the profiler (`mixgrad profile`) divides time
// by. FLOPs: a multiply-add is 2 FLOPs; matmul counts 2*M*N*K (matmul_bias one add more per
// output); masked_token_mix(_heads) and scaled_dot_product_attention count only the causal
// (lower-triangle) products their kernels do (every model calls attention causal; a non-causal
// call is undercounted by half), unlike PyTorch's FlopCounterMode, which counts dense products;
// pointwise and row ops count a few FLOPs per element (kPointwise in the .cpp); views, copies and
// lookups count 0.
// Bytes: every operand read once plus the output written once (a lower bound on traffic).
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mg {

struct OpCost {
  double flops = 0;
  double bytes = 0;
  // Of flops, what a trailing bias operand adds (matmul_bias: one add per output element). Its
  // gradient is one reduction of that size, not another product.
  double bias_flops = 0;
};

// Forward cost of op `name` with these inputs and output; unknown names cost bytes only.
OpCost forward_op_cost(const char* name, const std::vector<Tensor>& inputs, const Tensor& output);

// FLOPs of one input's gradient in the backward of op `name` whose forward cost `forward`: the
// forward FLOPs again (exact for matmul, masked_token_mix and the other products, whose gradient
// w.r.t. one operand is one product of the same size; an estimate for pointwise and row ops),
// less the bias part for matmul_bias's product operands, and forward.bias_flops (one row sum) for
// its bias (input 2).
double input_grad_flops(const char* name, const OpCost& forward, int input_index);

}  // namespace mg
