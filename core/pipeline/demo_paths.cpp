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

}  // namespace modeldiff::core
