// Thread count for computation: OpenMP loops, Eigen and the BLAS underneath.
#pragma once

namespace modeldiff::core {

// n <= 0 means all cores. Applies to OpenMP and, when the BLAS is OpenBLAS, to its pool.
void set_compute_threads(int n);
int compute_threads();

}  // namespace modeldiff::core
