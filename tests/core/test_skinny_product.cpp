// The thin-matrix products of the randomised PCA against double-precision products, on shapes
// that exercise every tile width (1 to 3 vectors, masked last vector), the row and column
// remainders and the accumulate flag, on the AVX-512 path and on the Eigen/BLAS fallback.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <limits>
#include <random>

#include "core/diff/skinny_product.h"

using namespace modeldiff::core;

namespace {

RowMatrixF gaussian(Eigen::Index rows, Eigen::Index cols, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  return RowMatrixF::NullaryExpr(rows, cols, [&] { return g(rng); });
}

// Largest entry error in units of what float accumulation allows: the entries are sums of
// `length` products of unit Gaussians (size ~ sqrt(length)); summing them in float errs by up
// to ~ eps * length in the worst order, ~ eps * sqrt(length) * sqrt(length) typically. A wrong
// index or a lost tile gives errors of order sqrt(length), i.e. ~ 1 / (eps sqrt(length)).
double relative_error(const RowMatrixF& got, const Eigen::MatrixXd& want, Eigen::Index length) {
  const double eps = std::numeric_limits<float>::epsilon();
  return (got.cast<double>() - want).cwiseAbs().maxCoeff() /
         (eps * static_cast<double>(length + 16));
}

void check_shapes() {
  std::mt19937 rng(3);
  // Rows not a multiple of the kernels' row steps (8, 12, 24, 48), columns not a multiple of
  // their column steps (512, 1024), k across 1..3 vectors with and without a masked tail.
  for (const auto& [t, n] : {std::pair<Eigen::Index, Eigen::Index>{61, 1500}, {5, 37}, {200, 2049}})
    for (const Eigen::Index k : {1, 7, 16, 17, 32, 34, 40, 48, 49, 100}) {
      const RowMatrixF m = gaussian(t, n, rng);
      const ConstRowMapF mm(m.data(), t, n);
      const RowMatrixF x = gaussian(n, k, rng), y = gaussian(t, k, rng);
      const Eigen::MatrixXd md = m.cast<double>();

      RowMatrixF out;
      skinny_multiply(mm, x, out);
      ASSERT_EQ(out.rows(), t);
      ASSERT_EQ(out.cols(), k);
      EXPECT_LT(relative_error(out, md * x.cast<double>(), n), 4.0)
          << "M X, " << t << " x " << n << ", k = " << k;

      RowMatrixF z = RowMatrixF::Constant(n, k, 123.0f);  // overwritten without accumulate
      skinny_multiply_transposed(mm, y, z, false);
      const Eigen::MatrixXd mty = md.transpose() * y.cast<double>();
      EXPECT_LT(relative_error(z, mty, t), 4.0) << "M^T Y, " << t << " x " << n << ", k = " << k;

      skinny_multiply_transposed(mm, y, z, true);  // z = 2 M^T Y
      EXPECT_LT(relative_error(z, 2 * mty, t), 8.0)
          << "M^T Y accumulated, " << t << " x " << n << ", k = " << k;
    }
}

}  // namespace

TEST(SkinnyProduct, MatchesDoublePrecisionProducts) {
  if (!skinny_kernels_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const bool previous = set_skinny_kernels(true);
  check_shapes();
  set_skinny_kernels(previous);
}

TEST(SkinnyProduct, FallbackMatchesDoublePrecisionProducts) {
  const bool previous = set_skinny_kernels(false);
  check_shapes();
  set_skinny_kernels(previous);
}

TEST(SkinnyProduct, RowProductsMatchLongDoubleSums) {
  std::mt19937 rng(9);
  for (const bool kernels : {true, false}) {
    const bool previous = set_skinny_kernels(kernels);
    for (const Eigen::Index n : {0, 1, 15, 16, 17, 1000, 20001}) {
      const RowMatrixF a = gaussian(1, n, rng), b = gaussian(1, n, rng);
      long double aa = 0, bb = 0, ab = 0;
      for (Eigen::Index j = 0; j < n; ++j) {
        aa += static_cast<long double>(a(0, j)) * a(0, j);
        bb += static_cast<long double>(b(0, j)) * b(0, j);
        ab += static_cast<long double>(a(0, j)) * b(0, j);
      }
      double got_aa = -1, got_bb = -1, got_ab = -1;
      row_products(a.data(), b.data(), n, got_aa, got_bb, got_ab);
      const double scale = 1e-13 * static_cast<double>(n + 1);
      EXPECT_NEAR(got_aa, static_cast<double>(aa), scale) << n << " kernels " << kernels;
      EXPECT_NEAR(got_bb, static_cast<double>(bb), scale) << n << " kernels " << kernels;
      EXPECT_NEAR(got_ab, static_cast<double>(ab), scale) << n << " kernels " << kernels;
    }
    set_skinny_kernels(previous);
  }
}
