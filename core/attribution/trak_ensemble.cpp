#include "core/attribution/trak_ensemble.h"

#include <Eigen/Cholesky>
#if !MODELDIFF_HAVE_LAPACK
#include <Eigen/Eigenvalues>
#endif
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"

#if MODELDIFF_HAVE_LAPACK
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                        double* w, double* work, const int* lwork, int* iwork, const int* liwork,
                        int* info);
#endif

namespace modeldiff::core {
namespace {

// Eigenvalues (ascending) and eigenvectors of the symmetric matrix `a` (overwritten by the
// eigenvectors) with LAPACK's divide and conquer (multi-threaded in OpenBLAS; several times
// faster than Eigen's own solver at k = 2048). Builds without LAPACK (MODELDIFF_TORCH_ONLY)
// use Eigen's solver.
bool symmetric_eigen(Eigen::MatrixXd& a, Eigen::VectorXd& values) {
#if !MODELDIFF_HAVE_LAPACK
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(a, Eigen::ComputeEigenvectors);
  if (solver.info() != Eigen::Success) return false;
  values = solver.eigenvalues();
  a = solver.eigenvectors();
  return true;
#else
  const int n = static_cast<int>(a.rows());
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_("V", "L", &n, a.data(), &n, values.data(), &work_query, &lwork, &iwork_query, &liwork,
          &info);
  if (info != 0) return false;
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  dsyevd_("V", "L", &n, a.data(), &n, values.data(), work.data(), &lwork, iwork.data(), &liwork,
          &info);
  return info == 0;
#endif
}

}  // namespace

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
  const Eigen::Index k = train_features.cols();
  // K = Phi^T Phi + lambda I in double: TRAK's kernels are ill-conditioned (condition numbers
  // of 1e8 on the demo), and the directions with small eigenvalues are the rare features
  // (a patch on a few hundred images) TRAK exists to pick out; float32 accumulation would
  // bury them in rounding noise. Accumulated (lower triangle: dsyrk with a BLAS) over row
  // blocks small enough to stay in cache.
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(k, k);
  constexpr Eigen::Index kRowBlock = 256;
  using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  RowMatrixD block(std::min<Eigen::Index>(kRowBlock, n_), k);
  for (Eigen::Index r = 0; r < n_; r += kRowBlock) {
    const Eigen::Index rows = std::min<Eigen::Index>(kRowBlock, n_ - r);
    block.topRows(rows) = train_features.middleRows(r, rows).cast<double>();
    gram.selfadjointView<Eigen::Lower>().rankUpdate(block.topRows(rows).transpose());
  }
  // A non-finite feature makes its column's sum of squares non-finite (no finite float32
  // squares overflow a double), so the diagonal checks the training features.
  if (!gram.diagonal().allFinite() || !target_features.allFinite())
    throw InputError(context, "gradient features are not finite (NaN or Inf)")
        .expected("a model whose margins and gradients are finite on every example");
  // A feature that is zero on every training example (a unit no training example activates,
  // kept exactly by the structured projection) carries no information and makes the kernel
  // singular; it is left out, which is what the pseudo-inverse would do.
  std::vector<Eigen::Index> keep;
  for (Eigen::Index j = 0; j < k; ++j)
    if (gram(j, j) > 0.0 || lambda_ > 0) keep.push_back(j);
  dropped_columns_ += static_cast<std::int64_t>(k - static_cast<Eigen::Index>(keep.size()));
  if (keep.empty())
    throw InputError(context, "every TRAK feature is zero on every training example")
        .expected("a model whose margins have non-zero gradients");
  const bool all = static_cast<Eigen::Index>(keep.size()) == k;
  if (!all) gram = Eigen::MatrixXd(gram(keep, keep));  // keeps the lower triangle lower
  gram.diagonal().array() += lambda_;
  // W = K^{-1} G^T (k x T): the T targets are fewer than the N training examples, so the
  // solve runs on them, and S_m = G K^{-1} Phi^T = (Phi W)^T costs one N x k x T product.
  // G^T column-major is G row-major, cast element by element.
  Eigen::MatrixXd w =
      all ? Eigen::MatrixXd(target_features.transpose().cast<double>())
          : Eigen::MatrixXd(target_features(Eigen::all, keep).transpose().cast<double>());
  Eigen::MatrixXd factor = gram;  // overwritten by the Cholesky factor; gram stays for the fallback
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(factor);
  if (llt.info() == Eigen::Success) {
    llt.solveInPlace(w);
  } else {
    // Rank-deficient (structural dependencies among the features, or N < k): the
    // pseudo-inverse over the directions the training features span, eigenvalues below
    // kRelativeCutoff of the largest (rounding noise of a double-precision Gram matrix of
    // float32 features, i.e. exact zeros) counted as zero.
    constexpr double kRelativeCutoff = 1e-11;
    Eigen::MatrixXd& v = factor;  // LAPACK overwrites it with the eigenvectors
    v = gram;
    Eigen::VectorXd ev(gram.rows());
    if (!symmetric_eigen(v, ev))
      throw InputError(context, "the TRAK kernel Phi^T Phi could not be decomposed")
          .expected("finite features; try a positive lambda")
          .found("k = " + std::to_string(k) + ", lambda = " + std::to_string(lambda_));
    const double cutoff = ev.maxCoeff() * kRelativeCutoff;
    Eigen::VectorXd inv = Eigen::VectorXd::Zero(ev.size());
    for (Eigen::Index i = 0; i < ev.size(); ++i)
      if (ev(i) > cutoff)
        inv(i) = 1.0 / ev(i);
      else
        ++null_directions_;
    const Eigen::MatrixXd vt_g = v.transpose() * w;
    w.noalias() = v * (inv.asDiagonal() * vt_g);
  }
  // The T x N row-major sum is the N x T column-major matrix Phi W: accumulated in place.
  const Eigen::MatrixXf wf = w.cast<float>();
  Eigen::Map<Eigen::MatrixXf> sum(sum_.data(), n_, t_);
  if (all)
    sum.noalias() += train_features * wf;
  else
    sum.noalias() += train_features(Eigen::all, keep) * wf;
  q_sum_ += out_to_loss.cast<double>();
  ++checkpoints_;
  record_block();
}

