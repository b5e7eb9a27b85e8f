// The entry point of the LibTorch subcommands' module, modeldiff-torch-commands.so (in a
// MODELDIFF_TORCH_ONLY build, part of `modeldiff` itself): see torch_commands.h.
#include "torch_commands.h"

extern "C" __attribute__((visibility("default"))) void modeldiff_add_torch_commands(
    CLI::App& app, modeldiff::cli::CommandTable& commands) {
  using namespace modeldiff::cli;
  commands["trak"] = add_trak_command(app);
  commands["train"] = add_train_command(app);
#ifndef MODELDIFF_TORCH_ONLY
  commands["run"] = add_run_command(app);
  commands["demo"] = add_demo_command(app);
  commands["counterfactual"] = add_counterfactual_command(app);
  commands["validate"] = add_validate_command(app);
#endif
}
