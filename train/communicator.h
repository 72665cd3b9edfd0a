#pragma once
// The processes of a data-parallel run. A process started by `mpirun -np N` (in a build with
// MPI) is one of N ranks; any other process is the only rank of a world of one, and every
// collective is then a no-op, so the single-process path runs no communication code at all.
//
// Collectives are blocking and must be called by every rank in the same order.
#include <cstddef>
#include <cstdint>
#include <string>

namespace mg {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Elementwise sum over ranks, in place (the order of the additions is the library's).
  virtual void allreduce_sum(float* data, size_t n) = 0;
  virtual void allreduce_sum(double* data, size_t n) = 0;
  // out[r * n + i] = rank r's data[i], on every rank.
  virtual void allgather(const float* data, size_t n, float* out) = 0;
  virtual void allgather(const double* data, size_t n, double* out) = 0;
  // Non-blocking sum: starts an in-place sum of data[0, n) over ranks and returns at once. The
  // buffer must stay untouched until wait_all(). Every rank starts the same sums in the same order.
  virtual void start_allreduce_sum(float* data, size_t n) = 0;
  // Lets the library advance the sums started so far (MPI progresses a non-blocking collective
  // only inside MPI calls unless it runs a progress thread); never blocks.
  virtual void progress() = 0;
  // Returns when every sum started so far is complete.
  virtual void wait_all() = 0;
  // Copies `bytes` bytes of rank `root`'s data to every rank's data.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // True on every rank when `flag` is true on any.
  virtual bool any(bool flag) = 0;
  // Ends every rank of the run with `message` (used when one rank fails, so the others do not
  // wait forever in a collective). Does not return.
  [[noreturn]] virtual void abort(const std::string& message) = 0;
  // "MPI (OpenMPI 4.1.4)" or "single process".
  virtual std::string describe() const = 0;
};

// The world this process belongs to (created on first use).
Communicator& world();

// Whether this build can run as several ranks, and with what.
bool mpi_available();

}  // namespace mg
