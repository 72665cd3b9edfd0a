#include "experiments/op_profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "autograd/instrument.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/json.h"
#include "experiments/args.h"
#include "experiments/step_bench.h"
#include "ops/op_cost.h"
#include "ops/peak.h"

namespace mg {

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Rec {
  std::string op, module, shape;
  StepPhase phase;
  double start = 0, dur = 0, flops = 0, bytes = 0;
  uint64_t node = 0;
};

double bytes_of(const Tensor& t) { return t.defined() ? double(t.numel()) * double(dtype_size(t.dtype())) : 0; }

std::string shape_of(const Tensor* t) {
  if (!t || !t->defined()) return "";
  std::string s = "[";
  for (int64_t d = 0; d < t->dim(); ++d) s += (d ? ", " : "") + std::to_string(t->size(d));
  return s + "]";
}

// "mixerblocks.3.patch_ff.0" -> "mixerblocks.*.patch_ff.0": one row for the same module of
// every block (the first numeric name is the block index; later ones name layers in a block).
std::string collapse_indices(const std::string& path) {
  std::string out, part;
  bool collapsed = false;
  auto flush = [&] {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    out += digits && !collapsed ? "*" : part;
    collapsed = collapsed || digits;
    part.clear();
  };
  for (char c : path) {
    if (c == '.') {
      flush();
      out += '.';
    } else {
      part += c;
    }
  }
  flush();
  return out.empty() ? "(top level)" : out;
}

// Collects the events of profiled steps.
class Collector {
 public:
  StepPhase phase = StepPhase::forward;
  std::vector<Rec> recs;

  void on_event(const OpEvent& ev) {
    const double end = now_s();
    if (phase == StepPhase::optimizer) return;  // the optimizer's calls are timed whole
    if (!ev.backward) {
      OpCost c = ev.inputs ? forward_op_cost(ev.op, *ev.inputs, *ev.output) : forward_op_cost(ev.op, {}, *ev.output);
      if (ev.node_id) fwd_[ev.node_id] = {c, bytes_of(*ev.output)};
      recs.push_back({ev.op, ev.module_path, shape_of(ev.output), phase, end - ev.seconds, ev.seconds, c.flops, c.bytes,
                      ev.node_id});
      return;
    }
    const std::string op = ev.op;
    if (op == "grad_sum") {
      const double n = ev.output->defined() ? double(ev.output->numel()) : 0;
      recs.push_back({op, ev.module_path, shape_of(ev.output), phase, end - ev.seconds, ev.seconds, n,
                      3 * bytes_of(*ev.output), ev.node_id});
      return;
    }
    const auto it = fwd_.find(ev.node_id);
    if (ev.input_index <= 0) {
      Rec r{op, ev.module_path, "", phase, end - ev.seconds, ev.seconds, 0, 0, ev.node_id};
      if (it != fwd_.end()) r.bytes = it->second.second, r.shape = "";
      recs.push_back(r);
    }
    Rec& r = recs.back();
    if (r.node != ev.node_id || !ev.output || !ev.output->defined()) return;
    if (it != fwd_.end()) r.flops += input_grad_flops(ev.op, it->second.first, ev.input_index);  // one more gradient
    r.bytes += bytes_of(*ev.output);
    if (r.shape.empty()) r.shape = shape_of(ev.output);
  }

  void add_timed(const char* name, double start, double dur) {
    recs.push_back({name, "(optimizer)", "", StepPhase::optimizer, start, dur, 0, 0, 0});
  }

 private:
  std::unordered_map<uint64_t, std::pair<OpCost, double>> fwd_;  // node -> forward cost, output bytes
};

std::vector<ProfileRow> aggregate(const std::vector<Rec>& recs, bool by_module, double steps) {
  std::map<std::pair<std::string, int>, ProfileRow> rows;
  for (const Rec& r : recs) {
    const std::string key = by_module ? (r.phase == StepPhase::optimizer ? r.module : collapse_indices(r.module)) : r.op;
    ProfileRow& row = rows[{key, int(r.phase)}];
    row.key = key;
    row.phase = phase_name(r.phase);
    row.calls += 1;
    row.seconds += r.dur;
    row.flops += r.flops;
    row.bytes += r.bytes;
  }
  std::vector<ProfileRow> out;
  for (auto& [k, row] : rows) {
    row.seconds /= steps, row.flops /= steps, row.bytes /= steps;
    row.calls = int64_t(std::llround(double(row.calls) / steps));
    out.push_back(row);
  }
  std::sort(out.begin(), out.end(), [](const ProfileRow& a, const ProfileRow& b) { return a.seconds > b.seconds; });
  return out;
}

void append_event(std::string& j, const std::string& name, const char* cat, int tid, double ts_us, double dur_us,
                  const std::vector<std::pair<std::string, std::string>>& args) {
  if (j.size() > 1) j += ",\n";
  j += "{\"name\":";
  append_json_string(j, name);
  j += ",\"cat\":";
  append_json_string(j, cat);
  char buf[160];
  std::snprintf(buf, sizeof buf, ",\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"args\":{", tid, ts_us,
                dur_us);
  j += buf;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) j += ",";
    append_json_string(j, args[i].first);
    j += ":";
    append_json_string(j, args[i].second);
  }
  j += "}}";
}

