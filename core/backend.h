#pragma once
// The Backend interface: the fixed list of kernels that ops/ calls. cpu/ and cuda/ implement it
// and register themselves; core/ never names a concrete backend. Kernels receive tensors whose
// arguments ops/ has already checked (shapes, dtypes, devices agree); each kernel states the
// layout it demands. A backend throws mg::Error for a kernel/dtype it does not implement.
#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace mg {

enum class UnaryOp : uint8_t {
  neg, exp, log, sqrt, rsqrt, abs, tanh, sign,
  pow_scalar,   // x^alpha
  add_scalar,   // x + alpha
  mul_scalar,   // x * alpha
  rsub_scalar,  // alpha - x
};
enum class BinaryOp : uint8_t { add, sub, mul, div, eq, maximum };
enum class ReduceOp : uint8_t { sum, max };
enum class RandomKind : uint8_t { uniform, normal, randint };
enum class Activation : uint8_t { gelu, gelu_tanh, silu, relu };  // gelu = exact erf form

struct Backend {
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // memory
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void synchronize() {}

  // out (any layout) = value
  virtual void fill(const Tensor& out, double value) = 0;
  // dst = src elementwise, same shape, any layouts, dtype conversion allowed (bf16 rounds to
  // nearest even). src and dst must not overlap.
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  // out (contiguous): kind uniform -> U[a, b), normal -> N(a, b^2), randint -> [a, b).
  // Element i depends only on (seed, offset, i): see core/philox.h.
  virtual void random(const Tensor& out, RandomKind kind, uint64_t seed, uint64_t offset, double a,
                      double b) = 0;
  // out (contiguous, shape of x) = op(x); x any layout.
  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, double alpha) = 0;
  // out (contiguous) = op(a, b); a and b are already broadcast views with out's shape.
  // bf16 operands are computed in f32 and rounded once.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // x contiguous [rows, n] -> out contiguous [rows]
  virtual void reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out) = 0;
  // Batched row-major GEMM on raw device pointers: C_i = alpha op(A_i) op(B_i) + beta C_i,
  // stride 0 broadcasts an operand. dtype f32 or f64; bf16 means A and B bf16 and C f32 (f32
  // accumulation: the autocast matmuls).
  virtual void gemm(DType dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                    double alpha, const void* A, int64_t lda, int64_t stride_a, const void* B,
                    int64_t ldb, int64_t stride_b, double beta, void* C, int64_t ldc,
                    int64_t stride_c, int64_t batch) = 0;
  // x contiguous viewed [outer, n, inner], idx i32 contiguous [k] -> out contiguous [outer, k, inner].
  // Indices are checked to lie in [0, n).
  virtual void index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) = 0;
  // out contiguous [outer, n, inner] += src contiguous [outer, k, inner] scattered by idx;
  // repeated indices accumulate.
  virtual void index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) = 0;

  // ---- fused kernels of the paper's op set. Unless stated, every tensor is contiguous, float
  // tensors share one dtype (f32 or f64; bf16 where a backend says so), and outputs are
  // overwritten, never accumulated. The defaults throw "not implemented on <backend>".

  // Normalisation over the last dim of x [rows, D]. weight/bias [D] may be undefined (no affine).
  // mean/rstd [rows] are written by forward and read by backward.
  virtual void layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                                 const Tensor& y, const Tensor& mean, const Tensor& rstd);
  // dweight/dbias are written when defined.
  virtual void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                  const Tensor& rstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias);
  virtual void rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps, const Tensor& y, const Tensor& rstd);
  virtual void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd,
                                const Tensor& dx, const Tensor& dweight);
  // y = act(x), dx = dy * act'(x); same shapes.
  virtual void activation_forward(Activation act, const Tensor& x, const Tensor& y);
  virtual void activation_backward(Activation act, const Tensor& dy, const Tensor& x, const Tensor& dx);
  // y = silu(gate) * up
  virtual void swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& y);
  virtual void swiglu_backward(const Tensor& dy, const Tensor& gate, const Tensor& up, const Tensor& dgate,
                               const Tensor& dup);
  // Softmax (or log-softmax when log) over the last dim of x [rows, n]; backward from y.
  virtual void softmax_forward(const Tensor& x, const Tensor& y, bool log);
  virtual void softmax_backward(const Tensor& dy, const Tensor& y, const Tensor& dx, bool log);
  // logits [N, V], targets i32 [N]. loss_rows[i] = logsumexp(logits[i]) - logits[i, t_i], 0 where
  // t_i == ignore_index; lse [N] saved. Targets outside [0, V) (other than ignore_index) throw.
  virtual void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                     const Tensor& loss_rows, const Tensor& lse);
  // dlogits[i] = scale * dloss_rows[i] * (softmax(logits[i]) - onehot(t_i)); 0 for ignored rows.
  // dloss_rows [N] may be a stride-0 broadcast of one value.
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                      int64_t ignore_index, const Tensor& dloss_rows, double scale,
                                      const Tensor& dlogits);
  // out = x with entries (r, c) of each trailing [R, C] matrix zeroed where c - r > diagonal.
  virtual void tril(const Tensor& x, int64_t diagonal, const Tensor& out);
  // Scaled dot-product attention. q, k, v, out [B, H, T, Dh]; lse [B, H, T] (row logsumexp of the
  // scaled, masked scores) is written for the backward. Memory beyond the outputs must stay
  // O(tile), not O(T^2).
  virtual void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                                 const Tensor& out, const Tensor& lse);
  virtual void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, double scale, bool causal, const Tensor& dq,
                                  const Tensor& dk, const Tensor& dv);
  // Rotary embedding, Llama's rotate-half form, on x [N, T, Dh] (Dh even) at positions
  // pos_offset + t: out[..., i] = x_i cos - x_{i+Dh/2} sin (first half), x_i cos + x_{i-Dh/2} sin
  // (second half) with angle (pos) * theta^(-2i/Dh). inverse applies the transposed rotation
  // (the backward).
  virtual void rope(const Tensor& x, double theta, int64_t pos_offset, bool inverse, const Tensor& out);
  // In-place optimizer updates; param, grad and state share shape and layout (contiguous).
  virtual void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                          double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step);
  // momentum_buf is undefined when momentum == 0.
  virtual void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                        double momentum, double dampening, double weight_decay, bool nesterov);
};

void register_backend(DeviceType type, Backend* backend);
// The backend for a device; throws naming the device when none is registered (e.g. a build
// without CUDA) or when it reports no usable hardware.
Backend& backend_for(Device device);
bool backend_available(DeviceType type);

// Set by a backend that registers but finds no hardware (CUDA build on a machine without GPU).
void set_backend_unavailable(DeviceType type, const char* why);

}  // namespace mg
