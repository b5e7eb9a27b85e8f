#include "console_progress.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace modeldiff::cli {
namespace {

std::atomic<int> g_interrupts{0};

void on_interrupt(int) {
  if (g_interrupts.fetch_add(1) >= 1) std::_Exit(130);
}

}  // namespace

void install_interrupt_handler() {
  std::signal(SIGINT, on_interrupt);
}

ConsoleProgress::ConsoleProgress()
    : tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ConsoleProgress::~ConsoleProgress() {
  finish();
}

bool ConsoleProgress::cancelled() const {
  return g_interrupts.load() > 0;
}

void ConsoleProgress::report(double fraction, std::string_view message) {
  const auto now = std::chrono::steady_clock::now();
  const int percent = static_cast<int>(fraction * 100.0 + 0.5);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (tty_) {
    // Redraw at most every 100 ms unless the step changes.
    if (message == last_message_ && percent == last_percent_) return;
    if (message == last_message_ && now - last_draw_ < std::chrono::milliseconds(100) &&
        percent < 100)
      return;
    constexpr int kWidth = 30;
    const int filled = std::max(0, std::min(kWidth, percent * kWidth / 100));
    std::fprintf(stderr, "\r[%s%s] %3d%% %6.1fs  %.60s\033[K",
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(kWidth - filled), '.').c_str(), percent,
                 elapsed, std::string(message).c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else {
    // Logs (CI, pipes): a line per 5% of the whole job, and at least every 15 s.
    if (percent / 5 == last_percent_ / 5 && now - last_draw_ < std::chrono::seconds(15)) return;
    std::fprintf(stderr, "[%3d%% %6.1fs] %s\n", percent, elapsed, std::string(message).c_str());
  }
  last_message_ = std::string(message);
  last_percent_ = percent;
  last_draw_ = now;
}

void ConsoleProgress::print_line(const std::string& line) {
  finish();
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void ConsoleProgress::finish() {
  if (drawn_) {
    std::fputc('\n', stderr);
    drawn_ = false;
  }
}

}  // namespace modeldiff::cli
