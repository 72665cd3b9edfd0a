#include "experiments/interop_dir.h"

#include <filesystem>
#include <random>
#include <unistd.h>

#include "core/error.h"

namespace mg {

namespace fs = std::filesystem;

StagingDir::StagingDir(std::string dest, const std::string& command) : dest_(std::move(dest)), command_(command) {
  MG_CHECK(!dest_.empty(), command_, ": the output directory is empty");
  std::error_code ec;
  MG_CHECK(!fs::exists(dest_, ec), command_, ": output directory '", dest_, "' already exists; choose a new one");
  fs::path parent = fs::absolute(dest_, ec).parent_path();
  MG_CHECK(!ec && fs::is_directory(parent), command_, ": the parent of output directory '", dest_,
           "' does not exist");
  std::random_device rd;
  tmp_ = (parent / (fs::path(dest_).filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                    std::to_string(rd())))
             .string();
  fs::create_directory(tmp_, ec);
  MG_CHECK(!ec, command_, ": cannot create '", tmp_, "': ", ec.message());
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

std::string StagingDir::file(const std::string& name) const { return (fs::path(tmp_) / name).string(); }

void StagingDir::commit() {
  std::error_code ec;
  MG_CHECK(!fs::exists(dest_, ec), command_, ": output directory '", dest_, "' appeared while writing; not replaced");
  fs::rename(tmp_, dest_, ec);
  MG_CHECK(!ec, command_, ": cannot rename '", tmp_, "' to '", dest_, "': ", ec.message());
  committed_ = true;
}

}  // namespace mg
