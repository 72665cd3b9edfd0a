#include "train/trainer.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "autograd/anomaly.h"
#include "autograd/grad_mode.h"
#include "core/autocast.h"
#include "core/determinism.h"
#include "nn/checkpoint.h"
#include "nn/lr_schedule.h"
#include "ops/inplace.h"
#include "core/factories.h"
#include "core/device_collectives.h"
#include "train/communicator.h"
#include "train/grad_reducer.h"
#include "report/csv.h"
#include "report/plot.h"
#include "report/progress.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

std::atomic<int> g_signal{0};
extern "C" void on_stop_signal(int sig) { g_signal = sig; }

// Ctrl-C and SIGTERM (a scheduler's stop) both end the run at the next step boundary with a
// checkpoint; the previous handlers come back when training ends.
struct StopSignals {
  using Handler = void (*)(int);
  Handler prev_int, prev_term;
  StopSignals() : prev_int(std::signal(SIGINT, on_stop_signal)), prev_term(std::signal(SIGTERM, on_stop_signal)) {
    g_signal = 0;
  }
  ~StopSignals() {
    std::signal(SIGINT, prev_int);
    std::signal(SIGTERM, prev_term);
  }
};

const std::vector<std::string> kColumns = {"step", "lr", "train_loss", "grad_norm", "val_loss", "tokens", "seconds"};

// Keeps the rows of metrics.csv up to `step`: a resumed run rewrites what followed its checkpoint.
void truncate_metrics(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  report::CsvTable t = report::read_csv(path);
  std::vector<std::vector<std::string>> keep;
  for (auto& r : t.rows)
    if (int64_t(state_uint({{"step", r[0]}}, "step", path)) <= step) keep.push_back(r);
  t.rows = std::move(keep);
  report::write_csv(path, t);  // atomically: a crash here leaves the old file
}

void plot_losses(const std::string& csv_path, const std::string& png, const TrainHooks& hooks) {
  report::CsvTable t = report::read_csv(csv_path);
  report::Series train{"train (mean of 20 steps)", {}, {}}, val{"validation", {}, {}},
      base{hooks.baseline_label, {}, {}};
  double acc = 0;
  int n = 0;
  for (auto& r : t.rows) {
    double step = std::stod(r[0]);
    acc += std::stod(r[2]);
    if (++n == 20) {
      train.x.push_back(step);
      train.y.push_back(acc / n);
      acc = 0, n = 0;
    }
    if (!r[4].empty()) {
      val.x.push_back(step);
      val.y.push_back(std::stod(r[4]));
    }
  }
  std::vector<report::Series> series{train};
  if (!val.x.empty()) series.push_back(val);
  if (!t.rows.empty() && std::isfinite(hooks.baseline)) {
    base.x = {std::stod(t.rows.front()[0]), std::stod(t.rows.back()[0])};
    base.y = {hooks.baseline, hooks.baseline};
    series.push_back(base);
  }
  report::save_line_plot(png, {hooks.plot_title, "step", "loss", series, false});
}

double read_double(const std::map<std::string, std::string>& meta, const std::string& key) {
  auto it = meta.find(key);
  if (it == meta.end()) return 0;  // checkpoints from before these totals were kept
  try {
    return std::stod(it->second);
  } catch (...) {
    return 0;
  }
}

}  // namespace

Trainer::Trainer(Module& model, const TrainSettings& settings, RunControl control)
    : model_(model), s_(settings), control_(std::move(control)) {
  validate_train_settings(s_, control_.label.empty() ? "trainer" : control_.label);
  MG_CHECK(!control_.resume || !control_.out_dir.empty(), "--resume needs a run directory (out_dir)");
  if (s_.threads > 0) omp_set_num_threads(s_.threads);
  if (s_.deterministic) set_deterministic(true);  // process-wide; a config never turns it off
  device_ = parse_device(s_.device);
  bf16_ = s_.precision == "bf16";
  auto params = model_.parameters();
  MG_CHECK(!params.empty(), "trainer: the model has no parameters");
  if (params[0].device() != device_) model_.to(device_);
  if (!control_.out_dir.empty()) ckpt_ = control_.out_dir + "/checkpoint.safetensors";
}

