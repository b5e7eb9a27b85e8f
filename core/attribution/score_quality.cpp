#include "core/attribution/score_quality.h"

#include <algorithm>
#include <limits>
#include <string>

#include "core/base/error.h"
#include "core/diff/model_diff.h"

namespace modeldiff::core {

double same_label_rate(const NdArray& scores, const std::vector<std::int64_t>& train_labels,
                       const std::vector<std::int64_t>& target_labels, int k) {
  if (scores.ndim() != 2 || scores.dtype() != DType::kFloat32)
    throw InputError("", "scores must be a T x N float32 matrix");
  const std::int64_t t = scores.dim(0), n = scores.dim(1);
  if (static_cast<std::int64_t>(train_labels.size()) != n ||
      static_cast<std::int64_t>(target_labels.size()) != t)
    throw InputError("", "labels do not match the score matrix")
        .expected(std::to_string(t) + " target and " + std::to_string(n) + " training labels")
        .found(std::to_string(target_labels.size()) + " and " +
               std::to_string(train_labels.size()));
  if (t == 0) return std::numeric_limits<double>::quiet_NaN();
  const int kk = static_cast<int>(std::min<std::int64_t>(k, n));
  double total = 0;
  for (std::int64_t i = 0; i < t; ++i) {
    const auto top = top_k_indices(scores.data_as<float>() + i * n, n, kk, true);
    int same = 0;
    for (auto j : top)
      same +=
          train_labels[static_cast<std::size_t>(j)] == target_labels[static_cast<std::size_t>(i)];
    total += static_cast<double>(same) / kk;
  }
  return total / static_cast<double>(t);
}

}  // namespace modeldiff::core
