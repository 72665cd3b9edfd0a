#include "experiments/embedding.h"

#include <algorithm>
#include <memory>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/factories.h"
#include "core/parallel_for.h"
#include "ops/ops.h"
#include "report/progress.h"

namespace mg {

EmbedPosition parse_embed_position(const std::string& s) {
  if (s == "last" || s == "-1") return EmbedPosition::last;
  if (s == "second-last" || s == "second_last" || s == "-2") return EmbedPosition::second_last;
  if (s == "mean") return EmbedPosition::mean;
  throw Error("unknown embedding position '" + s + "' (expected last, second-last (-2) or mean)");
}

const char* embed_position_name(EmbedPosition p) {
  switch (p) {
    case EmbedPosition::last: return "last";
    case EmbedPosition::second_last: return "second-last";
    case EmbedPosition::mean: return "mean";
  }
  return "?";
}

std::vector<std::vector<int32_t>> tokenize_texts(const BpeTokenizer& tok, const std::vector<std::string>& texts,
                                                 int64_t n_ctx) {
  MG_CHECK(n_ctx >= 1, "tokenize_texts: n_ctx ", n_ctx, " < 1");
  std::vector<std::vector<int32_t>> out(texts.size());
  parallel_for(int64_t(texts.size()), [&](int64_t i) {
    std::vector<int32_t> ids = tok.encode(texts[size_t(i)]);
    MG_CHECK(!ids.empty(), "tokenize_texts: text ", i, " gives no tokens");
    if (int64_t(ids.size()) > n_ctx) ids.resize(size_t(n_ctx));
    out[size_t(i)] = std::move(ids);
  });
  return out;
}

PaddedBatch pad_batch(const std::vector<std::vector<int32_t>>& seqs, std::span<const int64_t> rows, int32_t pad_id,
                      PadSide side, int64_t T) {
  MG_CHECK(!rows.empty(), "pad_batch: no rows");
  int64_t longest = 0;
  for (int64_t r : rows) {
    MG_CHECK(r >= 0 && size_t(r) < seqs.size(), "pad_batch: row ", r, " out of range [0, ", seqs.size(), ")");
    MG_CHECK(!seqs[size_t(r)].empty(), "pad_batch: sequence ", r, " is empty");
    longest = std::max(longest, int64_t(seqs[size_t(r)].size()));
  }
  if (T == 0) T = longest;
  MG_CHECK(T >= longest, "pad_batch: sequence of ", longest, " tokens does not fit T = ", T);
  const int64_t B = int64_t(rows.size());
  std::vector<int32_t> ids(size_t(B * T), pad_id);
  PaddedBatch b;
  b.side = side;
  for (int64_t i = 0; i < B; ++i) {
    const auto& s = seqs[size_t(rows[size_t(i)])];
    const int64_t len = int64_t(s.size());
    const int64_t start = side == PadSide::left ? T - len : 0;
    std::copy(s.begin(), s.end(), ids.begin() + i * T + start);
    b.lengths.push_back(len);
  }
  b.ids = from_vector(ids, {B, T});
  return b;
}

Tensor pool_hidden(const Tensor& hidden, const PaddedBatch& batch, EmbedPosition position) {
  MG_CHECK(hidden.dim() == 3, "pool_hidden: expected hidden states [B, T, D], got ", hidden.desc());
  const int64_t B = hidden.size(0), T = hidden.size(1), D = hidden.size(2);
  MG_CHECK(int64_t(batch.lengths.size()) == B, "pool_hidden: ", batch.lengths.size(), " lengths for ", B, " rows");
  for (int64_t len : batch.lengths) MG_CHECK(len >= 1 && len <= T, "pool_hidden: length ", len, " outside [1, ", T, "]");
  const bool left = batch.side == PadSide::left;
  if (position == EmbedPosition::mean) {
    std::vector<double> w(size_t(B * T), 0.0);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = batch.lengths[size_t(b)], first = left ? T - len : 0;
      for (int64_t t = first; t < first + len; ++t) w[size_t(b * T + t)] = 1.0 / double(len);
    }
    Tensor wt = from_vector(w, {B, T, 1}, TensorOptions{hidden.dtype(), hidden.device(), false});
    return sum(mul(hidden, wt), {1});
  }
  std::vector<int32_t> idx(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = batch.lengths[size_t(b)];
    const int64_t last = left ? T - 1 : len - 1;
    const int64_t back = position == EmbedPosition::second_last && len >= 2 ? 1 : 0;
    idx[size_t(b)] = int32_t(b * T + last - back);
  }
  Tensor index = from_vector(idx, {B}, TensorOptions{DType::i32, hidden.device(), false});
  return index_select(hidden.reshape({B * T, D}), 0, index);
}

Tensor embed_batch(LanguageModel& model, const PaddedBatch& batch, EmbedPosition position) {
  Tensor ids = batch.ids;
  const Device dev = model.token_embedding_weight().device();
  if (!(ids.device() == dev)) ids = ids.to(dev);
  Tensor hidden = model.final_norm(model.forward_embeddings(model.embed(ids), -1, false));
  return pool_hidden(hidden, batch, position);
}

Tensor embed_sequences(LanguageModel& model, const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id,
                       const EmbedOptions& options, const std::string& progress_label) {
  MG_CHECK(options.batch_size >= 1, "embed_sequences: batch size ", options.batch_size, " < 1");
  const int64_t n = int64_t(seqs.size()), D = model.config().d_model;
  MG_CHECK(n > 0, "embed_sequences: no sequences");
  // Longest first, so batches hold texts of similar length (little padding) and a too-large
  // batch fails at once rather than at the end.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return seqs[size_t(a)].size() > seqs[size_t(b)].size(); });
  std::vector<float> out(size_t(n * D));
  NoGradGuard no_grad;
  const int64_t T = options.pad_to_ctx ? model.config().n_ctx : 0;
  const int64_t nb = (n + options.batch_size - 1) / options.batch_size;
  std::unique_ptr<report::ProgressBar> bar;
  if (!progress_label.empty()) bar = std::make_unique<report::ProgressBar>(nb, progress_label, 20);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * options.batch_size, hi = std::min(n, lo + options.batch_size);
    std::span<const int64_t> rows(order.data() + lo, size_t(hi - lo));
    PaddedBatch batch = pad_batch(seqs, rows, pad_id, options.pad_side, T);
    Tensor e = embed_batch(model, batch, options.position).to(kCPU).to(DType::f32).contiguous();
    const float* p = e.data_ptr<float>();
    for (int64_t i = 0; i < hi - lo; ++i) std::copy(p + i * D, p + (i + 1) * D, out.begin() + rows[size_t(i)] * D);
    if (bar) bar->update(b + 1, "");
  }
  if (bar) bar->finish("");
  return from_vector(out, {n, D});
}

}  // namespace mg
