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

inline std::string test_fixture(const std::string& name) {
  return env_or("MODELDIFF_TEST_FIXTURES", "test_fixtures") + "/" + name;
}

inline std::string shared_fixture(const std::string& name) {
  return env_or("MODELDIFF_SHARED_FIXTURES", "../shared/fixtures") + "/" + name;
}

}  // namespace modeldiff::test
