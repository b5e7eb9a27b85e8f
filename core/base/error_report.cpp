#include "core/base/error_report.h"

#include <cctype>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <system_error>

#include "core/base/error.h"

#if MODELDIFF_HAVE_OPENCV
#include <opencv2/core.hpp>
#endif
#if MODELDIFF_HAVE_C10
#include <c10/util/Exception.h>
#endif

namespace modeldiff::core {
namespace {

// The first line of a library's message (LibTorch and OpenCV append backtraces and context).
std::string first_line(const std::string& text) {
  const auto end = text.find('\n');
  std::string line = text.substr(0, end);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line.empty() ? std::string("(no message)") : line;
}

std::string cause_line(const std::string& text) {
  return first_line(torchscript_error_cause(text));
}

ErrorReport report(ErrorKind kind, std::string message) {
  ErrorReport r;
  r.kind = kind;
  r.message = std::move(message);
  return r;
}

struct NotAStdException {};

}  // namespace

std::string torchscript_error_cause(const std::string& message) {
  if (message.find("Traceback of TorchScript") == std::string::npos) return message;
  std::string s = message;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  s = s.substr(s.rfind('\n') + 1);  // npos + 1 == 0
  const std::string prefix = "RuntimeError: ";
  if (s.compare(0, prefix.size(), prefix) == 0) s.erase(0, prefix.size());
  return s;
}

int ErrorReport::exit_code() const {
  switch (kind) {
    case ErrorKind::kInput:
      return 2;
    case ErrorKind::kCancelled:
      return 130;
    case ErrorKind::kOutOfMemory:
      return 3;
    case ErrorKind::kInternal:
      break;
  }
  return 1;
}

ErrorReport describe_exception(const std::exception_ptr& error) {
  if (!error) return report(ErrorKind::kInternal, "internal error: no exception to describe");
  try {
    std::rethrow_exception(error);
  } catch (const InputError& e) {
    return report(ErrorKind::kInput, first_line(e.what()));
  } catch (const Cancelled&) {
    return report(ErrorKind::kCancelled, "cancelled");
  } catch (const std::bad_alloc&) {
    return report(ErrorKind::kOutOfMemory, "out of memory");
  } catch (const std::filesystem::filesystem_error& e) {
    // The paths and the system's reason, e.g. "/data/x: Permission denied".
    std::string where = e.path1().string();
    if (!e.path2().empty()) where += " -> " + e.path2().string();
    return report(ErrorKind::kInput,
                  (where.empty() ? std::string() : where + ": ") + e.code().message());
#if MODELDIFF_HAVE_C10
  } catch (const c10::OutOfMemoryError& e) {
    return report(ErrorKind::kOutOfMemory,
                  "out of memory on the device: " + first_line(e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    return report(ErrorKind::kInternal,
                  "internal error (LibTorch): " + cause_line(e.what_without_backtrace()));
#endif
#if MODELDIFF_HAVE_OPENCV
  } catch (const cv::Exception& e) {
    // e.err is the reason ("> Invalid number of channels ..." for checks); e.func is often a
    // long template signature, left out.
    std::string reason = first_line(e.err);
    if (reason.rfind("> ", 0) == 0) reason.erase(0, 2);
    return report(ErrorKind::kInternal, "internal error (OpenCV): " + reason);
#endif
  } catch (const std::exception& e) {
    return report(ErrorKind::kInternal, "internal error: " + cause_line(e.what()));
  } catch (...) {
    return report(ErrorKind::kInternal, "internal error: an exception of unknown type");
  }
}

ErrorReport describe_current_exception() {
  return describe_exception(std::current_exception());
}

void throw_exception_of_kind(const std::string& kind) {
  if (kind == "input") throw InputError("injected.npy", "injected bad input").expected("nothing");
  if (kind == "cancelled") throw Cancelled();
  if (kind == "bad_alloc") throw std::bad_alloc();
  if (kind == "filesystem")
    throw std::filesystem::filesystem_error("cannot open", std::filesystem::path("/injected/path"),
                                            std::make_error_code(std::errc::permission_denied));
  if (kind == "runtime") throw std::runtime_error("injected runtime error\nsecond line");
  if (kind == "unknown") throw NotAStdException{};
#if MODELDIFF_HAVE_OPENCV
  if (kind == "opencv") {
    // As OpenCV throws it: through cv::error, with the function and the source position.
    cv::error(cv::Error::StsBadArg, "injected OpenCV error", "throw_exception_of_kind", __FILE__,
              __LINE__);
  }
#endif
#if MODELDIFF_HAVE_C10
  if (kind == "torch") TORCH_CHECK(false, "injected LibTorch error");
  if (kind == "torch_out_of_memory") {
    // As the CUDA caching allocator reports it (TORCH_CHECK_WITH(OutOfMemoryError, ...)).
    TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried to allocate 2.00 GiB");
  }
#endif
  throw InputError("", "no such exception kind to throw").found(kind);
}

}  // namespace modeldiff::core
