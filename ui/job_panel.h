// The progress panel of a RunJob: the step, a progress bar, elapsed time and an estimate of
// the time left, Cancel, and the job's log. Shows what the job reports; owns nothing of it.
#pragma once

#include <QWidget>

class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace modeldiff::ui {

class RunJob;

class JobPanel : public QWidget {
  Q_OBJECT

 public:
  explicit JobPanel(RunJob* job, QWidget* parent = nullptr);

  QLabel* titleLabel() const { return title_; }
  QLabel* stepLabel() const { return step_; }
  QLabel* timeLabel() const { return time_; }
  QProgressBar* progressBar() const { return bar_; }
  QPushButton* cancelButton() const { return cancel_; }
  QPlainTextEdit* logView() const { return log_; }

  // "1:05" / "1:02:03".
  static QString formatDuration(double seconds);

 private:
  void onStarted(const QString& output);
  void onProgressed(double fraction, const QString& step);
  void onEnded(const QString& message, bool error);

  RunJob* job_;
  QLabel* title_;
  QLabel* step_;
  QLabel* time_;
  QProgressBar* bar_;
  QPushButton* cancel_;
  QPlainTextEdit* log_;
};

}  // namespace modeldiff::ui
