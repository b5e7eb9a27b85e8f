// The TRAK ensemble over checkpoints (ALGORITHM.md section 1), from projected features:
//   S = ( (1/M) sum_m G_m K_m^{-1} Phi_m^T ) * diag( (1/M) sum_m Q_m )        T x N
// with K_m = Phi_m^T Phi_m + lambda I (k x k, double precision, Cholesky solve).
// Phi_m: N x k training features, G_m: T x k target features, Q_m: N out-to-loss weights
// (1 - p_y of the training example under checkpoint m). Scores are T x N, row = target.
#pragma once

#include <Eigen/Core>
#include <string>

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
  // T x N float32 scores; use_out_to_loss = false leaves Q out (Q = 1).
  NdArray scores(bool use_out_to_loss = true) const;
  // The averaged out-to-loss weights (N).
  Eigen::VectorXd mean_out_to_loss() const;
  // The running sums over the checkpoints added so far (for partial ensembles, e.g. the half
  // ensembles of the significance of directions): sum_m G_m K_m^-1 Phi_m^T (T x N) and
  // sum_m Q_m (N).
  const RowMatrixF& score_sum() const { return sum_; }
  const Eigen::VectorXd& out_to_loss_sum() const { return q_sum_; }

 private:
  std::int64_t t_, n_;
  double lambda_;
  int checkpoints_ = 0;
  std::int64_t dropped_columns_ = 0;
  std::int64_t null_directions_ = 0;
  RowMatrixF sum_;         // T x N, sum over checkpoints of G K^-1 Phi^T
  Eigen::VectorXd q_sum_;  // N
};

}  // namespace modeldiff::core
