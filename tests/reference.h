#pragma once
// Plain-loop reference implementations of the ops, one per op, in the style of llm.c's CPU
// kernels: row-major contiguous double arrays, nested loops, no blocking, no vectorisation, no
// threads, nothing clever, so each can be checked by reading it against the op's formula. The
// tests compare the library's kernels (and gradients where a test uses the backward here) with
// these. Conventions: outputs first, then inputs, then sizes; the shape of every array is in the
// comment above the function; an optional input (bias, weight) may be nullptr.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/philox.h"

namespace mg::ref {

// ---- activations (elementwise) --------------------------------------------------------------

// gelu(x) = x Phi(x), written with erfc so the negative tail keeps its relative accuracy.
inline double gelu(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
// The tanh approximation 0.5 x (1 + tanh(u)), written as x sigmoid(2u): the same function without
// the cancellation of 1 + tanh(u) for large negative x.
inline double gelu_tanh(double x) {
  const double u = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
  return x / (1 + std::exp(-2 * u));
}
inline double silu(double x) { return x / (1 + std::exp(-x)); }
inline double relu(double x) { return x > 0 ? x : 0; }

// out, gate, up: [n]. out = silu(gate) * up
inline void swiglu_forward(double* out, const double* gate, const double* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

// ---- normalisation over the last dim ----------------------------------------------------------

// out, inp: [N, D]; weight, bias: [D] or nullptr. Two-pass mean and (biased) variance per row.
inline void layer_norm_forward(double* out, const double* inp, const double* weight, const double* bias, int64_t N,
                               int64_t D, double eps) {
  for (int64_t r = 0; r < N; ++r) {
    const double* x = inp + r * D;
    double mean = 0;
    for (int64_t j = 0; j < D; ++j) mean += x[j];
    mean /= double(D);
    double var = 0;
    for (int64_t j = 0; j < D; ++j) var += (x[j] - mean) * (x[j] - mean);
    var /= double(D);
    const double rstd = 1 / std::sqrt(var + eps);
    for (int64_t j = 0; j < D; ++j) {
      double y = (x[j] - mean) * rstd;
      if (weight) y *= weight[j];
      if (bias) y += bias[j];
      out[r * D + j] = y;
    }
  }
}

// out, inp: [N, D]; weight: [D] or nullptr. out = x / sqrt(mean(x^2) + eps) * weight (HF LlamaRMSNorm).
inline void rms_norm_forward(double* out, const double* inp, const double* weight, int64_t N, int64_t D, double eps) {
  for (int64_t r = 0; r < N; ++r) {
    const double* x = inp + r * D;
    double ms = 0;
    for (int64_t j = 0; j < D; ++j) ms += x[j] * x[j];
    ms /= double(D);
    for (int64_t j = 0; j < D; ++j) out[r * D + j] = x[j] / std::sqrt(ms + eps) * (weight ? weight[j] : 1.0);
  }
}

// ---- softmax and cross-entropy over the last dim ----------------------------------------------

// row: [n]. log(sum_j exp(row[j])), shifted by the max so that large entries do not overflow.
inline double logsumexp(const double* row, int64_t n) {
  double m = -std::numeric_limits<double>::infinity(), s = 0;
  for (int64_t j = 0; j < n; ++j) m = std::max(m, row[j]);
  for (int64_t j = 0; j < n; ++j) s += std::exp(row[j] - m);
  return m + std::log(s);
}

// out, inp: [N, V]. Softmax of every row, or log-softmax when `log`.
inline void softmax_forward(double* out, const double* inp, int64_t N, int64_t V, bool log) {
  for (int64_t r = 0; r < N; ++r) {
    const double* x = inp + r * V;
    const double lse = logsumexp(x, V);
    for (int64_t j = 0; j < V; ++j) out[r * V + j] = log ? x[j] - lse : std::exp(x[j] - lse);
  }
}

// losses: [N]; logits: [N, V]; targets: [N]. losses[r] = logsumexp(logits[r]) - logits[r, t_r],
// 0 where t_r == ignore_index. Returns the number of rows not ignored (the divisor of the mean).
inline int64_t cross_entropy_forward(double* losses, const double* logits, const int32_t* targets, int64_t N,
                                     int64_t V, int64_t ignore_index) {
  int64_t count = 0;
  for (int64_t r = 0; r < N; ++r) {
    losses[r] = 0;
    if (targets[r] == ignore_index) continue;
    losses[r] = logsumexp(logits + r * V, V) - logits[r * V + targets[r]];
    ++count;
  }
  return count;
}

// dlogits, logits: [N, V]; targets: [N]. The gradient of scale * sum_r losses[r]:
// dlogits[r] = scale (softmax(logits[r]) - onehot(t_r)), 0 in ignored rows.
inline void cross_entropy_backward(double* dlogits, const double* logits, const int32_t* targets, int64_t N,
                                   int64_t V, int64_t ignore_index, double scale) {
  for (int64_t r = 0; r < N; ++r) {
    const double lse = logsumexp(logits + r * V, V);
    for (int64_t j = 0; j < V; ++j) {
      const double p = std::exp(logits[r * V + j] - lse);
      dlogits[r * V + j] = targets[r] == ignore_index ? 0.0 : scale * (p - (j == targets[r] ? 1.0 : 0.0));
    }
  }
}

// ---- attention, token mixing, rotary embedding ------------------------------------------------

// out, q, k, v: [BH, T, Dh] (batch and heads flattened). Per (b, h) the full score matrix
// s[i, j] = q_i . k_j * scale, masked to j <= i when causal, softmaxed over j, times v.
// scale 0 means 1/sqrt(Dh).
inline void attention_forward(double* out, const double* q, const double* k, const double* v, int64_t BH, int64_t T,
                              int64_t Dh, bool causal, double scale) {
  if (scale == 0) scale = 1.0 / std::sqrt(double(Dh));
  for (int64_t bh = 0; bh < BH; ++bh) {
    const double* qb = q + bh * T * Dh;
    const double* kb = k + bh * T * Dh;
    const double* vb = v + bh * T * Dh;
    for (int64_t i = 0; i < T; ++i) {
      const int64_t n = causal ? i + 1 : T;
      std::vector<double> s(size_t(n), 0.0);
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        double d = 0;
        for (int64_t c = 0; c < Dh; ++c) d += qb[i * Dh + c] * kb[j * Dh + c];
        s[size_t(j)] = d * scale;
        mx = std::max(mx, s[size_t(j)]);
      }
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += (s[size_t(j)] = std::exp(s[size_t(j)] - mx));
      for (int64_t c = 0; c < Dh; ++c) {
        double o = 0;
        for (int64_t j = 0; j < n; ++j) o += s[size_t(j)] / sum * vb[j * Dh + c];
        out[(bh * T + i) * Dh + c] = o;
      }
    }
  }
}

// out: [B, R, D]; x: [B, C, D]; weight: [R, C]; bias: [R] or nullptr.
// out[b, r, d] = sum_{c <= r} weight[r, c] x[b, c, d] + bias[r]: the masked mixer's token mixing
// (R == C flat; R != C one half of the expanded form). Entries of weight with c > r are never read.
inline void masked_mix_forward(double* out, const double* x, const double* weight, const double* bias, int64_t B,
                               int64_t C, int64_t D, int64_t R) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t d = 0; d < D; ++d) {
        double s = bias ? bias[r] : 0.0;
        for (int64_t c = 0; c <= std::min(r, C - 1); ++c) s += weight[r * C + c] * x[(b * C + c) * D + d];
        out[(b * R + r) * D + d] = s;
      }
}

