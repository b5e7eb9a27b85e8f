#include "core/attribution/trak_ensemble.h"

#include <Eigen/Cholesky>
#include <cmath>

#include "core/base/error.h"

namespace modeldiff::core {

TrakEnsemble::TrakEnsemble(std::int64_t num_targets, std::int64_t num_train, double lambda)
    : t_(num_targets), n_(num_train), lambda_(lambda) {
  if (lambda < 0 || !std::isfinite(lambda))
    throw InputError("", "lambda must be a finite non-negative number")
        .found(std::to_string(lambda));
  sum_ = RowMatrixF::Zero(t_, n_);
  q_sum_ = Eigen::VectorXd::Zero(n_);
}

void TrakEnsemble::add_checkpoint(const RowMatrixF& train_features,
                                  const RowMatrixF& target_features,
                                  const Eigen::VectorXf& out_to_loss, const std::string& context) {
  MD_ASSERT(train_features.rows() == n_ && target_features.rows() == t_ &&
            train_features.cols() == target_features.cols() && out_to_loss.size() == n_);
  if (!train_features.allFinite() || !target_features.allFinite())
    throw InputError(context, "gradient features are not finite (NaN or Inf)")
        .expected("a model whose margins and gradients are finite on every example");
  const Eigen::Index k = train_features.cols();
  // K = Phi^T Phi + lambda I, accumulated in float32 by the BLAS and solved in double.
  Eigen::MatrixXf gram(k, k);
  gram.noalias() = train_features.transpose() * train_features;
  Eigen::MatrixXd kernel = gram.cast<double>();
  kernel.diagonal().array() += lambda_;
  Eigen::LLT<Eigen::MatrixXd> llt(kernel);
  if (llt.info() != Eigen::Success)
    throw InputError(context, "the TRAK kernel Phi^T Phi is singular")
        .expected(
            "a positive lambda, or a projection dimension below the number of training "
            "examples (" +
            std::to_string(n_) + ")")
        .found("k = " + std::to_string(k) + ", lambda = " + std::to_string(lambda_));
  // W = K^{-1} G^T (k x T), then S_m = W^T Phi^T = (Phi W)^T: no explicit inverse.
  const Eigen::MatrixXf w = llt.solve(target_features.transpose().cast<double>()).cast<float>();
  Eigen::MatrixXf phi_w(n_, t_);
  phi_w.noalias() = train_features * w;  // N x T
  sum_ += phi_w.transpose();
  q_sum_ += out_to_loss.cast<double>();
  ++checkpoints_;
}

NdArray TrakEnsemble::scores(bool use_out_to_loss) const {
  MD_ASSERT(checkpoints_ > 0);
  NdArray out = NdArray::allocate(DType::kFloat32, {t_, n_});
  Eigen::Map<RowMatrixF> s(out.mutable_data_as<float>(), t_, n_);
  s = sum_ / static_cast<float>(checkpoints_);
  if (use_out_to_loss) s = s * (q_sum_ / checkpoints_).cast<float>().asDiagonal();
  return out;
}

Eigen::VectorXd TrakEnsemble::mean_out_to_loss() const {
  return checkpoints_ > 0 ? Eigen::VectorXd(q_sum_ / checkpoints_) : q_sum_;
}

}  // namespace modeldiff::core
