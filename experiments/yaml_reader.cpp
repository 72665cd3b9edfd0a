#include "experiments/yaml_reader.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace mg {

YamlSection::YamlSection(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {
  MG_CHECK(!node_ || node_.IsNull() || node_.IsMap(), file_, ": '", path_.empty() ? "<top level>" : path_,
           "' must be a mapping of keys to values");
  if (!node_ || !node_.IsMap()) return;
  // yaml-cpp accepts what YAML 1.2 forbids or we cannot name: a key given twice (it keeps one of
  // the values, so the other would be silently ignored) and a key that is a list or mapping.
  std::vector<std::string> seen;
  for (const auto& kv : node_) {
    MG_CHECK(kv.first.IsScalar(), file_, ": '", path_.empty() ? "<top level>" : path_, "' has a ",
             kv.first.IsMap() ? "mapping" : kv.first.IsSequence() ? "list" : "null",
             " as a key; keys must be plain names");
    const std::string k = kv.first.Scalar();
    MG_CHECK(std::find(seen.begin(), seen.end(), k) == seen.end(), where(k), ": duplicate key (given twice)");
    seen.push_back(k);
  }
}

std::string YamlSection::where(const std::string& key) const {
  return file_ + ": " + (path_.empty() ? key : path_ + "." + key);
}

bool YamlSection::has(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }

std::optional<YAML::Node> YamlSection::value(const std::string& key) {
  known_.push_back(key);
  if (!has(key)) return std::nullopt;
  YAML::Node v = node_[key];
  MG_CHECK(v.IsScalar(), where(key), ": expected a single value, got a ", v.IsMap() ? "mapping" : "list");
  return v;
}

namespace {
template <class T>
bool convert_scalar(const YAML::Node& v, T& out) {
  try {
    out = v.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}
}  // namespace

void YamlSection::get(const std::string& key, int64_t& out) {
  auto v = value(key);
  if (!v) return;
  long long x;
  MG_CHECK(convert_scalar(*v, x), where(key), ": expected an integer, got '", v->Scalar(), "'");
  out = x;
}
void YamlSection::get(const std::string& key, int& out) {
  int64_t x = out;
  get(key, x);
  MG_CHECK(x >= INT32_MIN && x <= INT32_MAX, where(key), ": ", x, " out of range");
  out = int(x);
}
void YamlSection::get(const std::string& key, double& out) {
  auto v = value(key);
  if (!v) return;
  MG_CHECK(convert_scalar(*v, out), where(key), ": expected a number, got '", v->Scalar(), "'");
}
void YamlSection::get(const std::string& key, bool& out) {
  auto v = value(key);
  if (!v) return;
  MG_CHECK(convert_scalar(*v, out), where(key), ": expected true or false, got '", v->Scalar(), "'");
}
void YamlSection::get(const std::string& key, std::string& out) {
  auto v = value(key);
  if (!v) return;
  out = v->Scalar();
}
void YamlSection::get(const std::string& key, std::optional<bool>& out) {
  bool v = false;
  bool present = has(key);
  get(key, v);
  if (present) out = v;
}
void YamlSection::get(const std::string& key, std::optional<double>& out) {
  double v = 0;
  bool present = has(key);
  get(key, v);
  if (present) out = v;
}
void YamlSection::get_choice(const std::string& key, std::string& out, const std::vector<std::string>& choices) {
  get(key, out);
  if (std::find(choices.begin(), choices.end(), out) != choices.end()) return;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  throw Error(where(key) + ": '" + out + "' is not one of " + list);
}

YamlSection YamlSection::section(const std::string& key) {
  known_.push_back(key);
  std::string p = path_.empty() ? key : path_ + "." + key;
  return YamlSection(has(key) ? node_[key] : YAML::Node(), file_, p);
}

void YamlSection::finish() const {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    std::string k = kv.first.as<std::string>();
    if (std::find(known_.begin(), known_.end(), k) != known_.end()) continue;
    std::string list;
    for (const auto& c : known_) list += (list.empty() ? "" : ", ") + c;
    throw Error(where(k) + ": unknown key (known keys here: " + list + ")");
  }
}

YAML::Node load_yaml_file(const std::string& path) {
  MG_CHECK(std::filesystem::exists(path), "config file '", path, "' does not exist");
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw Error("config file '" + path + "': " + e.what());
  }
}

}  // namespace mg
