#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/hash.h"

namespace mg {

namespace {

// "<pid>.<16 hex digits>": the pid keeps concurrent processes apart, the rest (clock, a
// per-process counter, an address under ASLR) makes a leftover of a crashed run with a recycled
// pid unlikely to collide; O_EXCL and a retry settle any collision that remains.
std::string temp_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  const auto now = std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::uint64_t r = splitmix64(now ^ splitmix64(counter++ ^ reinterpret_cast<std::uintptr_t>(&counter)));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%ld.%016llx", long(::getpid()), static_cast<unsigned long long>(r));
  return buf;
}

std::string parent_dir(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    tmp_ = path_ + ".tmp." + temp_suffix();
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ >= 0 || errno != EEXIST) break;
  }
  if (fd_ < 0) {
    const int err = errno;
    tmp_.clear();  // nothing of ours to remove
    throw AtomicFileError(detail::concat(path_, ": cannot create temporary file ", path_, ".tmp.*: ",
                                         std::strerror(err)));
  }
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), tmp_(std::exchange(other.tmp_, {})), fd_(std::exchange(other.fd_, -1)) {}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

void AtomicFile::fail(const std::string& action, int err) {
  discard();
  throw AtomicFileError(detail::concat(path_, ": cannot ", action, ": ", std::strerror(err)));
}

void AtomicFile::check_open(const char* op) const {
  MG_CHECK(fd_ >= 0, path_, ": AtomicFile::", op, " after the file was committed or a write failed");
}

void AtomicFile::write(const void* data, std::size_t n) {
  check_open("write");
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, std::min<std::size_t>(n, std::size_t(1) << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("write temporary file " + tmp_, w < 0 ? errno : EIO);
    p += w;
    n -= std::size_t(w);
  }
}

void AtomicFile::write_at(std::uint64_t offset, const void* data, std::size_t n) {
  check_open("write_at");
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd_, p, std::min<std::size_t>(n, std::size_t(1) << 30), off_t(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("write temporary file " + tmp_, w < 0 ? errno : EIO);
    p += w;
    n -= std::size_t(w);
    offset += std::uint64_t(w);
  }
}

void AtomicFile::commit() {
  check_open("commit");
  if (::fsync(fd_) != 0) fail("fsync temporary file " + tmp_, errno);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) fail("close temporary file " + tmp_, errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename " + tmp_ + " over it", errno);
  tmp_.clear();  // it is `path` now
  const int dfd = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

bool is_atomic_temp_name(std::string_view name) {
  const std::size_t at = name.rfind(".tmp.");
  if (at == std::string_view::npos || at == 0) return false;
  const std::string_view rest = name.substr(at + 5);  // "<pid>.<16 hex>"
  const std::size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos || rest.size() - dot - 1 != 16) return false;
  for (std::size_t i = 0; i < dot; ++i)
    if (rest[i] < '0' || rest[i] > '9') return false;
  for (std::size_t i = dot + 1; i < rest.size(); ++i) {
    const char c = rest[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::vector<std::string> remove_stale_temp_files(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code fec;
    if (!e.is_regular_file(fec) || !is_atomic_temp_name(e.path().filename().string())) continue;
    if (std::filesystem::remove(e.path(), fec)) removed.push_back(e.path().string());
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace mg
