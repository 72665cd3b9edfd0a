#pragma once
// Writing a file so that readers see the old file or the whole new one, never a part of it, even
// after a crash: every writer of the project's files (checkpoints, tokenizers, token shards,
// retrieval pairs, plots, CSV rewrites) goes through AtomicFile.
//
// The bytes go to a temporary file in the destination's directory (so the final rename stays on
// one filesystem), named path + ".tmp." + <pid> + "." + <random hex> and created with
// O_CREAT | O_EXCL, so concurrent writers of one path never share a temporary file. Every write
// is checked; commit() fsyncs the file, closes it, renames it over `path` and fsyncs the
// directory (best effort: some filesystems refuse fsync on a directory, and the file itself is
// already durable). On any failure, and when the object dies uncommitted, the temporary file is
// removed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace mg {

// A failed atomic write. The message is "<path>: cannot <action> ...: <system error>", naming the
// destination, the temporary file where one is involved, and the cause; callers that have their
// own error type rethrow it with their prefix.
class AtomicFileError : public Error {
 public:
  using Error::Error;
};

class AtomicFile {
 public:
  // Creates the temporary file for `path`. Throws AtomicFileError
  // "<path>: cannot create temporary file <tmp>: ..." (e.g. the directory does not exist).
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless committed
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends all n bytes (short writes and EINTR are retried).
  void write(const void* data, std::size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // Writes n bytes at byte `offset` (a header completed last), leaving the append position as
  // it was.
  void write_at(std::uint64_t offset, const void* data, std::size_t n);
  // Makes the written bytes the contents of `path`, as described above.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  [[noreturn]] void fail(const std::string& action, int err);  // removes the temporary file, throws
  void discard() noexcept;
  void check_open(const char* op) const;

  std::string path_, tmp_;
  int fd_ = -1;
};

// Writes `bytes` as the whole contents of `path` through an AtomicFile. Throws AtomicFileError.
void write_file_atomically(const std::string& path, std::string_view bytes);

// True for a name AtomicFile gives its temporary files: "<name>.tmp.<pid>.<16 hex digits>".
bool is_atomic_temp_name(std::string_view filename);

// Removes the temporary files that interrupted AtomicFile writers (a killed process never runs
// its destructor) left directly in `dir`, and returns their paths. Only the caller can know that
// no writer is still running there: call it while holding the directory's lock
// (train/run_lock.h). A missing directory has none; a file that cannot be removed is skipped.
std::vector<std::string> remove_stale_temp_files(const std::string& dir);

}  // namespace mg
