// `mixgrad represent`: the paper's input-representation experiment (docs/paper.md D, Fig. 3) over
// models x layers, with a CSV, figures and recovered-vs-original text.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "autograd/grad_mode.h"
#include "data/shards.h"
#include "experiments/args.h"
#include "experiments/commands.h"
#include "experiments/data_prep.h"
#include "experiments/represent_experiment.h"
#include "experiments/representation.h"
#include "experiments/run_config.h"
#include "nn/checkpoint.h"
#include "ops/losses.h"
#include "report/csv.h"
#include "report/plot.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

constexpr const char* kUsage =
    "usage: mixgrad represent [models] [texts] [options]\n"
    "models (any mix; default --kinds masked_mixer,llama):\n"
    "  --checkpoint P1,P2     trained checkpoints (config and tokenizer.bpe from their run dir)\n"
    "  --config Y1,Y2         untrained models described by run configs\n"
    "  --kinds K1,K2          untrained models of these kinds (masked_mixer, llama, gpt), shaped by\n"
    "                         --d-model (64) --n-layers (8) --n-ctx (32) --heads (4) --mixer-form (flat)\n"
    "                         --model-seed (0) --model-init-std (0: the kind's own, 0.02 for llama and gpt;\n"
    "                         the masked mixer uses PyTorch's default init and ignores it)\n"
    "texts (default: the first --texts N (4) validation documents, truncated/padded to n_ctx):\n"
    "  --text 'A|B'           own texts, separated by '|'\n"
    "  --random-tokens        uniform random ids (no tokenizer; --vocab V, default 4096)\n"
    "  --tokenizer PATH       tokenizer for untrained models (default: the quick configs' data)\n"
    "  --length T             tokens per text (default n_ctx)\n"
    "options: --layers all|1,2,8  --steps 500  --lr 0.02 | kind=lr,...  --tune-lr  --final-lr-ratio 0.1\n"
    "         --lr-sweep 0.002,0.02,0.2,2 (every step size at every layer; reports each model's best by mean H,\n"
    "         all of them in lr_sweep.csv/png)\n"
    "         --loss l1|l2|cosine  --decode pinv|cosine  --top-k 5  --seed 0  --init-std 1  --out DIR\n"
    "--tune-lr probes lr x {0.01, 0.1, 1, 10, 100} for steps/10 steps at the deepest layer and keeps the\n"
    "lowest L1; short probes favour large steps, so check the result against the default.\n";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep))
    if (!cur.empty()) out.push_back(cur);
  return out;
}

struct Entry {
  std::string name;
  std::unique_ptr<LanguageModel> model;
  std::shared_ptr<BpeTokenizer> tok;       // null with --random-tokens
  std::shared_ptr<const TokenShard> docs;  // validation documents, when texts come from a corpus
};

// "0.02" for every model, or "masked_mixer=0.02,llama=2": the step size of each model kind.
double lr_for(const std::string& spec, ModelKind kind) {
  // The default for every kind is RepresentationOptions' lr (see RepresentExperimentOptions::lr).
  const double d = RepresentationOptions{}.lr;
  std::map<ModelKind, double> lr = {{ModelKind::masked_mixer, d}, {ModelKind::llama, d}, {ModelKind::gpt, d}};
  if (!spec.empty()) {
    for (const std::string& part : split(spec, ',')) {
      auto eq = part.find('=');
      try {
        if (eq == std::string::npos) {
          for (auto& kv : lr) kv.second = std::stod(part);
        } else {
          lr[parse_model_kind(part.substr(0, eq))] = std::stod(part.substr(eq + 1));
        }
      } catch (const std::invalid_argument&) {
        throw Error("represent: --lr '" + spec + "': expected a number or kind=number pairs");
      }
    }
  }
  return lr.at(kind);
}

// One line of text: newlines as \n, other control bytes as \xHH.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

