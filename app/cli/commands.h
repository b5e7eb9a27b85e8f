// Subcommands of the `modeldiff` command-line tool. Each registers its options on the CLI11
// app and returns the function that runs it (exit code 0 on success; errors are thrown).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace modeldiff::cli {

using Command = std::function<int()>;

// A MODELDIFF_TORCH_ONLY build has only the LibTorch commands that need nothing else: trak
// and train.
#ifndef MODELDIFF_TORCH_ONLY
Command add_diff_command(CLI::App& app, const std::string& command_line);
Command add_inspect_command(CLI::App& app);
#endif
#ifdef MODELDIFF_WITH_TORCH
Command add_trak_command(CLI::App& app);
Command add_train_command(CLI::App& app);
#ifndef MODELDIFF_TORCH_ONLY
Command add_run_command(CLI::App& app);
Command add_demo_command(CLI::App& app);
Command add_counterfactual_command(CLI::App& app);
Command add_validate_command(CLI::App& app);
#endif
#endif

}  // namespace modeldiff::cli
