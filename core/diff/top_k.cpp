// top_k_indices (model_diff.h) on its own: the LibTorch-only build ranks TRAK scores with it
// (same_label_rate) without ModelDiff.
#include <algorithm>
#include <numeric>

#include "core/diff/model_diff.h"

namespace modeldiff::core {

std::vector<std::int64_t> top_k_indices(const float* v, std::int64_t n, int k, bool descending) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  const auto kk = static_cast<std::ptrdiff_t>(std::min<std::int64_t>(std::max(k, 0), n));
  auto before = [&](std::int64_t x, std::int64_t y) {
    if (v[x] != v[y]) return descending ? v[x] > v[y] : v[x] < v[y];
    return x < y;
  };
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(), before);
  idx.resize(static_cast<std::size_t>(kk));
  return idx;
}

}  // namespace modeldiff::core
