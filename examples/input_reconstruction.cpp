// Example 3: recover a model's input from its hidden state by gradient descent (the paper's
// input-representation test, docs/paper.md D).
//
//   example_input_reconstruction [--steps N] [--layer K] [--lr ETA]
//
// Take a real sentence, record the masked mixer's activations after K blocks, then start from
// random input embeddings and descend on them (the model frozen) until the model maps them to
// the same activations. If the recovered embeddings decode to the sentence's own tokens, the
// hidden state still holds the input. Exits non-zero unless the reconstruction error halved and
// most tokens were recovered.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"  // BpeTokenizer
#include "nn/lm.h"               // ModelConfig, make_model, LanguageModel
#include "nn/optim.h"            // SGD
#include "ops/ops.h"             // Tensor, ops, NoGradGuard

using namespace mg;

// The nearest token embedding (by cosine) of each row of e [T, D], as text; unprintable bytes as '.'.
std::string decode_nearest(const Tensor& e, const Tensor& W, const BpeTokenizer& tok, std::vector<int32_t>& ids) {
  NoGradGuard no_grad;
  Tensor sim = matmul(l2_normalize(e, -1), l2_normalize(W, -1).t());  // [T, V]
  const int64_t T = sim.size(0), V = sim.size(1);
  std::vector<float> s = sim.to_vector<float>();
  ids.assign(size_t(T), 0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t v = 1; v < V; ++v)
      if (s[size_t(t * V + v)] > s[size_t(t * V + ids[size_t(t)])]) ids[size_t(t)] = int32_t(v);
  std::string text = tok.decode(ids);
  for (char& c : text) c = (c >= 32 && c < 127) ? c : '.';
  return text;
}

int main(int argc, char** argv) try {
  int64_t steps = 300;
  int layer = 1;
  double lr = 0.01;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--steps") steps = std::stoll(argv[i + 1]);
    else if (a == "--layer") layer = std::stoi(argv[i + 1]);
    else if (a == "--lr") lr = std::stod(argv[i + 1]);
    else throw Error("unknown argument '" + a + "' (usage: [--steps N] [--layer K] [--lr ETA])");
  }
  if (argc % 2 == 0) throw Error(std::string("argument '") + argv[argc - 1] + "' needs a value");

  // 1. A real input. The tokenizer with no merges maps each byte to its own id (0..255).
  BpeTokenizer tok;
  const std::string sentence = "The small dog ran to the river.";
  std::vector<int32_t> ids_v = tok.encode(sentence);
  const int64_t T = int64_t(ids_v.size());
  Tensor ids = from_vector(ids_v, {1, T});

  // 2. The model: a masked mixer, freshly initialised and frozen (only the input will learn).
  ModelConfig cfg;
  cfg.kind = ModelKind::masked_mixer;
  cfg.vocab_size = tok.vocab_size();
  cfg.d_model = 64;
  cfg.n_layers = 2;
  cfg.n_ctx = 32;
  Generator gen(0);
  std::unique_ptr<LanguageModel> model = make_model(cfg, gen);
  for (Tensor& p : model->parameters()) p.set_requires_grad(false);
  if (layer < 0 || layer > model->num_layers()) throw Error("--layer must be in 0.." + std::to_string(cfg.n_layers));

  // 3. The target: activations after `layer` blocks for the real sentence, [1, T, D].
  Tensor target;
  {
    NoGradGuard no_grad;
    target = model->hidden_states(ids, layer);
  }

  // 4. Start from random embeddings and descend on them. e is a leaf we own, not a parameter
  // of the model, yet the library's SGD updates it like one. The loss is the summed L1
  // distance, the step size decays linearly to a tenth (the paper's schedule).
  Tensor e = randn({1, T, cfg.d_model}, gen).set_requires_grad(true);
  SGD opt({e}, SGDOptions{.lr = lr});
  const Tensor& W = model->token_embedding_weight();  // [V, D]
  std::vector<int32_t> start_ids, end_ids;
  std::printf("input:      \"%s\"  (%lld tokens, hidden state after %d of %lld blocks)\n", sentence.c_str(),
              (long long)T, layer, (long long)model->num_layers());
  std::printf("start:      \"%s\"\n", decode_nearest(e.select(0, 0), W, tok, start_ids).c_str());
  double first = 0, last = 0;
  for (int64_t k = 0; k < steps; ++k) {
    Tensor hidden = model->forward_embeddings(e, layer, /*apply_head=*/false);  // [1, T, D]
    Tensor loss = l1_loss(hidden, target, Reduction::sum);
    loss.backward();  // only e requires grad, so only e gets a .grad
    opt.set_lr(lr * (1.0 - 0.9 * double(k) / double(steps)));
    opt.step();
    opt.zero_grad();
    last = loss.item();
    if (k == 0) first = last;
    if (k % (steps / 6 > 0 ? steps / 6 : 1) == 0) std::printf("step %4lld  L1 %.3f\n", (long long)k, last);
  }
  std::string recovered = decode_nearest(e.select(0, 0), W, tok, end_ids);
  int right_start = 0, right_end = 0;
  for (int64_t t = 0; t < T; ++t) {
    right_start += start_ids[size_t(t)] == ids_v[size_t(t)];
    right_end += end_ids[size_t(t)] == ids_v[size_t(t)];
  }
  std::printf("recovered:  \"%s\"\n", recovered.c_str());
  std::printf("L1 fell from %.3f to %.3f; tokens recovered: %d/%lld at the start, %d/%lld at the end\n", first,
              last, right_start, (long long)T, right_end, (long long)T);
  return last < 0.5 * first && 2 * right_end > T ? 0 : 1;
} catch (const std::logic_error& e) {  // from std::stoi / std::stod
  std::fprintf(stderr, "example_input_reconstruction: error: a flag's value is not a number (%s)\n", e.what());
  return 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "example_input_reconstruction: error: %s\n", e.what());
  return 2;
}
