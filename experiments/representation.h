#pragma once
// The paper's input-representation test (docs/paper.md D, Algorithm 1, Fig. 1 and 3): how much of a
// model's input can be recovered from its activations after `layer` blocks.
//
// With the model frozen, target activations O = f(embed(ids)) are recorded; random Gaussian
// input embeddings e_0 are then optimised by plain gradient descent so that f(e) matches O
// (summed L1 by default), with the step size decaying linearly from eta to eta * final_lr_ratio
// over the steps. The recovered embeddings are mapped back to tokens through the pseudo-inverse
// of the token embedding matrix (or by cosine nearest neighbour), and the "modified Hamming
// metric" is the fraction of non-pad positions whose true token is not among the top-k (k = 5)
// recovered ids: 0 is perfect recovery, 1 is none.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/lm.h"

namespace mg {

// How f(e) is compared with the target O, per prompt, summed over the batch (so a batch of
// prompts is B independent optimisations, as each model treats batch rows independently).
//   l1:     sum |O - f(e)|                      (the paper's default)
//   l2:     sum (O - f(e))^2
//   cosine: 1 - |<O, f(e)>| / (||O|| ||f(e)||), on each prompt's flattened [T*D] activations
enum class RepresentationLoss { l1, l2, cosine };
// pinv: logits = e @ pinv(W) (the paper); cosine: logits = cos(e, W[v]) for each token v.
enum class RepresentationDecode { pinv, cosine };

const char* representation_loss_name(RepresentationLoss l);
const char* representation_decode_name(RepresentationDecode d);
// Parse the names above; throw mg::Error listing the accepted names.
RepresentationLoss parse_representation_loss(const std::string& s);
RepresentationDecode parse_representation_decode(const std::string& s);

struct RepresentationOptions {
  int layer = -1;                  // blocks run before comparing (0..L; -1 = all L)
  int64_t steps = 500;             // N gradient-descent iterations
  double lr = 0.02;                // eta_0; eta_k = lr * ((N-k)/N + final_lr_ratio * k/N)
  double final_lr_ratio = 0.1;     // the paper decays eta to eta/10
  RepresentationLoss loss = RepresentationLoss::l1;
  RepresentationDecode decode = RepresentationDecode::pinv;
  int top_k = 5;                   // a position counts as recovered when its token is in the top k
  int32_t pad_id = -1;             // reference tokens equal to it are not scored (< 0: score all)
  uint64_t seed = 0;               // draws e_0 and the diagnostic perturbation
  double init_std = 1.0;           // e_0 ~ N(0, init_std^2)
  double perturbation_std = 0.05;  // diagnostic e' = e + N(0, perturbation_std^2)
};

struct RepresentationResult {
  int layer = 0;                    // resolved (0..L)
  int64_t batch = 0, length = 0;    // B, T
  double lr = 0;                    // eta_0 used
  // loss[k] = the loss of e_k (k = 0..N); loss.front() is the start, loss.back() the end.
  std::vector<double> loss;
  // sum |f(e + perturbation_std * N(0,1)) - O|: the paper's "close enough" scale (D.3).
  double perturbation_l1 = 0;
  double final_l1 = 0;              // sum |f(e_N) - O|, whatever the optimised loss
  Tensor recovered;                 // e_N [B, T, D], detached
  std::vector<int32_t> reference;   // [B*T] the true ids
  std::vector<int32_t> top1;        // [B*T] the best recovered id per position
  std::vector<uint8_t> in_top_k;    // [B*T] 1 where the true id is among the top-k
  std::vector<uint8_t> scored;      // [B*T] 1 where the reference is not pad
  // The paper's metric: per prompt, the fraction of scored positions missing from the top-k;
  // averaged over prompts that have any scored position. 0 = perfect.
  double hamming = 0;
  double top1_accuracy = 0;         // over all scored positions
  double seconds = 0;
};

// Runs Algorithm 1 on ids [B, T] (i32; T within the model's context). The model's parameters
// are frozen for the duration (requires_grad off, restored afterwards), so none gains a .grad
// and none changes. Throws mg::Error for a layer outside [-1, L] (naming it), bad ids, or bad
// options.
RepresentationResult recover_input(LanguageModel& model, const Tensor& ids, const RepresentationOptions& opts);

// Short probes of recover_input (probe_steps each, same schedule shape) at each candidate eta;
// returns the one whose summed-L1 distance at the end is lowest (non-finite ones never win).
double tune_representation_lr(LanguageModel& model, const Tensor& ids, RepresentationOptions opts,
                              const std::vector<double>& candidates, int64_t probe_steps);

// pinv(W) = (W^T W)^{-1} W^T for W [V, D] with full column rank (V >= D), computed in f64
// (Cholesky of the D x D Gram matrix): an f64 [D, V] tensor on W's device. Throws mg::Error when
// W^T W is not positive definite (rank-deficient W).
Tensor embedding_pinv(const Tensor& W);

// Decodes embeddings e [..., D] against the token matrix W [V, D]: the k best ids per row,
// best first, as a host vector [rows * k] (rows = numel / D). `pinv` may be given (from
// embedding_pinv) to avoid recomputing it; it is only used for the pinv method.
std::vector<int32_t> decode_embeddings(const Tensor& e, const Tensor& W, RepresentationDecode method, int k,
                                       const Tensor& pinv = Tensor());

// Gauss/Cholesky helper, exposed for tests: inverts a symmetric positive-definite n x n matrix
// (row-major) in place. Throws mg::Error naming the pivot when it is not positive definite.
void invert_spd(std::vector<double>& a, int64_t n);

}  // namespace mg
