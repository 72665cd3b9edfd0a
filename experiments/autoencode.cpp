#include "experiments/autoencode.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "autograd/grad_mode.h"
#include "experiments/data_prep.h"
#include "experiments/retrieval.h"
#include "nn/checkpoint.h"
#include "report/progress.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

int64_t count_labelled(const Tensor& labels) {
  int64_t n = 0;
  for (int32_t v : labels.to_vector<int32_t>()) n += v != kIgnoreIndex;
  return n;
}

// Argmax over the last dim of f32 logits [B, T, V] on the host: [B * T].
std::vector<int32_t> argmax_rows(const Tensor& logits) {
  const int64_t V = logits.size(2), rows = logits.size(0) * logits.size(1);
  std::vector<float> v = logits.to(kCPU).contiguous().to_vector<float>();
  std::vector<int32_t> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    auto row = v.begin() + r * V;
    out[size_t(r)] = int32_t(std::max_element(row, row + V) - row);
  }
  return out;
}

}  // namespace

void check_autoencoder_config(const RunConfig& rc) {
  MG_CHECK(rc.autoencoder, "'", rc.name, "' is not an autoencoder config: add `autoencoder: true` at the top level ",
           "(or train it with `mixgrad train`)");
  MG_CHECK(rc.model.kind == ModelKind::masked_mixer || rc.model.kind == ModelKind::llama, "'", rc.name,
           "': the autoencoders are masked_mixer or llama, not ", model_kind_name(rc.model.kind));
  MG_CHECK(rc.data.batching == BatchMode::packed || rc.data.pad_side == PadSide::left, "'", rc.name,
           "': the autoencoder's bottleneck is the encoder's last position, which must hold the last real token: ",
           "set data.pad_side: left");
}

TrainObjective autoencoder_objective(std::shared_ptr<Autoencoder> model, const RunConfig& rc) {
  Autoencoder* m = model.get();
  TrainObjective obj;
  obj.model = std::move(model);
  obj.summary = "autoencoder " + rc.model.summary() + " (" + std::to_string(rc.model.n_layers) + " encoder + " +
                std::to_string(rc.model.n_layers) + " decoder blocks)";
  obj.loss = [m](const Tensor& inputs, const Tensor& labels, bool sum) {
    return reconstruction_loss(m->forward(inputs), labels, kIgnoreIndex, sum ? Reduction::sum : Reduction::mean);
  };
  obj.count_scored = count_labelled;
  obj.sample = [m](const PreparedData& data) {
    const BpeTokenizer& tok = *data.tokenizer;
    auto doc = data.validation->document(0);
    std::vector<int32_t> ids(doc.begin(), doc.begin() + long(std::min<size_t>(doc.size(), size_t(m->config().n_ctx))));
    return tok.decode(ids) + "\n>>> reconstruction:\n" + tok.decode(reconstruct(*m, ids, tok.pad_id()));
  };
  return obj;
}

TrainSummary train_autoencoder(const RunConfig& rc, const TrainOptions& opts) {
  check_autoencoder_config(rc);
  return train_objective(rc, opts, [&](Generator& gen, Device dev) {
    std::shared_ptr<Autoencoder> model = make_autoencoder(rc.model, gen, TensorOptions{DType::f32, dev, false});
    return autoencoder_objective(std::move(model), rc);
  });
}

AutoencoderRun load_autoencoder_run(const std::string& run_dir) {
  AutoencoderRun r;
  r.checkpoint = (fs::path(run_dir) / "checkpoint.safetensors").string();
  MG_CHECK(fs::exists(r.checkpoint), "no checkpoint at '", r.checkpoint, "' (train with `mixgrad autoencode train`)");
  auto meta = read_checkpoint_metadata(r.checkpoint);
  auto it = meta.find("config");
  MG_CHECK(it != meta.end(), "checkpoint '", r.checkpoint, "' carries no config");
  r.rc = parse_run_config(it->second, r.checkpoint + " [config]");
  check_autoencoder_config(r.rc);
  r.tok = BpeTokenizer::load((fs::path(run_dir) / "tokenizer.bpe").string());
  Generator gen(0);
  r.model = make_autoencoder(r.rc.model, gen);
  load_checkpoint(r.checkpoint, *r.model, nullptr);
  return r;
}