// out, x: [B, T, H*Dh]; weight: [H, T, T]; bias: [H, T] or nullptr. Head h mixes its own channels
// [h*Dh, (h+1)*Dh): out[b, t, h*Dh + j] = sum_{s <= t} weight[h, t, s] x[b, s, h*Dh + j] + bias[h, t].
inline void masked_mix_heads_forward(double* out, const double* x, const double* weight, const double* bias,
                                     int64_t B, int64_t T, int64_t H, int64_t Dh) {
  const int64_t HD = H * Dh;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < Dh; ++j) {
          double s = bias ? bias[h * T + t] : 0.0;
          for (int64_t u = 0; u <= t; ++u) s += weight[(h * T + t) * T + u] * x[(b * T + u) * HD + h * Dh + j];
          out[(b * T + t) * HD + h * Dh + j] = s;
        }
}

// out, inp: [N, T, Dh], Dh even. HF Llama (LlamaRotaryEmbedding + apply_rotary_pos_emb) at
// positions pos_offset + t: inv_freq[i] = 1 / theta^(2i/Dh), emb = cat(freqs, freqs),
// out = x cos(emb) + rotate_half(x) sin(emb), rotate_half(x) = cat(-x[Dh/2:], x[:Dh/2]).
inline void rope_forward(double* out, const double* inp, int64_t N, int64_t T, int64_t Dh, double theta,
                         int64_t pos_offset) {
  const int64_t half = Dh / 2;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t) {
      const double* x = inp + (n * T + t) * Dh;
      double* o = out + (n * T + t) * Dh;
      for (int64_t i = 0; i < Dh; ++i) {
        const double inv_freq = 1.0 / std::pow(theta, double(2 * (i % half)) / double(Dh));
        const double emb = double(t + pos_offset) * inv_freq;
        const double rot = i < half ? -x[i + half] : x[i - half];
        o[i] = x[i] * std::cos(emb) + rot * std::sin(emb);
      }
    }
}

// ---- dropout -----------------------------------------------------------------------------------

// keep: [n]. The mask of dropout(x, p, true, seed, offset): keep[i] = 1 when element i's f32
// Philox uniform (core/philox.h, uniform_f32) is >= p, else 0.
inline void dropout_mask(double* keep, int64_t n, double p, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) keep[i] = double(philox::uniform_f32(seed, offset, uint64_t(i))) >= p ? 1.0 : 0.0;
}

