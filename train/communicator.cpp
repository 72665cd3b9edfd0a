#include "train/communicator.h"

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#ifdef MG_WITH_MPI
#include <mpi.h>
#endif

namespace mg {

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void allgather(const float* data, size_t n, float* out) override { std::memcpy(out, data, n * sizeof(float)); }
  void allgather(const double* data, size_t n, double* out) override { std::memcpy(out, data, n * sizeof(double)); }
  void start_allreduce_sum(float*, size_t) override {}
  void progress() override {}
  void wait_all() override {}
  void broadcast(void*, size_t, int) override {}
  bool any(bool flag) override { return flag; }
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(1);
  }
  std::string describe() const override { return "single process"; }
};

#ifdef MG_WITH_MPI
// MPI counts are int, so large buffers go in chunks; all-reduces go in 25 MiB buckets (PyTorch
// DDP's bucket_cap_mb), which keeps each message in the bandwidth-bound regime without one
// giant temporary in the MPI library.
constexpr size_t kChunk = size_t(1) << 28;
constexpr size_t kBucketFloats = 25 * 1024 * 1024 / sizeof(float);

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      // FUNNELED: only the main thread calls MPI; OpenMP threads never do.
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      std::atexit([] {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) MPI_Finalize();
      });
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* data, size_t n) override {
    for (size_t i = 0; i < n; i += kBucketFloats)
      MPI_Allreduce(MPI_IN_PLACE, data + i, int(std::min(kBucketFloats, n - i)), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  void allreduce_sum(double* data, size_t n) override {
    for (size_t i = 0; i < n; i += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, data + i, int(std::min(kChunk, n - i)), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
  void allgather(const float* data, size_t n, float* out) override {
    if (n > kChunk) abort("allgather: buffer of " + std::to_string(n) + " values is too large for one call");
    MPI_Allgather(data, int(n), MPI_FLOAT, out, int(n), MPI_FLOAT, MPI_COMM_WORLD);
  }
  void allgather(const double* data, size_t n, double* out) override {
    if (n > kChunk) abort("allgather: buffer of " + std::to_string(n) + " values is too large for one call");
    MPI_Allgather(data, int(n), MPI_DOUBLE, out, int(n), MPI_DOUBLE, MPI_COMM_WORLD);
  }
  void start_allreduce_sum(float* data, size_t n) override {
    for (size_t i = 0; i < n; i += kChunk) {
      pending_.emplace_back();
      MPI_Iallreduce(MPI_IN_PLACE, data + i, int(std::min(kChunk, n - i)), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                     &pending_.back());
    }
  }
  void progress() override {
    if (pending_.empty()) return;
    int done = 0;
    MPI_Testall(int(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE);
    if (done) pending_.clear();
  }
  void wait_all() override {
    if (pending_.empty()) return;
    MPI_Waitall(int(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE);
    pending_.clear();
  }
  void broadcast(void* data, size_t bytes, int root) override {
    if (bytes > kChunk) abort("broadcast: " + std::to_string(bytes) + " bytes is too large for one call");
    MPI_Bcast(data, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  bool any(bool flag) override {
    int v = flag ? 1 : 0, r = 0;
    MPI_Allreduce(&v, &r, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return r != 0;
  }
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "rank %d: %s\n", rank_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::exit(1);
  }
  std::string describe() const override {
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    std::string s(v, size_t(len));
    if (auto nl = s.find_first_of(",\n"); nl != std::string::npos) s.resize(nl);
    return "MPI, " + std::to_string(size_) + " ranks (" + s + ")";
  }

 private:
  int rank_ = 0, size_ = 1;
  std::vector<MPI_Request> pending_;  // started by start_allreduce_sum, not yet waited for
};

// Launched by an MPI launcher: OpenMPI, MPICH/Hydra and PMIx all export one of these.
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}
#endif

}  // namespace

Communicator& world() {
#ifdef MG_WITH_MPI
  static std::unique_ptr<Communicator> w = launched_by_mpi() ? std::unique_ptr<Communicator>(new MpiWorld())
                                                             : std::unique_ptr<Communicator>(new SingleProcess());
#else
  static std::unique_ptr<Communicator> w(new SingleProcess());
#endif
  return *w;
}

bool mpi_available() {
#ifdef MG_WITH_MPI
  return true;
#else
  return false;
#endif
}

}  // namespace mg
