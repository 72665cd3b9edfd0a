#pragma once
// The op table (ops/op_table.def) as C++ data, in table order. The per-op registries of the
// tests (golden cases, CUDA parity cases) and the docs check are compared with it; see the .def
// file for what each field means.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mg {

struct OpInfo {
  const char* name;
  const char* source;
  const char* suites;   // space-separated
  bool golden;
  bool isa;
  const char* kernels;  // space-separated; "" when the op is composed of other ops
  const char* doc;
};

inline constexpr OpInfo kOpTable[] = {
#define MG_OP(name, source, suites, golden, isa, kernels, doc) \
  OpInfo{#name, source, suites, golden != 0, isa != 0, kernels, doc},
#include "ops/op_table.def"
#undef MG_OP
};
inline constexpr size_t kOpCount = sizeof(kOpTable) / sizeof(kOpTable[0]);

// The entry named `name`, or nullptr.
inline const OpInfo* find_op(std::string_view name) {
  for (const OpInfo& op : kOpTable)
    if (name == op.name) return &op;
  return nullptr;
}

// The words of a space-separated field ("a b" -> {"a", "b"}; "" -> {}).
inline std::vector<std::string> op_field_words(std::string_view field) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < field.size()) {
    while (i < field.size() && field[i] == ' ') ++i;
    size_t j = i;
    while (j < field.size() && field[j] != ' ') ++j;
    if (j > i) words.emplace_back(field.substr(i, j - i));
    i = j;
  }
  return words;
}

}  // namespace mg
