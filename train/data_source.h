#pragma once
// What a training run draws its steps from. The Trainer asks for one batch per optimizer step
// and stores the source's position in every checkpoint, so a resumed run draws exactly the
// batches the uninterrupted run would have drawn.
#include <map>
#include <string>

namespace mg {

using SourceState = std::map<std::string, std::string>;

// The resumable part of a data source, independent of its batch type.
class Resumable {
 public:
  virtual ~Resumable() = default;
  // The position, as checkpoint metadata: keys should start with "data.".
  virtual SourceState state() const = 0;
  // Restores a position state() returned. Throws mg::Error naming the key when one is missing
  // or malformed (`where` names the checkpoint).
  virtual void restore(const SourceState& state, const std::string& where) = 0;
};

template <class Batch>
class DataSource : public Resumable {
 public:
  // The next batch; sources are endless (they start another epoch when one ends).
  virtual Batch next() = 0;
  // Moves past the next batch without using it: in a data-parallel run each rank skips the
  // micro-batches of the others. Sources that can skip without reading the data override it.
  virtual void skip() { (void)next(); }
};

// Reads an unsigned integer metadata value, throwing one clear error naming `where` and `key`
// when it is absent or not a number (instead of std::stoull's "stoull").
unsigned long long state_uint(const SourceState& s, const std::string& key, const std::string& where);

}  // namespace mg
