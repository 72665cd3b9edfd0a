// `mixgrad audit`: one batch through a language model, its tensors saved, every parameter's
// gradient checked against f64 central differences, per-parameter norms and update ratios, and
// the masked mixers' upper-triangle gradients checked to be exactly zero (docs/audit.md).
#include "experiments/audit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/shards.h"
#include "experiments/args.h"
#include "experiments/audit_instrument.h"
#include "experiments/data_prep.h"
#include "experiments/lm_run.h"
#include "experiments/run_config.h"
#include "nn/checkpoint.h"
#include "nn/lm.h"
#include "nn/lm_loss.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "ops/inplace.h"
#include "report/csv.h"
#include "report/plot.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

struct LoadedModel {
  RunConfig rc;
  std::unique_ptr<LanguageModel> model;
  std::map<std::string, std::string> meta;  // checkpoint metadata (empty for a config)
  int64_t step = 0;                         // the checkpoint's step
};

struct AuditBatch {
  Tensor inputs, labels;  // i32 [B, T]
  std::string desc;
};

void note(const AuditOptions& o, const std::string& s) {
  if (!o.quiet) std::fprintf(stderr, "audit: %s\n", s.c_str());
}

int64_t batch_rows(const AuditOptions& o, const RunConfig& rc) {
  return o.batch > 0 ? o.batch : std::min<int64_t>(rc.train.batch_size, 4);
}

AuditBatch synthetic_batch(const AuditOptions& o, const RunConfig& rc, int64_t vocab, const std::string& why) {
  AuditBatch b;
  const int64_t B = batch_rows(o, rc), T = rc.model.n_ctx;
  b.inputs = randint(0, int32_t(vocab), Shape{B, T}, o.seed + 1);
  b.labels = b.inputs.clone();
  b.desc = "synthetic: " + std::to_string(B) + " x " + std::to_string(T) + " uniform random ids in [0, " +
           std::to_string(vocab) + ") (seed " + std::to_string(o.seed + 1) + ")" + why;
  return b;
}

AuditBatch corpus_batch(const AuditOptions& o, const RunConfig& rc, const PreparedData& d) {
  BatcherOptions bo = run_batcher_options(rc, *d.tokenizer);
  bo.batch_size = batch_rows(o, rc);
  bo.shuffle = false;
  ValidationBatches vb(d.validation, bo);
  Batch b;
  MG_CHECK(vb.next(b), "audit: the validation split of ", d.dir, " yields no batch");
  AuditBatch out{b.inputs, b.labels, ""};
  out.desc = "corpus: the first validation batch of " + d.dir + " (" + std::to_string(b.inputs.size(0)) + " x " +
             std::to_string(b.inputs.size(1)) + ", " + std::to_string(count_scored(b.labels)) + " scored positions)";
  return out;
}

// Prepares the config's data per o.data; returns false (with `why`) when "auto" falls back.
bool try_prepare(const AuditOptions& o, const RunConfig& rc, PreparedData& d, std::string& why) {
  if (o.data == "synthetic") return false;
  try {
    d = prepare_data(rc.data);
    return true;
  } catch (const CorpusError& e) {
    if (o.data == "corpus") throw;
    why = std::string(" (data auto: the corpus could not be opened: ") + e.what() + ")";
    return false;
  }
}

