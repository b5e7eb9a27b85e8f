// Rotations of a set of principal directions towards simple structure, as an alternative to
// reading the principal directions themselves (issue: which method finds a planted
// subpopulation most often).
//
// PCA spreads one subpopulation over several directions when their variances are close; a
// varimax rotation (Kaiser 1958) of the leading C directions, weighted by their explained
// variances, turns them into directions whose loadings are as concentrated as possible on few
// training examples, without changing the subspace they span.
#pragma once

#include <Eigen/Core>

#include "core/diff/residual_pca.h"

namespace modeldiff::core {

struct RotatedDirections {
  RowMatrixF directions;     // C x N, unit rows, ordered by `variance`, descending
  Eigen::VectorXd variance;  // C, the data's variance along each rotated direction
  // C x C: directions = transform * the input directions, so that any products with the
  // input directions (projections, A D^T) turn into those with the rotated ones.
  Eigen::MatrixXd transform;
  int iterations = 0;
};

// Varimax of `directions` (C x N, orthonormal rows) with loadings scaled by sqrt(variance) (C,
// >= 0, the data's variance along each): maximises the sum over directions of the variance of
// the squared loadings. The rotated loadings stay orthogonal; the unit directions made from
// them span the same subspace but are in general oblique (Kaiser's varimax of a PCA). The
// variance along rotated direction j is r_j^T Λ^2 r_j / r_j^T Λ r_j (r_j: column j of the
// rotation, Λ = diag(variance)), which for equal variances is that variance. Each
// rotated direction's sign puts its heavier tail on the positive side (the sum of the cubes of
// its loadings is >= 0), so that its largest loadings are the subpopulation it singles out.
// Stops when the criterion grows by less than `tolerance` (relative) or after max_iterations.
RotatedDirections varimax(const RowMatrixF& directions, const Eigen::VectorXd& variance,
                          int max_iterations = 200, double tolerance = 1e-8);

}  // namespace modeldiff::core
