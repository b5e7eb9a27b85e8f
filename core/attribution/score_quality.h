// How well attribution scores agree with the labels: a check of TRAK's scores that needs no
// ground truth, for run.json, the report and bench_trak (also in the LibTorch-only build).
#pragma once

#include <cstdint>
#include <vector>

#include "core/base/ndarray.h"

namespace modeldiff::core {

// Average over target rows of the share of the row's k highest-scored training examples whose
// label equals the target's label. scores: T x N float32. Throws InputError when the labels do
// not match the matrix; NaN for no rows.
double same_label_rate(const NdArray& scores, const std::vector<std::int64_t>& train_labels,
                       const std::vector<std::int64_t>& target_labels, int k = 20);

}  // namespace modeldiff::core
