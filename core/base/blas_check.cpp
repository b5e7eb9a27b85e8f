#include "core/base/blas_check.h"

#include <dlfcn.h>
#include <unistd.h>

#if !MODELDIFF_HAVE_BLAS
#include <Eigen/Core>
#endif
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#if MODELDIFF_HAVE_BLAS
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);
#endif

namespace modeldiff::core {
namespace {

std::string openblas_core() {
  using Name = char* (*)();
  if (auto f = reinterpret_cast<Name>(dlsym(RTLD_DEFAULT, "openblas_get_corename")))
    if (const char* s = f()) return s;
  return "";
}

bool cpu_has(const char* flag) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0)
      return (line + " ").find(std::string(" ") + flag + " ") != std::string::npos;
  return false;
}

}  // namespace

#if !MODELDIFF_HAVE_BLAS
// A build without a BLAS (MODELDIFF_TORCH_ONLY): the core's few matrix products run in Eigen's
// own kernels and LibTorch brings its own BLAS, so there is nothing to advise; the rate of an
// Eigen product is measured for the logs.
BlasInfo probe_blas() {
  BlasInfo info;
  info.library = "none (Eigen's own kernels; LibTorch uses its own BLAS)";
  constexpr int n = 512;
  const Eigen::MatrixXf a = Eigen::MatrixXf::Constant(n, n, 0.5f);
  const Eigen::MatrixXf b = Eigen::MatrixXf::Constant(n, n, 0.25f);
  Eigen::MatrixXf c(n, n);
  c.noalias() = a * b;  // warm
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    c.noalias() = a * b;
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  info.gflops = 2.0 * n * n * n / best / 1e9;
  return info;
}
#else
BlasInfo probe_blas() {
  BlasInfo info;
  const std::string core = openblas_core();
  info.library = core.empty() ? "reference or unknown BLAS" : "OpenBLAS (" + core + " kernels)";
  constexpr int n = 512;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  const float one = 1, zero = 0;
  sgemm_("N", "N", &n, &n, &n, &one, a.data(), &n, b.data(), &n, &zero, c.data(), &n);  // warm
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sgemm_("N", "N", &n, &n, &n, &one, a.data(), &n, b.data(), &n, &zero, c.data(), &n);
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  info.gflops = 2.0 * n * n * n / best / 1e9;
  info.slow = info.gflops < kSlowBlasGflops && cpu_has("avx2");
  if (info.slow) {
    if (core.empty())
      info.advice =
          "install OpenBLAS (apt install libopenblas0-pthread) so that the system BLAS is "
          "fast";
    else if (!better_openblas_coretype().empty())
      info.advice = "set OPENBLAS_CORETYPE=" + better_openblas_coretype() +
                    " (OpenBLAS did not recognise this CPU)";
    else
      info.advice =
          "the machine is busy, or OPENBLAS_CORETYPE=" +
          std::string(std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "?") +
          " does not suit this CPU";
  }
  return info;
}
#endif

std::string describe(const BlasInfo& info) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f GFLOP/s", info.gflops);
  std::string s = "BLAS: " + info.library + ", " + buf + " (float32 GEMM)";
  if (info.slow) s += "; SLOW: " + info.advice;
  return s;
}

std::string better_openblas_coretype() {
  if (std::getenv("OPENBLAS_CORETYPE")) return "";
  const std::string core = openblas_core();
  static const char* kGeneric[] = {"Prescott",  "Core2",      "Penryn",    "Dunnington", "Nehalem",
                                   "Katmai",    "Coppermine", "Northwood", "Banias",     "Atom",
                                   "Barcelona", "Opteron",    "Unknown"};
  bool generic = false;
  for (const char* g : kGeneric) generic = generic || strcasecmp(core.c_str(), g) == 0;
  if (!generic) return "";
  if (cpu_has("avx512f") && cpu_has("avx512bw")) return "SkylakeX";
  if (cpu_has("avx2")) return "Haswell";
  return "";
}

void configure_process_environment(char** argv) {
  if (std::getenv("MODELDIFF_ENVIRONMENT_SET")) return;
  bool change = false;
  const std::string coretype = better_openblas_coretype();
  if (!coretype.empty()) {
    setenv("OPENBLAS_CORETYPE", coretype.c_str(), 0);
    change = true;
  }
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    change = true;
  }
  // OpenBLAS's idle workers spin on sched_yield() for 2^28 cycles (about 0.1 s) after every
  // threaded call before they sleep; between the small GEMMs of the PCA and of TRAK's solves
  // they took CPU from the OpenMP threads doing the work (5-8% of `modeldiff diff`'s CPU time,
  // and most of its system time). 2^4 cycles: they sleep at once and are woken for the next.
  if (!std::getenv("OPENBLAS_THREAD_TIMEOUT")) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);
    change = true;
  }
  if (!change) return;
  setenv("MODELDIFF_ENVIRONMENT_SET", "1", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: carry on as we are
}

}  // namespace modeldiff::core
