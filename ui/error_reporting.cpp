#include "error_reporting.h"

#include <QMessageBox>
#include <QWidget>
#include <cstdio>
#include <exception>

namespace modeldiff::ui {

CaughtError currentError() noexcept {
  try {
    const core::ErrorReport report = core::describe_current_exception();
    return {report.kind, QString::fromStdString(report.message)};
  } catch (...) {
    // Describing it needed memory there was not.
    return {core::ErrorKind::kOutOfMemory, QStringLiteral("out of memory")};
  }
}

void showErrorBox(QWidget* parent, const QString& title, const QString& message,
                  core::ErrorKind kind) {
  auto* box = new QMessageBox(QMessageBox::Critical, title, message, QMessageBox::Ok, parent);
  box->setAttribute(Qt::WA_DeleteOnClose);
  if (kind == core::ErrorKind::kInternal)
    box->setInformativeText(
        QMessageBox::tr("This is not a problem with your input: it is a defect of ModelDiff "
                        "Studio or of a library it uses. Please report it with this message."));
  else if (kind == core::ErrorKind::kOutOfMemory)
    box->setInformativeText(
        QMessageBox::tr("Close other programs, or use fewer images or a smaller model, and "
                        "try again."));
  box->open();  // window-modal, does not block the event loop
}

QString reportCurrentError(QWidget* parent, const QString& title) noexcept {
  const CaughtError error = currentError();
  try {
    showErrorBox(parent, title, error.message, error.kind);
  } catch (...) {
    // Not even a message box could be made (out of memory): the log at least.
    std::fputs("modeldiff-gui: an error could not be shown (out of memory)\n", stderr);
  }
  return error.message;
}

ErrorReportingApplication::ErrorReportingApplication(int& argc, char** argv)
    : QApplication(argc, argv) {}

bool ErrorReportingApplication::notify(QObject* receiver, QEvent* event) {
  try {
    return QApplication::notify(receiver, event);
  } catch (...) {
    reportCurrentError(QApplication::activeWindow(), tr("Unexpected error"));
    return false;
  }
}

}  // namespace modeldiff::ui
