#pragma once
// Minimal command-line parsing for the subcommands: `--name value` options, `--flag` switches and
// positionals. Unknown options are errors naming them.
#include <map>
#include <set>
#include <string>
#include <vector>

namespace mg {

class Args {
 public:
  // `options` take a value, `flags` do not.
  Args(const std::string& command, const std::vector<std::string>& argv, const std::set<std::string>& options,
       const std::set<std::string>& flags);
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  // Overwrite `out` with the option's value when it was given, leaving the default (the options
  // struct's own, stated once there) otherwise; a value of the wrong type is an error naming it.
  void read(const std::string& name, std::string& out) const { out = get(name, out); }
  void read(const std::string& name, int64_t& out) const { out = get_int(name, out); }
  void read(const std::string& name, int& out) const;
  void read(const std::string& name, uint64_t& out) const;
  void read(const std::string& name, double& out) const { out = get_double(name, out); }
  // A switch: true when given, the default otherwise.
  void read_flag(const std::string& name, bool& out) const { out = out || flag(name); }
  // "32,128,1024": a list of positive integers.
  void read(const std::string& name, std::vector<int64_t>& out) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  // The single positional argument; throws naming `what` when absent or repeated.
  std::string positional(const std::string& what) const;

 private:
  std::string command_;
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positionals_;
};

}  // namespace mg
