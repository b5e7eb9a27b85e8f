#include "core/base/error.h"

#include <utility>

namespace modeldiff::core {

InputError::InputError(std::string file, std::string problem)
    : file_(std::move(file)), problem_(std::move(problem)) {
  rebuild();
}

InputError& InputError::key(std::string key) {
  key_ = std::move(key);
  rebuild();
  return *this;
}

InputError& InputError::expected(std::string expected) {
  expected_ = std::move(expected);
  rebuild();
  return *this;
}

InputError& InputError::found(std::string found) {
  found_ = std::move(found);
  rebuild();
  return *this;
}

void InputError::rebuild() {
  message_.clear();
  if (!file_.empty()) message_ += file_;
  if (!key_.empty()) message_ += (message_.empty() ? "" : " ") + std::string("[") + key_ + "]";
  if (!message_.empty()) message_ += ": ";
  message_ += problem_;
  if (!expected_.empty() || !found_.empty()) {
    message_ += " (";
    if (!expected_.empty()) message_ += "expected " + expected_;
    if (!expected_.empty() && !found_.empty()) message_ += ", ";
    if (!found_.empty()) message_ += "found " + found_;
    message_ += ")";
  }
}

}  // namespace modeldiff::core