// The model and batch the options describe.
std::pair<LoadedModel, AuditBatch> load(const AuditOptions& o) {
  MG_CHECK(o.config.empty() != o.checkpoint.empty(), "audit: give exactly one of CONFIG.yaml and --checkpoint PATH");
  MG_CHECK(o.data == "auto" || o.data == "corpus" || o.data == "synthetic", "audit: --data must be auto, corpus or ",
           "synthetic, got '", o.data, "'");
  LoadedModel m;
  PreparedData d;
  std::string why;
  if (!o.checkpoint.empty()) {
    MG_CHECK(fs::exists(o.checkpoint), "audit: checkpoint '", o.checkpoint, "' does not exist");
    m.meta = read_checkpoint_metadata(o.checkpoint);
    auto it = m.meta.find("config");
    MG_CHECK(it != m.meta.end(), "audit: checkpoint '", o.checkpoint, "' carries no config");
    m.rc = parse_run_config(it->second, o.checkpoint + " [config]");
    require_language_model(m.rc, o.checkpoint, "audit");
    if (auto s = m.meta.find("step"); s != m.meta.end()) m.step = std::stoll(s->second);
    Generator gen(0);
    m.model = make_model(m.rc.model, gen);
    load_checkpoint(o.checkpoint, *m.model, nullptr);
    if (try_prepare(o, m.rc, d, why)) {
      const fs::path tok_path = fs::path(o.checkpoint).parent_path() / "tokenizer.bpe";
      if (fs::exists(tok_path))
        MG_CHECK(tokenizer_fingerprint(*d.tokenizer) == tokenizer_fingerprint(BpeTokenizer::load(tok_path.string())),
                 "audit: the data cache's tokenizer differs from ", tok_path.string());
      MG_CHECK(d.tokenizer->vocab_size() <= m.rc.model.vocab_size, "audit: the data's tokenizer has ",
               d.tokenizer->vocab_size(), " tokens, the model only ", m.rc.model.vocab_size);
      return {std::move(m), corpus_batch(o, m.rc, d)};
    }
  } else {
    m.rc = load_run_config(o.config);
    require_language_model(m.rc, o.config, "audit");
    const bool corpus = try_prepare(o, m.rc, d, why);
    if (corpus) m.rc.model.vocab_size = d.tokenizer->vocab_size();
    Generator gen(m.rc.train.seed);
    m.model = make_model(m.rc.model, gen);
    if (corpus) return {std::move(m), corpus_batch(o, m.rc, d)};
  }
  AuditBatch b = synthetic_batch(o, m.rc, m.rc.model.vocab_size, why);
  return {std::move(m), std::move(b)};
}

std::vector<double> host(const Tensor& t) {
  if (!t.defined()) return {};
  return t.dtype() == DType::f64 ? t.to_vector<double>() : t.to(DType::f64).to_vector<double>();
}

double l2(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The masked token-mixing matrices of a masked mixer, by state-dict name: every form's
// `mixerblocks.N.conv[.0|.2].weight` ([out, in, k]: tap t of output row i reads input column j)
// and the multihead form's `mixerblocks.N.conv.convs.weight` ([H, out, in]). In both, entry
// (i, j) with j > i is above the diagonal: masked, its gradient must be exactly zero.
bool is_masked_matrix(const std::string& name, bool& heads_layout) {
  static const std::regex conv(R"(mixerblocks\.\d+\.conv(\.0|\.2)?\.weight)");
  static const std::regex convs(R"(mixerblocks\.\d+\.conv\.convs\.weight)");
  heads_layout = std::regex_match(name, convs);
  return heads_layout || std::regex_match(name, conv);
}

// Counts upper-triangle entries of the model's masked matrices and those whose gradient is not
// exactly 0.0; the first such entry is described in `first_bad`.
void check_masked(const LanguageModel& model, const char* dtype, int64_t& checked, int64_t& nonzero,
                  std::string& first_bad) {
  for (const auto& [name, p] : model.named_parameters()) {
    bool heads = false;
    if (!is_masked_matrix(name, heads) || p.dim() != 3) continue;
    const Tensor g = p.grad();
    MG_CHECK(g.defined(), "audit: ", name, " received no gradient");
    const std::vector<double> v = host(g);
    const Shape& s = p.shape();
    // Index (a, i, j) of the matrix view: heads [H, out, in] or conv [out, in, k] -> (t, i, j).
    const int64_t A = heads ? s[0] : s[2], R = heads ? s[1] : s[0], C = heads ? s[2] : s[1];
    for (int64_t a = 0; a < A; ++a)
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = i + 1; j < C; ++j) {
          const int64_t flat = heads ? (a * R + i) * C + j : (i * C + j) * A + a;
          ++checked;
          if (v[size_t(flat)] != 0.0) {
            if (nonzero++ == 0) {
              std::ostringstream os;
              os << name << "[flat " << flat << "] = " << v[size_t(flat)] << " (" << dtype << ")";
              first_bad = os.str();
            }
          }
        }
  }
}

