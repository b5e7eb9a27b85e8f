// `modeldiff inspect FILE`: what arrays a file holds (format, keys, dtypes, shapes).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "core/io/array_file.h"

namespace modeldiff::cli {

Command add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "List the arrays in a file (.npy, torch.save, safetensors, HDF5, IDX, traker "
      "save_dir) with their dtypes and shapes.");
  cmd->add_option("file", *path, "File or traker save_dir")->required();
  return [path] {
    const core::FileFormat format = core::detect_format(*path);
    std::printf("%s: %s\n", path->c_str(), core::format_name(format).c_str());
    for (const auto& e : core::list_arrays(*path))
      std::printf("  %-40s %-9s %s\n", e.key.empty() ? "(array)" : e.key.c_str(),
                  core::dtype_name(e.dtype).c_str(), core::shape_to_string(e.shape).c_str());
    return 0;
  };
}

}  // namespace modeldiff::cli
