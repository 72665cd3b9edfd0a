#include "core/read_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mg {

bool read_file_bytes(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = detail::concat(path, ": cannot open: ", std::strerror(errno));
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    error = detail::concat(path, ": read error");
    return false;
  }
  out = std::move(ss).str();
  return true;
}

}  // namespace mg
