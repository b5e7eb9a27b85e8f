// Finds and loads the LibTorch subcommands' module (torch_commands.h).
#include <dlfcn.h>

#include <filesystem>

#include "torch_commands.h"

namespace fs = std::filesystem;

namespace modeldiff::cli {
namespace {

// dlerror() for `path`, starting with the path: glibc names the file that failed, which for a
// missing dependency (libtorch_cpu.so...) is not the module.
std::string load_error(const fs::path& path) {
  const char* e = dlerror();
  std::string message = e != nullptr ? e : "unknown error";
  if (message.rfind(path.string(), 0) != 0) message = path.string() + ": " + message;
  return message;
}

}  // namespace

AddTorchCommands* load_torch_commands(std::string& error) {
  std::string names;
  for (const char* name : kTorchCommandNames)
    names += (names.empty() ? "" : ", ") + std::string(name);
  error = "cannot load the LibTorch subcommands (" + names + "): ";

  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (ec) {
    error += "cannot find the executable's folder: /proc/self/exe: " + ec.message();
    return nullptr;
  }
  const fs::path dir = exe.parent_path();
  const fs::path candidates[] = {
      dir / MODELDIFF_TORCH_MODULE_FILE,
      (dir / MODELDIFF_TORCH_MODULE_INSTALL_DIR / MODELDIFF_TORCH_MODULE_FILE).lexically_normal()};
  std::string failures;
  for (const fs::path& path : candidates) {
    // RTLD_NOW: a missing symbol fails here, not in the middle of a command. RTLD_LOCAL: the
    // module's symbols (its copy of the core) do not take part in later lookups.
    void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (module != nullptr) {
      void* entry = dlsym(module, "modeldiff_add_torch_commands");
      if (entry != nullptr) return reinterpret_cast<AddTorchCommands*>(entry);
      error += load_error(path);
      return nullptr;
    }
    failures += (failures.empty() ? "" : "; ") + load_error(path);
    // A module that is there but unusable is the problem to report, not hidden by another copy.
    if (fs::exists(path, ec)) break;
  }
  error += failures;
  return nullptr;
}

}  // namespace modeldiff::cli
