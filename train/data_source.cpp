#include "train/data_source.h"

#include <cerrno>
#include <cstdlib>

#include "core/error.h"

namespace mg {

unsigned long long state_uint(const SourceState& s, const std::string& key, const std::string& where) {
  auto it = s.find(key);
  MG_CHECK(it != s.end(), where, ": metadata key '", key, "' is missing (not a checkpoint of this kind of run?)");
  const std::string& v = it->second;
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  MG_CHECK(!v.empty() && v[0] != '-' && end == v.c_str() + v.size() && errno == 0, where, ": metadata key '", key,
           "' holds '", v, "', not an unsigned integer");
  return x;
}

}  // namespace mg
