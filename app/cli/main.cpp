// `modeldiff`: the headless command-line tool. Links the core only; needs no display.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "commands.h"
#include "console_progress.h"
#include "core/base/blas_check.h"
#include "core/base/error_report.h"

namespace {

#ifndef MODELDIFF_TORCH_ONLY
std::string join_arguments(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += argv[i];
  }
  return s;
}
#endif

// Whether this invocation computes: a subcommand that runs BLAS/OpenMP work, not a request for
// help. Only those are worth the re-execution that sets the BLAS and OpenMP environment
// (loading LibTorch a second time costs most of a second).
bool computes(int argc, char** argv) {
  static const std::set<std::string> kComputing = {"diff", "trak",           "train",
                                                   "run",  "counterfactual", "demo"};
  bool computing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "--help-all" || arg == "--version" ||
        arg == "--print-project")
      return false;
    if (!computing && kComputing.count(arg) != 0) computing = true;
  }
  return computing;
}

int run(int argc, char** argv) {
  using namespace modeldiff;
  CLI::App app(
      "ModelDiff Studio: how two training algorithms differ, down to the training "
      "examples each relies on.",
      "modeldiff");
  app.set_version_flag("--version", std::string("modeldiff ") + MODELDIFF_VERSION);
  app.require_subcommand(1);
  std::map<std::string, cli::Command> commands;
#ifndef MODELDIFF_TORCH_ONLY
  commands["diff"] = cli::add_diff_command(app, join_arguments(argc, argv));
  commands["inspect"] = cli::add_inspect_command(app);
#endif
#ifdef MODELDIFF_WITH_TORCH
  commands["trak"] = cli::add_trak_command(app);
  commands["train"] = cli::add_train_command(app);
#ifndef MODELDIFF_TORCH_ONLY
  commands["run"] = cli::add_run_command(app);
  commands["demo"] = cli::add_demo_command(app);
  commands["counterfactual"] = cli::add_counterfactual_command(app);
#endif
#endif
  cli::install_interrupt_handler();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "modeldiff: %s (see --help)\n", e.what());
    return 2;
  }
  // MODELDIFF_INJECT_EXCEPTION=<kind> throws an exception of that kind where a command would:
  // for the tests of main's handling of each kind.
  if (const char* kind = std::getenv("MODELDIFF_INJECT_EXCEPTION"); kind != nullptr && *kind)
    core::throw_exception_of_kind(kind);
  for (const auto* sub : app.get_subcommands()) return commands.at(sub->get_name())();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace modeldiff;
  // Every exception, whatever its type and wherever it is thrown (commands, option callbacks),
  // ends as one line and an exit status: 2 bad input, 1 internal error, 3 out of memory, 130
  // cancelled. Never std::terminate.
  try {
    // May re-execute once with a better environment.
    if (computes(argc, argv)) core::configure_process_environment(argv);
    return run(argc, argv);
  } catch (...) {
    const core::ErrorReport report = core::describe_current_exception();
    if (report.kind == core::ErrorKind::kCancelled)
      std::fprintf(stderr, "\nmodeldiff: cancelled; nothing was written\n");
    else
      std::fprintf(stderr, "\nmodeldiff: error: %s\n", report.message.c_str());
    return report.exit_code();
  }
}
