#include "experiments/args.h"

#include <cstdint>

#include "core/error.h"

namespace mg {

Args::Args(const std::string& command, const std::vector<std::string>& argv, const std::set<std::string>& options,
           const std::set<std::string>& flags)
    : command_(command) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) != 0) {
      positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    if (flags.count(name)) {
      flags_.insert(name);
    } else if (options.count(name)) {
      MG_CHECK(i + 1 < argv.size(), command_, ": option --", name, " needs a value");
      values_[name] = argv[++i];
    } else {
      std::string known;
      for (const auto& o : options) known += " --" + o + " VALUE";
      for (const auto& f : flags) known += " --" + f;
      throw Error(command_ + ": unknown option '" + a + "' (known:" + known + ")");
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  try {
    size_t pos = 0;
    long long v = std::stoll(it->second, &pos);
    if (pos == it->second.size()) return v;
  } catch (...) {
  }
  throw Error(command_ + ": --" + name + " expects an integer, got '" + it->second + "'");
}

double Args::get_double(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  try {
    size_t pos = 0;
    double v = std::stod(it->second, &pos);
    if (pos == it->second.size()) return v;
  } catch (...) {
  }
  throw Error(command_ + ": --" + name + " expects a number, got '" + it->second + "'");
}

void Args::read(const std::string& name, int& out) const {
  const int64_t v = get_int(name, out);
  MG_CHECK(v >= INT32_MIN && v <= INT32_MAX, command_, ": --", name, " ", v, " is out of range");
  out = int(v);
}

void Args::read(const std::string& name, uint64_t& out) const {
  if (!has(name)) return;
  const int64_t v = get_int(name, 0);
  MG_CHECK(v >= 0, command_, ": --", name, " must be >= 0, got ", v);
  out = uint64_t(v);
}

void Args::read(const std::string& name, std::vector<int64_t>& out) const {
  if (!has(name)) return;
  const std::string spec = get(name, "");
  std::vector<int64_t> v;
  size_t i = 0;
  while (i <= spec.size()) {
    size_t j = spec.find(',', i);
    if (j == std::string::npos) j = spec.size();
    const std::string part = spec.substr(i, j - i);
    size_t pos = 0;
    long long x = 0;
    try {
      x = std::stoll(part, &pos);
    } catch (...) {
      pos = 0;
    }
    MG_CHECK(!part.empty() && pos == part.size() && x > 0, command_, ": --", name, " '", spec,
             "': expected positive integers separated by commas");
    v.push_back(x);
    i = j + 1;
  }
  out = v;
}

std::string Args::positional(const std::string& what) const {
  MG_CHECK(positionals_.size() == 1, command_, ": expected one ", what, ", got ", positionals_.size(), " arguments");
  return positionals_[0];
}

}  // namespace mg
