// Where tests find their input files.
//   test_fixture("x.npy")   -> files written at test time by tests/fixtures/gen_*.py
//   shared_fixture("modeldiff_ref_seed0/scores_A.npy") -> ../shared/fixtures (read-only)
#pragma once

#include <cstdlib>
#include <string>

namespace modeldiff::test {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

#ifndef MODELDIFF_TEST_FIXTURES_DIR
#define MODELDIFF_TEST_FIXTURES_DIR "test_fixtures"
#endif
#ifndef MODELDIFF_SHARED_FIXTURES_DIR
#define MODELDIFF_SHARED_FIXTURES_DIR "../shared/fixtures"
#endif

// The environment overrides the locations configured at build time.
inline std::string test_fixture(const std::string& name) {
  return env_or("MODELDIFF_TEST_FIXTURES", MODELDIFF_TEST_FIXTURES_DIR) + "/" + name;
}

inline std::string shared_fixture(const std::string& name) {
  return env_or("MODELDIFF_SHARED_FIXTURES", MODELDIFF_SHARED_FIXTURES_DIR) + "/" + name;
}

}  // namespace modeldiff::test
