#pragma once
// A directory written all at once (`mixgrad export` / `import`): files go into a temporary
// directory beside the destination, which commit() renames onto it. The destination must not
// exist (nothing is overwritten); when the object dies uncommitted, the temporary directory and
// everything in it are removed, so a failed command leaves nothing behind.
#include <string>

namespace mg {

class StagingDir {
 public:
  // Throws mg::Error ("<command>: OUT_DIR 'x' already exists", or cannot be created).
  StagingDir(std::string dest, const std::string& command);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  // The path of `name` inside the temporary directory.
  std::string file(const std::string& name) const;
  void commit();

 private:
  std::string dest_, tmp_, command_;
  bool committed_ = false;
};

}  // namespace mg
