#pragma once

namespace mg {

// How a loss over many rows is reduced to its result.
//   none: one value per row (same leading shape as the targets)
//   mean: average over the rows that count (e.g. non-ignored targets)
//   sum:  sum over the rows that count
enum class Reduction { none, mean, sum };

}  // namespace mg
