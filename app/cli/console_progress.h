// core::Progress drawn as a progress bar on stderr; Ctrl-C requests cooperative cancellation.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "core/base/progress.h"

namespace modeldiff::cli {

// Default visibility: the LibTorch subcommands' module (built with hidden visibility) uses the
// executable's ConsoleProgress, so that Ctrl-C reaches the counter cancelled() reads.
class __attribute__((visibility("default"))) ConsoleProgress final : public core::Progress {
 public:
  ConsoleProgress();
  ~ConsoleProgress() override;
  void report(double fraction, std::string_view message) override;
  bool cancelled() const override;
  // A log line on stderr above the bar.
  void print_line(const std::string& line);
  // Ends the bar's line (called before printing anything else).
  void finish();

 private:
  bool tty_;
  bool drawn_ = false;
  std::string last_message_;
  int last_percent_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Installs a SIGINT handler that sets the flag ConsoleProgress::cancelled() reads; a second
// Ctrl-C exits at once.
void install_interrupt_handler();

}  // namespace modeldiff::cli