// The loss of the batch under the model's current parameters (no graph).
double loss_now(LanguageModel& model, const AuditBatch& b) {
  NoGradGuard no_grad;
  return shifted_lm_loss(model.forward(b.inputs), b.labels).item();
}

// Entries of a parameter to difference: every one, or the largest |analytical| plus random others.
std::vector<int64_t> pick_entries(const std::vector<double>& grad, int64_t numel, bool all, int64_t k,
                                  std::mt19937_64& rng) {
  std::vector<int64_t> idx;
  if (all || k >= numel) {
    for (int64_t i = 0; i < numel; ++i) idx.push_back(i);
    return idx;
  }
  int64_t best = 0;
  for (int64_t i = 1; i < numel; ++i)
    if (std::abs(grad[size_t(i)]) > std::abs(grad[size_t(best)])) best = i;
  std::set<int64_t> chosen{best};
  while (int64_t(chosen.size()) < k) chosen.insert(int64_t(rng() % uint64_t(numel)));
  return {chosen.begin(), chosen.end()};
}

}  // namespace

AuditResult run_audit_experiment(const AuditOptions& o) {
  MG_CHECK(o.fd_samples >= 1, "audit: --fd-samples must be >= 1, got ", o.fd_samples);
  MG_CHECK(o.batch >= 0, "audit: --batch must be >= 1 (0 = the default), got ", o.batch);
  MG_CHECK(std::isfinite(o.bound) && o.bound > 0, "audit: --bound must be a positive number, got ", o.bound);
  MG_CHECK(std::isfinite(o.fd_step) && o.fd_step > 0, "audit: the FD step must be positive, got ", o.fd_step);
  auto [m, batch] = load(o);
  LanguageModel& model = *m.model;
  const TrainSettings& ts = m.rc.train;
  AuditResult r;
  r.model = m.rc.model.summary();
  r.data = batch.desc;
  r.num_parameters = model.num_parameters();
  r.bound = o.bound;
  note(o, r.model + ", " + std::to_string(r.num_parameters) + " parameters; " + r.data);

  // The optimizer of the next training step: AdamW as the Trainer builds it, with the
  // checkpoint's moments when it has them.
  std::vector<Tensor> params = model.parameters();
  AdamW opt(params, AdamWOptions{ts.lr, ts.beta1, ts.beta2, ts.eps, ts.weight_decay});
  bool have_moments = false;
  if (!o.checkpoint.empty() && m.meta.count("optimizer.step")) {
    load_checkpoint(o.checkpoint, model, &opt);
    have_moments = true;
  }

  // ---- the f32 pass: logits, loss, gradients (and activations) --------------------------------
  std::vector<std::pair<std::string, Tensor>> tensors;
  const auto named = model.named_parameters();
  {
    model.zero_grad();
    ActivationRecorder rec(o.activations);
    AnomalyScope anomaly(o.detect_anomaly, "audit, f32 pass");
    Tensor logits = model.forward(batch.inputs);
    rec.finish_forward();
    Tensor loss = shifted_lm_loss(logits, batch.labels);
    loss.backward();
    r.loss = loss.item();
    tensors.emplace_back("inputs", batch.inputs);
    tensors.emplace_back("labels", batch.labels);
    tensors.emplace_back("logits", logits.detach());
    tensors.emplace_back("loss", loss.detach());
    for (const auto& [name, p] : named) {
      Tensor g = p.grad();
      tensors.emplace_back("grad." + name, g.defined() ? g.clone() : zeros(p.shape(), TensorOptions{p.dtype()}));
    }
    r.activations_saved = rec.append(tensors);
  }
  MG_CHECK(std::isfinite(r.loss), "audit: the loss of the batch is ", r.loss, " (are the weights finite?)");

  // ---- norms and the update of one step -------------------------------------------------------
  {
    const LRSchedule sched{ts.lr, ts.warmup_steps, ts.steps, ts.decay, ts.min_lr};
    r.lr = sched.at(m.step);
    r.lr_note = "the schedule's lr at step " + std::to_string(m.step);
    if (r.lr <= 0) {
      r.lr = ts.lr;
      r.lr_note = "the peak lr (the schedule gives 0 at step " + std::to_string(m.step) + ")";
    }
    r.lr_note += std::string(have_moments ? ", the checkpoint's AdamW moments" : ", fresh AdamW moments (first step)") +
                 (ts.grad_clip > 0 ? ", gradients clipped to norm " + report::csv_num(ts.grad_clip) : "");
    std::vector<Tensor> before;
    for (const auto& [name, p] : named) {
      NormRow row;
      row.name = name;
      row.shape = p.shape();
      row.grad_norm = l2(host(p.grad()));
      row.weight_norm = l2(host(p));
      row.sgd_ratio = row.weight_norm > 0 ? r.lr * row.grad_norm / row.weight_norm : NAN;
      r.norms.push_back(row);
      NoGradGuard no_grad;
      before.push_back(p.clone());
    }
    if (ts.grad_clip > 0) clip_grad_norm(params, ts.grad_clip);
    opt.set_lr(r.lr);
    opt.step();
    NoGradGuard no_grad;
    for (size_t i = 0; i < named.size(); ++i) {
      std::vector<double> a = host(before[i]), b = host(named[i].second);
      for (size_t k = 0; k < a.size(); ++k) a[k] = b[k] - a[k];
      r.norms[i].adamw_ratio = r.norms[i].weight_norm > 0 ? l2(a) / r.norms[i].weight_norm : NAN;
      assign_(named[i].second, before[i]);
    }
  }

  // ---- masked gradients, f32 -----------------------------------------------------------------
  r.masked_applicable = m.rc.model.kind == ModelKind::masked_mixer;
  if (r.masked_applicable) check_masked(model, "f32", r.masked_checked, r.masked_nonzero, r.masked_first_bad);

  // ---- f64: analytical gradients and central differences -------------------------------------
  model.to(DType::f64);
  {
    model.zero_grad();
    AnomalyScope anomaly(o.detect_anomaly, "audit, f64 pass");
    Tensor loss = shifted_lm_loss(model.forward(batch.inputs), batch.labels);
    loss.backward();
    r.loss_f64 = loss.item();
  }
  if (o.after_f64_backward) o.after_f64_backward(model);
  if (r.masked_applicable) check_masked(model, "f64", r.masked_checked, r.masked_nonzero, r.masked_first_bad);

  r.fd_step = o.fd_step;
  r.fd_noise = std::numeric_limits<double>::epsilon() * std::abs(r.loss_f64) / o.fd_step;
  const bool all = r.num_parameters < o.fd_all_below;
  std::mt19937_64 rng(o.seed);
  const double h = o.fd_step;
  for (const auto& [name, p] : named) {
    FdRow row;
    row.name = name;
    row.shape = p.shape();
    MG_CHECK(p.dtype() == DType::f64 && p.is_contiguous(), "audit: ", name, " is not a contiguous f64 tensor");
    std::vector<double> ga = host(p.grad());
    if (ga.empty()) ga.assign(size_t(p.numel()), 0.0);
    double* w = p.data_ptr<double>();
    for (int64_t i : pick_entries(ga, p.numel(), all, o.fd_samples, rng)) {
      const double orig = w[i];
      w[i] = orig + h;
      const double up = w[i] - orig;  // the step actually taken (orig + h is rounded)
      const double lp = loss_now(model, batch);
      w[i] = orig - h;
      const double down = orig - w[i];
      const double lm = loss_now(model, batch);
      w[i] = orig;
      const double num = (lp - lm) / (up + down), a = ga[size_t(i)];
      const double abs_err = std::abs(a - num);
      const double rel = abs_err / std::max({std::abs(a), std::abs(num), kAuditFdFloor});
      ++row.checked;
      row.worst_abs = std::max(row.worst_abs, abs_err);
      if (row.worst_index < 0 || rel > row.worst_rel) {
        row.worst_rel = rel;
        row.worst_index = i;
        row.analytical = a;
        row.numerical = num;
      }
    }
    if (row.worst_rel >= r.worst_rel) {
      r.worst_rel = row.worst_rel;
      r.worst_param = name;
    }
    r.worst_abs = std::max(r.worst_abs, row.worst_abs);
    r.fd.push_back(row);
    note(o, "fd " + name + ": " + std::to_string(row.checked) + " entries, worst rel " + report::csv_num(row.worst_rel));
  }
  r.fd_ok = r.worst_rel <= o.bound;

  // ---- files ---------------------------------------------------------------------------------
  fs::create_directories(o.out);
  std::map<std::string, std::string> meta = {
      {"model", r.model},       {"data", r.data},
      {"source", o.checkpoint.empty() ? o.config : o.checkpoint},
      {"config", m.rc.source_yaml},
      {"loss", report::csv_num(r.loss)},
      {"fd.worst_rel", report::csv_num(r.worst_rel)},
      {"fd.bound", report::csv_num(r.bound)}};
  const std::string st = o.out + "/audit.safetensors";
  save_safetensors(st, tensors, meta);
  r.files.push_back(st);

  report::CsvTable fd{{"parameter", "shape", "checked", "worst_abs_err", "worst_rel_err", "worst_index", "analytical",
                       "numerical"},
                      {}};
  for (const FdRow& f : r.fd)
    fd.rows.push_back({f.name, shape_text(f.shape), std::to_string(f.checked), report::csv_num(f.worst_abs),
                       report::csv_num(f.worst_rel), std::to_string(f.worst_index), report::csv_num(f.analytical),
                       report::csv_num(f.numerical)});
  report::write_csv(o.out + "/fd_check.csv", fd);
  r.files.push_back(o.out + "/fd_check.csv");

  report::CsvTable nt{{"parameter", "shape", "grad_norm", "weight_norm", "lr_grad_over_weight", "adamw_update_over_weight"},
                      {}};
  report::LinePlot plot{"Per-parameter norms (x: parameter index in norms.csv)", "parameter index", "value (log)", {},
                        true};
  report::Series gs{"|grad|", {}, {}}, ws{"|weight|", {}, {}}, ss{"lr |grad| / |weight|", {}, {}},
      as{"AdamW |update| / |weight|", {}, {}};
  for (size_t i = 0; i < r.norms.size(); ++i) {
    const NormRow& n = r.norms[i];
    nt.rows.push_back({n.name, shape_text(n.shape), report::csv_num(n.grad_norm), report::csv_num(n.weight_norm),
                       report::csv_num(n.sgd_ratio), report::csv_num(n.adamw_ratio)});
    const double x = double(i);
    // A log axis cannot show zeros (an exactly zero gradient): those points are skipped.
    auto put = [x](report::Series& s, double v) {
      s.x.push_back(x);
      s.y.push_back(v > 0 ? v : NAN);
    };
    put(gs, n.grad_norm);
    put(ws, n.weight_norm);
    put(ss, n.sgd_ratio);
    put(as, n.adamw_ratio);
  }
  plot.series = {gs, ws, ss, as};
  report::write_csv(o.out + "/norms.csv", nt);
  r.files.push_back(o.out + "/norms.csv");
  report::save_line_plot(o.out + "/norms.png", plot);
  r.files.push_back(o.out + "/norms.png");
  return r;
}

