// core/atomic_file.h: the one way files are written. Unique temporary names (two writers of one
// path never share one), the old file intact until commit, and nothing left behind on failure.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/atomic_file.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using namespace mg;

using test::read_file;

}  // namespace

TEST_SUITE("atomic_file") {

TEST_CASE("the old contents stay until commit, then the new ones replace them whole") {
  test::TempDir dir("mg_test_atomic");
  const std::string path = dir.write("f.bin", "old");
  AtomicFile f(path);
  const std::string tmp = f.temp_path();
  CHECK(tmp.starts_with(path + ".tmp."));
  CHECK(test::atomic_temp_files(path) == std::vector<std::string>{tmp});
  f.write("0123456789");
  const uint32_t header = 0x41424344;  // "DCBA" little-endian
  f.write_at(2, &header, sizeof header);
  f.write(std::string_view("!"));
  CHECK(read_file(path) == "old");
  f.commit();
  CHECK(read_file(path) == "01DCBA6789!");
  CHECK(test::atomic_temp_files(path).empty());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0600) == 0600);  // the owner can read and rewrite it
  CHECK_THROWS_AS(f.write("late"), Error);  // a committed file takes no more bytes
}

TEST_CASE("two writers of one path get different temporary files; the last commit wins") {
  test::TempDir dir("mg_test_atomic");
  const std::string path = dir.file("shared.txt");
  AtomicFile a(path), b(path);
  CHECK(a.temp_path() != b.temp_path());
  CHECK(test::atomic_temp_files(path).size() == 2);
  a.write("from a");
  b.write("from b");
  a.commit();
  CHECK(read_file(path) == "from a");
  b.commit();
  CHECK(read_file(path) == "from b");
  CHECK(test::atomic_temp_files(path).empty());
}

TEST_CASE("an abandoned or failed write leaves the old file and no temporary file") {
  test::TempDir dir("mg_test_atomic");
  const std::string path = dir.write("keep.txt", "old");
  {
    AtomicFile f(path);
    f.write("half of the new contents");
  }  // dies uncommitted
  CHECK(read_file(path) == "old");
  CHECK(test::atomic_temp_files(path).empty());

  // The destination's directory does not exist: creating the temporary file fails.
  const std::string missing = dir.file("no/such/dir/x.bin");
  try {
    write_file_atomically(missing, "x");
    FAIL("write into a missing directory succeeded");
  } catch (const AtomicFileError& e) {
    const std::string msg = e.what();
    CHECK(msg.starts_with(missing + ": cannot create temporary file"));
    CHECK(msg.find("No such file or directory") != std::string::npos);
  }

  // The final rename fails (the destination is a non-empty directory): the temporary is removed.
  const std::string target = dir.file("target");
  fs::create_directories(target);
  dir.write("target/inside", "x");
  CHECK_THROWS_WITH_AS(write_file_atomically(target, "data"), doctest::Contains("cannot rename"), AtomicFileError);
  CHECK(test::atomic_temp_files(target).empty());
  CHECK(fs::is_directory(target));

  // A write that fails (here the file size limit, as a full disk would) removes the temporary
  // file at once and names the cause; the object takes no more writes.
  struct rlimit old_limit {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  {
    AtomicFile f(path);
    struct rlimit small = old_limit;
    small.rlim_cur = 1024;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string msg;
    try {
      f.write(std::string(4096, 'x'));
    } catch (const AtomicFileError& e) {
      msg = e.what();
    }
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    CHECK(msg.starts_with(path + ": cannot write temporary file " + path + ".tmp."));
    CHECK(msg.find(std::strerror(EFBIG)) != std::string::npos);
    CHECK(test::atomic_temp_files(path).empty());
    CHECK_THROWS_AS(f.write("more"), Error);
  }
  std::signal(SIGXFSZ, old_handler);
  CHECK(read_file(path) == "old");
}

TEST_CASE("write_file_atomically writes exactly the bytes given") {
  test::TempDir dir("mg_test_atomic");
  const std::string path = dir.file("bytes.bin");
  std::string bytes(3 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char(i * 131 % 251);
  write_file_atomically(path, bytes);
  CHECK(read_file(path) == bytes);
  write_file_atomically(path, "");
  CHECK(fs::file_size(path) == 0);
}

TEST_CASE("remove_stale_temp_files removes only the temporary files of atomic writes") {
  test::TempDir dir("mg_test_atomic");
  {
    // The names AtomicFile really gives (a killed writer leaves one of these behind).
    AtomicFile writer(dir.file("ckpt.safetensors"));
    CHECK(is_atomic_temp_name(fs::path(writer.temp_path()).filename().string()));
    CHECK_FALSE(is_atomic_temp_name(fs::path(writer.temp_path()).filename().string() + "0"));
  }
  const std::string stale = dir.write("metrics.csv.tmp.123.00112233aabbccdd", "half");
  const std::string keep1 = dir.write("notes.tmp.txt", "x");
  const std::string keep2 = dir.write("a.tmp.12.0011", "short suffix");
  const std::string keep3 = dir.write("a.tmp.x1.00112233aabbccdd", "pid not a number");
  const std::string keep4 = dir.write("a.tmp.1.00112233AABBCCDD", "upper-case hex");
  fs::create_directories(dir.file("sub.tmp.1.00112233aabbccdd"));  // a directory, not a file
  CHECK(remove_stale_temp_files(dir.path.string()) == std::vector<std::string>{stale});
  CHECK_FALSE(fs::exists(stale));
  for (const auto& k : {keep1, keep2, keep3, keep4}) CHECK(fs::exists(k));
  CHECK(fs::exists(dir.file("sub.tmp.1.00112233aabbccdd")));
  CHECK(remove_stale_temp_files(dir.file("missing")).empty());
}

}  // TEST_SUITE
