// Example 1: train a small masked mixer language model on a text file, then generate from it.
//
//   example_train_mixer_lm [TEXT_FILE] [--steps N]
//
// Without TEXT_FILE it trains on a short text it composes itself (simple sentences from a few
// word lists). Steps: train a byte-level BPE tokenizer, build the model, run AdamW on the causal
// language-model loss, print the loss as it falls, and generate a few tokens greedily.
// Exits non-zero unless the loss fell below the text's unigram entropy (what a model that
// ignores the context would reach), so ctest can run it as a test.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"  // BpeTokenizer
#include "nn/lm.h"               // ModelConfig, make_model, lm_loss
#include "nn/optim.h"            // AdamW, clip_grad_norm
#include "ops/ops.h"             // Tensor, factories, ops, NoGradGuard

using namespace mg;

// Our own tiny corpus. A fixed-seed generator picks the words, so every run sees the same text.
std::string make_text() {
  const char* who[] = {"Tom", "Mia", "The cat", "The old dog", "A small bird"};
  const char* did[] = {"saw", "liked", "found", "helped", "followed"};
  const char* what[] = {"a red ball", "the green tree", "a warm house", "the blue sea", "a little boat"};
  const char* how[] = {"and smiled.", "in the park.", "after lunch.", "on a sunny day.", "with a friend."};
  uint32_t state = 1;
  auto pick = [&state] { state = state * 1103515245u + 12345u; return (state >> 16) % 5; };
  std::string text;
  for (int i = 0; i < 400; ++i) {
    const unsigned a = pick(), b = pick(), c = pick(), d = pick();  // in this order on every compiler
    text += std::string(who[a]) + " " + did[b] + " " + what[c] + " " + how[d];
    text += (i % 4 == 3) ? "\n" : " ";
  }
  return text;
}

int main(int argc, char** argv) try {
  std::string path;
  int steps = 300;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::stoi(argv[++i]);
    else if (a.rfind("--", 0) != 0 && path.empty()) path = a;
    else throw Error("unknown argument '" + a + "' (usage: example_train_mixer_lm [TEXT_FILE] [--steps N])");
  }
  if (steps < 1) throw Error("--steps must be at least 1, got " + std::to_string(steps));
  std::string text = make_text();
  if (!path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    std::ostringstream all;
    all << in.rdbuf();
    text = all.str();
  }

  // 1. Tokenizer: 256 byte tokens, then merges learned from the text, then eos and pad.
  BpeTokenizer tok = BpeTokenizer::train(std::vector<std::string>{text}, /*vocab_size=*/256 + 128 + 2);
  std::vector<int32_t> tokens = tok.encode(text);
  std::printf("text: %zu bytes, beginning \"%s\"\n", text.size(), text.substr(0, 60).c_str());
  std::printf("tokens: %zu (vocabulary %d)\n", tokens.size(), tok.vocab_size());
  // The loss to beat: guessing every token from its frequency alone, ignoring the context.
  std::vector<double> count(size_t(tok.vocab_size()), 0.0);
  for (int32_t t : tokens) count[size_t(t)] += 1;
  double unigram = 0;
  for (double c : count)
    if (c > 0) unigram -= c / double(tokens.size()) * std::log(c / double(tokens.size()));
  std::printf("unigram entropy (a context-free model's loss): %.3f nats\n", unigram);

  // 2. Model: the paper's flat masked mixer, tiny. n_ctx is the size of each mixing matrix.
  ModelConfig cfg;
  cfg.kind = ModelKind::masked_mixer;
  cfg.vocab_size = tok.vocab_size();
  cfg.d_model = 64;
  cfg.n_layers = 2;
  cfg.n_ctx = 32;
  Generator gen(0);  // every weight is drawn from this seeded generator
  std::unique_ptr<LanguageModel> model = make_model(cfg, gen);
  std::printf("model: %s, %lld parameters\n", cfg.summary().c_str(), (long long)model->num_parameters());
  const int64_t B = 8, T = cfg.n_ctx;
  if (int64_t(tokens.size()) <= T) throw Error("text too short: need more than " + std::to_string(T) + " tokens");

  // 3. Optimizer over every parameter of the model.
  AdamW opt(model->parameters(), AdamWOptions{.lr = 3e-3, .weight_decay = 0.0});

  // 4. Training: each step takes B windows of T tokens at random places in the text.
  double first = 0, recent = 0;
  for (int step = 0; step < steps; ++step) {
    std::vector<int32_t> starts = randint(0, int32_t(tokens.size() - T), {B}, gen).to_vector<int32_t>();
    std::vector<int32_t> window;
    for (int32_t s : starts) window.insert(window.end(), tokens.begin() + s, tokens.begin() + s + T);
    Tensor ids = from_vector(window, {B, T});  // i32 [B, T]

    Tensor logits = model->forward(ids);           // [B, T, V]
    Tensor loss = lm_loss(logits, ids, /*pad_id=*/-1);  // predicts ids[:, t+1] from logits[:, t]
    loss.backward();                               // every parameter now has a .grad
    clip_grad_norm(model->parameters(), 1.0);
    opt.step();
    opt.zero_grad();

    const double l = loss.item();
    if (step == 0) first = l;
    recent = step == 0 ? l : 0.9 * recent + 0.1 * l;  // a smoothed loss, less noisy than one batch
    if (step % 25 == 0 || step == steps - 1) std::printf("step %4d  loss %.3f  (smoothed %.3f)\n", step, l, recent);
  }

  // 5. Generation: feed the prompt, append the most likely next token, repeat.
  std::vector<int32_t> out = tok.encode("Tom saw");
  NoGradGuard no_grad;  // no training here: record no graph
  for (int i = 0; i < 12; ++i) {
    const int64_t n = std::min<int64_t>(int64_t(out.size()), T);  // the last (at most) n_ctx tokens
    std::vector<int32_t> context(out.end() - n, out.end());
    Tensor logits = model->forward(from_vector(context, {1, n}));
    std::vector<float> last = logits.select(0, 0).select(0, n - 1).to_vector<float>();  // [V]
    int32_t best = 0;
    for (int32_t v = 1; v < int32_t(last.size()); ++v)
      if (last[size_t(v)] > last[size_t(best)]) best = v;
    out.push_back(best);
  }
  std::printf("sample: %s\n", tok.decode(out).c_str());

  std::printf("loss fell from %.3f to %.3f (smoothed); the unigram entropy is %.3f\n", first, recent, unigram);
  return recent < unigram ? 0 : 1;  // the model uses the context
} catch (const std::logic_error& e) {  // from std::stoi / std::stod
  std::fprintf(stderr, "example_train_mixer_lm: error: a flag's value is not a number (%s)\n", e.what());
  return 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "example_train_mixer_lm: error: %s\n", e.what());
  return 2;
}