// Chrome trace (chrome://tracing, Perfetto): thread 1 the ops; thread 2 the phases and, inside
// them, each module's span from its first op's start to its last op's end.
std::string chrome_trace(const std::vector<Rec>& recs, const std::string& label) {
  if (recs.empty()) return "{\"traceEvents\":[]}\n";
  double t0 = recs.front().start;
  for (const Rec& r : recs) t0 = std::min(t0, r.start);
  auto us = [&](double s) { return (s - t0) * 1e6; };
  std::string ev = "[";
  std::map<std::pair<int, std::string>, std::pair<double, double>> spans;  // (phase, module) -> [start, end]
  std::map<int, std::pair<double, double>> phases;
  for (const Rec& r : recs) {
    char fl[64];
    std::snprintf(fl, sizeof fl, "%.0f", r.flops);
    append_event(ev, r.op, phase_name(r.phase), 1, us(r.start), r.dur * 1e6,
                 {{"module", r.module}, {"shape", r.shape}, {"flops", fl}});
    auto add_span = [&](auto& m, const auto& key) {
      auto [it, fresh] = m.try_emplace(key, r.start, r.start + r.dur);
      if (!fresh) it->second = {std::min(it->second.first, r.start), std::max(it->second.second, r.start + r.dur)};
    };
    add_span(phases, int(r.phase));
    if (r.phase != StepPhase::optimizer && !r.module.empty())
      for (size_t i = 0; i <= r.module.size(); ++i)
        if (i == r.module.size() || r.module[i] == '.') add_span(spans, std::make_pair(int(r.phase), r.module.substr(0, i)));
  }
  for (const auto& [p, se] : phases)
    append_event(ev, phase_name(StepPhase(p)), "phase", 2, us(se.first), (se.second - se.first) * 1e6, {});
  for (const auto& [k, se] : spans)
    append_event(ev, k.second, "module", 2, us(se.first), (se.second - se.first) * 1e6, {{"phase", phase_name(StepPhase(k.first))}});
  std::string j = "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"profile\":";
  append_json_string(j, label);
  j += "},\"traceEvents\":" + ev;
  j += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":\"ops\"}}";
  j += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":2,\"args\":{\"name\":\"phases and modules\"}}";
  j += "]}\n";
  return j;
}

}  // namespace

ProfileOptions parse_profile_args(const std::vector<std::string>& argv, bool& help) {
  Args a("profile", argv, {"steps", "out", "peak-gflops", "top"}, {"help"});
  help = a.flag("help");
  ProfileOptions o;
  if (help) return o;
  o.config = a.positional("CONFIG.yaml");
  a.read("steps", o.steps);
  a.read("out", o.out_dir);
  a.read("peak-gflops", o.peak_gflops);
  a.read("top", o.top);
  MG_CHECK(o.steps >= 1, "profile: --steps must be at least 1, got ", o.steps);
  MG_CHECK(o.peak_gflops >= 0 && std::isfinite(o.peak_gflops), "profile: --peak-gflops must be >= 0, got ", o.peak_gflops);
  MG_CHECK(o.top >= 1, "profile: --top must be at least 1, got ", o.top);
  MG_CHECK(!o.out_dir.empty(), "profile: --out needs a directory");
  return o;
}