// Texts as ids [B, T]: each truncated to T and right-padded with pad (C.4's default side).
Tensor build_ids(const Entry& m, const RepresentExperimentOptions& o, int64_t T, int64_t texts, uint64_t seed) {
  const int64_t V = m.model->config().vocab_size;
  if (o.random_tokens) return randint(0, int32_t(V), Shape{texts, T}, seed);
  MG_CHECK(m.tok, "represent: ", m.name, " has no tokenizer");
  MG_CHECK(m.tok->vocab_size() <= V, "represent: the tokenizer has ", m.tok->vocab_size(), " tokens but ", m.name,
           " only ", V);
  std::vector<std::vector<int32_t>> rows;
  if (!o.text.empty()) {
    for (const std::string& t : o.text) rows.push_back(m.tok->encode(t));
  } else {
    MG_CHECK(m.docs, "represent: no validation documents for ", m.name, " (give --text or --random-tokens)");
    for (uint64_t d = 0; d < m.docs->num_documents() && int64_t(rows.size()) < texts; ++d) {
      auto doc = m.docs->document(d);
      rows.emplace_back(doc.begin(), doc.end());
    }
  }
  MG_CHECK(!rows.empty(), "represent: no texts");
  std::vector<int32_t> flat;
  for (auto& r : rows) {
    r.resize(size_t(T), m.tok->pad_id());
    flat.insert(flat.end(), r.begin(), r.end());
  }
  return from_vector(flat, Shape{int64_t(rows.size()), T});
}

std::vector<Entry> load_models(const RepresentExperimentOptions& o) {
  std::vector<Entry> out;
  std::shared_ptr<BpeTokenizer> default_tok;
  std::shared_ptr<const TokenShard> default_docs;
  const bool random = o.random_tokens;
  auto ensure_default_data = [&] {
    if (random || default_tok) return;
    if (!o.tokenizer.empty()) {
      default_tok = std::make_shared<BpeTokenizer>(BpeTokenizer::load(o.tokenizer));
      MG_CHECK(!o.text.empty(), "represent: with --tokenizer, give the texts with --text");
      return;
    }
    PreparedData d = prepare_data(load_run_config(std::string(MG_CONFIG_DIR) + "/quick_mixer.yaml").data);
    default_tok = d.tokenizer;
    default_docs = d.validation;
  };

  for (const std::string& path : o.checkpoints) {
    auto meta = read_checkpoint_metadata(path);
    auto it = meta.find("config");
    MG_CHECK(it != meta.end(), "represent: checkpoint '", path, "' carries no config");
    RunConfig rc = parse_run_config(it->second, path + " [config]");
    require_language_model(rc, path, "represent");
    Entry e;
    auto step = meta.find("step");
    e.name = rc.name + "@" + (step != meta.end() ? step->second : fs::path(path).stem().string());
    Generator gen(0);
    e.model = make_model(rc.model, gen);
    load_checkpoint(path, *e.model, nullptr);
    if (!random) {
      e.tok = std::make_shared<BpeTokenizer>(BpeTokenizer::load((fs::path(path).parent_path() / "tokenizer.bpe").string()));
      if (o.text.empty()) e.docs = prepare_data(rc.data).validation;
    }
    out.push_back(std::move(e));
  }
  for (const std::string& path : o.configs) {
    RunConfig rc = load_run_config(path);
    require_language_model(rc, path, "represent");
    Entry e;
    e.name = rc.name + "_untrained";
    if (!random) {
      PreparedData d = prepare_data(rc.data);
      e.tok = d.tokenizer;
      e.docs = d.validation;
      rc.model.vocab_size = d.tokenizer->vocab_size();
    }
    Generator gen(o.model_seed);
    e.model = make_model(rc.model, gen);
    out.push_back(std::move(e));
  }
  std::vector<std::string> kinds = o.kinds;
  if (kinds.empty() && out.empty()) kinds = {"masked_mixer", "llama"};
  for (const std::string& k : kinds) {
    ensure_default_data();
    ModelConfig c;
    c.kind = parse_model_kind(k);
    c.d_model = o.d_model;
    c.n_layers = o.n_layers;
    c.n_ctx = o.n_ctx;
    c.n_heads = o.heads;
    c.mixer_form = parse_mixer_form(o.mixer_form);
    if (o.model_init_std > 0) c.init_std = o.model_init_std;
    c.vocab_size = random ? o.vocab : default_tok->vocab_size();
    Entry e;
    e.name = std::string(model_kind_name(c.kind)) + "_d" + std::to_string(c.d_model);
    if (c.kind == ModelKind::masked_mixer && c.mixer_form != MixerForm::flat) {
      e.name += '_';
      e.name += mixer_form_name(c.mixer_form);
    }
    e.tok = default_tok;
    e.docs = default_docs;
    Generator gen(o.model_seed);
    e.model = make_model(c, gen);
    out.push_back(std::move(e));
  }
  MG_CHECK(!out.empty(), "represent: no models (give --checkpoint, --config or --kinds)");
  return out;
}

