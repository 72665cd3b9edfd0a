#include "experiments/generate.h"

#include <algorithm>
#include <cmath>

#include "core/philox.h"
#include "ops/ops.h"

namespace mg {

std::vector<int32_t> unsampled_ids(const BpeTokenizer& tok, int64_t model_vocab_size) {
  std::vector<int32_t> never;
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (tok.is_special(id) && id != tok.eos_id()) never.push_back(id);
  for (int64_t id = tok.vocab_size(); id < model_vocab_size; ++id) never.push_back(int32_t(id));
  return never;
}

std::vector<int32_t> generate_ids(LanguageModel& model, const std::vector<int32_t>& prompt_ids,
                                  const GenerateOptions& opts, int32_t eos_id, const std::vector<int32_t>& never) {
  MG_CHECK(!prompt_ids.empty(), "generate: the prompt encodes to no tokens");
  NoGradGuard no_grad;
  const int64_t n_ctx = model.config().n_ctx, V = model.config().vocab_size;
  const Device dev = model.token_embedding_weight().device();
  // The candidates, in id order: every id the model outputs except `never`.
  std::vector<char> allowed(size_t(V), 1);
  for (int32_t id : never)
    if (id >= 0 && id < V) allowed[size_t(id)] = 0;
  std::vector<int32_t> candidates;
  for (int64_t i = 0; i < V; ++i)
    if (allowed[size_t(i)]) candidates.push_back(int32_t(i));
  MG_CHECK(!candidates.empty(), "generate: every one of the model's ", V, " token ids is excluded from sampling");
  std::vector<int32_t> ids = prompt_ids, out;
  for (int64_t step = 0; step < opts.max_new_tokens; ++step) {
    const size_t start = ids.size() > size_t(n_ctx) ? ids.size() - size_t(n_ctx) : 0;
    std::vector<int32_t> window(ids.begin() + long(start), ids.end());
    Tensor x = from_vector(window, {1, int64_t(window.size())}).to(dev);
    Tensor logits = model.forward(x).select(1, -1).reshape({V}).to(kCPU).to(DType::f64);
    std::vector<double> l = logits.to_vector<double>();
    int32_t next;
    if (opts.temperature <= 0) {
      // The first of the largest allowed logits, as max_element over all ids picks the first.
      next = candidates[0];
      for (int32_t c : candidates)
        if (l[size_t(c)] > l[size_t(next)]) next = c;
    } else {
      std::vector<int32_t> order = candidates;
      size_t k = opts.top_k > 0 ? std::min<size_t>(size_t(opts.top_k), order.size()) : order.size();
      std::partial_sort(order.begin(), order.begin() + long(k), order.end(),
                        [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
      double mx = l[size_t(order[0])], z = 0;
      std::vector<double> p(k);
      for (size_t i = 0; i < k; ++i) z += p[i] = std::exp((l[size_t(order[i])] - mx) / opts.temperature);
      double u = philox::uniform_f64(opts.seed, 0, uint64_t(step)) * z, acc = 0;
      next = order[k - 1];
      for (size_t i = 0; i < k; ++i)
        if ((acc += p[i]) > u) {
          next = order[i];
          break;
        }
    }
    if (opts.stop_at_eos && next == eos_id) break;
    ids.push_back(next);
    out.push_back(next);
  }
  return out;
}

std::string generate_text(LanguageModel& model, const BpeTokenizer& tok, const std::string& prompt,
                          const GenerateOptions& opts) {
  std::vector<int32_t> ids = tok.encode(prompt);
  return tok.decode(generate_ids(model, ids, opts, tok.eos_id(), unsampled_ids(tok, model.config().vocab_size)));
}

}  // namespace mg
