#pragma once
// The library's one exception type. Every message names the op (or file/config key) and the
// offending shapes, dtypes or values, so a user sees what went wrong without a debugger.
#include <sstream>
#include <stdexcept>
#include <string>

namespace mg {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace mg

// MG_CHECK(cond, parts...) throws mg::Error with the parts streamed together.
#define MG_CHECK(cond, ...)                                          \
  do {                                                               \
    if (!(cond)) throw ::mg::Error(::mg::detail::concat(__VA_ARGS__)); \
  } while (0)
