#include "experiments/trainer.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/autocast.h"
#include "core/determinism.h"
#include "data/batcher.h"
#include "experiments/data_prep.h"
#include "experiments/generate.h"
#include "nn/checkpoint.h"
#include "nn/lm.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "ops/softmax.h"
#include "report/csv.h"
#include "report/plot.h"
#include "report/progress.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

// Restores the previous SIGINT handler when training ends.
struct SigintScope {
  using Handler = void (*)(int);
  Handler prev;
  SigintScope() : prev(std::signal(SIGINT, on_sigint)) { g_interrupted = false; }
  ~SigintScope() { std::signal(SIGINT, prev); }
};

const std::vector<std::string> kColumns = {"step", "lr", "train_loss", "grad_norm", "val_loss", "tokens", "seconds"};

// Keeps the rows of metrics.csv up to `step` (a resumed run rewrites what followed its checkpoint).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  report::CsvTable t = report::read_csv(path);
  std::string tmp = path + ".tmp";
  {
    report::CsvWriter w(tmp, kColumns);
    for (auto& r : t.rows)
      if (std::stoll(r[0]) <= step) w.row(r);
  }
  fs::rename(tmp, path);
}

void plot_losses(const std::string& csv_path, const std::string& png, const std::string& title, double unigram) {
  report::CsvTable t = report::read_csv(csv_path);
  report::Series train{"train (mean of 20 steps)", {}, {}}, val{"validation", {}, {}}, uni{"unigram baseline", {}, {}};
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
  if (!t.rows.empty()) {
    uni.x = {std::stod(t.rows.front()[0]), std::stod(t.rows.back()[0])};
    uni.y = {unigram, unigram};
  }
  report::save_line_plot(png, {title, "step", "cross-entropy (nats)", {train, val, uni}, false});
}

}  // namespace

Tensor shifted_lm_loss(const Tensor& logits, const Tensor& labels, bool sum) {
  const int64_t T = logits.size(1);
  MG_CHECK(T >= 2, "lm loss: sequences of length ", T, " have no next-token targets");
  Tensor l = logits.slice(1, 0, T - 1);
  Tensor y = labels.slice(1, 1, T).contiguous();
  return cross_entropy(l, y, kIgnoreIndex, sum ? Reduction::sum : Reduction::mean);
}

int64_t count_scored(const Tensor& labels) {
  std::vector<int32_t> v = labels.to_vector<int32_t>();
  const int64_t T = labels.size(1);
  int64_t n = 0;
  for (size_t i = 0; i < v.size(); ++i)
    if (int64_t(i) % T != 0 && v[i] != kIgnoreIndex) ++n;
  return n;
}

BatcherOptions run_batcher_options(const RunConfig& rc, const BpeTokenizer& tok) {
  BatcherOptions bo;
  bo.batch_size = rc.train.batch_size;
  bo.n_ctx = rc.model.n_ctx;
  bo.mode = rc.data.batching;
  bo.pad_side = rc.data.pad_side;
  bo.pad_id = tok.pad_id();
  bo.eos_id = tok.eos_id();
  bo.seed = rc.train.seed;
  return bo;
}

double mean_validation_loss(const TrainObjective& obj, ValidationBatches& batches, Device dev, int64_t max_batches) {
  NoGradGuard no_grad;
  batches.reset();
  Batch b;
  double total = 0;
  int64_t count = 0, nb = 0;
  while ((max_batches == 0 || nb < max_batches) && batches.next(b)) {
    total += obj.loss(b.inputs.to(dev), b.labels.to(dev), true).item();
    count += obj.count_scored(b.labels);
    ++nb;
  }
  return count ? total / double(count) : NAN;
}

