#include "core/diff/rotation.h"

#include <Eigen/SVD>
#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>
#include <vector>

namespace modeldiff::core {

RotatedDirections varimax(const RowMatrixF& directions, const Eigen::VectorXd& variance,
                          int max_iterations, double tolerance) {
  assert(directions.rows() == variance.size());
  const Eigen::Index c = directions.rows(), n = directions.cols();
  RotatedDirections out;
  if (c == 0) return out;
  // Loadings N x C in double: direction j's column scaled by the square root of its variance.
  Eigen::MatrixXd loadings = directions.transpose().cast<double>();
  for (Eigen::Index j = 0; j < c; ++j) loadings.col(j) *= std::sqrt(std::max(0.0, variance(j)));

  Eigen::MatrixXd rotation = Eigen::MatrixXd::Identity(c, c);
  double criterion = 0;
  for (int it = 0; it < max_iterations; ++it) {
    // Kaiser's update: the orthogonal factor of L^T (Λ^3 - Λ diag(Λ^T Λ) / N), Λ = L R.
    const Eigen::MatrixXd lam = loadings * rotation;
    const Eigen::RowVectorXd col_sq = lam.array().square().colwise().sum();
    Eigen::MatrixXd target = lam.array().cube().matrix();
    target -= lam * (col_sq / static_cast<double>(n)).asDiagonal();
    const Eigen::JacobiSVD<Eigen::MatrixXd> svd(loadings.transpose() * target,
                                                Eigen::ComputeFullU | Eigen::ComputeFullV);
    rotation = svd.matrixU() * svd.matrixV().transpose();
    const double next = svd.singularValues().sum();
    out.iterations = it + 1;
    if (criterion > 0 && next < criterion * (1 + tolerance)) break;
    criterion = next;
  }

  const Eigen::MatrixXd rotated = loadings * rotation;  // N x C
  const Eigen::VectorXd lambda = variance.cwiseMax(0.0);
  Eigen::VectorXd along(c);
  for (Eigen::Index j = 0; j < c; ++j) {
    const Eigen::VectorXd r = rotation.col(j);
    const double weight = r.dot(lambda.asDiagonal() * r);
    along(j) = weight > 0 ? r.dot(lambda.array().square().matrix().asDiagonal() * r) / weight : 0;
  }
  std::vector<Eigen::Index> order(static_cast<std::size_t>(c));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](Eigen::Index a, Eigen::Index b) { return along(a) > along(b); });
  out.directions.resize(c, n);
  out.variance.resize(c);
  out.transform.resize(c, c);
  const Eigen::VectorXd root = lambda.cwiseSqrt();
  for (Eigen::Index k = 0; k < c; ++k) {
    const Eigen::Index j = order[static_cast<std::size_t>(k)];
    // Direction j = (sum_i sqrt(lambda_i) R_ij d_i) / norm: the row of the transform.
    Eigen::RowVectorXd w = (root.array() * rotation.col(j).array()).matrix().transpose();
    const double norm = rotated.col(j).norm();
    if (norm > 0) w /= norm;
    if (rotated.col(j).array().cube().sum() < 0) w = -w;
    out.transform.row(k) = w;
    out.variance(k) = along(j);
  }
  out.directions = (out.transform * directions.cast<double>()).cast<float>();
  return out;
}

}  // namespace modeldiff::core
