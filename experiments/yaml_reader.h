#pragma once
// Strict reading of YAML configs: every key has a default in the C++ struct it fills, a key the
// program does not know is an error naming its full path (a typo never silently does nothing),
// and a value of the wrong type names the key, the value and the expected type.
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace mg {

class YamlSection {
 public:
  // `path` is the dotted location of `node` in the file ("train", "model"), for messages.
  YamlSection(YAML::Node node, std::string file, std::string path);

  // Reads `key` into `out` when present (leaving the default otherwise).
  void get(const std::string& key, int64_t& out);
  void get(const std::string& key, int& out);
  void get(const std::string& key, double& out);
  void get(const std::string& key, bool& out);
  void get(const std::string& key, std::string& out);
  // Set only when the key is present.
  void get(const std::string& key, std::optional<bool>& out);
  void get(const std::string& key, std::optional<double>& out);
  // One of `choices`.
  void get_choice(const std::string& key, std::string& out, const std::vector<std::string>& choices);
  YamlSection section(const std::string& key);  // a missing section is an empty one
  bool has(const std::string& key) const;
  // Throws if the node holds keys that no get/section call asked for.
  void finish() const;
  const std::string& file() const { return file_; }

 private:
  std::string where(const std::string& key) const;
  std::optional<YAML::Node> value(const std::string& key);
  YAML::Node node_;
  std::string file_, path_;
  std::vector<std::string> known_;
};

// Loads a YAML file; throws mg::Error naming the file (and line) when it is missing or malformed.
YAML::Node load_yaml_file(const std::string& path);

}  // namespace mg