// How far `layer` blocks turn each position away from where it entered the first block: the mean
// over scored positions of cos(h_layer[t], h_0[t]) on the true input (1: the blocks leave every
// position's direction alone, as a near-identity stack does; the recovery problem is then easy).
double direction_kept(LanguageModel& model, const Tensor& ids, int layer, const std::vector<uint8_t>& scored) {
  NoGradGuard no_grad;
  Tensor emb = model.embed(ids.to(model.token_embedding_weight().device()));
  Tensor c = cosine_similarity(model.forward_embeddings(emb, layer, false), model.forward_embeddings(emb, 0, false), -1);
  const std::vector<double> v = c.to(DType::f64).contiguous().to_vector<double>();
  double sum = 0;
  int64_t n = 0;
  for (size_t i = 0; i < v.size(); ++i)
    if (scored[i]) {
      sum += v[i];
      ++n;
    }
  return n ? sum / double(n) : std::nan("");
}

std::vector<int> layers_for(const std::string& spec, int64_t L, const std::string& model) {
  std::vector<int> out;
  if (spec == "all") {
    for (int l = 1; l <= L; ++l) out.push_back(l);
    return out;
  }
  for (const std::string& s : split(spec, ',')) {
    int l = 0;
    try {
      l = std::stoi(s);
    } catch (const std::exception&) {
      throw Error("represent: --layers '" + spec + "': '" + s + "' is not a layer index");
    }
    MG_CHECK(l >= 0 && l <= L, "represent: layer ", l, " out of range for ", model, " (0..", L, ")");
    out.push_back(l);
  }
  return out;
}

}  // namespace

