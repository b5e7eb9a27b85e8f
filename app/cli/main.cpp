// `modeldiff`: the headless command-line tool. Links the core only; needs no display. The
// LibTorch subcommands come from a module loaded when they are needed (torch_commands.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "commands.h"
#include "console_progress.h"
#include "core/base/blas_check.h"
#include "core/base/error_report.h"
#include "torch_commands.h"

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

bool is_torch_command(const std::string& arg) {
  for (const char* name : modeldiff::cli::kTorchCommandNames)
    if (arg == name) return true;
  return false;
}

// Whether this invocation computes: a subcommand that runs BLAS/OpenMP work, not a request for
// help. Only those are worth the re-execution that sets the BLAS and OpenMP environment (a
// second start of the executable, which without LibTorch is short; the LibTorch subcommands'
// module is loaded after it, in the final process image only).
bool computes(int argc, char** argv) {
  bool computing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "--help-all" || arg == "--version" ||
        arg == "--print-project")
      return false;
    if (!computing && (arg == "diff" || is_torch_command(arg))) computing = true;
  }
  return computing;
}

#ifdef MODELDIFF_TORCH_MODULE_FILE
// Whether the LibTorch subcommands must be registered: one of them is named, or the top-level
// help must list every subcommand. `diff`, `inspect`, `--version` and a missing or unknown
// subcommand do without them. The top-level options take no values, so the first argument
// that is not an option names the subcommand.
bool needs_torch_commands(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "--help-all") return true;
    if (arg.empty() || arg[0] != '-') return is_torch_command(arg);
  }
  return false;
}
#endif

int run(int argc, char** argv) {
  using namespace modeldiff;
  CLI::App app(
      "ModelDiff Studio: how two training algorithms differ, down to the training "
      "examples each relies on.",
      "modeldiff");
  app.set_version_flag("--version", std::string("modeldiff ") + MODELDIFF_VERSION);
  app.require_subcommand(1);
  cli::CommandTable commands;
#ifndef MODELDIFF_TORCH_ONLY
  commands["diff"] = cli::add_diff_command(app, join_arguments(argc, argv));
  commands["inspect"] = cli::add_inspect_command(app);
#endif
#if defined(MODELDIFF_TORCH_ONLY)
  modeldiff_add_torch_commands(app, commands);
#elif defined(MODELDIFF_TORCH_MODULE_FILE)
  if (needs_torch_commands(argc, argv)) {
    std::string error;
    cli::AddTorchCommands* add_torch_commands = cli::load_torch_commands(error);
    if (add_torch_commands == nullptr) {
      std::fprintf(stderr, "modeldiff: error: %s\n", error.c_str());
      return 1;
    }
    add_torch_commands(app, commands);
  }
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
    // May re-execute once with a better environment; before run() loads LibTorch, if it does.
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
