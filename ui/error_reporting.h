// How the GUI turns any exception into one clear message (the rule of issue 15: every entry
// point reports every exception, none ends the program). Slots that call the core run their
// work through reportErrors(), which shows the message in a message box over the window (or,
// where a panel already shows its problems inline, catch (...) and put currentError() there);
// worker tasks end with `catch (...)` and hand currentError() to the GUI thread. The message is
// core::describe_current_exception()'s one line: the file and what was expected for bad input,
// "internal error (OpenCV): ..." and the like for a library's exception.
//
// ErrorReportingApplication is the last line: an exception that still escapes an event
// handler (a defect: every slot catches its own) is shown the same way instead of reaching
// std::terminate.
#pragma once

#include <QApplication>
#include <QString>
#include <utility>

#include "core/base/error_report.h"

class QWidget;

namespace modeldiff::ui {

// The exception being handled, as core::describe_current_exception() describes it. Call it
// inside `catch (...)`. A cancel is not an error to show: workers check cancelled().
struct CaughtError {
  core::ErrorKind kind = core::ErrorKind::kInternal;
  QString message;  // one line
  bool cancelled() const { return kind == core::ErrorKind::kCancelled; }
};
CaughtError currentError() noexcept;

// Shows `message` in a critical message box titled `title` over `parent` (its child, so
// tests find it with parent->findChild<QMessageBox*>()): window-modal but not blocking
// (QMessageBox::open), deleted when closed. An internal error or running out of memory gets a
// line of advice below the message. `kind` says which it is.
void showErrorBox(QWidget* parent, const QString& title, const QString& message,
                  core::ErrorKind kind = core::ErrorKind::kInput);

// Inside `catch (...)`: shows the exception being handled as showErrorBox() does. Never
// throws (when even the box cannot be made, the message goes to the log). Returns the message.
QString reportCurrentError(QWidget* parent, const QString& title) noexcept;

// Runs `action` (a slot's work that calls the core). Whatever it throws becomes one message
// box over `parent` titled `title`; returns whether `action` ran through, and the message in
// `*message` when it did not. Never throws.
template <typename Action>
bool reportErrors(QWidget* parent, const QString& title, Action&& action,
                  QString* message = nullptr) noexcept {
  try {
    std::forward<Action>(action)();
    return true;
  } catch (...) {
    const QString shown = reportCurrentError(parent, title);
    if (message != nullptr) *message = shown;
    return false;
  }
}

class ErrorReportingApplication : public QApplication {
 public:
  ErrorReportingApplication(int& argc, char** argv);

  // QApplication::notify, with any exception it lets through shown in a message box over the
  // active window (titled "Unexpected error") and the event taken as not handled.
  bool notify(QObject* receiver, QEvent* event) override;
};

}  // namespace modeldiff::ui
