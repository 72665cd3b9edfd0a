// Fuzzes load_safetensors (core/safetensors.h): any bytes must load or raise mg::Error.
#include "core/safetensors.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mg::fuzz::write_file("in.safetensors", mg::fuzz::as_text(data, size));
  try {
    const mg::SafetensorsFile f = mg::load_safetensors(path);
    uint64_t bytes = 0;
    for (const auto& [name, t] : f.tensors) {
      if (name.empty() || !t.defined() || !t.is_contiguous()) mg::fuzz::violated("loaded tensor is not a named contiguous leaf");
      bytes += uint64_t(t.numel()) * mg::dtype_size(t.dtype());
      if (!f.contains(name)) mg::fuzz::violated("contains() misses a loaded name");
    }
    // The data section is covered exactly, so the tensors never hold more bytes than the file
    // (I64 shrinks to i32).
    if (bytes > size) mg::fuzz::violated("tensors hold more bytes than the file");
  } catch (const mg::Error&) {
  }
  return 0;
}