std::string format_audit(const AuditResult& r) {
  std::ostringstream os;
  char buf[512];
  os << "model: " << r.model << " (" << r.num_parameters << " parameters)\n";
  os << "batch: " << r.data << "\n";
  std::snprintf(buf, sizeof buf, "loss: %.6f (f32), %.9f (f64)\n\n", r.loss, r.loss_f64);
  os << buf;
  size_t w = 9;
  for (const FdRow& f : r.fd) w = std::max(w, f.name.size());
  std::snprintf(buf, sizeof buf,
                "gradient check: f64 central differences, h = %g, rel = |a - n| / max(|a|, |n|, %g); rounding "
                "noise eps*|L|/h = %.1e\n",
                r.fd_step, kAuditFdFloor, r.fd_noise);
  os << buf;
  std::snprintf(buf, sizeof buf, "%-*s  %-16s %8s %12s %12s\n", int(w), "parameter", "shape", "checked", "worst abs",
                "worst rel");
  os << buf;
  for (const FdRow& f : r.fd) {
    std::snprintf(buf, sizeof buf, "%-*s  %-16s %8lld %12.3e %12.3e\n", int(w), f.name.c_str(),
                  shape_text(f.shape).c_str(), (long long)f.checked, f.worst_abs, f.worst_rel);
    os << buf;
  }
  std::snprintf(buf, sizeof buf, "worst relative error %.3e (%s), bound %.1e: %s\n\n", r.worst_rel,
                r.worst_param.c_str(), r.bound, r.fd_ok ? "PASS" : "FAIL");
  os << buf;
  os << "norms (lr " << report::csv_num(r.lr) << ": " << r.lr_note << ")\n";
  std::snprintf(buf, sizeof buf, "%-*s  %12s %12s %14s %14s\n", int(w), "parameter", "|grad|", "|weight|",
                "lr|g|/|w|", "AdamW |dw|/|w|");
  os << buf;
  for (const NormRow& n : r.norms) {
    std::snprintf(buf, sizeof buf, "%-*s  %12.4e %12.4e %14.4e %14.4e\n", int(w), n.name.c_str(), n.grad_norm,
                  n.weight_norm, n.sgd_ratio, n.adamw_ratio);
    os << buf;
  }
  os << "\n";
  if (r.masked_applicable) {
    std::snprintf(buf, sizeof buf, "masked gradients: %lld upper-triangle entries (f32 and f64), %lld nonzero: %s\n",
                  (long long)r.masked_checked, (long long)r.masked_nonzero, r.masked_nonzero == 0 ? "PASS" : "FAIL");
    os << buf;
    if (r.masked_nonzero) os << "  first nonzero: " << r.masked_first_bad << "\n";
  } else {
    os << "masked gradients: not applicable (no masked token mixing in this model)\n";
  }
  if (r.activations_saved) os << "activations: " << r.activations_saved << " module outputs and their gradients saved\n";
  for (const std::string& f : r.files) os << "wrote " << f << "\n";
  os << (r.ok() ? "audit: PASS" : "audit: FAIL") << "\n";
  return os.str();
}

