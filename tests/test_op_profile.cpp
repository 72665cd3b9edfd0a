// The profiler's arithmetic (ops/op_cost) and `mixgrad profile`'s table on a tiny model: what
// the FLOP and %peak columns are computed from.
#include <doctest/doctest.h>

#include <string>

#include "core/factories.h"
#include "experiments/op_profile.h"
#include "ops/op_cost.h"
#include "tests/temp_dir.h"

using namespace mg;

TEST_CASE("op_cost: matmul_bias counts its product and its bias, and each gradient apart") {
  const Tensor a = zeros({4, 8}), w = zeros({8, 3}), bias = zeros({3}), out = zeros({4, 3});
  const OpCost mm = forward_op_cost("matmul", {a, w}, out);
  const OpCost mb = forward_op_cost("matmul_bias", {a, w, bias}, out);
  CHECK(mm.flops == 2.0 * 4 * 3 * 8);
  CHECK(mb.flops == mm.flops + 4 * 3);
  CHECK(mb.bias_flops == 4 * 3);
  // dA and dW are products of the forward's size; dbias sums the output gradient's rows.
  CHECK(input_grad_flops("matmul_bias", mb, 0) == mm.flops);
  CHECK(input_grad_flops("matmul_bias", mb, 1) == mm.flops);
  CHECK(input_grad_flops("matmul_bias", mb, 2) == 4 * 3);
  CHECK(input_grad_flops("matmul", mm, 1) == mm.flops);
  CHECK(forward_op_cost("bias_gelu", {out, bias}, out).flops > forward_op_cost("gelu", {out}, out).flops);
}

namespace {

// One profiled step of a tiny flat masked mixer (d 16, 2 layers, 2 x 8 tokens) in `precision`,
// with the peak given (100 GFLOP/s), so no GEMM peak is measured.
ProfileResult profile_tiny(const std::string& precision) {
  test::TempDir dir("mg_op_profile");
  const std::string cfg = (dir.path / "tiny.yaml").string();
  test::write_file(cfg,
                   "name: tiny\n"
                   "model:\n  kind: masked_mixer\n  d_model: 16\n  n_layers: 2\n  n_ctx: 8\n  mixer_form: flat\n"
                   "data:\n  format: gutenberg\n  vocab_size: 300\n"
                   "train:\n  batch_size: 2\n  steps: 10\n  warmup_steps: 0\n  lr: 0.001\n  precision: " +
                       precision + "\n");
  ProfileOptions o;
  o.config = cfg;
  o.out_dir = (dir.path / "out").string();
  o.peak_gflops = 100;
  return profile_step(o);
}

const ProfileRow* row_of(const std::vector<ProfileRow>& rows, const std::string& key, const std::string& phase) {
  for (const ProfileRow& r : rows)
    if (r.key == key && r.phase == phase) return &r;
  return nullptr;
}

}  // namespace

TEST_CASE("profile: the feed-forward's matmul_bias has its FLOPs forward and backward") {
  const ProfileResult r = profile_tiny("f32");
  CHECK_FALSE(r.peak_measured);
  const ProfileRow* f = row_of(r.by_op, "matmul_bias", "forward");
  const ProfileRow* b = row_of(r.by_op, "matmul_bias", "backward");
  REQUIRE(f);
  REQUIRE(b);
  // Per layer the feed-forward's second Linear ([2*8, 64] x [64, 16], its first one feeds
  // bias_gelu instead): 2 * 16 * 64 * 16 FLOPs of product plus one bias add per output.
  const double tokens = 2 * 8, product = 2.0 * tokens * 64 * 16, bias_add = tokens * 16;
  CHECK(f->flops == doctest::Approx(2 * (product + bias_add)));
  // Backward: dx and dW, each a product of the forward's size, and dbias, one sum of the rows.
  CHECK(b->flops == doctest::Approx(2 * (2 * product + bias_add)));
  CHECK(format_profile(r, 10).find("(--peak-gflops)") != std::string::npos);
}

TEST_CASE("profile: a bf16 run is held against the bf16 GEMM's peak") {
  const ProfileResult r = profile_tiny("bf16");
  CHECK(r.peak_dtype == "bf16");
  CHECK(r.label.find("bf16") != std::string::npos);
}