TrainSummary train_run(const RunConfig& rc, const TrainOptions& opts) {
  MG_CHECK(!rc.autoencoder, "'", rc.name, "' is an autoencoder config (autoencoder: true): train it with ",
           "`mixgrad autoencode train`");
  return train_objective(rc, opts, [&](Generator& gen, Device dev) {
    std::shared_ptr<LanguageModel> model = make_model(rc.model, gen, TensorOptions{DType::f32, dev, false});
    LanguageModel* m = model.get();
    TrainObjective obj;
    obj.model = model;
    obj.summary = rc.model.summary();
    obj.loss = [m](const Tensor& inputs, const Tensor& labels, bool sum) {
      return shifted_lm_loss(m->forward(inputs), labels, sum);
    };
    obj.count_scored = count_scored;
    // A sample: the model continues the first 16 tokens of the first validation document.
    obj.sample = [m](const PreparedData& data) {
      auto doc = data.validation->document(0);
      std::vector<int32_t> prompt(doc.begin(), doc.begin() + long(std::min<size_t>(16, doc.size())));
      GenerateOptions go;
      go.max_new_tokens = 40;
      const BpeTokenizer& tok = *data.tokenizer;
      return tok.decode(prompt) + " >>> " + tok.decode(generate_ids(*m, prompt, go, tok.eos_id()));
    };
    return obj;
  });
}

