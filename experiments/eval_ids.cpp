#include "experiments/eval_ids.h"

#include <cmath>
#include <cstdio>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "nn/checkpoint.h"

namespace mg {

int eval_ids_file(LanguageModel& model, const BpeTokenizer& tok, const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  MG_CHECK(f.contains("ids"), "eval --ids: '", path, "' holds no tensor \"ids\"");
  const Tensor& ids = f.get("ids");
  MG_CHECK(ids.dtype() == DType::i32 && ids.dim() == 2 && ids.size(1) >= 2, "eval --ids: '", path,
           "': ids must be integers [B, T] with T >= 2, got ", ids.desc());
  MG_CHECK(ids.size(1) <= model.config().n_ctx, "eval --ids: '", path, "': T = ", ids.size(1),
           " exceeds the model's n_ctx ", model.config().n_ctx);
  const int64_t V = model.config().vocab_size;
  int64_t scored = 0;
  const std::vector<int32_t> v = ids.to_vector<int32_t>();
  for (size_t i = 0; i < v.size(); ++i) {
    MG_CHECK(v[i] >= 0 && v[i] < V, "eval --ids: '", path, "': id ", v[i], " at flat position ", i,
             " is outside the vocabulary [0, ", V, ")");
    if (int64_t(i) % ids.size(1) != 0 && v[i] != tok.pad_id()) ++scored;
  }
  MG_CHECK(scored > 0, "eval --ids: '", path, "' scores no tokens (all targets are padding)");
  NoGradGuard no_grad;
  const double loss = lm_loss(model.forward(ids), ids, tok.pad_id()).item();
  MG_CHECK(std::isfinite(loss), "eval --ids: the loss is ", loss, " (the weights are not finite?)");
  std::printf("loss %.9f nats over %lld tokens (%lld x %lld ids from %s)\n", loss, (long long)scored,
              (long long)ids.size(0), (long long)ids.size(1), path.c_str());
  return 0;
}

void require_run_data(const std::string& checkpoint) {
  const auto meta = read_checkpoint_metadata(checkpoint);
  auto it = meta.find(kImportedWithoutData);
  MG_CHECK(it == meta.end(), "eval: ", checkpoint, " was imported without data (", it->second,
           "); score it on a batch with --ids IDS.safetensors, or import with --config CONFIG.yaml whose data: "
           "section built its tokenizer");
}

}  // namespace mg
