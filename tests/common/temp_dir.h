// A fresh, empty folder for one test, removed (with everything in it) when it goes out of scope.
// Shared by the core and LibTorch tests, so that every test names its files the same way.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace modeldiff::test {

class TempDir {
 public:
  // <tmp>/modeldiff_<name>_<pid>_<n>: the process id keeps tests run in parallel by CTest apart,
  // n keeps apart several folders of one test.
  explicit TempDir(const std::string& name = "test")
      : path_((std::filesystem::temp_directory_path() /
               ("modeldiff_" + name + "_" + std::to_string(::getpid()) + "_" +
                std::to_string(count_++)))
                  .string()) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;  // a destructor must not throw
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // The path of `relative` inside the folder (nothing is created: tests check what the code
  // under test writes there).
  std::string file(const std::string& relative) const { return path_ + "/" + relative; }

 private:
  static inline std::atomic<int> count_{0};
  std::string path_;
};

}  // namespace modeldiff::test