void TrakEnsemble::record_blocks(std::vector<int> cuts) {
  if (checkpoints_ > 0)
    throw InputError("", "block sums must be asked for before the first checkpoint")
        .found(std::to_string(checkpoints_) + " checkpoints added already");
  bool ascending = cuts.size() >= 2 && cuts.front() == 0;
  for (std::size_t k = 1; ascending && k < cuts.size(); ++k) ascending = cuts[k] > cuts[k - 1];
  if (!ascending) {
    std::string found;
    for (const int c : cuts) found += (found.empty() ? "" : ", ") + std::to_string(c);
    throw InputError("", "block cuts are not checkpoint counts 0 = c_0 < c_1 < ...")
        .expected("at least two ascending cuts from 0, as block_cuts makes them")
        .found("[" + found + "]");
  }
  cuts_ = std::move(cuts);
  blocks_ = BlockSums{};
}

// A block's sums are the difference of the running sums at its two cuts: only the previous
// cut's are kept. A block holds a fraction of the total, so float32 loses a few bits to the
// cancellation, well below the scores' own float32 rounding over thousands of features.
void TrakEnsemble::record_block() {
  const std::size_t b = blocks_.score_sums.size();
  if (b + 1 >= cuts_.size() || cuts_[b + 1] != checkpoints_) return;
  NdArray block = NdArray::allocate(DType::kFloat32, {t_, n_});
  Eigen::Map<RowMatrixF> out(block.mutable_data_as<float>(), t_, n_);
  std::vector<double> q_block(static_cast<std::size_t>(n_));
  Eigen::Map<Eigen::VectorXd> q_out(q_block.data(), n_);
  if (b == 0) {
    out = sum_;
    q_out = q_sum_;
  } else {
    out = sum_ - block_start_;
    q_out = q_sum_ - block_start_q_;
  }
  blocks_.score_sums.push_back(std::move(block));
  blocks_.out_to_loss.push_back(std::move(q_block));
  if (b + 2 < cuts_.size()) {  // the last block needs no start for a next one
    block_start_ = sum_;
    block_start_q_ = q_sum_;
  } else {
    block_start_ = RowMatrixF();
    block_start_q_ = Eigen::VectorXd();
  }
}

TrakEnsemble::BlockSums TrakEnsemble::take_blocks() {
  cuts_.clear();
  block_start_ = RowMatrixF();
  block_start_q_ = Eigen::VectorXd();
  return std::exchange(blocks_, BlockSums{});
}

NdArray TrakEnsemble::scores(bool use_out_to_loss) const {
  if (checkpoints_ == 0)
    throw InputError("", "no checkpoint has been added to the ensemble")
        .expected("add() of at least one checkpoint's features before scores()");
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
