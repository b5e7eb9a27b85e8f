// Atomic output of a set of files into a directory.
//
// Files are written into a staging directory beside the target (same file system), and only
// commit() moves them into place with rename(2). A failed or cancelled run leaves the target
// untouched: no half-written directory, and an earlier complete result is kept until the new
// one replaces it file by file.
#pragma once

#include <string>
#include <vector>

namespace modeldiff::core {

class OutputDirectory {
 public:
  // Checks that `dir` is a directory or can be created (InputError otherwise); touches nothing.
  explicit OutputDirectory(std::string dir);
  ~OutputDirectory();  // removes the staging directory unless committed
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;

  // Where to write `filename` (a plain name, no slashes) before commit().
  std::string staging_path(const std::string& filename);
  // Moves every staged file into the target directory. Throws InputError on failure.
  void commit();

  const std::string& dir() const { return dir_; }

 private:
  void ensure_staging();

  std::string dir_;
  std::string staging_;
  std::vector<std::string> files_;
  bool committed_ = false;
};

}  // namespace modeldiff::core