AuditOptions parse_audit_args(const std::vector<std::string>& argv, bool& help) {
  help = false;
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") help = true;
  AuditOptions o;
  if (help) return o;
  Args a("audit", argv, {"checkpoint", "out", "fd-samples", "bound", "batch", "data", "seed", "fd-all-below"},
         {"activations", "detect-anomaly"});
  MG_CHECK(a.positionals().size() <= 1, "audit: expected one CONFIG.yaml, got ", a.positionals().size(), " positionals");
  if (!a.positionals().empty()) o.config = a.positionals()[0];
  a.read("checkpoint", o.checkpoint);
  a.read("out", o.out);
  a.read("fd-samples", o.fd_samples);
  a.read("fd-all-below", o.fd_all_below);
  a.read("bound", o.bound);
  a.read("batch", o.batch);
  MG_CHECK(!a.has("batch") || o.batch >= 1, "audit: --batch must be >= 1, got ", o.batch);
  a.read("data", o.data);
  a.read("seed", o.seed);
  a.read_flag("activations", o.activations);
  a.read_flag("detect-anomaly", o.detect_anomaly);
  MG_CHECK(o.config.empty() != o.checkpoint.empty(), "audit: give exactly one of CONFIG.yaml and --checkpoint PATH");
  return o;
}

}  // namespace mg
