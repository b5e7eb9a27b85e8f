// One message for any exception, for every entry point (the CLI's main, the GUI's slots and
// worker tasks): what went wrong on one line, and whether it was the input, a cancel, memory
// or a defect of ours. Exceptions of the libraries the core uses (LibTorch's c10::Error and
// its out-of-memory error, OpenCV's cv::Exception, std::filesystem_error) are recognised by
// type; anything else is an internal error.
#pragma once

#include <exception>
#include <string>

namespace modeldiff::core {

enum class ErrorKind {
  kInput,        // bad input a user can act on: InputError, filesystem errors
  kCancelled,    // the user cancelled
  kOutOfMemory,  // std::bad_alloc, LibTorch's (CUDA) out-of-memory error
  kInternal,     // anything else: a library error we did not turn into an InputError, a bug
};

struct ErrorReport {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;  // one line, no trailing newline; no backtrace

  // The CLI's exit status: 2 bad input, 130 cancelled, 3 out of memory, 1 internal.
  int exit_code() const;
};

// Describes `error` (a null pointer describes "no exception" as internal).
ErrorReport describe_exception(const std::exception_ptr& error);

// describe_exception(std::current_exception()): for use inside a `catch (...)` block.
ErrorReport describe_current_exception();

// A TorchScript interpreter error (torch::jit::JITException, or a c10::Error raised inside
// the interpreter) starts with "The following operation failed..." and a traceback; its cause
// is the last line, returned without its "RuntimeError: ". Any other message is returned as it
// is.
std::string torchscript_error_cause(const std::string& message);

// For tests of the entry points: throws an exception of the named kind, as the library would
// throw it: "input", "cancelled", "bad_alloc", "filesystem", "opencv", "torch",
// "torch_out_of_memory" (only in builds with LibTorch), "runtime" (std::runtime_error) or
// "unknown" (not derived from std::exception). Any other name: InputError saying so.
[[noreturn]] void throw_exception_of_kind(const std::string& kind);

}  // namespace modeldiff::core
