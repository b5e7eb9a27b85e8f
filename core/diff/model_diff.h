// ModelDiff from two attribution score matrices (ALGORITHM.md section 2).
//
// Inputs are T x N float32 score matrices, row-major (row = target/validation example,
// column = training example), one per learning algorithm, over the same examples.
// Output: for "A minus B" and "B minus A", the distinguishing directions in training-set
// space, the targets' projections on them, and the variance of A's and B's (row-normalised)
// attributions along each direction. Labels stay attached to the user's algorithms: in both
// direction sets `variance_a` is the variance of the scores given as A.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/base/progress.h"
#include "core/diff/residual_pca.h"
#include "core/diff/rotation_kind.h"
#include "core/diff/significance.h"

namespace modeldiff::core {

// One algorithm's scores: T x N float32, row = target example. `source` (a file path or
// description) names the input in error messages.
struct ScoreInput {
  std::string label;   // the user's name for the algorithm, e.g. "A" or "augmented"
  std::string source;  // file the scores came from
  NdArray scores;      // T x N float32
};

struct DiffOptions {
  int components = 10;
  bool normalize_rows = true;  // scale rows of A and B to unit L2 norm first (the paper's way)
  // Original row numbers (ascending, unique) of the targets to analyse; empty = all rows.
  std::vector<std::int64_t> target_rows;
  int top_k = 10;  // indices kept per direction for top/bottom train and target lists
  PcaSolver solver = PcaSolver::kAuto;
  // kVarimax: directions, projections, explained variances (the variance of the projections),
  // variances of A and B and the top lists are those of the rotated directions.
  Rotation rotation = Rotation::kNone;
  std::uint64_t seed = 0;
};

// One residual's directions: `first` minus `second` (labels of the user's algorithms).
struct DirectionSet {
  std::string first, second;
  RowMatrixF directions;                     // C x N, unit rows
  RowMatrixF projections;                    // T' x C, row i = target target_rows[i]
  Eigen::VectorXd explained_variance;        // C, of the residual (ddof = 1)
  Eigen::VectorXd explained_variance_ratio;  // C, share of the residual's total variance
  Eigen::VectorXd variance_a;  // C, user's A along each direction (unit rows, centred)
  Eigen::VectorXd variance_b;  // C, user's B along each direction
  // Per direction, k training indices with the largest / smallest loadings.
  std::vector<std::vector<std::int64_t>> top_train, bottom_train;
  // Per direction, k original target row numbers with the largest / smallest projections.
  std::vector<std::vector<std::int64_t>> top_target, bottom_target;
  std::string solver;
  int iterations = 0;
  bool converged = true;
};

struct DiffResult {
  std::string label_a, label_b;
  std::string source_a, source_b;
  bool normalized_rows = true;
  std::int64_t num_targets = 0;           // T of the inputs (before restricting to target_rows)
  std::int64_t num_train = 0;             // N
  std::vector<std::int64_t> target_rows;  // T' analysed rows, original numbering
  Eigen::VectorXf cosine_ab;              // T': cosine similarity of A's and B's attribution rows
  DirectionSet a_minus_b, b_minus_a;
  // Per direction of both sets, whether it stands above seed noise (significance.h); filled by
  // compute_significance, or `reason` says why not.
  Significance significance;
};

// Checks shapes, finiteness and all-zero rows (InputError naming the source, the row and,
// for NaN/Inf, the column), then computes both direction sets.
DiffResult run_model_diff(const ScoreInput& a, const ScoreInput& b, const DiffOptions& options,
                          Progress& progress);

// Indices of the k largest (descending = true) or smallest values of v[0..n), ties broken by
// the lower index, in order of value.
std::vector<std::int64_t> top_k_indices(const float* v, std::int64_t n, int k, bool descending);

// Coefficients of the residual of `first` against `second` for rows with statistics
// ff = |first_i|^2, ss = |second_i|^2, fs = <first_i, second_i> (all length T'):
//   raw rows:        R_i = first_i - (fs / ss) second_i
//   normalised rows: R_i = first_i / |first_i| - (fs / (|first_i| |second_i|)) second_i /
//   |second_i|
// Returned as (coefficient of first, coefficient of second).
std::pair<Eigen::VectorXd, Eigen::VectorXd> residual_coefficients(const Eigen::VectorXd& ff,
                                                                  const Eigen::VectorXd& ss,
                                                                  const Eigen::VectorXd& fs,
                                                                  bool normalize_rows);

}  // namespace modeldiff::core
