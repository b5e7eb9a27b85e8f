// A long computation started from the GUI: the main job (core::run_project: train or load,
// TRAK, ModelDiff, report) or any other core task (ModelDiff of a selection of examples). It
// runs on its own worker thread; the GUI thread polls a small shared state every
// 100 ms and turns it into signals, so a report from the core never waits for the GUI and the
// GUI never waits for the core. Cancel is cooperative (core::Progress::cancelled): the core
// stops at its next step, and what finished (trained models, cached TRAK features, score
// files) stays in the run folder for the next run.
//
// No LibTorch here (core::run_project's header has none).
#pragma once

#include <QElapsedTimer>
#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QThreadPool>
#include <QTimer>
#include <functional>
#include <memory>
#include <string>

#include "core/base/error_report.h"

namespace modeldiff::core {
class Progress;
struct Project;
}  // namespace modeldiff::core

namespace modeldiff::ui {

class RunJob : public QObject {
  Q_OBJECT

 public:
  enum class State { kIdle, kRunning, kCancelling, kFinished, kFailed, kCancelled };

  explicit RunJob(QObject* parent = nullptr);
  // Cancels a running job and waits for it to stop (the core checks often; seconds at most).
  ~RunJob() override;

  // The work of a job: reports to `progress` (and stops with core::Cancelled when it is
  // cancelled), logs lines through `log`; throws core::InputError for bad input. Anything else
  // it throws also ends the job as failed, with the exception's one line as the message
  // (core::describe_exception). Runs on the worker thread: it must own (or share) everything
  // it reads.
  using Task = std::function<void(core::Progress& progress,
                                  const std::function<void(const std::string&)>& log)>;

  // Starts `project`'s run. False (and nothing started) while another job runs.
  bool start(const core::Project& project);
  // Starts `task`, named `title`, writing into `output`. False while another job runs.
  bool start(const QString& title, const QString& output, Task task);
  // Asks the running job to stop at its next step.
  void cancel();

  State state() const { return state_; }
  bool isRunning() const { return state_ == State::kRunning || state_ == State::kCancelling; }
  // The latest report: fraction of the whole job in [0, 1] and the step it is in.
  double fraction() const { return fraction_; }
  QString step() const { return step_; }
  // Seconds since start; the estimate of the seconds left (< 0 while unknown).
  double elapsedSeconds() const;
  double remainingSeconds() const;
  // The title, the output folder of the current (or last) job, and the lines it logged.
  QString title() const { return title_; }
  QString output() const { return output_; }
  QStringList log() const { return log_; }
  // The error of a failed job, and what kind of error it was (bad input, out of memory, ...).
  QString error() const { return error_; }
  core::ErrorKind errorKind() const { return error_kind_; }

 Q_SIGNALS:
  void started(const QString& output);
  void progressed(double fraction, const QString& step);
  void logged(const QString& line);
  void finished(const QString& output);  // the run folder, ready to open
  void failed(const QString& message);
  void cancelled();

 private:
  struct Shared;
  struct Outcome {
    bool ok = false, cancelled = false;
    QString error;
    core::ErrorKind kind = core::ErrorKind::kInternal;
  };
  void poll();
  void onDone();

  std::shared_ptr<Shared> shared_;
  QThreadPool pool_;  // its own thread: a long job never holds one of the shared pool's
  QFutureWatcher<Outcome> watcher_;
  QTimer poll_timer_;
  QElapsedTimer clock_;
  State state_ = State::kIdle;
  double fraction_ = 0;
  QString step_, title_, output_, error_;
  core::ErrorKind error_kind_ = core::ErrorKind::kInternal;
  QStringList log_;
  double eta_ = -1;
};

}  // namespace modeldiff::ui
