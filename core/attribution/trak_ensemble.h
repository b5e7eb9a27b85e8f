// The TRAK ensemble over checkpoints (ALGORITHM.md section 1), from projected features:
//   S = ( (1/M) sum_m G_m K_m^{-1} Phi_m^T ) * diag( (1/M) sum_m Q_m )        T x N
// with K_m = Phi_m^T Phi_m + lambda I (k x k, double precision, Cholesky solve).
// Phi_m: N x k training features, G_m: T x k target features, Q_m: N out-to-loss weights
// (1 - p_y of the training example under checkpoint m). Scores are T x N, row = target.
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/diff/residual_pca.h"

namespace modeldiff::core {

class TrakEnsemble {
 public:
  TrakEnsemble(std::int64_t num_targets, std::int64_t num_train, double lambda);

  // Adds one checkpoint. `context` names it in errors (e.g. the checkpoint file). Feature
  // columns that are zero for every training example are left out of the solve
  // (dropped_columns() counts them); a kernel that is still singular (N < k with lambda = 0,
  // duplicated examples, structural dependencies among the features) is inverted on the
  // directions the training features span, as the pseudo-inverse would (null_directions()
  // counts the rest). Non-finite features are an InputError.
  void add_checkpoint(const RowMatrixF& train_features, const RowMatrixF& target_features,
                      const Eigen::VectorXf& out_to_loss, const std::string& context);

  int num_checkpoints() const { return checkpoints_; }
  std::int64_t dropped_columns() const { return dropped_columns_; }
  std::int64_t null_directions() const { return null_directions_; }
  // T x N float32 scores; use_out_to_loss = false leaves Q out (Q = 1). InputError before the
  // first checkpoint.
  NdArray scores(bool use_out_to_loss = true) const;
  // The averaged out-to-loss weights (N).
  Eigen::VectorXd mean_out_to_loss() const;

  // Partial ensembles (the half ensembles of the significance of directions, TrakBlockSums in
  // core/trak/trak.h): per block of consecutive checkpoints, the sums over its checkpoints of
  // the terms scores() averages.
  struct BlockSums {
    std::vector<NdArray> score_sums;               // per block: sum_m G_m K_m^-1 Phi_m^T, T x N
    std::vector<std::vector<double>> out_to_loss;  // per block: sum_m Q_m, N
  };
  // Before the first checkpoint: record the sums of the blocks that `cuts`
  // (0 = c_0 < c_1 < ... < c_B, as block_cuts makes them) delimit; block b, checkpoints c_b to
  // c_{b+1} - 1 (0-based, in the order they are added), is recorded when the count reaches c_{b+1}.
  // InputError for cuts not of that form, or after the first checkpoint.
  void record_blocks(std::vector<int> cuts);
  // The blocks recorded so far, moved out; recording stops.
  BlockSums take_blocks();

 private:
  std::int64_t t_, n_;
  double lambda_;
  int checkpoints_ = 0;
  std::int64_t dropped_columns_ = 0;
  std::int64_t null_directions_ = 0;
  RowMatrixF sum_;         // T x N, sum over checkpoints of G K^-1 Phi^T
  Eigen::VectorXd q_sum_;  // N
  // record_blocks: the cuts, the blocks so far, and the running sums where the last recorded
  // block ended (empty before the first block ends and after the last).
  std::vector<int> cuts_;
  BlockSums blocks_;
  RowMatrixF block_start_;
  Eigen::VectorXd block_start_q_;

  void record_block();
};

}  // namespace modeldiff::core
