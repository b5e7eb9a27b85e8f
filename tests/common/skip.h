// Skipping a test for lack of installed test data: a visible skip on a developer's machine, a
// failure under CI=true, where packaging/install_deps.sh installs everything (Fashion-MNIST,
// the Python packages that write the fixtures), so that a missing install step cannot pass
// as green. Hardware a machine may lack (a CUDA device) is a plain GTEST_SKIP.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace modeldiff::test {

inline bool under_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::strcmp(ci, "true") == 0;
}

}  // namespace modeldiff::test

// Use as a statement at the top of a test (or SetUp): returns from it when `missing` holds.
#define MODELDIFF_SKIP_IF_MISSING(missing, what)                                             \
  do {                                                                                       \
    if (missing) {                                                                           \
      if (::modeldiff::test::under_ci()) GTEST_FAIL() << what << " (missing under CI=true)"; \
      GTEST_SKIP() << what;                                                                  \
    }                                                                                        \
  } while (0)
