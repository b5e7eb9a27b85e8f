#include "core/base/threads.h"

#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <thread>

namespace modeldiff::core {

void set_compute_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(n);
  // OpenBLAS keeps its own pool; it is found at run time so that any BLAS still links.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(n);
}

int compute_threads() {
  return omp_get_max_threads();
}

}  // namespace modeldiff::core
