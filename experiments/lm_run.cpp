#include "experiments/lm_run.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "experiments/data_prep.h"
#include "experiments/generate.h"
#include "nn/checkpoint.h"
#include "nn/lm.h"
#include "train/batch_source.h"
#include "train/communicator.h"

namespace mg {

namespace fs = std::filesystem;

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
      return tok.decode(prompt) + " >>> " +
             tok.decode(generate_ids(*m, prompt, go, tok.eos_id(), unsampled_ids(tok, m->config().vocab_size)));
    };
    return obj;
  });
}

TrainSummary train_objective(const RunConfig& rc, const TrainOptions& opts,
                             const std::function<TrainObjective(Generator&, Device)>& build) {
  validate_train_settings(rc.train, rc.name);
  const Device dev = parse_device(rc.train.device);
  const std::string ckpt = rc.out_dir + "/checkpoint.safetensors";
  // Rank 0 builds the data cache (tokenizer, shards) while the others wait, then they read it.
  Communicator& comm = world();
  if (comm.rank() != 0) comm.any(false);
  PreparedData data = prepare_data(rc.data);
  if (comm.rank() == 0 && comm.size() > 1) comm.any(false);
  const BpeTokenizer& tok = *data.tokenizer;
  const std::string fingerprint = std::to_string(tokenizer_fingerprint(tok));
  if (opts.resume && fs::exists(ckpt)) {
    // A resumed run must see the tokens it was trained on: refuse another tokenizer.
    auto meta = read_checkpoint_metadata(ckpt);
    auto it = meta.find("tokenizer.fingerprint");
    MG_CHECK(it == meta.end() || it->second == fingerprint, "--resume: ", ckpt,
             " was trained with another tokenizer (fingerprint ", it == meta.end() ? "" : it->second, ", the data cache ",
             data.dir, " has ", fingerprint, "); resume with the run's own data settings");
  }

  Generator gen(rc.train.seed);
  const TrainObjective obj = build(gen, dev);
  MG_CHECK(obj.model && obj.loss && obj.count_scored, "train: incomplete training objective");
  Module& model = *obj.model;

  Batcher batcher(data.train, run_batcher_options(rc, tok));
  BatcherOptions vo = run_batcher_options(rc, tok);
  vo.shuffle = false;
  ValidationBatches val_batches(data.validation, vo);
  BatcherSource source(batcher);

  TrainSummary sum;
  sum.num_parameters = model.num_parameters();
  sum.unigram_entropy = unigram_entropy(*data.train);
  if (comm.rank() == 0)
    std::fprintf(stderr, "train: %s, %lld parameters, %llu train / %llu validation samples, unigram baseline %.3f nats\n",
               obj.summary.c_str(), (long long)sum.num_parameters, (unsigned long long)batcher.samples_per_epoch(),
               (unsigned long long)val_batches.num_samples(), sum.unigram_entropy);

  Trainer trainer(model, rc.train, RunControl{rc.out_dir, opts.resume, opts.stop_after, rc.name, true});
  TrainHooks hooks;
  hooks.validate = [&] {
    return mean_validation_loss(
        val_batches, dev, rc.train.eval_batches,
        [&](const Tensor& in, const Tensor& labels) { return obj.loss(in, labels, true).item(); }, obj.count_scored);
  };
  hooks.on_start = [&] {
    fs::copy_file(data.dir + "/tokenizer.bpe", rc.out_dir + "/tokenizer.bpe", fs::copy_options::overwrite_existing);
    std::ofstream(rc.out_dir + "/config.yaml") << rc.source_yaml;
  };
  hooks.metadata = {{"model", obj.summary}, {"config", rc.source_yaml}, {"tokenizer.fingerprint", fingerprint}};
  hooks.plot_title = rc.name + ": " + obj.summary;
  hooks.baseline_label = "unigram baseline";
  hooks.baseline = sum.unigram_entropy;
  TrainResult r = trainer.fit<Batch>(
      source, [&](const Batch& b) { return StepLoss{obj.loss(b.inputs.to(dev), b.labels.to(dev), false), double(b.num_real)}; },
      hooks);

  sum.steps_done = r.steps_done;
  sum.interrupted = r.interrupted;
  sum.last_train_loss = r.last_train_loss;
  sum.validation = r.validation;
  sum.seconds = r.seconds;
  sum.tokens_per_second = r.tokens_per_second;
  if (obj.sample && comm.rank() == 0) {
    sum.sample = obj.sample(data);
    std::ofstream(rc.out_dir + "/samples.txt") << sum.sample << "\n";
  }
  return sum;
}

}  // namespace mg
