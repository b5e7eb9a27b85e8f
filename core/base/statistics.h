// Summary statistics shared by the pipeline's reports, counterfactuals and benchmarks.
#pragma once

#include <limits>
#include <numeric>
#include <vector>

namespace modeldiff::core {

// The arithmetic mean; NaN for no values (how the core marks a number that was not measured,
// which the reports print as "not measured" or "n/a", never as 0).
inline double mean(const std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace modeldiff::core