// out, inp, keep: [n]. Inverted dropout with a given mask: out = inp * (1 / (1 - p)) where kept,
// else 0 (the scale formed once, as the kernels do).
inline void dropout_forward(double* out, const double* inp, const double* keep, int64_t n, double p) {
  const double scale = 1.0 / (1.0 - p);
  for (int64_t i = 0; i < n; ++i) out[i] = keep[i] != 0 ? inp[i] * scale : 0.0;
}

// dinp, dout, keep: [n]. The backward is the same masking of the upstream gradient.
inline void dropout_backward(double* dinp, const double* dout, const double* keep, int64_t n, double p) {
  dropout_forward(dinp, dout, keep, n, p);
}

// ---- matmul ------------------------------------------------------------------------------------

// out: [N, OC]; inp: [N, C]; weight: [OC, C]; bias: [OC] or nullptr.
// out = inp weight^T + bias (PyTorch's Linear; llm.c's matmul_forward).
inline void matmul_forward(double* out, const double* inp, const double* weight, const double* bias, int64_t N,
                           int64_t C, int64_t OC) {
  for (int64_t r = 0; r < N; ++r)
    for (int64_t o = 0; o < OC; ++o) {
      double s = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < C; ++i) s += inp[r * C + i] * weight[o * C + i];
      out[r * OC + o] = s;
    }
}

// ---- losses ------------------------------------------------------------------------------------

// out, input, target: [n]. The unreduced L1 and squared-error losses.
inline void l1_loss_forward(double* out, const double* input, const double* target, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::abs(input[i] - target[i]);
}
inline void mse_loss_forward(double* out, const double* input, const double* target, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = (input[i] - target[i]) * (input[i] - target[i]);
}

// out, x: [N, D]. Every row divided by its L2 norm (the tests keep norms above eps).
inline void l2_normalize_forward(double* out, const double* x, int64_t N, int64_t D) {
  for (int64_t r = 0; r < N; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < D; ++j) ss += x[r * D + j] * x[r * D + j];
    for (int64_t j = 0; j < D; ++j) out[r * D + j] = x[r * D + j] / std::sqrt(ss);
  }
}

// out: [N]; a, b: [N, D]. out[r] = a_r . b_r / (||a_r|| ||b_r||) (norms above eps).
inline void cosine_similarity_forward(double* out, const double* a, const double* b, int64_t N, int64_t D) {
  for (int64_t r = 0; r < N; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t j = 0; j < D; ++j) {
      ab += a[r * D + j] * b[r * D + j];
      aa += a[r * D + j] * a[r * D + j];
      bb += b[r * D + j] * b[r * D + j];
    }
    out[r] = ab / (std::sqrt(aa) * std::sqrt(bb));
  }
}

// queries: [G, D]; candidates: [G, C, D], candidate 0 of each group the positive. Returns
// mean_g (logsumexp(S[g]) - S[g, 0]) with S[g, c] = cos(q_g, cand_gc) / tau (InfoNCE; the
// in-batch form is this with each row's own doc moved to slot 0).
inline double info_nce_forward(const double* queries, const double* candidates, int64_t G, int64_t C, int64_t D,
                               double tau) {
  double total = 0;
  for (int64_t g = 0; g < G; ++g) {
    std::vector<double> s(size_t(C), 0.0);
    for (int64_t c = 0; c < C; ++c)
      cosine_similarity_forward(&s[size_t(c)], queries + g * D, candidates + (g * C + c) * D, 1, D);
    for (double& sc : s) sc /= tau;
    total += logsumexp(s.data(), C) - s[0];
  }
  return total / double(G);
}

// ---- optimizers (in place, one parameter tensor of n elements) ---------------------------------

// torch.optim.AdamW (_single_tensor_adamw) at step t (1-based). param, grad, m, v: [n]; m and v
// start at 0 and are updated in place.
inline void adamw_step(double* param, const double* grad, double* m, double* v, int64_t n, double lr, double beta1,
                       double beta2, double eps, double weight_decay, int64_t t) {
  const double bc1 = 1 - std::pow(beta1, double(t)), bc2 = 1 - std::pow(beta2, double(t));
  for (int64_t i = 0; i < n; ++i) {
    param[i] *= 1 - lr * weight_decay;
    m[i] = beta1 * m[i] + (1 - beta1) * grad[i];
    v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i];
    param[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
  }
}

// torch.optim.SGD (_single_tensor_sgd). param, grad, buf: [n]; `first` is true on the first step,
// when the momentum buffer is set to the gradient instead of being blended.
inline void sgd_step(double* param, const double* grad, double* buf, bool first, int64_t n, double lr, double momentum,
                     double dampening, double weight_decay, bool nesterov) {
  for (int64_t i = 0; i < n; ++i) {
    double d = grad[i] + weight_decay * param[i];
    if (momentum != 0) {
      buf[i] = first ? d : momentum * buf[i] + (1 - dampening) * d;
      d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    param[i] -= lr * d;
  }
}

}  // namespace mg::ref
