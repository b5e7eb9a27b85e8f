// Is a direction real? Reproducibility and a seed-noise floor for every ModelDiff direction
// (issue 12), from half-ensemble scores.
//
// Each algorithm's checkpoints are split into two disjoint halves; a half's TRAK scores are
// the ensemble of its checkpoints only (T x N float32, row = target example, column = training
// example, like every score matrix in the project). For every split s and half h:
//   observed pairs  A_h vs B_h          residual PCA of the half ensembles, both ways;
//   null pairs      A_1 vs A_2, B_1 vs B_2 (both orders): two samples of the SAME algorithm
//                   at the same ensemble size, whose explained variances are the level that
//                   seed noise alone reaches.
// The rule (kSignificanceRule, README "Is a direction real?"), a parallel analysis against the
// same-algorithm null with deflation: the null level L_j is the largest explained variance of
// component j over all null residuals; walking the directions c = 0, 1, ... with j = the
// number of earlier directions judged noise, direction c is above the noise floor when its
// half-ensemble explained variance (the smallest over the observed half pairs) exceeds L_j,
// and otherwise it is noise and takes up the null level L_j (j increases). A noise direction
// of X minus Y is thus compared with the null's noise at the same noise rank, whatever
// signal directions rank above it. The directions themselves are compared by |cos|
// (reproducibility), which the verdict does not use.
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/base/progress.h"

namespace modeldiff::core {

struct DiffOptions;
struct DiffResult;

// The fewest checkpoints per algorithm for which halves are made (two per half).
constexpr int kMinCheckpointsForSignificance = 4;

// The rule in words, as written into summary.json, diff.h5 and the report.
extern const char* const kSignificanceRule;

// One split of both algorithms' checkpoints into two disjoint halves: the half ensembles'
// scores, each T x N float32 (row = target example) over the same examples as the full
// ensembles. `sources` name them in error messages (files, or "A checkpoints 1-4").
struct HalfSplit {
  NdArray a[2], b[2];
  std::string source_a[2], source_b[2];
  int checkpoints_a[2] = {0, 0}, checkpoints_b[2] = {0, 0};  // 0 when unknown (score files)
};

// Per direction c = 0..C-1 of one direction set (X minus Y), in the set's rank order.
struct DirectionSignificance {
  // min over the observed half pairs (2 per split) of the explained variance of component c
  // of the half-ensemble X minus Y residual.
  Eigen::VectorXd half_explained_variance;
  // max over the null residuals (4 per split) of the explained variance of their component c.
  Eigen::VectorXd null_explained_variance;
  // Per direction, the null level it is compared with: null_explained_variance(j), j = the
  // number of earlier directions judged noise.
  Eigen::VectorXd noise_floor;
  Eigen::VectorXd floor_ratio;    // half_explained_variance / noise_floor
  std::vector<bool> above_floor;  // the verdict: half_explained_variance > noise_floor
  // Best |cos| of direction c of one observed half pair with any direction of the other pair
  // of the same split, both ways: mean and standard deviation over the 2 x splits values.
  Eigen::VectorXd reproducibility, reproducibility_std;
  // Share of those 2 x splits matches whose best match has the same rank c.
  Eigen::VectorXd rank_stable;
  // Best |cos| of the full-ensemble direction c with a direction of a half pair, mean over the
  // observed half pairs: whether the direction shown is the one the halves reproduce.
  Eigen::VectorXd full_match;
};

struct Significance {
  bool computed = false;
  std::string reason;  // when not computed: why (e.g. fewer than 4 checkpoints)
  int splits = 0;
  // Checkpoints per half (first, second) of each algorithm; 0 when unknown (score files).
  int checkpoints_a[2] = {0, 0}, checkpoints_b[2] = {0, 0};
  DirectionSignificance a_minus_b, b_minus_a;
};

// "above the noise floor" or "not distinguishable from seed noise".
const char* significance_verdict(bool above_floor);

// Why a run has no significance for an algorithm with `checkpoints` checkpoints ("" when it
// can have one).
std::string significance_absence(const std::string& label, int checkpoints);

// Significance of every direction of `full` (the result of run_model_diff over the full
// ensembles with `options`) from `splits` (at least one). Every half matrix must have the
// full inputs' shape (InputError naming its source otherwise). The half pairs are analysed
// with the same options (components, rows, row normalisation, solver).
Significance compute_significance(const DiffResult& full, const std::vector<HalfSplit>& splits,
                                  const DiffOptions& options, Progress& progress);

// Cut points 0 = c_0 < c_1 < c_2 < c_3 < c_4 = m of m >= 4 checkpoints into four consecutive
// blocks of sizes as equal as possible.
std::array<int, 5> block_cuts(int m);

// The three splits of four blocks into two halves of two blocks each ({1,2}|{3,4},
// {1,3}|{2,4}, {1,4}|{2,3}) as ensemble means: `block_sums[b]` is the sum over block b's
// checkpoints (cuts[b] to cuts[b + 1] - 1) of their score terms, T x N float32 (TRAK's
// TrakBlockSums). With `out_to_loss_sums` (per block, the N sums of the out-to-loss weights),
// each half is weighted by its own mean weights, as TRAK over that half's checkpoints would be;
// without, Q = 1. Returns halves[s][h] (T x N float32) and their sizes (checkpoints).
struct BlockHalves {
  NdArray halves[3][2];
  int sizes[3][2] = {{0, 0}, {0, 0}, {0, 0}};
};
BlockHalves block_halves(const std::array<NdArray, 4>& block_sums, const std::array<int, 5>& cuts,
                         const std::array<std::vector<double>, 4>* out_to_loss_sums = nullptr);

// The direction table as the CLI prints it: per direction set, per direction, the explained
// variance (and its share), the variances of A and B, and when computed the significance
// numbers and verdict; otherwise one line saying why significance is absent.
std::string format_direction_table(const DiffResult& result);

}  // namespace modeldiff::core
