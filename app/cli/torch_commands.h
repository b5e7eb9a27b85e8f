// The LibTorch subcommands of `modeldiff` (trak, train, run, demo, counterfactual, validate). In
// the full build they live in a module, modeldiff-torch-commands.so, that `modeldiff` loads only
// when one of them is named or the top-level help lists them: `diff` and `inspect` then start
// without loading LibTorch (about 0.45 s of dynamic loading and static initialisation). A
// MODELDIFF_TORCH_ONLY build links them into the executable.
//
// Both sides share CLI11's headers, the compiler and libstdc++: the module registers its
// subcommands on the executable's CLI::App. It has its own copy of the core; the console
// progress bar (and with it the Ctrl-C counter) is the executable's, exported to the module.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "commands.h"

namespace modeldiff::cli {

// Subcommand name -> the function that runs it.
using CommandTable = std::map<std::string, Command>;

// The LibTorch subcommands the full build's module registers, in the order --help lists them.
// main.cpp reads the command line for them before parsing, to know whether to load it.
inline constexpr const char* kTorchCommandNames[] = {"trak", "train",          "run",
                                                     "demo", "counterfactual", "validate"};

// The module's entry point: registers its subcommands on `app` and adds their functions to
// `commands`.
using AddTorchCommands = void(CLI::App& app, CommandTable& commands);

#ifdef MODELDIFF_TORCH_MODULE_FILE
// Loads the module (torch_commands_loader.cpp): from beside the executable (the build tree),
// else from MODELDIFF_TORCH_MODULE_INSTALL_DIR relative to the executable's folder (installed,
// <prefix>/bin -> <prefix>/lib/modeldiff). It stays loaded: the registered options and commands
// are its code. Returns its entry point, or nullptr with `error` set to one line naming each file
// tried and why it could not be loaded (dlerror()).
AddTorchCommands* load_torch_commands(std::string& error);
#endif

}  // namespace modeldiff::cli

// The module's one exported function (C linkage: looked up by name with dlsym()).
extern "C" void modeldiff_add_torch_commands(CLI::App& app, modeldiff::cli::CommandTable& commands);
