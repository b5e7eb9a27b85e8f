// describe_exception: one line and the right kind (so the right exit status) for every
// exception type an entry point can meet, thrown as the libraries throw them.
#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "core/base/error.h"
#include "core/base/error_report.h"

using namespace modeldiff::core;

namespace {

ErrorReport describe_thrown(const std::string& kind) {
  try {
    throw_exception_of_kind(kind);
  } catch (...) {
    return describe_current_exception();
  }
  ADD_FAILURE() << kind << " threw nothing";
  return {};
}

}  // namespace

TEST(ErrorReport, EachKindHasItsExitStatusAndOneLine) {
  struct Case {
    const char* kind;
    ErrorKind expected;
    int exit_code;
    const char* text;  // a part of the message
  };
  const Case cases[] = {
      {"input", ErrorKind::kInput, 2, "injected.npy: injected bad input (expected nothing)"},
      {"filesystem", ErrorKind::kInput, 2, "/injected/path: Permission denied"},
      {"cancelled", ErrorKind::kCancelled, 130, "cancelled"},
      {"bad_alloc", ErrorKind::kOutOfMemory, 3, "out of memory"},
      {"opencv", ErrorKind::kInternal, 1, "internal error (OpenCV): injected OpenCV error"},
      {"runtime", ErrorKind::kInternal, 1, "internal error: injected runtime error"},
      {"unknown", ErrorKind::kInternal, 1, "unknown type"},
  };
  for (const Case& c : cases) {
    const ErrorReport r = describe_thrown(c.kind);
    EXPECT_EQ(r.kind, c.expected) << c.kind;
    EXPECT_EQ(r.exit_code(), c.exit_code) << c.kind;
    EXPECT_NE(r.message.find(c.text), std::string::npos) << c.kind << ": " << r.message;
    EXPECT_EQ(r.message.find('\n'), std::string::npos) << c.kind << ": " << r.message;
  }
}

TEST(ErrorReport, RealLibraryErrorsAreOneLine) {
  // OpenCV's own message spans lines and names its source file; the report keeps its reason.
  try {
    cv::Mat two_channels(3, 3, CV_8UC2);
    cv::Mat out;
    cv::cvtColor(two_channels, out, cv::COLOR_BGR2GRAY);
    FAIL() << "cvtColor accepted 2 channels";
  } catch (...) {
    const ErrorReport r = describe_current_exception();
    EXPECT_EQ(r.kind, ErrorKind::kInternal);
    EXPECT_NE(r.message.find("OpenCV"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("internal error (OpenCV): Invalid number of channels"),
              std::string::npos)
        << r.message;
    EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;
  }
  try {
    (void)std::filesystem::file_size("/nonexistent/modeldiff/file.npy");
    FAIL() << "file_size of a missing file";
  } catch (...) {
    const ErrorReport r = describe_current_exception();
    EXPECT_EQ(r.kind, ErrorKind::kInput);
    EXPECT_EQ(r.message, "/nonexistent/modeldiff/file.npy: No such file or directory");
  }
}

TEST(ErrorReport, NoExceptionAndUnknownKindNames) {
  EXPECT_EQ(describe_exception(nullptr).kind, ErrorKind::kInternal);
  const ErrorReport r = describe_thrown("no-such-kind");
  EXPECT_EQ(r.kind, ErrorKind::kInput);
  EXPECT_NE(r.message.find("no-such-kind"), std::string::npos);
}
