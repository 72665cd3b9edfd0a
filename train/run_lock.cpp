#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"

namespace mg {

namespace {

// The holder's description from the lock file, for messages.
std::string read_holder(int fd) {
  char holder[256] = {0};
  const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
  std::string h = n > 0 ? std::string(holder, size_t(n)) : std::string("unknown process");
  while (!h.empty() && (h.back() == '\n' || h.back() == ' ')) h.pop_back();
  return h;
}

}  // namespace

RunLock::RunLock(const std::string& dir, const std::string& what, Mode mode) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  MG_CHECK(!ec, "cannot create directory '", dir, "': ", ec.message());
  const std::string path = dir + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  MG_CHECK(fd_ >= 0, "cannot open lock file '", path, "': ", std::strerror(errno));
  int locked = ::flock(fd_, LOCK_EX | LOCK_NB);
  if (locked != 0 && errno == EWOULDBLOCK && mode == Mode::wait) {
    std::fprintf(stderr, "waiting for '%s', in use by another process (%s)\n", dir.c_str(), read_holder(fd_).c_str());
    do locked = ::flock(fd_, LOCK_EX);
    while (locked != 0 && errno == EINTR);
  }
  if (locked != 0) {
    const int err = errno;
    const std::string h = read_holder(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw Error("'" + dir + "' is in use by another run (" + h + "); wait for it to finish or choose another directory");
    throw Error("cannot lock '" + path + "': " + std::strerror(err));
  }
  const std::string me = "pid " + std::to_string(::getpid()) + ": " + what + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    // The holder's description is for messages only; a failed write leaves the lock valid.
    ssize_t w = ::pwrite(fd_, me.data(), me.size(), 0);
    (void)w;
  }
  for (const std::string& f : remove_stale_temp_files(dir))
    std::fprintf(stderr, "removed %s, the temporary file of an interrupted write\n", f.c_str());
}

RunLock::RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

}  // namespace mg
