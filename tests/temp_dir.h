#pragma once
// Files for tests: a scratch directory per test, reading and writing whole files, and the
// temporary files of atomic writes.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace mg::test {

// The bytes of a file ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Replaces the contents of `path` with `bytes`.
inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A scratch directory for one test, removed with everything in it when the object dies. The
// name is unique per process and object, so suites running in parallel never collide.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "mg_test") {
    path = std::filesystem::temp_directory_path() /
           (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // The path of `name` inside the directory.
  std::string file(const std::string& name) const { return (path / name).string(); }
  // Writes `content` (bytes as given) to `name`, creating subdirectories; returns its path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::filesystem::path p = path / name;
    std::filesystem::create_directories(p.parent_path());
    write_file(p.string(), content);
    return p.string();
  }
  // The names of everything directly in the directory, sorted.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

// The temporary files an atomic write of `path` has beside it (core/atomic_file.h names them
// path + ".tmp." + a unique suffix): one while a writer is open, none once it has committed,
// failed or been abandoned. A missing directory has none.
inline std::vector<std::string> atomic_temp_files(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string prefix = p.filename().string() + ".tmp.";
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(p.has_parent_path() ? p.parent_path() : ".", ec))
    if (e.path().filename().string().starts_with(prefix)) found.push_back(e.path().string());
  return found;
}

// 60 small, repetitive stories as corpus/story100.txt ... story159.txt under `dir`: enough
// structure for a tokenizer and a tiny model to learn in a few steps.
inline void write_story_corpus(const TempDir& dir, const std::string& sub = "corpus") {
  const char* names[] = {"Tom", "Anna", "Lily", "Max", "Sue"};
  const char* things[] = {"ball", "cat", "tree", "boat", "cake"};
  for (int i = 0; i < 60; ++i)
    dir.write(sub + "/story" + std::to_string(100 + i) + ".txt",
              std::string("Once upon a time ") + names[i % 5] + " had a " + things[(i / 5) % 5] + ". " + names[i % 5] +
                  " liked the " + things[(i / 5) % 5] + " very much. The end.");
}

}  // namespace mg::test
