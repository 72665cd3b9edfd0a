// The op table (ops/op_table.def) against the lists it drives and the files it names: CMake and
// Python read the same entries as the C++ X-macro; every field names something that exists;
// docs/ops.md has one row per op and no other; every op whose CPU kernels dispatch on the ISA is
// flagged, so its suites are rerun with the lower paths forced (CMakeLists.txt). The golden list
// and the CUDA parity list are checked by tests/test_golden_ops.cpp and tests/test_cuda.cpp, where
// those registries live.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ops/op_table.h"
#include "tests/test_helpers.h"

using namespace mg;

namespace {

std::string read_file(const std::string& rel) {
  std::ifstream in(std::string(MG_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  return lines;
}

bool exists(const std::string& rel) { return std::filesystem::exists(std::string(MG_SOURCE_DIR) + "/" + rel); }

std::set<std::string> table_names() {
  std::set<std::string> names;
  for (const OpInfo& op : kOpTable) names.insert(op.name);
  return names;
}

// The Backend's kernels, from the same list core/backend.h expands.
const std::vector<std::string>& backend_kernels() {
  static const std::vector<std::string> names = {
#define MG_BACKEND_KERNEL(ret, name, params) #name,
#include "core/backend_kernels.def"
#undef MG_BACKEND_KERNEL
  };
  return names;
}

// What a CPU kernel file contains when it dispatches on the ISA: a call of run_isa
// (cpu/isa_dispatch.h, MG_KERNEL_ISA), of a threaded loop of cpu/parallel.h (each runs its body
// through run_isa), or MG_GEMM_ISA (attention picks its build by the GEMM's knob).
std::vector<std::string> isa_markers() {
  std::vector<std::string> markers = {"run_isa(", "MG_GEMM_ISA"};
  const std::string parallel = read_file("cpu/parallel.h");
  if (parallel.find("run_isa(") != std::string::npos) {
    static const std::regex fn(R"(\bvoid ([a-z_0-9]+)\()");
    for (auto it = std::sregex_iterator(parallel.begin(), parallel.end(), fn); it != std::sregex_iterator(); ++it)
      markers.push_back((*it)[1].str() + "(");
  }
  return markers;
}

// The cpu/ file that defines CpuBackend::<kernel>, or "".
std::string cpu_file_defining(const std::string& kernel) {
  for (const auto& entry : std::filesystem::directory_iterator(std::string(MG_SOURCE_DIR) + "/cpu")) {
    if (entry.path().extension() != ".cpp") continue;
    const std::string rel = "cpu/" + entry.path().filename().string();
    if (read_file(rel).find("CpuBackend::" + kernel + "(") != std::string::npos) return rel;
  }
  return "";
}

// The rows of docs/ops.md's op table (the table whose header starts "| op |"): the op each row
// names in its first cell, which must be the op's name in backticks.
std::vector<std::string> documented_ops(std::vector<std::string>& malformed) {
  std::vector<std::string> ops;
  bool in_table = false;
  for (const std::string& line : lines_of(read_file("docs/ops.md"))) {
    if (line.rfind("| op |", 0) == 0) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (line.rfind("|", 0) != 0) break;
    if (line.rfind("|---", 0) == 0) continue;
    static const std::regex cell(R"(^\| `([a-z0-9_]+)` \|)");
    std::smatch m;
    if (std::regex_search(line, m, cell))
      ops.push_back(m[1]);
    else
      malformed.push_back(line);
  }
  return ops;
}

}  // namespace

TEST_CASE("op table: CMake, Python and C++ read the same entries") {
  // The format stated in ops/op_table.def; CMakeLists.txt and tests/golden/make_fixtures.py use
  // the same expression.
  static const std::regex entry(
      R"re(^MG_OP\(([a-z0-9_]+), *"([^"]*)", *"([^"]*)", *([01]), *([01]), *"([^"]*)", *"([^"]*)"\) *$)re");
  std::vector<std::string> parsed;
  for (const std::string& line : lines_of(read_file("ops/op_table.def"))) {
    if (line.rfind("MG_OP(", 0) != 0) continue;
    CHECK_MESSAGE(line.find(';') == std::string::npos, "ops/op_table.def: a ';' splits the entry for CMake: " << line);
    std::smatch m;
    if (!std::regex_match(line, m, entry)) {
      FAIL_CHECK("ops/op_table.def: an MG_OP line that CMake and Python cannot read: " << line);
      continue;
    }
    parsed.push_back(m[1]);
  }
  std::vector<std::string> compiled;
  for (const OpInfo& op : kOpTable) compiled.emplace_back(op.name);
  CHECK(parsed == compiled);
  // What CMakeLists.txt read, passed in by it.
  CHECK(op_field_words(MG_CMAKE_OP_NAMES) == compiled);
}

TEST_CASE("op table: names are unique and every file, suite and kernel it names exists") {
  CHECK(table_names().size() == kOpCount);
  const std::vector<std::string>& kernels = backend_kernels();
  for (const OpInfo& op : kOpTable) {
    INFO("op " << std::string(op.name));
    CHECK_MESSAGE(exists(op.source), "source " << std::string(op.source) << " does not exist");
    CHECK_MESSAGE(!op_field_words(op.suites).empty(), "no test suite");
    for (const std::string& suite : op_field_words(op.suites))
      CHECK_MESSAGE(exists("tests/" + suite + ".cpp"), "suite tests/" << suite << ".cpp does not exist");
    for (const std::string& k : op_field_words(op.kernels))
      CHECK_MESSAGE(std::find(kernels.begin(), kernels.end(), k) != kernels.end(),
                    "kernel " << k << " is not a Backend kernel (core/backend_kernels.def)");
    CHECK_MESSAGE(std::string(op.doc).size() > 0, "no description");
  }
}

TEST_CASE("op table: docs/ops.md has a row for every op and none for anything else") {
  std::vector<std::string> malformed;
  const std::vector<std::string> documented = documented_ops(malformed);
  for (const std::string& line : malformed)
    FAIL_CHECK("docs/ops.md: a row of the op table whose first cell is not an op name in backticks: " << line);
  for (const OpInfo& op : kOpTable)
    CHECK_MESSAGE(std::count(documented.begin(), documented.end(), op.name) == 1,
                  "op '" << std::string(op.name) << "' of ops/op_table.def has "
                         << std::count(documented.begin(), documented.end(), op.name) << " rows in docs/ops.md, not 1");
  const std::set<std::string> names = table_names();
  for (const std::string& d : documented)
    CHECK_MESSAGE(names.count(d) == 1,
                  "docs/ops.md has a row for '" << d << "', which is not an op of ops/op_table.def");
}

// A fused-kernel file (cpu/<family>_kernels.cpp) that dispatches on the ISA (isa_markers()):
// an op that calls a kernel defined in such a file must be flagged isa, so that CMakeLists.txt
// reruns its suites with the lower paths forced. cpu/cpu_backend.cpp (the generic kernels: memory,
// elementwise, reductions, indexing, and the GEMM entry) is not such a file: the GEMM's ISAs are
// swept inside test_gemm (gemm_force_isa), and its other run_isa use is the f32 <-> bf16 cast of
// `copy`, which no rerun covers (docs/ops.md notes it).
TEST_CASE("op table: every op with an ISA-dispatching CPU kernel is flagged isa, and CMake reruns its suites") {
  const std::vector<std::string> reruns = op_field_words(MG_CMAKE_ISA_SUITES);
  const std::vector<std::string> markers = isa_markers();
  for (const OpInfo& op : kOpTable) {
    INFO("op " << std::string(op.name));
    for (const std::string& k : op_field_words(op.kernels)) {
      const std::string file = cpu_file_defining(k);
      CHECK_MESSAGE(!file.empty(), "no cpu/*.cpp defines CpuBackend::" << k);
      if (file.empty() || file == "cpu/cpu_backend.cpp") continue;
      const std::string text = read_file(file);
      const bool dispatches = std::any_of(markers.begin(), markers.end(),
                                          [&](const std::string& m) { return text.find(m) != std::string::npos; });
      CHECK_MESSAGE((!dispatches || op.isa), "op '" << std::string(op.name) << "' calls " << k << ", which " << file
                                                   << " dispatches on the ISA, but ops/op_table.def has isa = 0");
    }
    if (!op.isa) continue;
    for (const std::string& suite : op_field_words(op.suites))
      CHECK_MESSAGE(std::find(reruns.begin(), reruns.end(), suite) != reruns.end(),
                    "suite " << suite << " of op '" << std::string(op.name) << "' (isa = 1) has no " << suite
                             << "_avx2 / " << suite << "_base reruns in CMakeLists.txt");
  }
  // And CMake reruns nothing else.
  for (const std::string& suite : reruns) {
    bool wanted = false;
    for (const OpInfo& op : kOpTable)
      if (op.isa) {
        const auto s = op_field_words(op.suites);
        wanted = wanted || std::find(s.begin(), s.end(), suite) != s.end();
      }
    CHECK_MESSAGE(wanted, "CMakeLists.txt reruns " << suite << ", which no op with isa = 1 names");
  }
}