TrainResult Trainer::run(Resumable& data, const std::function<void()>& next, const std::function<void()>& skip,
                         const std::function<StepLoss()>& step_loss, const TrainHooks& hooks) {
  const auto t_start = std::chrono::steady_clock::now();
  Communicator& comm = world();
  const int rank = comm.rank(), ranks = comm.size();
  const int64_t accum = s_.grad_accum_steps, micro = accum * ranks;  // micro-batches per step
  const bool files = !control_.out_dir.empty() && rank == 0;
  const std::string csv_path = control_.out_dir + "/metrics.csv";
  if (files)
    lock_.emplace(control_.out_dir, "training " + (control_.label.empty() ? control_.out_dir : control_.label));
  if (!control_.out_dir.empty()) {
    // Checked under rank 0's lock, so two runs cannot both find the directory empty.
    MG_CHECK(control_.resume || !fs::exists(ckpt_), "out_dir '", control_.out_dir,
             "' already holds a checkpoint: pass --resume to continue it, or choose another out_dir");
    MG_CHECK(!control_.resume || fs::exists(ckpt_), "--resume: no checkpoint at '", ckpt_, "'");
  }

  std::vector<Tensor> params = model_.parameters();
  AdamW opt(params, AdamWOptions{s_.lr, s_.beta1, s_.beta2, s_.eps, s_.weight_decay});
  const LRSchedule sched{s_.lr, s_.warmup_steps, s_.steps, s_.decay, s_.min_lr};

  TrainResult res;
  int64_t step = 0;
  double tokens_before = 0, seconds_before = 0;  // totals of earlier invocations
  if (control_.resume) {
    // Everything is validated before anything in the run directory changes.
    auto meta = load_checkpoint(ckpt_, model_, &opt);
    step = int64_t(state_uint(meta, "step", ckpt_));
    if (meta.count("train.micro_batches")) {
      const int64_t was = int64_t(state_uint(meta, "train.micro_batches", ckpt_));
      MG_CHECK(was == micro, ckpt_, " was trained with ", was, " micro-batches per step (ranks x grad_accum_steps); ",
               "this run has ", ranks, " x ", accum, " = ", micro, ": keep the product to resume on the same data order");
    }
    MG_CHECK(step <= s_.steps, ckpt_, " is at step ", step, ", beyond train.steps = ", s_.steps);
    data.restore(meta, ckpt_);
    tokens_before = read_double(meta, "train.tokens");
    seconds_before = read_double(meta, "train.seconds");
    if (files) truncate_metrics(csv_path, step);
    if (rank == 0) std::fprintf(stderr, "train: resumed %s at step %lld\n", ckpt_.c_str(), (long long)step);
  }
  res.first_step = step;
  // The default mode's reduction: bucketed, started during the last backward of each step, and
  // on GPUs with the device's own library (NCCL) where the build has one. Deterministic mode
  // keeps the rank-order sum of reduce_gradients().
  std::unique_ptr<DeviceComm> device_comm;
  std::unique_ptr<GradReducer> reducer;
  if (ranks > 1 && !s_.deterministic) {
    if (DeviceCollectives* dc = device_.is_cuda() ? device_collectives(device_.type) : nullptr) {
      std::vector<uint8_t> id = rank == 0 ? dc->unique_id() : std::vector<uint8_t>();
      uint64_t n = id.size();
      comm.broadcast(&n, sizeof n, 0);
      id.resize(size_t(n));
      comm.broadcast(id.data(), id.size(), 0);
      device_comm = dc->connect(id, rank, ranks);
      if (rank == 0) std::fprintf(stderr, "train: GPU gradients are all-reduced with %s\n", dc->describe().c_str());
    }
    reducer = std::make_unique<GradReducer>(params, comm, device_comm.get(),
                                            size_t(s_.reduce_bucket_mb * 1024 * 1024), s_.reduce_overlap);
  }
  if (ranks > 1 && rank == 0)
    std::fprintf(stderr, "train: %s, %lld micro-batches per step (%d ranks x %lld)%s\n", comm.describe().c_str(),
                 (long long)micro, ranks, (long long)accum, s_.deterministic ? ", deterministic reduction" : "");
  if (hooks.on_start && rank == 0) hooks.on_start();

  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(); };
  auto save = [&](int64_t at_step) {
    if (!files) return;
    std::map<std::string, std::string> meta = hooks.metadata;
    for (auto& [k, v] : data.state()) meta[k] = v;
    meta["step"] = std::to_string(at_step);
    meta["train.tokens"] = report::csv_num(tokens_before + res.tokens);
    meta["train.seconds"] = report::csv_num(seconds_before + elapsed());
    meta["train.micro_batches"] = std::to_string(micro);
    save_checkpoint(ckpt_, model_, &opt, meta);
  };
  auto evaluate = [&]() {
    NoGradGuard no_grad;
    AutocastGuard autocast(bf16_);
    return hooks.validate();
  };

  std::unique_ptr<report::CsvWriter> csv;
  if (files) csv = std::make_unique<report::CsvWriter>(csv_path, kColumns, /*append=*/control_.resume);
  std::unique_ptr<report::ProgressBar> bar;
  if (control_.progress && rank == 0) bar = std::make_unique<report::ProgressBar>(s_.steps, control_.label, s_.log_every);
  StopSignals signals;
  double window_loss = 0;
  int64_t window_n = 0, steps_run = 0;
  const double limit_s = s_.time_limit_minutes * 60;
  std::unique_ptr<AnomalyModeGuard> anomaly;
  if (s_.detect_anomaly) anomaly = std::make_unique<AnomalyModeGuard>();
  while (step < s_.steps) {
    const double lr = sched.at(step);
    if (anomaly) anomaly->set_context("step " + std::to_string(step + 1));
    opt.set_lr(lr);
    double l = 0, step_tokens = 0;
    if (micro == 1) {
      next();
      StepLoss sl;
      {
        AutocastGuard autocast(bf16_);
        sl = step_loss();
      }
      sl.loss.backward();
      l = sl.loss.item();
      step_tokens = sl.tokens;
    } else {
      // This rank's micro-batches are r*A .. r*A+A-1 of the step's M; the others are skipped.
      std::vector<double> mine;
      for (int64_t m = 0; m < micro; ++m) {
        if (m / accum != rank) {
          skip();
          continue;
        }
        next();
        StepLoss sl;
        {
          AutocastGuard autocast(bf16_);
          sl = step_loss();
        }
        // Only the last micro-step's backward finishes gradients, so only it overlaps the sums.
        if (reducer && m % accum == accum - 1) reducer->arm();
        sl.loss.backward();
        mine.push_back(sl.loss.item());
        step_tokens += sl.tokens;
      }
      if (reducer) reducer->finish(1.0 / double(micro));
      else reduce_gradients(params, comm, s_.deterministic, 1.0 / double(micro));
      std::vector<double> all(static_cast<size_t>(micro));
      comm.allgather(mine.data(), mine.size(), all.data());
      for (double x : all) l += x;  // in micro-batch order, as one process would
      l /= double(micro);
      comm.allreduce_sum(&step_tokens, 1);
    }
    const double gnorm = s_.grad_clip > 0 ? clip_grad_norm(params, s_.grad_clip) : NAN;
    opt.step();
    opt.zero_grad();
    MG_CHECK(std::isfinite(l), control_.label.empty() ? "train" : control_.label, ": loss became ", l, " at step ",
             step + 1, " (lr ", lr, "); lower train.lr");
    ++step, ++steps_run;
    res.losses.push_back(l);
    res.tokens += step_tokens;
    window_loss += l, ++window_n;
    std::string val;
    if (hooks.validate && ((s_.eval_every > 0 && step % s_.eval_every == 0) || step == s_.steps)) {
      const double v = evaluate();
      res.validation.push_back({step, v});
      val = report::csv_num(v);
    }
    const double el = elapsed();
    if (csv)
      csv->row({std::to_string(step), report::csv_num(lr), report::csv_num(l), report::csv_num(gnorm), val,
                report::csv_num(tokens_before + res.tokens), report::csv_num(seconds_before + el)});
    if (bar) {
      char info[96];
      std::snprintf(info, sizeof info, "loss %.3f%s", window_loss / double(window_n),
                    res.validation.empty() ? ""
                                           : (" val " + report::csv_num(res.validation.back().loss).substr(0, 5)).c_str());
      bar->update(step, info, res.tokens);
    }
    if (step % s_.log_every == 0 || step == s_.steps) {
      res.last_train_loss = window_loss / double(window_n);
      if (hooks.on_log) hooks.on_log(step, res.last_train_loss);
      window_loss = 0, window_n = 0;
    }
    bool stop = g_signal != 0 || (limit_s > 0 && el > limit_s) ||
                (control_.stop_after >= 0 && steps_run >= control_.stop_after);
    if (ranks > 1) stop = comm.any(stop);  // a signal or time limit on any rank stops all at this step
    if ((s_.checkpoint_every > 0 && step % s_.checkpoint_every == 0) || step == s_.steps || stop) save(step);
    if (stop && step < s_.steps) {
      res.interrupted = true;
      res.stop_reason = g_signal != 0 ? "interrupted" : control_.stop_after >= 0 && steps_run >= control_.stop_after
                                                            ? "stop_after"
                                                            : "time limit";
      if (rank == 0)
        std::fprintf(stderr, "\n%s: stopped at step %lld (%s)%s\n", control_.label.empty() ? "train" : control_.label.c_str(),
                   (long long)step, res.stop_reason.c_str(),
                   files ? "; checkpoint saved, continue with --resume" : "");
      break;
    }
  }
  if (window_n) res.last_train_loss = window_loss / double(window_n);
  if (reducer && rank == 0 && steps_run > 0)
    std::fprintf(stderr, "train: gradient all-reduce in %zu buckets of <= %g MiB, %lld of %lld started during backward, "
                 "%.1f ms per step waiting after backward\n", reducer->bucket_count(), s_.reduce_bucket_mb,
                 (long long)reducer->started_during_backward(), (long long)reducer->started_total(),
                 1e3 * reducer->wait_seconds() / double(steps_run));
  res.steps_done = step;
  res.seconds = elapsed();
  res.tokens_per_second = res.seconds > 0 ? res.tokens / res.seconds : 0;
  if (bar) bar->finish("");
  csv.reset();
  if (files) plot_losses(csv_path, control_.out_dir + "/loss.png", hooks);
  return res;
}

}  // namespace mg
