// TrakEnsemble: the kernel solve of ALGORITHM.md section 1 against a direct computation.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <limits>

#include "core/attribution/trak_ensemble.h"
#include "core/base/error.h"

using namespace modeldiff::core;

namespace {

// S = G (Phi^T Phi + lambda I)^-1 Phi^T, computed with an explicit inverse in double.
Eigen::MatrixXd reference(const Eigen::MatrixXd& phi, const Eigen::MatrixXd& g, double lambda) {
  Eigen::MatrixXd k = phi.transpose() * phi;
  k.diagonal().array() += lambda;
  return g * k.inverse() * phi.transpose();
}

}  // namespace

TEST(TrakEnsemble, OneCheckpointEqualsTheFormula) {
  const Eigen::MatrixXd phi = Eigen::MatrixXd::Random(40, 6), g = Eigen::MatrixXd::Random(5, 6);
  const Eigen::VectorXf q = Eigen::VectorXf::Ones(40);
  for (double lambda : {0.0, 0.5}) {
    TrakEnsemble e(5, 40, lambda);
    e.add_checkpoint(phi.cast<float>(), g.cast<float>(), q, "m");
    const NdArray s = e.scores(false);
    const Eigen::MatrixXd ref = reference(phi, g, lambda);
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 40; ++j)
        EXPECT_NEAR(s.data_as<float>()[i * 40 + j], ref(i, j), 1e-4) << lambda;
  }
}

TEST(TrakEnsemble, FeatureZeroOnEveryTrainingExampleIsLeftOut) {
  // A dead unit: column 2 is zero for all training examples (but not for the targets).
  Eigen::MatrixXd phi = Eigen::MatrixXd::Random(30, 5), g = Eigen::MatrixXd::Random(4, 5);
  phi.col(2).setZero();
  const Eigen::VectorXf q = Eigen::VectorXf::Ones(30);
  TrakEnsemble e(4, 30, 0.0);
  e.add_checkpoint(phi.cast<float>(), g.cast<float>(), q, "m");
  EXPECT_EQ(e.dropped_columns(), 1);
  // The same as the formula on the other four features.
  const std::vector<Eigen::Index> keep = {0, 1, 3, 4};
  const Eigen::MatrixXd ref = reference(phi(Eigen::all, keep), g(Eigen::all, keep), 0.0);
  const NdArray s = e.scores(false);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 30; ++j) EXPECT_NEAR(s.data_as<float>()[i * 30 + j], ref(i, j), 1e-4);
}

TEST(TrakEnsemble, SingularKernelUsesThePseudoInverse) {
  // More features than training examples (k = 12 > N = 5) and lambda = 0: S = G Phi^+ ... the
  // minimum-norm solution, G (Phi^T Phi)^+ Phi^T.
  const Eigen::MatrixXd phi = Eigen::MatrixXd::Random(5, 12), g = Eigen::MatrixXd::Random(3, 12);
  TrakEnsemble e(3, 5, 0.0);
  e.add_checkpoint(phi.cast<float>(), g.cast<float>(), Eigen::VectorXf::Ones(5), "ckpt.pt");
  EXPECT_EQ(e.null_directions(), 7);
  const Eigen::MatrixXd kernel = phi.transpose() * phi;
  const Eigen::MatrixXd ref =
      g * kernel.completeOrthogonalDecomposition().pseudoInverse() * phi.transpose();
  const NdArray s = e.scores(false);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) EXPECT_NEAR(s.data_as<float>()[i * 5 + j], ref(i, j), 1e-3);
}

TEST(TrakEnsemble, NonFiniteFeaturesNameTheCheckpoint) {
  // NaN or Inf in a training feature (whatever lambda) or in a target feature.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int c = 0; c < 4; ++c) {
    Eigen::MatrixXf phi = Eigen::MatrixXf::Random(6, 3), g = Eigen::MatrixXf::Random(2, 3);
    (c < 3 ? phi(2, 1) : g(1, 2)) = c == 1 ? -inf : nan;
    TrakEnsemble e(2, 6, c == 2 ? 0.5 : 0.0);
    try {
      e.add_checkpoint(phi, g, Eigen::VectorXf::Ones(6), "ckpt.pt");
      FAIL() << "expected an InputError, case " << c;
    } catch (const InputError& err) {
      EXPECT_NE(std::string(err.what()).find("ckpt.pt"), std::string::npos);
    }
  }
}

TEST(TrakEnsemble, MisuseIsAnInputErrorSayingWhatWasExpected) {
  TrakEnsemble e(4, 6, 0.0);
  const auto message = [](const auto& call) {
    try {
      call();
    } catch (const InputError& err) {
      return std::string(err.what());
    }
    return std::string("no InputError");
  };
  EXPECT_NE(message([&] { e.record_blocks({0, 2, 2}); }).find("[0, 2, 2]"), std::string::npos);
  EXPECT_NE(message([&] { e.record_blocks({1, 3}); }).find("block cuts"), std::string::npos);
  EXPECT_NE(message([&] { (void)e.scores(true); }).find("no checkpoint"), std::string::npos);
  e.add_checkpoint(RowMatrixF::Ones(6, 3), RowMatrixF::Ones(4, 3), Eigen::VectorXf::Ones(6), "m");
  EXPECT_NE(message([&] {
              e.record_blocks({0, 1, 2});
            }).find("1 checkpoints added"),
            std::string::npos);
  EXPECT_EQ(e.scores(true).shape(), (std::vector<std::int64_t>{4, 6}));
}
