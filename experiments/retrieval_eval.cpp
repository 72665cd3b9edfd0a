#include "experiments/retrieval_eval.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "report/csv.h"
#include "report/plot.h"

namespace mg {

void require_a_pool_fits(int64_t n, const std::vector<int64_t>& pool_sizes) {
  bool fits = false;
  for (int64_t c : pool_sizes) fits |= c - 1 <= n;
  MG_CHECK(fits, "retrieval: no pool size fits the ", n, " test queries");
}

std::vector<MethodScores> evaluate_methods(const std::vector<NamedScorer>& methods, int64_t n,
                                           const std::vector<int64_t>& pool_sizes, uint64_t seed,
                                           const std::string& pairs_name, const std::string& out_dir, bool plot) {
  MG_CHECK(!methods.empty(), "retrieval: no method to evaluate");
  require_a_pool_fits(n, pool_sizes);
  for (int64_t c : pool_sizes) MG_CHECK(c >= 2, "--pools: pool size ", c, " < 2 (a pool holds the query and c - 1 candidates)");
  std::vector<MethodScores> results;
  for (const auto& m : methods) results.push_back({m.name, {}});
  for (int64_t c : pool_sizes) {
    if (c - 1 > n) {
      std::fprintf(stderr, "pool size %lld skipped: only %lld test documents\n", (long long)c, (long long)n);
      continue;
    }
    const auto pools = make_pools(n, c, seed);
    for (size_t m = 0; m < methods.size(); ++m) results[m].scores.push_back(score_pools(pools, c, methods[m].scorer));
  }

  std::printf("retrieval on %s: %lld test queries, pool seed %llu (pool c = query + c-1 candidates)\n",
              pairs_name.c_str(), (long long)n, (unsigned long long)seed);
  std::printf("%-36s", "method");
  for (const auto& s : results[0].scores)
    std::printf("  top1@%-5lld MRR@%-5lld", (long long)s.pool_size, (long long)s.pool_size);
  std::printf("\n");
  for (const auto& r : results) {
    std::printf("%-36s", r.method.c_str());
    for (const auto& s : r.scores) std::printf("  %-10.4f %-10.4f", s.top1, s.mrr);
    std::printf("\n");
  }
  if (out_dir.empty()) return results;
  std::filesystem::create_directories(out_dir);
  const std::string csv = out_dir + "/retrieval.csv";
  {
    report::CsvWriter w(csv, {"method", "pairs", "pool_size", "queries", "top1", "mrr", "seed"});
    for (const auto& r : results)
      for (const auto& s : r.scores)
        w.row({r.method, pairs_name, std::to_string(s.pool_size), std::to_string(s.queries), report::csv_num(s.top1),
               report::csv_num(s.mrr), std::to_string(seed)});
  }
  if (!plot) {
    std::printf("wrote %s\n", csv.c_str());
    return results;
  }
  const std::string png = out_dir + "/retrieval_top1.png";
  report::BarPlot bp;
  bp.title = "Top-1 retrieval accuracy, " + pairs_name + " (" + std::to_string(n) + " test queries)";
  bp.ylabel = "top-1 accuracy";
  for (const auto& s : results[0].scores) bp.categories.push_back("c = " + std::to_string(s.pool_size));
  for (const auto& r : results) {
    bp.series_names.push_back(r.method);
    std::vector<double> v;
    for (const auto& s : r.scores) v.push_back(s.top1);
    bp.values.push_back(v);
  }
  report::save_bar_plot(png, bp);
  std::printf("wrote %s and %s\n", csv.c_str(), png.c_str());
  return results;
}

}  // namespace mg
