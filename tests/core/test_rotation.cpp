// Varimax: a rotation of equal-variance principal directions, which PCA may return in any
// orientation of their subspace, back to the sparse subpopulations that span it.
#include <gtest/gtest.h>

#include <Eigen/QR>
#include <cmath>
#include <random>

#include "core/diff/rotation.h"

using namespace modeldiff::core;

namespace {

// Rows: three disjoint subpopulations of 10 training examples each, among 200, unit norm, with
// a little dense noise so that the loadings are not exactly sparse.
RowMatrixF subpopulations(std::mt19937_64& rng) {
  std::normal_distribution<float> noise(0.0f, 0.01f);
  RowMatrixF e(3, 200);
  for (int k = 0; k < 3; ++k) {
    for (int j = 0; j < 200; ++j) e(k, j) = noise(rng);
    for (int j = 10 * k; j < 10 * k + 10; ++j) e(k, j) += 1.0f;
  }
  // Orthonormal rows (Gram-Schmidt through QR of the transpose) keep the supports.
  const Eigen::MatrixXd q =
      Eigen::HouseholderQR<Eigen::MatrixXd>(e.transpose().cast<double>()).householderQ() *
      Eigen::MatrixXd::Identity(200, 3);
  RowMatrixF rows = q.transpose().cast<float>();
  for (int k = 0; k < 3; ++k)  // QR's sign is arbitrary: each subpopulation loads positively
    if (rows.row(k).sum() < 0) rows.row(k) *= -1.0f;
  return rows;
}

}  // namespace

TEST(Varimax, RecoversSparseDirectionsFromAnyRotationOfTheirSubspace) {
  std::mt19937_64 rng(7);
  const RowMatrixF e = subpopulations(rng);
  std::normal_distribution<double> g;
  Eigen::MatrixXd m(3, 3);
  for (int i = 0; i < 9; ++i) m(i / 3, i % 3) = g(rng);
  const Eigen::MatrixXd r = Eigen::HouseholderQR<Eigen::MatrixXd>(m).householderQ();
  const RowMatrixF mixed = (r * e.cast<double>()).cast<float>();  // still orthonormal rows
  // Each mixed row loads on all three subpopulations: no single one stands out.
  for (int k = 0; k < 3; ++k) {
    int strong = 0;
    for (int p = 0; p < 3; ++p) strong += std::abs(mixed.row(k).dot(e.row(p))) > 0.3f ? 1 : 0;
    EXPECT_GE(strong, 2) << "row " << k << " of the test's mixture is already sparse";
  }
  const RotatedDirections out = varimax(mixed, Eigen::Vector3d(1, 1, 1));
  ASSERT_EQ(out.directions.rows(), 3);
  // Every subpopulation comes back as one rotated direction, with its positive sign.
  for (int p = 0; p < 3; ++p) {
    float best = -2;
    for (int k = 0; k < 3; ++k) best = std::max(best, out.directions.row(k).dot(e.row(p)));
    EXPECT_GT(best, 0.999f) << "subpopulation " << p;
  }
  // Unit rows spanning the same subspace: projecting them onto it loses nothing.
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(out.directions.row(k).norm(), 1.0f, 1e-5f);
    EXPECT_NEAR((e * out.directions.row(k).transpose()).norm(), 1.0f, 1e-4f);
  }
  EXPECT_NEAR(out.variance.sum(), 3.0, 1e-6);  // equal variances: each keeps its own
  // The transform maps the input directions onto the rotated ones.
  const RowMatrixF mapped = (out.transform * mixed.cast<double>()).cast<float>();
  EXPECT_LT((mapped - out.directions).cwiseAbs().maxCoeff(), 1e-6f);
}

TEST(Varimax, KeepsDirectionsThatAreAlreadySimpleAndOrdersByVariance) {
  std::mt19937_64 rng(3);
  const RowMatrixF e = subpopulations(rng);
  RowMatrixF flipped = e;
  flipped.row(1) *= -1.0f;  // a sign PCA may return: the rotation turns it back
  const RotatedDirections out = varimax(flipped, Eigen::Vector3d(1.0, 4.0, 2.0));
  EXPECT_GT(out.directions.row(0).dot(e.row(1)), 0.999f);
  EXPECT_GT(out.directions.row(1).dot(e.row(2)), 0.999f);
  EXPECT_GT(out.directions.row(2).dot(e.row(0)), 0.999f);
  EXPECT_NEAR(out.variance(0), 4.0, 1e-3);
  EXPECT_NEAR(out.variance(2), 1.0, 1e-3);
}
