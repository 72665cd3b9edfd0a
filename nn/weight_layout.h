#pragma once
// The weights of our language models in the layouts of other code (docs/interop.md):
//
//   pytorch  the paper's own PyTorch code: LanguageMixer (mixer_trainer.py) for the masked mixer,
//            Hugging Face LlamaForCausalLM / OpenAIGPTLMHeadModel for the transformers (the paper
//            trains those through transformers).
//   hf       Hugging Face transformers: LlamaForCausalLM and OpenAIGPTLMHeadModel; the mixer has
//            no transformers class, so it gets the pytorch layout.
//
// Our state-dict names already are those (nn/masked_mixer.h, nn/llama.h, nn/gpt.h), so the
// mapping changes only:
//   - tied weights: PyTorch's state_dict() lists a tied tensor under every name, and a strict
//     load_state_dict wants every name, so the export writes lm_head.weight beside the embedding
//     (wte / model.embed_tokens / transformer.tokens_embed) when the config ties them;
//   - the multi-head mixer: our stacked tensors become the paper's per-head modules:
//       conv.proj_head.{weight [d, d], bias [d]}  <->  conv.proj_head.h.{weight [d/H, d], bias [d/H]}
//       conv.convs.{weight [H, n, n], bias [H, n]} <->  conv.convs.h.{weight [n, n, 1], bias [n]}
//     (h = 0..H-1: ModuleLists of Linear(d, d/H) and Conv1d(n, n, 1)).
// Llama's q_proj / k_proj need no permutation: our rope() rotates halves (HF's rotate_half
// convention), which is what HF checkpoints store; Meta's original interleaved-pair checkpoints
// are what HF's conversion script permutes, and are not a layout here.
// The masked mixer's conv weights keep their upper triangle (ignored by our op; the paper's code
// zeroes it before every forward), so outputs agree either way.
#include <map>
#include <string>

#include "nn/lm.h"
#include "nn/module.h"

namespace mg {

enum class WeightLayout { pytorch, hf };

const char* weight_layout_name(WeightLayout l);  // "pytorch", "hf"
// Throws mg::Error listing the accepted names.
WeightLayout parse_weight_layout(const std::string& s);

// The model's parameters as tensors of `layout` (new contiguous CPU tensors, f32), in our
// registration order, tied duplicates right after their first name.
StateDict export_state_dict(const LanguageModel& model, WeightLayout layout);

// The reverse: tensors named as `layout` names them -> names our model of `config` loads. Names
// it does not map pass through unchanged (so Module::load_state_dict reports them as
// unexpected); a per-head family that is only partly present throws mg::Error naming the missing
// entries. Our own stacked multi-head names are accepted too.
std::map<std::string, Tensor> import_state_dict(const std::map<std::string, Tensor>& tensors,
                                                const ModelConfig& config, WeightLayout layout);

}  // namespace mg
