// Data-parallel training over MPI (docs/distributed.md), through the real program: `mpirun -np 2
// mixgrad train` against one process with grad_accum_steps 2 over the same micro-batches, for a
// tiny masked mixer and a tiny Llama-style model:
//   - deterministic mode: bitwise the same losses, weights and AdamW state;
//   - default mode: the same to f32 reduction tolerance;
//   - a run stopped and resumed, on the same world size and on another with the same number of
//     micro-batches per step, ends bitwise where the uninterrupted run ends.
// Skipped (exit 77) in a build without MPI or where no mpirun is installed.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/safetensors.h"
#include "report/csv.h"
#include "tests/temp_dir.h"
#include "train/communicator.h"

using namespace mg;
namespace fs = std::filesystem;

namespace {

std::string config(const test::TempDir& dir, const std::string& kind, int accum, bool deterministic) {
  return "name: dp\nmodel:\n  kind: " + kind +
         "\n  d_model: 16\n  n_layers: 2\n  n_ctx: 24\n  n_heads: 2\n"
         "data:\n  format: dir\n  path: " + dir.file("corpus") + "\n  vocab_size: 300\n  cache_dir: " +
         dir.file("cache") + "\n  validation:\n    fraction: 0.1\n"
         "train:\n  batch_size: 2\n  grad_accum_steps: " + std::to_string(accum) +
         "\n  steps: 8\n  lr: 0.01\n  warmup_steps: 2\n  eval_every: 4\n  eval_batches: 2\n  log_every: 2\n"
         "  checkpoint_every: 2\n  seed: 7\n  threads: 1\n  deterministic: " + (deterministic ? "true" : "false") + "\n";
}

int run(const std::string& cmd) {
  const int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
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

    // Default mode: MPI's own reduction order; f32 tolerance.
    const std::string ranks = dir.write(k + "ranks.yaml", config(dir, kind, 1, false));
    REQUIRE(run(mpirun(2) + " train " + ranks + " --out-dir " + dir.file(k + "C")) == 0);
    CHECK(max_rel_diff(dir.file(k + "C/checkpoint.safetensors"), dir.file(k + "B/checkpoint.safetensors")) < 1e-4);

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
