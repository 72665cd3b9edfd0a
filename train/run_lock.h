#pragma once
// An exclusive lock on a directory that a run writes into (a run directory, a data cache), so
// that a second writer is refused with one clear error instead of silently interleaving its
// files with the first's. The lock is an flock(2) on DIR/.lock, which the kernel releases when
// the process ends however it ends: a killed run never leaves a stale lock behind. The file
// holds the holder's pid and command for the message.
//
// Once the lock is held no other writer can be at work in the directory, so any temporary file
// of an atomic write there (core/atomic_file.h) was left by a killed writer: the constructor
// removes them and names each on stderr.
#include <string>

namespace mg {

class RunLock {
 public:
  // refuse: a second writer is an error (run directories: two runs must not share one).
  // wait: it says on stderr whom it waits for and blocks until the holder is done (data caches:
  // runs that share a corpus, and the ranks of one run, take turns and then reuse the cache).
  enum class Mode { refuse, wait };
  // Creates `dir` if needed and locks it. In refuse mode, throws mg::Error naming the directory
  // and the holder (pid and what it runs) when another process holds it.
  RunLock(const std::string& dir, const std::string& what, Mode mode = Mode::refuse);
  ~RunLock();
  RunLock(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  RunLock& operator=(RunLock&&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace mg
