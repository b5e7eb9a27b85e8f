// The BLAS probe: names the library and measures a real GEMM.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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

// The thread pools' settings take effect only in a fresh process image: a child of this test
// calls configure_process_environment(), which re-executes this test binary (running only this
// test) with them set; the re-executed test checks what it finds and exits with the verdict.
TEST(BlasCheck, ProcessEnvironmentIsSetInTheReExecutedImageWithoutOverridingTheUser) {
  if (std::getenv("MODELDIFF_ENVIRONMENT_SET")) {
    const char* wait = std::getenv("OMP_WAIT_POLICY");
    const char* timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT");
    const bool ok = wait && std::string(wait) == "PASSIVE" && timeout &&
                    std::string(timeout) == std::getenv("EXPECTED_THREAD_TIMEOUT");
    std::_Exit(ok ? 0 : 1);
  }
  for (const char* users : {"", "12"}) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      unsetenv("OMP_WAIT_POLICY");
      if (*users)
        setenv("OPENBLAS_THREAD_TIMEOUT", users, 1);
      else
        unsetenv("OPENBLAS_THREAD_TIMEOUT");
      setenv("EXPECTED_THREAD_TIMEOUT", *users ? users : "4", 1);
      std::string self = "/proc/self/exe";
      std::string filter =
          "--gtest_filter=" +
          std::string(::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name()) +
          "." + ::testing::UnitTest::GetInstance()->current_test_info()->name();
      char* argv[] = {self.data(), filter.data(), nullptr};
      configure_process_environment(argv);
      std::_Exit(2);  // exec failed
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "user's OPENBLAS_THREAD_TIMEOUT: '" << users << "'";
  }
}
