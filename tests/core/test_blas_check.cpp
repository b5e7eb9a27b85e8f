// The BLAS probe: names the library and measures a real GEMM.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/base/blas_check.h"

using namespace modeldiff::core;

TEST(BlasCheck, MeasuresAndNamesTheBlas) {
  const BlasInfo info = probe_blas();
  EXPECT_GT(info.gflops, 0.1);  // 512^3 GEMM ran and was timed
  EXPECT_FALSE(info.library.empty());
  const std::string line = describe(info);
  EXPECT_NE(line.find("BLAS: " + info.library), std::string::npos) << line;
  EXPECT_EQ(info.slow, !info.advice.empty());
  if (info.slow) {
    EXPECT_NE(line.find("SLOW"), std::string::npos);
  }
}

TEST(BlasCheck, NeverOverridesTheUsersCoreType) {
  const char* before = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = before ? before : "";
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  EXPECT_EQ(better_openblas_coretype(), "");
  if (before)
    setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
  else
    unsetenv("OPENBLAS_CORETYPE");
}
