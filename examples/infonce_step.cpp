// Example 4: one InfoNCE step with in-batch negatives (the paper's retrieval training, docs/paper.md E).
//
//   example_infonce_step [--steps N]
//
// N queries and their N documents are embedded by a small encoder; query i's positive is
// document i and the other N - 1 documents are its negatives. The loss is the cross-entropy of
// each row of the cosine-similarity matrix (scaled by 1/temperature) against its diagonal entry.
// We compute it by hand, compare it with the library's info_nce_loss, take an AdamW step (or N),
// and print the loss and the retrieval accuracy before and after.
// Exits non-zero unless the two losses agree and the loss fell.
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/layers.h"  // Embedding, Linear
#include "nn/optim.h"   // AdamW
#include "ops/ops.h"    // Tensor, ops, NoGradGuard

using namespace mg;

// A bag-of-tokens encoder: the mean of the token embeddings, then a linear map.
// ids i32 [N, L] -> embeddings [N, D].
struct Encoder {
  Embedding tokens;
  Linear proj;
  Encoder(int64_t vocab, int64_t dim, Generator& gen) : tokens(vocab, dim, gen), proj(dim, dim, true, gen) {}
  Tensor forward(const Tensor& ids) const { return proj.forward(mean(tokens.forward(ids), {1})); }
  std::vector<Tensor> parameters() const {
    return {tokens.weight, proj.weight, proj.bias};
  }
};

// Fraction of queries whose most similar document is their own (the diagonal wins its row).
double top1_accuracy(const Tensor& sim) {
  const int64_t N = sim.size(0);
  std::vector<float> s = sim.to_vector<float>();
  int hits = 0;
  for (int64_t i = 0; i < N; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < N; ++j)
      if (s[size_t(i * N + j)] > s[size_t(i * N + best)]) best = j;
    hits += best == i;
  }
  return double(hits) / double(N);
}

int main(int argc, char** argv) try {
  int steps = 1;
  if (argc == 3 && std::string(argv[1]) == "--steps") steps = std::stoi(argv[2]);
  else if (argc != 1) throw Error("usage: example_infonce_step [--steps N]");

  const int64_t N = 16, doc_len = 24, query_len = 6, vocab = 200, dim = 32;
  const double temperature = 0.05;
  Generator gen(3);

  // Data: each document is random token ids; its query is three of the document's tokens and
  // three unrelated ones, so a good encoder places a query near its own document.
  Tensor docs = randint(0, int32_t(vocab), {N, doc_len}, gen);  // i32 [N, 24]
  Tensor noise = randint(0, int32_t(vocab), {N, query_len / 2}, gen);
  Tensor queries = cat({docs.slice(1, 0, query_len / 2), noise}, 1);  // i32 [N, 6]

  Encoder enc(vocab, dim, gen);
  AdamW opt(enc.parameters(), AdamWOptions{.lr = 2e-3, .weight_decay = 0.0});

  // The InfoNCE loss, written out: unit vectors, all N x N similarities, diagonal targets.
  auto infonce = [&](Tensor& sim) {
    Tensor q = l2_normalize(enc.forward(queries), -1);  // [N, D], rows of length 1
    Tensor d = l2_normalize(enc.forward(docs), -1);     // [N, D]
    sim = matmul(q, d.t());                              // [N, N], sim[i][j] = cos(query i, doc j)
    Tensor targets = arange(double(N), TensorOptions{}.with_dtype(DType::i32));  // 0, 1, ..., N-1
    return cross_entropy(sim / temperature, targets);   // mean over i of -log softmax(row i)[i]
  };

  Tensor sim;
  Tensor loss = infonce(sim);
  const double before = loss.item(), acc_before = top1_accuracy(sim);
  // The library's fused form of the same loss, on the same embeddings.
  const double library = info_nce_loss(enc.forward(queries), enc.forward(docs), temperature).item();
  std::printf("InfoNCE by hand %.6f, info_nce_loss %.6f\n", before, library);

  for (int step = 0; step < steps; ++step) {
    if (step > 0) loss = infonce(sim);
    loss.backward();  // gradients reach the embedding table and the projection
    opt.step();
    opt.zero_grad();
  }

  double after = 0, acc_after = 0;
  {
    NoGradGuard no_grad;  // evaluation only
    after = infonce(sim).item();
    acc_after = top1_accuracy(sim);
  }
  std::printf("after %d step%s: loss %.4f -> %.4f, top-1 retrieval %.2f -> %.2f (chance %.2f)\n", steps,
              steps == 1 ? "" : "s", before, after, acc_before, acc_after, 1.0 / double(N));
  const bool agree = std::abs(before - library) <= 1e-5 * std::abs(library);
  return agree && after < before ? 0 : 1;
} catch (const std::logic_error& e) {  // from std::stoi / std::stod
  std::fprintf(stderr, "example_infonce_step: error: a flag's value is not a number (%s)\n", e.what());
  return 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "example_infonce_step: error: %s\n", e.what());
  return 2;
}
