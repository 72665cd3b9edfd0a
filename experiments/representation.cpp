#include "experiments/representation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "core/factories.h"
#include "ops/elementwise.h"
#include "ops/losses.h"
#include "ops/matmul.h"
#include "ops/reduce.h"

namespace mg {

namespace {

// Turns requires_grad off on every parameter for a scope, so backward reaches only the input
// leaf: no parameter gains a .grad and no parameter gradient is computed.
class FrozenParameters {
 public:
  explicit FrozenParameters(const Module& m) : params_(m.parameters()) {
    for (Tensor& p : params_) {
      was_.push_back(p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~FrozenParameters() {
    for (size_t i = 0; i < params_.size(); ++i) params_[i].set_requires_grad(was_[i]);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<Tensor> params_;
  std::vector<bool> was_;
};

Tensor representation_loss(const Tensor& out, const Tensor& target, RepresentationLoss kind) {
  switch (kind) {
    case RepresentationLoss::l1: return l1_loss(out, target, Reduction::sum);
    case RepresentationLoss::l2: return mse_loss(out, target, Reduction::sum);
    case RepresentationLoss::cosine: {
      const int64_t B = out.size(0);
      Tensor c = cosine_similarity(out.reshape({B, -1}), target.reshape({B, -1}), -1);
      return sum(rsub(1.0, abs(c)));
    }
  }
  throw Error("representation: unknown loss");
}

double l1_distance(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  return l1_loss(a, b, Reduction::sum).item();
}

void check_options(const LanguageModel& model, const Tensor& ids, const RepresentationOptions& o) {
  const int64_t L = model.num_layers();
  MG_CHECK(o.layer >= -1 && o.layer <= L, "representation: layer ", o.layer, " out of range for a ", L,
           "-layer model (0..", L, ", or -1 for all)");
  MG_CHECK(ids.defined() && ids.dtype() == DType::i32 && ids.dim() == 2 && ids.size(0) >= 1 && ids.size(1) >= 1,
           "representation: ids must be non-empty i32 [B, T], got ",
           ids.defined() ? ids.desc() : std::string("an undefined tensor"));
  MG_CHECK(o.steps >= 0, "representation: steps must be >= 0, got ", o.steps);
  MG_CHECK(std::isfinite(o.lr) && o.lr > 0, "representation: lr must be a positive number, got ", o.lr);
  MG_CHECK(std::isfinite(o.final_lr_ratio) && o.final_lr_ratio >= 0,
           "representation: final_lr_ratio must be >= 0, got ", o.final_lr_ratio);
  MG_CHECK(o.top_k >= 1 && o.top_k <= model.config().vocab_size, "representation: top_k must be in [1, V = ",
           model.config().vocab_size, "], got ", o.top_k);
  MG_CHECK(o.init_std > 0, "representation: init_std must be > 0, got ", o.init_std);
}

struct Optimised {
  Tensor target, e;
  std::vector<double> loss;
  double perturbation_l1 = 0, final_l1 = 0;
  int layer = 0;
};

// Algorithm 1 steps 2-5: target, diagnostic scale, and the gradient descent itself.
Optimised optimise(LanguageModel& model, const Tensor& ids, const RepresentationOptions& o) {
  check_options(model, ids, o);
  Optimised r;
  r.layer = o.layer < 0 ? int(model.num_layers()) : o.layer;
  FrozenParameters frozen(model);
  const Tensor& W = model.token_embedding_weight();
  const TensorOptions opts{W.dtype(), W.device()};
  Tensor emb;
  {
    NoGradGuard no_grad;
    emb = model.embed(ids.to(W.device())).detach();
    r.target = model.forward_embeddings(emb, r.layer, false).detach();
  }
  Generator gen(o.seed);
  Tensor e = mul(randn(emb.shape(), gen, opts), o.init_std);
  {
    NoGradGuard no_grad;
    Tensor perturbed = add(emb, mul(randn(emb.shape(), gen, opts), o.perturbation_std));
    r.perturbation_l1 = l1_distance(model.forward_embeddings(perturbed, r.layer, false), r.target);
  }
  const double N = double(std::max<int64_t>(o.steps, 1));
  for (int64_t k = 0; k < o.steps; ++k) {
    e.set_requires_grad(true);
    Tensor loss = representation_loss(model.forward_embeddings(e, r.layer, false), r.target, o.loss);
    r.loss.push_back(loss.item());
    loss.backward();
    const double eta = o.lr * ((N - double(k)) / N + o.final_lr_ratio * double(k) / N);
    NoGradGuard no_grad;
    e = sub(e, mul(e.grad(), eta)).detach();
  }
  {
    NoGradGuard no_grad;
    Tensor out = model.forward_embeddings(e, r.layer, false);
    r.loss.push_back(representation_loss(out, r.target, o.loss).item());
    r.final_l1 = l1_distance(out, r.target);
  }
  r.e = e.detach();
  return r;
}

// The k largest entries of each row of a host matrix [rows, V], best first (ties: lower id).
std::vector<int32_t> top_k_rows(const std::vector<double>& logits, int64_t rows, int64_t V, int k) {
  std::vector<int32_t> out(size_t(rows * k));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = logits.data() + r * V;
    std::vector<int32_t> idx(static_cast<size_t>(V));
    for (int64_t v = 0; v < V; ++v) idx[size_t(v)] = int32_t(v);
    auto better = [row](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
    std::copy(idx.begin(), idx.begin() + k, out.begin() + r * k);
  }
  return out;
}

}  // namespace

const char* representation_loss_name(RepresentationLoss l) {
  switch (l) {
    case RepresentationLoss::l1: return "l1";
    case RepresentationLoss::l2: return "l2";
    case RepresentationLoss::cosine: return "cosine";
  }
  return "?";
}

const char* representation_decode_name(RepresentationDecode d) {
  return d == RepresentationDecode::pinv ? "pinv" : "cosine";
}

RepresentationLoss parse_representation_loss(const std::string& s) {
  if (s == "l1") return RepresentationLoss::l1;
  if (s == "l2") return RepresentationLoss::l2;
  if (s == "cosine") return RepresentationLoss::cosine;
  throw Error("unknown representation loss '" + s + "' (expected l1, l2 or cosine)");
}

RepresentationDecode parse_representation_decode(const std::string& s) {
  if (s == "pinv") return RepresentationDecode::pinv;
  if (s == "cosine") return RepresentationDecode::cosine;
  throw Error("unknown representation decode '" + s + "' (expected pinv or cosine)");
}

void invert_spd(std::vector<double>& a, int64_t n) {
  MG_CHECK(n >= 1 && int64_t(a.size()) == n * n, "invert_spd: expected ", n, " x ", n, " values, got ", a.size());
  // Cholesky a = L L^T (L in the lower triangle), then a^{-1} = L^{-T} L^{-1}.
  std::vector<double> L(size_t(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    double d = a[size_t(j * n + j)];
    for (int64_t p = 0; p < j; ++p) d -= L[size_t(j * n + p)] * L[size_t(j * n + p)];
    MG_CHECK(d > 0 && std::isfinite(d), "invert_spd: matrix is not positive definite (pivot ", j, " = ", d,
             "); the embedding matrix is rank-deficient");
    const double ljj = std::sqrt(d);
    L[size_t(j * n + j)] = ljj;
#pragma omp parallel for schedule(static) if (n - j > 64)
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[size_t(i * n + j)];
      for (int64_t p = 0; p < j; ++p) s -= L[size_t(i * n + p)] * L[size_t(j * n + p)];
      L[size_t(i * n + j)] = s / ljj;
    }
  }
  // Linv = L^{-1} (lower triangular), column by column.
  std::vector<double> Li(size_t(n * n), 0.0);
#pragma omp parallel for schedule(dynamic, 8) if (n > 64)
  for (int64_t c = 0; c < n; ++c) {
    Li[size_t(c * n + c)] = 1.0 / L[size_t(c * n + c)];
    for (int64_t i = c + 1; i < n; ++i) {
      double s = 0;
      for (int64_t p = c; p < i; ++p) s += L[size_t(i * n + p)] * Li[size_t(p * n + c)];
      Li[size_t(i * n + c)] = -s / L[size_t(i * n + i)];
    }
  }
  // a^{-1}[i][j] = sum_{p >= max(i,j)} Li[p][i] Li[p][j].
#pragma omp parallel for schedule(dynamic, 8) if (n > 64)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t p = i; p < n; ++p) s += Li[size_t(p * n + i)] * Li[size_t(p * n + j)];
      a[size_t(i * n + j)] = s;
      a[size_t(j * n + i)] = s;
    }
}

Tensor embedding_pinv(const Tensor& W) {
  MG_CHECK(W.defined() && W.dim() == 2, "embedding_pinv: expected a matrix [V, D], got ",
           W.defined() ? W.desc() : std::string("an undefined tensor"));
  const int64_t V = W.size(0), D = W.size(1);
  MG_CHECK(V >= D, "embedding_pinv: W [", V, ", ", D, "] has fewer rows than columns, so W^T W is singular");
  NoGradGuard no_grad;
  Tensor W64 = W.detach().to(DType::f64);
  std::vector<double> gram = matmul(W64.t(), W64).contiguous().to_vector<double>();
  invert_spd(gram, D);
  Tensor inv = from_vector(gram, Shape{D, D}, TensorOptions{DType::f64, W.device()});
  return matmul(inv, W64.t()).contiguous();
}

std::vector<int32_t> decode_embeddings(const Tensor& e, const Tensor& W, RepresentationDecode method, int k,
                                       const Tensor& pinv) {
  MG_CHECK(W.defined() && W.dim() == 2 && e.defined() && e.dim() >= 1 && e.size(-1) == W.size(1),
           "decode_embeddings: expected e [..., D] and W [V, D], got ", e.defined() ? e.desc() : "undefined", " and ",
           W.defined() ? W.desc() : "undefined");
  const int64_t V = W.size(0), D = W.size(1), rows = e.numel() / D;
  MG_CHECK(k >= 1 && k <= V, "decode_embeddings: k = ", k, " outside [1, V = ", V, "]");
  NoGradGuard no_grad;
  Tensor e2 = e.detach().to(W.device()).to(DType::f64).reshape({rows, D});
  Tensor logits;
  if (method == RepresentationDecode::pinv) {
    Tensor P = pinv.defined() ? pinv : embedding_pinv(W);
    MG_CHECK(P.dim() == 2 && P.size(0) == D && P.size(1) == V, "decode_embeddings: pinv must be [", D, ", ", V,
             "], got ", P.desc());
    logits = matmul(e2, P.to(DType::f64));
  } else {
    logits = matmul(l2_normalize(e2, -1), l2_normalize(W.detach().to(DType::f64), -1).t());
  }
  return top_k_rows(logits.contiguous().to_vector<double>(), rows, V, k);
}

RepresentationResult recover_input(LanguageModel& model, const Tensor& ids, const RepresentationOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  Optimised opt = optimise(model, ids, o);
  RepresentationResult r;
  r.layer = opt.layer;
  r.batch = ids.size(0);
  r.length = ids.size(1);
  r.lr = o.lr;
  r.loss = std::move(opt.loss);
  r.perturbation_l1 = opt.perturbation_l1;
  r.final_l1 = opt.final_l1;
  r.recovered = opt.e;

  const int k = o.top_k;
  std::vector<int32_t> top = decode_embeddings(opt.e, model.token_embedding_weight(), o.decode, k);
  r.reference = ids.contiguous().to_vector<int32_t>();
  const int64_t n = r.batch * r.length;
  r.top1.resize(size_t(n));
  r.in_top_k.assign(size_t(n), 0);
  r.scored.assign(size_t(n), 0);
  int64_t scored = 0, top1_hits = 0, prompts = 0;
  double hamming_sum = 0;
  for (int64_t b = 0; b < r.batch; ++b) {
    int64_t s = 0, miss = 0;
    for (int64_t t = 0; t < r.length; ++t) {
      const size_t i = size_t(b * r.length + t);
      const int32_t ref = r.reference[i];
      const int32_t* cand = top.data() + i * size_t(k);
      r.top1[i] = cand[0];
      r.in_top_k[i] = std::find(cand, cand + k, ref) != cand + k;
      if (o.pad_id >= 0 && ref == o.pad_id) continue;
      r.scored[i] = 1;
      ++s;
      miss += !r.in_top_k[i];
      top1_hits += cand[0] == ref;
    }
    scored += s;
    if (s > 0) {
      hamming_sum += double(miss) / double(s);
      ++prompts;
    }
  }
  r.hamming = prompts ? hamming_sum / double(prompts) : std::numeric_limits<double>::quiet_NaN();
  r.top1_accuracy = scored ? double(top1_hits) / double(scored) : std::numeric_limits<double>::quiet_NaN();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

double tune_representation_lr(LanguageModel& model, const Tensor& ids, RepresentationOptions opts,
                              const std::vector<double>& candidates, int64_t probe_steps) {
  MG_CHECK(!candidates.empty(), "tune_representation_lr: no candidate learning rates");
  MG_CHECK(probe_steps >= 1, "tune_representation_lr: probe_steps must be >= 1, got ", probe_steps);
  opts.steps = probe_steps;
  double best = candidates.front(), best_l1 = std::numeric_limits<double>::infinity();
  for (double lr : candidates) {
    opts.lr = lr;
    const double l1 = optimise(model, ids, opts).final_l1;
    if (std::isfinite(l1) && l1 < best_l1) {
      best_l1 = l1;
      best = lr;
    }
  }
  return best;
}

}  // namespace mg
