// Ctrl-C for core computations called from Python without the GIL (both extension modules).
#pragma once

#include <pybind11/pybind11.h>

#include <optional>
#include <string_view>
#include <thread>

#include "core/base/progress.h"

namespace modeldiff::python {

// Cancels the computation when Python has a signal to handle (Ctrl-C): the core asks
// cancelled() between steps, from the thread that called it, which holds no GIL then; the
// check takes the GIL briefly and runs Python's handlers, whose exception is kept for rethrow().
// Construct it on the thread that holds the GIL and calls the core.
class InterruptCheck final : public core::Progress {
 public:
  void report(double, std::string_view) override {}
  bool cancelled() const override {
    if (interrupt_) return true;
    if (std::this_thread::get_id() != caller_) return false;
    pybind11::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) interrupt_.emplace();  // fetches the handler's exception
    return interrupt_.has_value();
  }
  // With the GIL held: raises the exception of the handler that cancelled the computation.
  [[noreturn]] void rethrow() const { throw *interrupt_; }

 private:
  std::thread::id caller_ = std::this_thread::get_id();
  mutable std::optional<pybind11::error_already_set> interrupt_;
};

}  // namespace modeldiff::python