TrainSummary train_objective(const RunConfig& rc, const TrainOptions& opts,
                             const std::function<TrainObjective(Generator&, Device)>& build) {
  const TrainSettings& ts = rc.train;
  if (ts.threads > 0) omp_set_num_threads(ts.threads);
  // bf16: forward and loss under autocast; backward, clipping and AdamW outside it, on f32.
  const bool bf16 = ts.precision == "bf16";
  if (ts.deterministic) set_deterministic(true);  // process-wide; a config never turns it off
  const Device dev = parse_device(ts.device);
  const auto t_start = std::chrono::steady_clock::now();

  fs::create_directories(rc.out_dir);
  const std::string ckpt = rc.out_dir + "/checkpoint.safetensors", csv_path = rc.out_dir + "/metrics.csv";
  MG_CHECK(opts.resume || !fs::exists(ckpt), "out_dir '", rc.out_dir,
           "' already holds a checkpoint: pass --resume to continue it, or choose another out_dir");
  MG_CHECK(!opts.resume || fs::exists(ckpt), "--resume: no checkpoint at '", ckpt, "'");

  PreparedData data = prepare_data(rc.data);
  const BpeTokenizer& tok = *data.tokenizer;
  fs::copy_file(data.dir + "/tokenizer.bpe", rc.out_dir + "/tokenizer.bpe", fs::copy_options::overwrite_existing);
  {
    std::ofstream(rc.out_dir + "/config.yaml") << rc.source_yaml;
  }

  Generator gen(ts.seed);
  const TrainObjective obj = build(gen, dev);
  MG_CHECK(obj.model && obj.loss && obj.count_scored, "train: incomplete training objective");
  Module& model = *obj.model;
  std::vector<Tensor> params = model.parameters();
  AdamW opt(params, AdamWOptions{ts.lr, ts.beta1, ts.beta2, ts.eps, ts.weight_decay});
  LRSchedule sched{ts.lr, ts.warmup_steps, ts.steps, ts.decay, ts.min_lr};

  BatcherOptions bo = run_batcher_options(rc, tok);
  Batcher batcher(data.train, bo);
  BatcherOptions vo = bo;
  vo.shuffle = false;
  ValidationBatches val_batches(data.validation, vo);

  TrainSummary sum;
  sum.num_parameters = model.num_parameters();
  sum.unigram_entropy = unigram_entropy(*data.train);
  int64_t step = 0;
  if (opts.resume) {
    auto meta = load_checkpoint(ckpt, model, &opt);
    step = std::stoll(meta.at("step"));
    batcher.set_position({std::stoull(meta.at("data.epoch")), std::stoull(meta.at("data.cursor")),
                          std::stoull(meta.at("data.seed"))});
    truncate_metrics(csv_path, step);
    std::fprintf(stderr, "train: resumed %s at step %lld\n", ckpt.c_str(), (long long)step);
  }
  std::fprintf(stderr, "train: %s, %lld parameters, %llu train / %llu validation samples, unigram baseline %.3f nats\n",
               obj.summary.c_str(), (long long)sum.num_parameters,
               (unsigned long long)batcher.samples_per_epoch(), (unsigned long long)val_batches.num_samples(),
               sum.unigram_entropy);

  auto evaluate = [&]() {
    AutocastGuard autocast(bf16);
    return mean_validation_loss(obj, val_batches, dev, ts.eval_batches);
  };
  auto save = [&](int64_t at_step) {
    BatchPosition p = batcher.position();
    save_checkpoint(ckpt, model, &opt,
                    {{"step", std::to_string(at_step)},
                     {"data.epoch", std::to_string(p.epoch)},
                     {"data.cursor", std::to_string(p.cursor)},
                     {"data.seed", std::to_string(p.seed)},
                     {"model", obj.summary},
                     {"config", rc.source_yaml}});
  };

  report::CsvWriter csv(csv_path, kColumns, /*append=*/opts.resume);
  report::ProgressBar bar(ts.steps, rc.name, ts.log_every);
  SigintScope sigint;
  double window_loss = 0, tokens_run = 0;
  int64_t window_n = 0, steps_run = 0;
  const double limit_s = ts.time_limit_minutes * 60;
  while (step < ts.steps) {
    const double lr = sched.at(step);
    opt.set_lr(lr);
    Batch b = batcher.next();
    Tensor loss;
    {
      AutocastGuard autocast(bf16);
      loss = obj.loss(b.inputs.to(dev), b.labels.to(dev), false);
    }
    loss.backward();
    double gnorm = ts.grad_clip > 0 ? clip_grad_norm(params, ts.grad_clip) : NAN;
    opt.step();
    opt.zero_grad();
    const double l = loss.item();
    MG_CHECK(std::isfinite(l), "train: loss became ", l, " at step ", step + 1, " (lr ", lr, "); lower train.lr");
    ++step, ++steps_run;
    tokens_run += double(b.num_real);
    window_loss += l, ++window_n;
    std::string val;
    if (step % ts.eval_every == 0 || step == ts.steps) {
      double v = evaluate();
      sum.validation.push_back({step, v});
      val = report::csv_num(v);
    }
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    csv.row({std::to_string(step), report::csv_num(lr), report::csv_num(l), report::csv_num(gnorm), val,
             report::csv_num(tokens_run), report::csv_num(el)});
    char info[96];
    std::snprintf(info, sizeof info, "loss %.3f%s", window_loss / double(window_n),
                  sum.validation.empty() ? "" : (" val " + report::csv_num(sum.validation.back().loss).substr(0, 5)).c_str());
    bar.update(step, info, tokens_run);
    if (step % ts.log_every == 0) {
      sum.last_train_loss = window_loss / double(window_n);
      window_loss = 0, window_n = 0;
    }
    const bool stop = g_interrupted || (limit_s > 0 && el > limit_s) || (opts.stop_after >= 0 && steps_run >= opts.stop_after);
    if (step % ts.checkpoint_every == 0 || step == ts.steps || stop) save(step);
    if (stop) {
      sum.interrupted = true;
      std::fprintf(stderr, "\ntrain: stopped at step %lld (%s); checkpoint saved, continue with --resume\n",
                   (long long)step, g_interrupted ? "interrupted" : opts.stop_after >= 0 ? "stop_after" : "time limit");
      break;
    }
  }
  if (window_n) sum.last_train_loss = window_loss / double(window_n);
  sum.steps_done = step;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  sum.tokens_per_second = tokens_run / sum.seconds;
  bar.finish("");
  plot_losses(csv_path, rc.out_dir + "/loss.png", rc.name + ": " + obj.summary, sum.unigram_entropy);

  if (obj.sample) {
    sum.sample = obj.sample(data);
    std::ofstream(rc.out_dir + "/samples.txt") << sum.sample << "\n";
  }
  return sum;
}

}  // namespace mg
