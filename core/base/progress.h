// Progress reporting and cooperative cancellation for every long computation.
//
// The core reports through this interface; the CLI draws a bar on stderr
// (ConsoleProgress in app/), the GUI turns reports into Qt signals. Cancellation is
// cooperative: computations call throw_if_cancelled() between steps and unwind with
// core::Cancelled, leaving cached results intact.
#pragma once

#include <string>
#include <string_view>

#include "core/base/error.h"

namespace modeldiff::core {

class Progress {
 public:
  virtual ~Progress() = default;
  // fraction in [0, 1] of the whole task; message names the current step.
  virtual void report(double fraction, std::string_view message) = 0;
  virtual bool cancelled() const = 0;

  void throw_if_cancelled() const {
    if (cancelled()) throw Cancelled();
  }
};

// Reports nothing and never cancels.
class NullProgress final : public Progress {
 public:
  void report(double, std::string_view) override {}
  bool cancelled() const override { return false; }
};

// Maps [0, 1] of a sub-step onto [begin, end] of a parent Progress.
class SubProgress final : public Progress {
 public:
  SubProgress(Progress& parent, double begin, double end, std::string prefix = {})
      : parent_(parent), begin_(begin), end_(end), prefix_(std::move(prefix)) {}
  void report(double fraction, std::string_view message) override {
    std::string text = prefix_;
    if (!prefix_.empty() && !message.empty()) text += ": ";
    text += message;
    parent_.report(begin_ + (end_ - begin_) * fraction, text);
  }
  bool cancelled() const override { return parent_.cancelled(); }

 private:
  Progress& parent_;
  double begin_, end_;
  std::string prefix_;
};

}  // namespace modeldiff::core