std::vector<int32_t> reconstruct(Autoencoder& model, const std::vector<int32_t>& ids, int32_t pad_id) {
  MG_CHECK(!ids.empty(), "reconstruct: no tokens");
  const int64_t n = model.config().n_ctx, len = std::min<int64_t>(int64_t(ids.size()), n);
  std::vector<std::vector<int32_t>> one = {std::vector<int32_t>(ids.begin(), ids.begin() + len)};
  const int64_t row = 0;
  PaddedBatch b = pad_batch(one, std::span<const int64_t>(&row, 1), pad_id, PadSide::left, n);
  NoGradGuard no_grad;
  std::vector<int32_t> best = argmax_rows(model.forward(b.ids));
  return std::vector<int32_t>(best.end() - len, best.end());
}

AutoencoderEval evaluate_autoencoder(Autoencoder& model, ValidationBatches& batches, int64_t max_batches) {
  NoGradGuard no_grad;
  const Device dev = model.wte.weight.device();
  batches.reset();
  Batch b;
  AutoencoderEval e;
  double total = 0, bag = 0;
  int64_t right = 0;
  while ((max_batches == 0 || e.batches < max_batches) && batches.next(b)) {
    Tensor logits = model.forward(b.inputs.to(dev));
    total += reconstruction_loss(logits, b.labels, kIgnoreIndex, Reduction::sum).item();
    std::vector<int32_t> best = argmax_rows(logits), labels = b.labels.to_vector<int32_t>();
    const size_t T = size_t(labels.size() / size_t(b.labels.size(0)));
    for (size_t row = 0; row < labels.size(); row += T) {
      std::map<int32_t, int64_t> counts;
      int64_t len = 0;
      for (size_t i = row; i < row + T; ++i) {
        if (labels[i] == kIgnoreIndex) continue;
        ++counts[labels[i]], ++len;
        ++e.tokens;
        right += best[i] == labels[i];
      }
      for (const auto& [tok, c] : counts) bag -= double(c) * std::log(double(c) / double(len));
    }
    ++e.batches;
  }
  MG_CHECK(e.tokens > 0, "evaluate_autoencoder: no tokens scored");
  e.loss = total / double(e.tokens);
  e.token_accuracy = double(right) / double(e.tokens);
  e.bag_of_tokens = bag / double(e.tokens);
  return e;
}

Tensor autoencoder_embeddings(Autoencoder& model, const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id,
                              int64_t batch_size, const std::string& progress_label) {
  MG_CHECK(batch_size >= 1, "autoencoder_embeddings: batch size ", batch_size, " < 1");
  const int64_t n = int64_t(seqs.size()), D = model.config().d_model, T = model.config().n_ctx;
  MG_CHECK(n > 0, "autoencoder_embeddings: no sequences");
  std::vector<std::vector<int32_t>> clipped;
  clipped.reserve(seqs.size());
  for (const auto& s : seqs) clipped.emplace_back(s.begin(), s.begin() + long(std::min<size_t>(s.size(), size_t(T))));
  std::vector<float> out(size_t(n * D));
  NoGradGuard no_grad;
  const int64_t nb = (n + batch_size - 1) / batch_size;
  std::unique_ptr<report::ProgressBar> bar;
  if (!progress_label.empty()) bar = std::make_unique<report::ProgressBar>(nb, progress_label, 20);
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * batch_size, hi = std::min(n, lo + batch_size);
    rows.clear();
    for (int64_t i = lo; i < hi; ++i) rows.push_back(i);
    PaddedBatch batch = pad_batch(clipped, rows, pad_id, PadSide::left, T);
    Tensor z = model.encode(batch.ids).to(kCPU).to(DType::f32).contiguous();
    const float* p = z.data_ptr<float>();
    std::copy(p, p + (hi - lo) * D, out.begin() + lo * D);
    if (bar) bar->update(b + 1, "");
  }
  if (bar) bar->finish("");
  return from_vector(out, {n, D});
}

}  // namespace mg
