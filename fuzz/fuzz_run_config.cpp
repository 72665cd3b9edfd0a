// Fuzzes the YAML run-config reader (experiments/run_config.h's parse_run_config): any text must
// parse into a validated config or raise mg::Error naming the problem.
#include "experiments/run_config.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const mg::RunConfig rc = mg::parse_run_config(std::string(mg::fuzz::as_text(data, size)), "fuzz.yaml");
    if (rc.train.batch_size <= 0 || rc.train.steps <= 0) mg::fuzz::violated("accepted a non-positive batch size or step count");
    if (rc.model.vocab_size != rc.data.vocab_size) mg::fuzz::violated("model and tokenizer vocab sizes differ");
  } catch (const mg::Error&) {
  }
  return 0;
}
