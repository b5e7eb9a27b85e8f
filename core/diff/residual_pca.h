// PCA of residual datamodels without materialising the residual (ALGORITHM.md section 2).
//
// Both score matrices are T x N, row-major, float32 (row = target example, column = training
// example). A residual is an implicit combination of their rows,
//     R = diag(coef_a) * A + diag(coef_b) * B                      (T x N),
// e.g. for "A minus B" with raw rows coef_a = 1 and coef_b = -<a_i, b_i> / <b_i, b_i>.
// The PCA of R (columns centred) is computed either exactly (R materialised in double, an
// eigendecomposition of its smaller Gram matrix) or, for large inputs, by a randomised block
// Krylov iteration with Rayleigh-Ritz steps that only needs products A X, B X, A^T Y and B^T Y;
// both residuals of a comparison (A minus B and B minus A) share every pass over A and B.
//
// Accuracy of the randomised solver: it stops when every wanted Ritz pair has
// ||R v_c - s_c u_c|| <= 1e-4 s_1. Then each singular value is within 1e-4 s_1 of an exact
// one, the subspace of the first c directions is within a principal angle of about
// 1e-4 s_1 / (s_c - s_{c+1}) of the exact one, and each direction whose singular value is
// separated from its neighbours by a relative gap g has |cos| with the exact direction of at
// least 1 - (1e-4 / g)^2 / 2 (tests/core/test_model_diff.cpp checks this against the exact
// solver).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/progress.h"

namespace modeldiff::core {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMapF = Eigen::Map<const RowMatrixF>;

// Coefficients of one residual: R = diag(coef_a) A + diag(coef_b) B. Both have length T.
struct ResidualCoefficients {
  Eigen::VectorXd coef_a;
  Eigen::VectorXd coef_b;
};

// Per-row statistics of a pair (A, B), each of length T: squared norms and dot products,
// accumulated in double. Non-finite entries when A or B holds NaN or Inf in that row.
struct RowStats {
  Eigen::VectorXd aa, bb, ab;
};
RowStats compute_row_stats(ConstRowMapF a, ConstRowMapF b);

enum class PcaSolver {
  kAuto,        // exact when cheap (small T * N * min(T, N)), randomised otherwise
  kExact,       // always materialise the residual (double) and decompose it
  kRandomized,  // always the implicit randomised block Krylov iteration
};

struct PcaResult {
  RowMatrixF directions;               // C x N, unit rows (directions in training-set space)
  RowMatrixF projections;              // T x C = (R - mean(R)) * directions^T
  Eigen::VectorXd explained_variance;  // C: ||projections[:, c]||^2 / (T - 1)
  double total_variance = 0;           // trace of the residual's covariance (ddof = 1)
  std::string solver;                  // "exact" or "randomized"
  int iterations = 0;                  // Krylov blocks, i.e. passes over A and B (0 for exact)
  bool converged = true;
  double max_relative_residual = 0;  // max_c ||R v_c - s_c u_c|| / s_1 at the end
  // A V and B V (T x C, V = directions^T), when the solver had them without another pass over
  // A and B (the randomised one); empty otherwise.
  RowMatrixF a_times_directions, b_times_directions;
};

struct PcaSettings {
  int components = 10;
  PcaSolver solver = PcaSolver::kAuto;
  std::uint64_t seed = 0;  // seeds the randomised solver's starting block
  int max_iterations = 60;
};

// Which solver kAuto picks for a T x N residual.
PcaSolver choose_solver(std::int64_t rows, std::int64_t cols);

// The residual R = diag(coef_a) A + diag(coef_b) B, materialised (T x N). For tests and for
// small inputs; the PCA below never needs it.
RowMatrixF materialize_residual(ConstRowMapF a, ConstRowMapF b, const ResidualCoefficients& coef);

// PCA of several residuals of the same pair (A, B), sharing passes over A and B.
// Sign convention: each component is flipped so that its projection with the largest absolute
// value is positive. Requires 1 <= components <= min(T, N) and T >= 2 (asserted: callers
// validate user input first).
std::vector<PcaResult> residual_pca(ConstRowMapF a, ConstRowMapF b, const RowStats& stats,
                                    const std::vector<ResidualCoefficients>& residuals,
                                    const PcaSettings& settings, Progress& progress);

}  // namespace modeldiff::core