ProfileResult profile_step(const ProfileOptions& o) {
  RunConfig rc = load_run_config(o.config);
  StepBench b = make_step_bench(rc);
  Backend& be = backend_for(b.device);
  ProfileResult r;
  r.label = rc.name + ": " + b.rc.model.summary() + ", batch " + std::to_string(rc.train.batch_size) + " x " +
            std::to_string(b.rc.model.n_ctx) + ", " + rc.train.precision + " on " + b.device.str();
  // The peak first, before the model's memory is touched.
  // A bf16 run's matmuls take bf16 operands: their peak is the bf16 GEMM's.
  r.peak_measured = o.peak_gflops <= 0;
  r.peak_dtype = rc.train.precision == "bf16" ? "bf16" : "f32";
  r.peak_gflops = o.peak_gflops > 0 ? o.peak_gflops
                                    : gemm_peak_gflops(b.device, r.peak_dtype == "bf16" ? DType::bf16 : DType::f32);
  run_step(b);  // warm-up: allocations, packing buffers, optimizer state
  // Unobserved and profiled steps alternate, so a change in the machine's load between them
  // (other processes) shifts both alike; the fastest of each is compared (the step least
  // disturbed, as for the peak: on a shared machine medians move with the load).
  std::vector<StepTimes> plain;
  std::vector<double> op_sums;
  std::vector<Rec> all, last;
  double observed = 0;
  for (int64_t i = 0; i < o.steps; ++i) {
    plain.push_back(run_step(b));
    Collector c;
    {
      OpObserverGuard guard([&c](const OpEvent& ev) { c.on_event(ev); });
      std::unique_ptr<OpSyncGuard> sync;
      if (b.device.is_cuda()) sync = std::make_unique<OpSyncGuard>([&be] { be.synchronize(); });
      StepTimes t = run_step(
          b, [&c](StepPhase p) { c.phase = p; },
          [&c, &be](const char* name, const std::function<void()>& fn) {
            be.synchronize();
            const double s = now_s();
            fn();
            be.synchronize();
            c.add_timed(name, s, now_s() - s);
          });
      observed += t.total();
    }
    double sum = 0;
    for (const Rec& x : c.recs) sum += x.dur;
    op_sums.push_back(sum);
    all.insert(all.end(), c.recs.begin(), c.recs.end());
    last = std::move(c.recs);
  }
  std::sort(plain.begin(), plain.end(), [](const StepTimes& x, const StepTimes& y) { return x.total() < y.total(); });
  const StepTimes& med = plain.front();
  r.step_seconds = med.total();
  r.forward_seconds = med.forward, r.backward_seconds = med.backward, r.optimizer_seconds = med.optimizer;
  std::sort(op_sums.begin(), op_sums.end());
  r.op_seconds = op_sums.front();
  const double n = double(o.steps);
  r.observed_step_seconds = observed / n;
  r.by_op = aggregate(all, false, n);
  r.by_module = aggregate(all, true, n);
  r.trace_json = chrome_trace(last, r.label);
  return r;
}

std::string format_profile(const ProfileResult& r, int64_t top) {
  std::string s;
  char buf[512];
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    s += buf;
  };
  line("# %s\n", r.label.c_str());
  line("# step time (unobserved, fastest of the steps): %.2f ms = forward %.2f + backward %.2f + optimizer %.2f\n", r.step_seconds * 1e3,
       r.forward_seconds * 1e3, r.backward_seconds * 1e3, r.optimizer_seconds * 1e3);
  line("# sum of per-op times (fastest profiled step): %.2f ms = %.1f%% of the step (coverage); a profiled step took %.2f ms on average\n",
       r.op_seconds * 1e3, 100 * r.coverage(), r.observed_step_seconds * 1e3);
  if (r.peak_measured)
    line("# peak: %.1f GFLOP/s (mixgrad matmul 2048^3, %s, measured)\n", r.peak_gflops, r.peak_dtype.c_str());
  else
    line("# peak: %.1f GFLOP/s (--peak-gflops)\n", r.peak_gflops);
  auto table = [&](const std::vector<ProfileRow>& rows, const char* what, int64_t limit) {
    line("\n%-9s %-34s %6s %9s %6s %9s %8s %6s %7s\n", "phase", what, "calls", "ms", "%step", "GFLOP", "GFLOP/s",
         "%peak", "GB/s");
    int64_t shown = 0;
    double rest = 0;
    for (const ProfileRow& row : rows) {
      if (shown++ >= limit) {
        rest += row.seconds;
        continue;
      }
      const double gfs = row.seconds > 0 ? row.flops / row.seconds / 1e9 : 0;
      line("%-9s %-34s %6lld %9.3f %6.1f %9.4f %8.1f %6.1f %7.2f\n", row.phase.c_str(), row.key.c_str(),
           (long long)row.calls, row.seconds * 1e3, 100 * row.seconds / r.step_seconds, row.flops / 1e9, gfs,
           r.peak_gflops > 0 ? 100 * gfs / r.peak_gflops : 0.0, row.seconds > 0 ? row.bytes / row.seconds / 1e9 : 0);
    }
    if (rest > 0) line("%-9s %-34s %6s %9.3f %6.1f\n", "", "(the other rows)", "", rest * 1e3, 100 * rest / r.step_seconds);
  };
  table(r.by_op, "op", top);
  table(r.by_module, "module (block index as *)", 1 << 30);
  for (const ProfileRow& row : r.by_op)
    if (row.seconds > 0 && row.flops / row.seconds / 1e9 > r.peak_gflops) {
      line("\n# a row beats the peak: the machine's load changed between the peak measurement and the step "
           "(compare rows within this run, or pass --peak-gflops)\n");
      break;
    }
  return s;
}

}  // namespace mg