std::vector<double> parse_lr_list(const std::string& spec) {
  std::vector<double> out;
  for (const std::string& part : split(spec, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MG_CHECK(used == part.size() && std::isfinite(v) && v > 0, "represent: --lr-sweep '", spec, "': '", part,
             "' is not a positive step size");
    MG_CHECK(std::find(out.begin(), out.end(), v) == out.end(), "represent: --lr-sweep '", spec, "' lists ", part,
             " twice");
    out.push_back(v);
  }
  MG_CHECK(!out.empty(), "represent: --lr-sweep '", spec, "' lists no step sizes");
  std::sort(out.begin(), out.end());  // ties in the sweep then go to the smaller step
  return out;
}

std::vector<RepresentRow> run_represent_experiment(const RepresentExperimentOptions& opt) {
  std::vector<RepresentRow> rows;
  const RepresentationOptions& base = opt.base;
  const std::string& out_dir = opt.out;
  fs::create_directories(out_dir);

  std::vector<Entry> models = load_models(opt);
  const std::string hcol = "hamming_top" + std::to_string(base.top_k);
  report::CsvWriter csv(out_dir + "/representation.csv",
                        {"model", "kind", "d_model", "n_layers", "n_ctx", "layer", "prompts", "scored_positions", hcol,
                         "top1_accuracy", "loss_start", "loss_end", "final_l1", "perturbation_l1", "lr", "steps",
                         "loss", "decode", "seconds", "cos_to_layer0"});
  report::CsvWriter pos_csv(out_dir + "/positions.csv", {"model", "layer", "position", "recovered_fraction"});
  report::CsvWriter loss_csv(out_dir + "/loss_curves.csv", {"model", "layer", "step", "loss"});
  std::ofstream samples(out_dir + "/samples.txt");
  std::unique_ptr<report::CsvWriter> sweep_csv_file;
  if (!opt.lr_sweep.empty())
    sweep_csv_file = std::make_unique<report::CsvWriter>(
        out_dir + "/lr_sweep.csv", std::vector<std::string>{"model", "kind", "layer", "lr", "prompts",
                                                            "scored_positions", hcol, "top1_accuracy", "final_l1",
                                                            "seconds"});
  std::vector<report::Series> sweep_series;
  report::LinePlot hplot{"Input recovery: modified Hamming metric (top-" + std::to_string(base.top_k) + ")",
                         "layers run", "fraction of tokens not recovered", {}, false};
  report::LinePlot tplot{"Input recovery: top-1 token accuracy", "layers run", "top-1 accuracy", {}, false};

  for (Entry& m : models) {
    const ModelConfig& c = m.model->config();
    const int64_t T = opt.length > 0 ? opt.length : c.n_ctx;
    Tensor ids = build_ids(m, opt, T, opt.texts, base.seed + 1);
    RepresentationOptions o = base;
    o.pad_id = m.tok ? m.tok->pad_id() : -1;
    o.lr = lr_for(opt.lr, c.kind);
    std::vector<int> layers = layers_for(opt.layers, c.n_layers, m.name);
    int64_t scored_per_layer = 0;
    {
      const std::vector<int32_t> ref = ids.contiguous().to_vector<int32_t>();
      for (int32_t id : ref) scored_per_layer += !(o.pad_id >= 0 && id == o.pad_id);
    }
    std::printf("%s (%s, %lld parameters): %lld texts x %lld tokens (%lld scored positions per layer), layers %s\n",
                m.name.c_str(), c.summary().c_str(), (long long)m.model->num_parameters(), (long long)ids.size(0),
                (long long)T, (long long)scored_per_layer, opt.layers.c_str());
    // With a sweep, every step size runs at every layer first; the reporting below then walks the
    // best one's results instead of running again.
    std::vector<RepresentationResult> swept;
    if (!opt.lr_sweep.empty()) {
      double best_h = 0, best_t = 0;
      size_t best = 0;
      std::vector<std::vector<RepresentationResult>> all;
      for (size_t i = 0; i < opt.lr_sweep.size(); ++i) {
        o.lr = opt.lr_sweep[i];
        double h = 0, t1 = 0;
        all.emplace_back();
        for (int layer : layers) {
          o.layer = layer;
          RepresentationResult r = recover_input(*m.model, ids, o);
          std::printf("  lr %g layer %d: H = %.4f  top-1 = %.4f  (%lld scored)  L1 %.4g  %.1fs\n", o.lr, layer,
                      r.hamming, r.top1_accuracy, (long long)scored_per_layer, r.final_l1, r.seconds);
          std::fflush(stdout);
          sweep_csv_file->row({m.name, model_kind_name(c.kind), std::to_string(layer), report::csv_num(o.lr),
                               std::to_string(r.batch), std::to_string(scored_per_layer), report::csv_num(r.hamming),
                               report::csv_num(r.top1_accuracy), report::csv_num(r.final_l1),
                               report::csv_num(r.seconds)});
          h += r.hamming;
          t1 += r.top1_accuracy;
          all.back().push_back(std::move(r));
        }
        h /= double(layers.size());
        t1 /= double(layers.size());
        if (i == 0 || h < best_h || (h == best_h && t1 > best_t)) {
          best = i;
          best_h = h;
          best_t = t1;
        }
      }
      // One series per model over the step sizes, at its deepest listed layer.
      sweep_series.push_back({m.name + " layer " + std::to_string(layers.back()), {}, {}});
      for (size_t i = 0; i < opt.lr_sweep.size(); ++i) {
        sweep_series.back().x.push_back(std::log10(opt.lr_sweep[i]));
        sweep_series.back().y.push_back(all[i].back().hamming);
      }
      o.lr = opt.lr_sweep[best];
      swept = std::move(all[best]);
      std::printf("  best lr for %s: %g (mean H over the layers %.4f, mean top-1 %.4f)\n", m.name.c_str(), o.lr, best_h,
                  best_t);
    }
    if (opt.tune_lr) {
      std::vector<double> cand;
      for (double f : {0.01, 0.1, 1.0, 10.0, 100.0}) cand.push_back(o.lr * f);
      o.layer = layers.back();
      o.lr = tune_representation_lr(*m.model, ids, o, cand, std::max<int64_t>(20, o.steps / 10));
      std::printf("  tuned lr (layer %d probes): %g\n", o.layer, o.lr);
    }
    report::Series hs{m.name, {}, {}}, ts{m.name, {}, {}};
    report::Heatmap heat{m.name + ": recovered fraction per position (top-" + std::to_string(o.top_k) + ")",
                         "position", "layers run (top row = first listed)", int(layers.size()), int(T), {}, 0, 1};
    report::LinePlot lplot{m.name + ": representation loss (" + std::string(representation_loss_name(o.loss)) + ")",
                           "step", "loss", {}, true};
    for (size_t li = 0; li < layers.size(); ++li) {
      const int layer = layers[li];
      o.layer = layer;
      RepresentationResult r = swept.empty() ? recover_input(*m.model, ids, o) : std::move(swept[li]);
      int64_t scored = 0;
      for (uint8_t s : r.scored) scored += s;
      const double kept = direction_kept(*m.model, ids, layer, r.scored);
      std::printf("  layer %d (lr %g): H = %.4f  top-1 = %.4f over %lld scored positions  loss %.4g -> %.4g  (L1 %.4g, "
                  "perturbation scale %.4g)  cos(h_l, h_0) %.3f  %.1fs\n",
                  layer, o.lr, r.hamming, r.top1_accuracy, (long long)scored, r.loss.front(), r.loss.back(), r.final_l1,
                  r.perturbation_l1, kept, r.seconds);
      std::fflush(stdout);
      csv.row({m.name, model_kind_name(c.kind), std::to_string(c.d_model), std::to_string(c.n_layers),
               std::to_string(c.n_ctx), std::to_string(layer), std::to_string(r.batch), std::to_string(scored),
               report::csv_num(r.hamming), report::csv_num(r.top1_accuracy), report::csv_num(r.loss.front()),
               report::csv_num(r.loss.back()), report::csv_num(r.final_l1), report::csv_num(r.perturbation_l1),
               report::csv_num(o.lr), std::to_string(o.steps), representation_loss_name(o.loss),
               representation_decode_name(o.decode), report::csv_num(r.seconds), report::csv_num(kept)});
      rows.push_back({m.name, layer, o.lr, scored, r.hamming, r.top1_accuracy, r.seconds});
      hs.x.push_back(layer);
      hs.y.push_back(r.hamming);
      ts.x.push_back(layer);
      ts.y.push_back(r.top1_accuracy);
      for (int64_t t = 0; t < T; ++t) {
        int64_t hit = 0, n = 0;
        for (int64_t b = 0; b < r.batch; ++b) {
          size_t i = size_t(b * T + t);
          if (!r.scored[i]) continue;
          ++n;
          hit += r.in_top_k[i];
        }
        double f = n ? double(hit) / double(n) : std::nan("");
        heat.values.push_back(n ? f : 0.0);
        pos_csv.row({m.name, std::to_string(layer), std::to_string(t), report::csv_num(f)});
      }
      report::Series ls{"layer " + std::to_string(layer), {}, {}};
      for (size_t k = 0; k < r.loss.size(); ++k) {
        ls.x.push_back(double(k));
        ls.y.push_back(r.loss[k]);
        if (k % 10 == 0 || k + 1 == r.loss.size())
          loss_csv.row({m.name, std::to_string(layer), std::to_string(k), report::csv_num(r.loss[k])});
      }
      lplot.series.push_back(std::move(ls));
      if (m.tok) {
        samples << "== " << m.name << " layer " << layer << " (H = " << r.hamming << ", top-1 = " << r.top1_accuracy
                << ")\n";
        for (int64_t b = 0; b < r.batch; ++b) {
          std::vector<int32_t> ref, got;
          for (int64_t t = 0; t < T; ++t) {
            size_t i = size_t(b * T + t);
            if (!r.scored[i]) continue;
            ref.push_back(r.reference[i]);
            got.push_back(r.top1[i]);
          }
          std::string orig = printable(m.tok->decode(ref)), rec = printable(m.tok->decode(got));
          samples << "  original:  " << orig << "\n  recovered: " << rec << "\n";
          if (b == 0 && layer == layers.back())
            std::printf("    original:  %s\n    recovered: %s\n", orig.c_str(), rec.c_str());
        }
      }
    }
    hplot.series.push_back(std::move(hs));
    tplot.series.push_back(std::move(ts));
    report::save_heatmap(out_dir + "/recovery_" + m.name + ".png", heat);
    report::save_line_plot(out_dir + "/loss_" + m.name + ".png", lplot);
  }
  report::save_line_plot(out_dir + "/representation.png", hplot);
  if (!opt.lr_sweep.empty())
    report::save_line_plot(out_dir + "/lr_sweep.png",
                           report::LinePlot{"Input recovery vs step size (deepest layer listed)", "log10 step size",
                                            "fraction of tokens not recovered", sweep_series, false});
  report::save_line_plot(out_dir + "/top1.png", tplot);
  std::printf("outputs in %s (representation.csv/png, top1.png, positions.csv, recovery_*.png, loss_*.png, samples.txt)\n",
              out_dir.c_str());
  return rows;
}

RepresentExperimentOptions parse_represent_args(const std::vector<std::string>& argv, bool& help) {
  Args a("represent", argv,
         {"checkpoint", "config", "kinds", "d-model", "n-layers", "n-ctx", "heads", "mixer-form", "model-seed",
          "model-init-std", "text", "texts", "tokenizer", "vocab", "length", "layers", "steps", "lr", "final-lr-ratio",
          "loss", "decode", "top-k", "seed", "init-std", "out", "lr-sweep"},
         {"random-tokens", "tune-lr", "help"});
  MG_CHECK(a.positionals().empty(), "represent: unexpected argument '", a.positionals().front(), "'\n", kUsage);
  help = a.flag("help");
  RepresentExperimentOptions o;
  o.checkpoints = split(a.get("checkpoint", ""), ',');
  o.configs = split(a.get("config", ""), ',');
  o.kinds = split(a.get("kinds", ""), ',');
  a.read("d-model", o.d_model);
  a.read("n-layers", o.n_layers);
  a.read("n-ctx", o.n_ctx);
  a.read("heads", o.heads);
  a.read("mixer-form", o.mixer_form);
  a.read("model-seed", o.model_seed);
  a.read("model-init-std", o.model_init_std);
  MG_CHECK(std::isfinite(o.model_init_std) && o.model_init_std >= 0, "represent: --model-init-std must be >= 0, got ",
           o.model_init_std);
  o.text = split(a.get("text", ""), '|');
  a.read("texts", o.texts);
  a.read_flag("random-tokens", o.random_tokens);
  a.read("vocab", o.vocab);
  a.read("tokenizer", o.tokenizer);
  a.read("length", o.length);
  a.read("layers", o.layers);
  a.read("lr", o.lr);
  a.read_flag("tune-lr", o.tune_lr);
  if (a.has("lr-sweep")) {
    o.lr_sweep = parse_lr_list(a.get("lr-sweep", ""));
    MG_CHECK(!a.has("lr") && !o.tune_lr, "represent: --lr-sweep chooses the step size itself; drop --lr/--tune-lr");
  }
  a.read("steps", o.base.steps);
  a.read("final-lr-ratio", o.base.final_lr_ratio);
  if (a.has("loss")) o.base.loss = parse_representation_loss(a.get("loss", ""));
  if (a.has("decode")) o.base.decode = parse_representation_decode(a.get("decode", ""));
  a.read("top-k", o.base.top_k);
  a.read("seed", o.base.seed);
  a.read("init-std", o.base.init_std);
  a.read("out", o.out);
  return o;
}

std::string represent_command_line(const RepresentExperimentOptions& o) {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  };
  std::string s = "mixgrad represent";
  if (!o.checkpoints.empty()) s += " --checkpoint " + join(o.checkpoints);
  if (!o.configs.empty()) s += " --config " + join(o.configs);
  if (!o.kinds.empty()) s += " --kinds " + join(o.kinds);
  s += " --model-seed " + std::to_string(o.model_seed) + " --texts " + std::to_string(o.texts) + " --layers " + o.layers +
       " --out " + o.out;
  return s;
}

int run_represent(const std::vector<std::string>& argv) {
  bool help = false;
  for (const std::string& s : argv)
    if (s == "--help" || s == "-h") help = true;
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  run_represent_experiment(parse_represent_args(argv, help));
  return 0;
}

}  // namespace mg
