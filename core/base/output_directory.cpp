#include "core/base/output_directory.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/base/error.h"

namespace modeldiff::core {
namespace fs = std::filesystem;

OutputDirectory::OutputDirectory(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty()) throw InputError("", "output directory is empty").expected("a path");
  std::error_code ec;
  const fs::path target(dir_);
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec))
      throw InputError(dir_, "output path exists and is not a directory");
    if (::access(dir_.c_str(), W_OK) != 0)
      throw InputError(dir_, "output directory is not writable");
  } else {
    const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(parent, ec))
      throw InputError(dir_, "parent directory does not exist").expected(parent.string());
    if (::access(parent.c_str(), W_OK) != 0)
      throw InputError(dir_, "cannot create output directory: parent is not writable");
  }
}

OutputDirectory::~OutputDirectory() {
  if (!staging_.empty()) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void OutputDirectory::ensure_staging() {
  if (!staging_.empty()) return;
  std::random_device rd;
  for (int attempt = 0; attempt < 16; ++attempt) {
    const std::string candidate =
        dir_ + ".partial-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000);
    std::error_code ec;
    if (fs::create_directory(candidate, ec)) {
      staging_ = candidate;
      return;
    }
  }
  throw InputError(dir_, "cannot create a staging directory beside the output directory");
}

std::string OutputDirectory::staging_path(const std::string& filename) {
  MD_ASSERT(filename.find('/') == std::string::npos && !filename.empty());
  ensure_staging();
  files_.push_back(filename);
  return staging_ + "/" + filename;
}

void OutputDirectory::commit() {
  MD_ASSERT(!committed_);
  ensure_staging();
  std::error_code ec;
  if (!fs::exists(dir_, ec)) {
    if (std::rename(staging_.c_str(), dir_.c_str()) != 0)
      throw InputError(dir_,
                       std::string("cannot move results into place: ") + std::strerror(errno));
    staging_.clear();
  } else {
    for (const auto& f : files_) {
      const std::string from = staging_ + "/" + f, to = dir_ + "/" + f;
      if (std::rename(from.c_str(), to.c_str()) != 0)
        throw InputError(to, std::string("cannot move result into place: ") + std::strerror(errno));
    }
    fs::remove_all(staging_, ec);
    staging_.clear();
  }
  committed_ = true;
}

}  // namespace modeldiff::core
