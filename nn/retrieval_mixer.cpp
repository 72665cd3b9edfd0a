#include "nn/retrieval_mixer.h"

#include <cmath>

#include "nn/init.h"
#include "ops/ops.h"

namespace mg {

BidirectionalMixerBlock::BidirectionalMixerBlock(int64_t dim, int64_t samples, Generator& gen, TensorOptions opts)
    : patch_layernorm(dim, 1e-5, opts), seq_layernorm(dim, 1e-5, opts),
      patch_ff(dim, 4 * dim, gen, Init::torch_default(), opts) {
  register_module("patch_layernorm", patch_layernorm);
  register_module("seq_layernorm", seq_layernorm);
  register_module("patch_ff", patch_ff);
  const double bound = 1.0 / std::sqrt(double(samples));  // Conv1d: fan_in = in_channels * kernel
  conv_weight = register_parameter("conv_weight", init_uniform({samples, samples, 1}, bound, gen, opts));
  conv_bias = register_parameter("conv_bias", init_uniform({samples}, bound, gen, opts));
}

Tensor BidirectionalMixerBlock::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  MG_CHECK(x.dim() == 3 && x.size(1) == conv_weight.size(0), "BidirectionalMixerBlock: expected [B, ",
           conv_weight.size(0), ", d], got ", x.desc());
  // [c, c] x [B, c, d] broadcasts over B: every sample mixes with every other (no mask).
  Tensor mixed = add(matmul(conv_weight.squeeze(2), seq_layernorm.forward(x)), conv_bias.unsqueeze(1));
  Tensor y = add(x, mixed);
  return add(y, patch_ff.forward(patch_layernorm.forward(y)));
}

RetrievalMixer::RetrievalMixer(int64_t dim, int64_t depth, int64_t samples, Generator& gen, TensorOptions opts)
    : head(dim, 1, true, gen, Init::torch_default(), opts), samples_(samples) {
  MG_CHECK(dim >= 1 && depth >= 1 && samples >= 2, "RetrievalMixer: need dim, depth >= 1 and samples >= 2, got ",
           dim, ", ", depth, ", ", samples);
  for (int64_t i = 0; i < depth; ++i)
    blocks.push_back(std::make_unique<BidirectionalMixerBlock>(dim, samples, gen, opts));
  register_module("mixerblocks", blocks);
  register_module("retrieval_head", head);
}

Tensor RetrievalMixer::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  Tensor h = x;
  for (const auto& b : blocks) h = b->forward(h);
  Tensor s = head.forward(h).squeeze(2);  // [B, c]
  return s.narrow(1, 1, samples_ - 1);   // the query's own row is not a candidate
}

}  // namespace mg
