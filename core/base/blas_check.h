// The BLAS underneath Eigen and LibTorch decides most of the tool's speed. On a virtual CPU
// that OpenBLAS does not recognise it falls back to a generic kernel and runs 5-8x slower,
// and with the reference (netlib) BLAS 40x slower (DATA.md); the tool detects both, says so
// and, for OpenBLAS, picks the right kernel itself (see configure_process_environment()).
#pragma once

#include <string>

namespace modeldiff::core {

struct BlasInfo {
  std::string library;  // "OpenBLAS (Haswell kernels)", "reference or unknown BLAS"
  double gflops = 0;    // float32 GEMM rate measured just now (512^3, all compute threads)
  bool slow = false;    // below kSlowBlasGflops
  std::string advice;   // what to do about it, empty when nothing
};

// A float32 GEMM this slow (GFLOP/s) on a machine with AVX2 is a misconfigured BLAS.
inline constexpr double kSlowBlasGflops = 25.0;

// Measures the BLAS (a few milliseconds) and names it.
BlasInfo probe_blas();

// One line for logs: "BLAS: OpenBLAS (SkylakeX kernels), 112 GFLOP/s" plus the advice.
std::string describe(const BlasInfo& info);

// The OPENBLAS_CORETYPE this process should have had: non-empty when the BLAS is OpenBLAS
// running a generic kernel (Prescott, Core2, Nehalem, ...) on a CPU with AVX-512 ("SkylakeX")
// or AVX2 ("Haswell"), and the variable is not set already.
std::string better_openblas_coretype();

// For executables, first thing in main(): OpenBLAS and OpenMP read their environment when
// they are loaded, so a better OPENBLAS_CORETYPE (above), OMP_WAIT_POLICY=PASSIVE and
// OPENBLAS_THREAD_TIMEOUT=4 (LibTorch's and OpenBLAS's thread pools otherwise spin against each
// other and against the work on small machines) take effect only in a fresh process image: sets
// them (never overriding the user's values) and re-executes the program once. Returns normally when
// nothing needs changing or exec fails.
void configure_process_environment(char** argv);

}  // namespace modeldiff::core
