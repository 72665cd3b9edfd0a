#pragma once
// Reader and writer for Hugging Face's safetensors format, the project's checkpoint format, so that
// weights move between mixgrad and PyTorch both ways.
//
// File layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// (padded with spaces to a multiple of 8 when we write it), then the tensors' raw little-endian
// bytes; data_offsets are relative to the first byte after the header.
//
// DTypes: F32, F64, I32 and BF16 map to mg's f32, f64, i32 and bf16. I64 (what PyTorch writes for
// token ids) is read only: it is converted to i32 and a value outside i32's range is an error.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace mg {

struct SafetensorsFile {
  // Tensors in the order the header lists them; each is a CPU, contiguous leaf owning its memory.
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" entry (empty when absent)
  std::string path;                              // the file it was read from, for error messages

  // The tensor called `name`; throws mg::Error naming it and listing the closest names present.
  const Tensor& get(const std::string& name) const;
  bool contains(const std::string& name) const;
};

// Reads every tensor of the file. Throws mg::Error naming the file and the problem for a missing or
// unreadable file, a truncated file, a header length beyond the file, malformed JSON, an unknown
// dtype, a shape that disagrees with its byte range, overlapping, out-of-range or non-covering
// offsets, and duplicate names.
SafetensorsFile load_safetensors(const std::string& path);

// Writes `tensors` (any layout, any device; copied to CPU contiguous) and `metadata` to `path`.
// Names must be non-empty, unique and not "__metadata__"; dtypes f32, f64, i32 or bf16.
// Atomic (core/atomic_file.h): the bytes go to a unique temporary file beside `path`, which is
// fsynced and renamed over it, so a crash never leaves a half-written file at `path`; on any
// failure the temporary file is removed and mg::Error names the file and the cause.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace mg
