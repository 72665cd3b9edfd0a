#pragma once
// A data source that walks n items in a fresh order every epoch, where the order (and anything
// else drawn per epoch) is a function of the epoch number alone. Its position is then just
// (epoch, cursor), and restoring it redraws the epoch's order instead of storing it.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "train/data_source.h"

namespace mg {

template <class Batch>
class EpochSource : public DataSource<Batch> {
 public:
  explicit EpochSource(int64_t n) : n_(n), cursor_(n) {}

  SourceState state() const override {
    return {{"data.epoch", std::to_string(epoch_)}, {"data.cursor", std::to_string(cursor_)}};
  }
  void restore(const SourceState& s, const std::string& where) override {
    const int64_t epoch = int64_t(state_uint(s, "data.epoch", where));
    const int64_t cursor = int64_t(state_uint(s, "data.cursor", where));
    MG_CHECK(cursor <= n_, where, ": data.cursor ", cursor, " is beyond the ", n_, " items of an epoch");
    epoch_ = epoch;
    cursor_ = n_;
    if (epoch > 0) {
      begin(epoch - 1);
      cursor_ = cursor;
    }
  }

 protected:
  // Draws epoch `epoch`'s order (and whatever else the source resamples per epoch).
  virtual void draw_epoch(int64_t epoch) = 0;
  // Starts the next epoch when the current one is used up.
  void ensure_epoch() {
    if (cursor_ >= n_) begin(epoch_);
  }
  int64_t n_;
  int64_t epoch_ = 0;  // epochs started
  int64_t cursor_;     // items taken in the current epoch

 private:
  void begin(int64_t epoch) {
    draw_epoch(epoch);
    cursor_ = 0;
    epoch_ = epoch + 1;
  }
};

}  // namespace mg
