// Reading back a result's summary.json (written by write_diff_output): the per-direction
// vectors and index lists, enough to browse a comparison without loading the matrices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace modeldiff::core {

struct DirectionSummary {
  std::string first, second;  // this set is `first` minus `second` (user's labels)
  std::string solver;
  bool converged = true;
  std::vector<double> explained_variance, explained_variance_ratio;  // C
  std::vector<double> variance_a, variance_b;                        // C, user's A and B
  std::vector<std::vector<std::int64_t>> top_train, bottom_train;    // C x k training indices
  std::vector<std::vector<std::int64_t>> top_target, bottom_target;  // C x k original rows
};

// The significance numbers of one direction set (significance.h), per direction.
struct DirectionSignificanceSummary {
  std::vector<double> noise_floor, half_explained_variance, null_explained_variance, floor_ratio;
  std::vector<bool> above_noise_floor;
  std::vector<double> reproducibility, reproducibility_std, rank_stable, full_match;
};

struct SignificanceSummary {
  bool computed = false;
  std::string reason;  // why not computed (a result written before significance: says so)
  std::string rule;
  int splits = 0;
  DirectionSignificanceSummary a_minus_b, b_minus_a;
};

struct DiffSummary {
  std::string label_a, label_b;
  std::string source_a, source_b;  // input paths
  std::string row_normalization;
  bool normalized_rows = true;
  std::string target_selection;
  std::int64_t num_targets = 0, num_train = 0, num_analysed_targets = 0;
  int components = 0;
  DirectionSummary a_minus_b, b_minus_a;
  SignificanceSummary significance;
};

// `path` is a result directory or its summary.json. Throws InputError naming the file and the
// key that is missing or malformed.
DiffSummary read_diff_summary(const std::string& path);

}  // namespace modeldiff::core
