// Data-parallel training over MPI (docs/distributed.md), through the real program: `mpirun -np 2
// mixgrad train` against one process with grad_accum_steps 2 over the same micro-batches, for a
// tiny masked mixer and a tiny Llama-style model:
//   - deterministic mode: bitwise the same losses, weights and AdamW state;
//   - default mode, the all-reduce in several buckets started during backward: the same to f32
//     reduction tolerance, bitwise the same as without overlap, and with 2 accumulation steps per
//     rank (only the last overlapped) bitwise the deterministic 2 x 2 run and within f32
//     rounding of one process with 4;
//   - a run stopped and resumed, on the same world size and on another with the same number of
//     micro-batches per step, ends bitwise where the uninterrupted run ends.
// Skipped (exit 77) in a build without MPI or where no mpirun is installed.
// A second case runs the NCCL path (2 ranks on 2 GPUs) where the build has NCCL and the machine
// has two GPUs, and says it is skipped elsewhere.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/device_collectives.h"
#include "core/safetensors.h"
#include "report/csv.h"
#include "tests/temp_dir.h"
#include "train/communicator.h"

using namespace mg;
namespace fs = std::filesystem;

namespace {

std::string config(const test::TempDir& dir, const std::string& kind, int accum, bool deterministic,
                   const std::string& extra_train = "") {
  return "name: dp\nmodel:\n  kind: " + kind +
         "\n  d_model: 16\n  n_layers: 2\n  n_ctx: 24\n  n_heads: 2\n"
         "data:\n  format: dir\n  path: " + dir.file("corpus") + "\n  vocab_size: 300\n  cache_dir: " +
         dir.file("cache") + "\n  validation:\n    fraction: 0.1\n"
         "train:\n  batch_size: 2\n  grad_accum_steps: " + std::to_string(accum) +
         "\n  steps: 8\n  lr: 0.01\n  warmup_steps: 2\n  eval_every: 4\n  eval_batches: 2\n  log_every: 2\n"
         "  checkpoint_every: 2\n  seed: 7\n  threads: 1\n  deterministic: " + (deterministic ? "true" : "false") + "\n" +
         extra_train;
}

int run(const std::string& cmd) {
  const int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// Runs `cmd` with its stderr in `log`.
int run_logged(const std::string& cmd, const std::string& log) {
  const int rc = std::system((cmd + " > /dev/null 2> " + log).c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// From the trainer's summary "... 12 of 16 started during backward ...": {12, 16}.
std::pair<long, long> started_during_backward(const std::string& log) {
  const std::string text = read_text(log);
  const size_t at = text.find(" started during backward");
  if (at == std::string::npos) return {-1, -1};
  const size_t from = text.rfind(", ", at);
  long early = -1, total = -1;
  if (from == std::string::npos || std::sscanf(text.c_str() + from + 2, "%ld of %ld", &early, &total) != 2)
    return {-1, -1};
  return {early, total};
}

// mpirun as root needs these (containers, CI); harmless otherwise. Oversubscribe: CI has 2 cores.
std::string mpirun(int np) {
  return std::string(MG_MPIEXEC) + " -np " + std::to_string(np) +
         " --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1 " + MG_APP;
}

std::vector<std::string> column(const std::string& csv, const std::string& name) {
  report::CsvTable t = report::read_csv(csv);
  const int c = t.column(name);
  REQUIRE(c >= 0);
  std::vector<std::string> v;
  for (auto& r : t.rows) v.push_back(r[size_t(c)]);
  return v;
}

// Every tensor of two checkpoints (parameters and AdamW state): the largest relative difference.
double max_rel_diff(const std::string& a, const std::string& b) {
  SafetensorsFile x = load_safetensors(a), y = load_safetensors(b);
  REQUIRE(x.tensors.size() == y.tensors.size());
  double worst = 0;
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    REQUIRE(x.tensors[i].first == y.tensors[i].first);
    auto u = x.tensors[i].second.to_vector<float>(), v = y.tensors[i].second.to_vector<float>();
    REQUIRE(u.size() == v.size());
    for (size_t k = 0; k < u.size(); ++k)
      worst = std::max(worst, double(std::fabs(u[k] - v[k])) / (std::fabs(double(u[k])) + 1e-6));
  }
  return worst;
}

// Every tensor of two checkpoints: the largest ||a - b|| / ||b|| (L2 over the tensor).
double max_rel_norm_diff(const std::string& a, const std::string& b) {
  SafetensorsFile x = load_safetensors(a), y = load_safetensors(b);
  REQUIRE(x.tensors.size() == y.tensors.size());
  double worst = 0;
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    REQUIRE(x.tensors[i].first == y.tensors[i].first);
    auto u = x.tensors[i].second.to_vector<float>(), v = y.tensors[i].second.to_vector<float>();
    REQUIRE(u.size() == v.size());
    double d = 0, n = 0;
    for (size_t k = 0; k < u.size(); ++k) {
      d += (double(u[k]) - v[k]) * (double(u[k]) - v[k]);
      n += double(v[k]) * v[k];
    }
    if (n > 0) worst = std::max(worst, std::sqrt(d / n));
  }
  return worst;
}

bool same_tensors(const std::string& a, const std::string& b) {
  SafetensorsFile x = load_safetensors(a), y = load_safetensors(b);
  if (x.tensors.size() != y.tensors.size()) return false;
  for (size_t i = 0; i < x.tensors.size(); ++i)
    if (x.tensors[i].first != y.tensors[i].first ||
        x.tensors[i].second.to_vector<float>() != y.tensors[i].second.to_vector<float>())
      return false;
  return true;
}

}  // namespace

TEST_CASE("mpirun -np 2 against one process with 2 accumulation steps") {
  if (!mpi_available() || std::string(MG_MPIEXEC).empty() || !fs::exists(MG_MPIEXEC)) {
    std::puts("test_distributed: skipped (no MPI in this build or no mpirun installed)");
    std::exit(77);
  }
  test::TempDir dir("mg_dp");
  test::write_story_corpus(dir);
  const std::string one = "OMP_NUM_THREADS=1 " + std::string(MG_APP);
  for (const std::string kind : {"masked_mixer", "llama"}) {
    CAPTURE(kind);
    const std::string k = kind + "_";
    const std::string ranks_det = dir.write(k + "ranks_det.yaml", config(dir, kind, 1, true));
    const std::string accum_det = dir.write(k + "accum_det.yaml", config(dir, kind, 2, true));
    // Deterministic: bitwise.
    REQUIRE(run(mpirun(2) + " train " + ranks_det + " --out-dir " + dir.file(k + "A")) == 0);
    REQUIRE(run(one + " train " + accum_det + " --out-dir " + dir.file(k + "B")) == 0);
    CHECK(column(dir.file(k + "A/metrics.csv"), "train_loss") == column(dir.file(k + "B/metrics.csv"), "train_loss"));
    CHECK(column(dir.file(k + "A/metrics.csv"), "val_loss") == column(dir.file(k + "B/metrics.csv"), "val_loss"));
    CHECK(same_tensors(dir.file(k + "A/checkpoint.safetensors"), dir.file(k + "B/checkpoint.safetensors")));
    // Only rank 0 wrote: one header and 8 rows, not two runs' worth.
    CHECK(column(dir.file(k + "A/metrics.csv"), "step").size() == 8);

    // Default mode: MPI's own reduction order; f32 tolerance. Buckets of 4 KiB split these
    // models' gradients into several, most of which start while backward still runs.
    const std::string small = "  reduce_bucket_mb: 0.00390625\n";
    const std::string ranks = dir.write(k + "ranks.yaml", config(dir, kind, 1, false, small));
    REQUIRE(run_logged(mpirun(2) + " train " + ranks + " --out-dir " + dir.file(k + "C"), dir.file(k + "C.log")) == 0);
    CHECK(max_rel_diff(dir.file(k + "C/checkpoint.safetensors"), dir.file(k + "B/checkpoint.safetensors")) < 1e-4);
    const auto [early, total] = started_during_backward(dir.file(k + "C.log"));
    CHECK(total >= 8 * 4);  // 8 steps of several buckets each
    CHECK(early > total / 2);
    // Without overlap the same sums start after backward. Two ranks' sum is one addition per
    // value, a + b = b + a, so the overlap changes nothing at all.
    const std::string serial = dir.write(k + "serial.yaml", config(dir, kind, 1, false, small + "  reduce_overlap: false\n"));
    REQUIRE(run_logged(mpirun(2) + " train " + serial + " --out-dir " + dir.file(k + "G"), dir.file(k + "G.log")) == 0);
    CHECK(same_tensors(dir.file(k + "G/checkpoint.safetensors"), dir.file(k + "C/checkpoint.safetensors")));
    CHECK(started_during_backward(dir.file(k + "G.log")).first == 0);
    // With 2 accumulation micro-steps per rank only the second backward overlaps. Two ranks' sum
    // is one addition per value, so this is bitwise the deterministic 2 x 2 run.
    const std::string ranks_acc = dir.write(k + "ranks_acc.yaml", config(dir, kind, 2, false, small));
    const std::string ranks_acc_det = dir.write(k + "ranks_acc_det.yaml", config(dir, kind, 2, true));
    REQUIRE(run_logged(mpirun(2) + " train " + ranks_acc + " --out-dir " + dir.file(k + "F"), dir.file(k + "F.log")) == 0);
    REQUIRE(run(mpirun(2) + " train " + ranks_acc_det + " --out-dir " + dir.file(k + "Fd")) == 0);
    CHECK(started_during_backward(dir.file(k + "F.log")).first > 0);
    CHECK(same_tensors(dir.file(k + "F/checkpoint.safetensors"), dir.file(k + "Fd/checkpoint.safetensors")));
    // Against one process with 4 accumulation steps the sum is (g0 + g1) + (g2 + g3) instead of
    // ((g0 + g1) + g2) + g3: equal to f32 rounding. Measured per tensor as ||a - b|| / ||b||
    // (1.5e-7 and 5.8e-7 here after 8 steps): an elementwise ratio is not a rounding measure for
    // AdamW moments near zero, which differ by up to 2e-3 of themselves in the Llama run.
    const std::string accum4 = dir.write(k + "accum4.yaml", config(dir, kind, 4, true));
    REQUIRE(run(one + " train " + accum4 + " --out-dir " + dir.file(k + "H")) == 0);
    CHECK(max_rel_norm_diff(dir.file(k + "F/checkpoint.safetensors"), dir.file(k + "H/checkpoint.safetensors")) < 1e-5);
    const auto lf = column(dir.file(k + "F/metrics.csv"), "train_loss"), lh = column(dir.file(k + "H/metrics.csv"), "train_loss");
    REQUIRE(lf.size() == lh.size());
    for (size_t q = 0; q < lf.size(); ++q) CHECK(std::stod(lf[q]) == doctest::Approx(std::stod(lh[q])).epsilon(1e-6));

    // Stopped after 3 steps, resumed on 2 ranks: bitwise the uninterrupted A.
    REQUIRE(run(mpirun(2) + " train " + ranks_det + " --out-dir " + dir.file(k + "D") + " --stop-after 3") == 130);
    REQUIRE(run(mpirun(2) + " train " + ranks_det + " --out-dir " + dir.file(k + "D") + " --resume") == 0);
    CHECK(same_tensors(dir.file(k + "D/checkpoint.safetensors"), dir.file(k + "A/checkpoint.safetensors")));
    CHECK(column(dir.file(k + "D/metrics.csv"), "train_loss") == column(dir.file(k + "A/metrics.csv"), "train_loss"));

    // Stopped on 2 ranks, resumed in one process with 2 accumulation steps: the same data order.
    REQUIRE(run(mpirun(2) + " train " + ranks_det + " --out-dir " + dir.file(k + "E") + " --stop-after 5") == 130);
    REQUIRE(run(one + " train " + accum_det + " --out-dir " + dir.file(k + "E") + " --resume") == 0);
    CHECK(same_tensors(dir.file(k + "E/checkpoint.safetensors"), dir.file(k + "A/checkpoint.safetensors")));

    // Another number of micro-batches per step is refused with the reason.
    const std::string accum3 = dir.write(k + "accum3.yaml", config(dir, kind, 3, true));
    CHECK(run(one + " train " + accum3 + " --out-dir " + dir.file(k + "E") + " --resume") == 1);
  }
}

TEST_CASE("NCCL: mpirun -np 2 on 2 GPUs against one GPU with 2 accumulation steps") {
  if (!mpi_available() || std::string(MG_MPIEXEC).empty() || !fs::exists(MG_MPIEXEC)) return;  // as above
  int gpus = 0;
  if (FILE* p = popen("nvidia-smi -L 2>/dev/null", "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, p)) gpus += std::string(line).rfind("GPU ", 0) == 0;
    pclose(p);
  }
  if (device_collectives(DeviceType::CUDA) == nullptr || gpus < 2) {
    std::printf("test_distributed: NCCL case skipped (%s)\n",
                gpus < 2 ? "fewer than 2 GPUs" : "this build has no NCCL");
    return;
  }
  test::TempDir dir("mg_dp_nccl");
  test::write_story_corpus(dir);
  const std::string cuda = "  device: cuda\n  reduce_bucket_mb: 0.00390625\n";
  const std::string ranks = dir.write("ranks.yaml", config(dir, "masked_mixer", 1, false, cuda));
  const std::string accum = dir.write("accum.yaml", config(dir, "masked_mixer", 2, false, cuda));
  // One GPU per rank: NCCL refuses two ranks on one device.
  const std::string launch = std::string(MG_MPIEXEC) + " -np 2 --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1 " +
                             "sh -c 'CUDA_VISIBLE_DEVICES=$OMPI_COMM_WORLD_LOCAL_RANK exec " + MG_APP + " \"$@\"' sh";
  REQUIRE(run_logged(launch + " train " + ranks + " --out-dir " + dir.file("N"), dir.file("N.log")) == 0);
  REQUIRE(run("CUDA_VISIBLE_DEVICES=0 " + std::string(MG_APP) + " train " + accum + " --out-dir " + dir.file("S")) == 0);
  CHECK(read_text(dir.file("N.log")).find("all-reduced with NCCL") != std::string::npos);
  CHECK(started_during_backward(dir.file("N.log")).first > 0);
  CHECK(max_rel_diff(dir.file("N/checkpoint.safetensors"), dir.file("S/checkpoint.safetensors")) < 1e-4);
}
