#pragma once
// Reading a whole file into memory, the one way the readers of the project's files do it.
#include <string>

#include "core/error.h"

namespace mg {

// Sets `out` to the bytes of the file at `path` and returns true; or returns false with `error`
// set to "<path>: cannot open: <system error>" or "<path>: read error".
bool read_file_bytes(const std::string& path, std::string& out, std::string& error);

// The bytes of the file at `path`; throws E (an mg::Error type, constructed from the message
// above) when it cannot be opened or read.
template <class E = Error>
std::string read_file_or_throw(const std::string& path) {
  std::string out, error;
  if (!read_file_bytes(path, out, error)) throw E(error);
  return out;
}

}  // namespace mg
