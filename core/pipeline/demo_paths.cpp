#include "core/pipeline/demo_paths.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/base/error.h"

namespace fs = std::filesystem;

namespace modeldiff::core {

std::string demo_architecture_path() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MODELDIFF_DEMO_ARCHITECTURE")) candidates.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share/modeldiff/demo_cnn.pt");
  candidates.emplace_back(MODELDIFF_SOURCE_DIR "/resources/demo/demo_cnn.pt");
  for (const auto& c : candidates)
    if (fs::exists(c)) return c.string();
  throw InputError(candidates.back().string(), "the demo's architecture file is missing")
      .expected("resources/demo/demo_cnn.pt (or MODELDIFF_DEMO_ARCHITECTURE)");
}

std::string default_fashion_mnist_dir() {
  if (const char* env = std::getenv("MODELDIFF_FASHION_MNIST"); env != nullptr && *env != '\0')
    return env;
  return "/usr/share/datasets/fashion-mnist";
}

std::string default_demo_output_dir(const std::string& study) {
  const std::string name = study.empty() ? "demo" : "demo-" + study;
  // The XDG specification: a relative $XDG_DATA_HOME is invalid and must be ignored.
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg == '/')
    return (fs::path(xdg) / "modeldiff-studio" / name).string();
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return (fs::path(home) / ".local/share/modeldiff-studio" / name).string();
  return "modeldiff-" + name;
}

}  // namespace modeldiff::core
