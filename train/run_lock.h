#pragma once
// An exclusive lock on a directory that a run writes into (a run directory, a data cache), so
// that a second writer is refused with one clear error instead of silently interleaving its
// files with the first's. The lock is an flock(2) on DIR/.lock, which the kernel releases when
// the process ends however it ends: a killed run never leaves a stale lock behind. The file
// holds the holder's pid and command for the message.
#include <string>

namespace mg {

class RunLock {
 public:
  // Creates `dir` if needed and locks it. Throws mg::Error naming the directory and the holder
  // (pid and what it runs) when another process holds it.
  RunLock(const std::string& dir, const std::string& what);
  ~RunLock();
  RunLock(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  RunLock& operator=(RunLock&&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace mg
