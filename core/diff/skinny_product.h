// Products of a large row-major matrix with a thin one (a few dozen columns), as the randomised
// PCA needs them: M X and M^T Y with M the T x N scores.
//
// A BLAS GEMM copies ("packs") M into its own layout on every call; with only a few dozen
// columns on the other side that copy costs about half as much as the arithmetic (a third of the
// BLAS time in bench_diff's profile). These kernels read M in place, row by row, and keep
// the thin side in registers or in the L2 cache: AVX-512 where the CPU has it (checked at run
// time), else Eigen's product (the BLAS). Both accumulate in float, as sgemm does.
#pragma once

#include <cstdint>

#include "core/diff/residual_pca.h"

namespace modeldiff::core {

// out (T x k) = m (T x N) * x (N x k); all row-major.
void skinny_multiply(ConstRowMapF m, const RowMatrixF& x, RowMatrixF& out);

// out (N x k) = m^T (N x T) * y (T x k), or out += it with `accumulate`; all row-major.
void skinny_multiply_transposed(ConstRowMapF m, const RowMatrixF& y, RowMatrixF& out,
                                bool accumulate);

// aa = sum a[j]^2, bb = sum b[j]^2, ab = sum a[j] b[j] over j < n, accumulated in double (the
// row statistics of the residual; vectorised: a plain double reduction cannot be).
void row_products(const float* a, const float* b, std::int64_t n, double& aa, double& bb,
                  double& ab);

// Whether the kernels above take their AVX-512 path; `set_skinny_kernels(false)` forces the
// Eigen/BLAS path (for tests, which compare the two). Returns the previous setting.
bool skinny_kernels_available();
bool set_skinny_kernels(bool enabled);

}  // namespace modeldiff::core
