// Errors of the core.
//
// Two error paths (see ARCHITECTURE.md): MD_ASSERT for programmer errors (aborts), and
// InputError for bad input a user can act on. An InputError names the file, the key or row
// inside it, what was wrong, what was expected and what was found; the CLI prints what() on
// one line and exits with code 2, the GUI shows it in a dialog.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace modeldiff::core {

class InputError : public std::exception {
 public:
  // `file` may be empty when the input is not a file (e.g. a command-line value).
  InputError(std::string file, std::string problem);

  // Builder-style details; each returns *this so that
  //   throw InputError(path, "not a 2-D matrix").key("weight").expected("2 dims").found("3");
  // reads as one sentence.
  InputError& key(std::string key);
  InputError& expected(std::string expected);
  InputError& found(std::string found);

  const char* what() const noexcept override { return message_.c_str(); }

  const std::string& file() const { return file_; }
  const std::string& key_name() const { return key_; }
  const std::string& problem() const { return problem_; }
  const std::string& expected_text() const { return expected_; }
  const std::string& found_text() const { return found_; }

 private:
  void rebuild();

  std::string file_, key_, problem_, expected_, found_;
  std::string message_;
};

// Thrown by long computations when their Progress reports cancellation.
class Cancelled : public std::exception {
 public:
  const char* what() const noexcept override { return "cancelled"; }
};

}  // namespace modeldiff::core

#define MD_ASSERT(cond)                                                                          \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "%s:%d: internal error: assertion '%s' failed\n", __FILE__, __LINE__, \
                   #cond);                                                                       \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)
