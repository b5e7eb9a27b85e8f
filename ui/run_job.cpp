#include "run_job.h"

#include <QtConcurrent/QtConcurrentRun>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/progress.h"
#include "core/pipeline/project.h"
#include "error_reporting.h"
#if MODELDIFF_UI_RUNS
#include "core/pipeline/run_project.h"
#endif

namespace modeldiff::ui {

// What the worker writes and the GUI thread reads.
struct RunJob::Shared final : core::Progress {
  mutable std::mutex mutex;
  double fraction = 0;
  std::string step;
  std::vector<std::string> lines;  // logged since the last poll
  std::atomic<bool> cancel{false};

  void report(double f, std::string_view message) override {
    const std::lock_guard lock(mutex);
    fraction = std::max(fraction, std::min(std::max(f, 0.0), 1.0));
    step.assign(message);
  }
  bool cancelled() const override { return cancel.load(); }
  void add_line(const std::string& line) {
    const std::lock_guard lock(mutex);
    lines.push_back(line);
  }
};

RunJob::RunJob(QObject* parent) : QObject(parent) {
  pool_.setMaxThreadCount(1);
  poll_timer_.setInterval(100);
  connect(&poll_timer_, &QTimer::timeout, this, &RunJob::poll);
  connect(&watcher_, &QFutureWatcher<Outcome>::finished, this, &RunJob::onDone);
}

RunJob::~RunJob() {
  if (shared_) shared_->cancel = true;
  watcher_.waitForFinished();
}

bool RunJob::start(const core::Project& project) {
#if MODELDIFF_UI_RUNS
  return start(
      tr("Run of %1").arg(QString::fromStdString(project.name)),
      QString::fromStdString(project.output),
      [project](core::Progress& progress, const std::function<void(const std::string&)>& log) {
        core::run_project(project, progress, log);
      });
#else
  return start(tr("Run of %1").arg(QString::fromStdString(project.name)),
               QString::fromStdString(project.output),
               [](core::Progress&, const std::function<void(const std::string&)>&) {
                 throw core::InputError(
                     "",
                     "this build of ModelDiff Studio has no LibTorch: runs need the full build");
               });
#endif
}

bool RunJob::start(const QString& title, const QString& output, Task task) {
  if (isRunning() || !task) return false;
  shared_ = std::make_shared<Shared>();
  state_ = State::kRunning;
  fraction_ = 0;
  eta_ = -1;
  step_ = tr("starting");
  error_.clear();
  log_.clear();
  title_ = title;
  output_ = output;
  clock_.start();
  poll_timer_.start();
  Q_EMIT started(output_);
  // The worker owns the task; `shared` outlives this object's next start.
  watcher_.setFuture(QtConcurrent::run(&pool_, [task = std::move(task), shared = shared_]() {
    Outcome outcome;
    try {
      task(*shared, [&](const std::string& line) { shared->add_line(line); });
      outcome.ok = true;
    } catch (...) {
      // Every exception, whatever threw it, becomes one line; a cancel is not an error.
      const CaughtError error = currentError();
      outcome.cancelled = error.cancelled();
      if (!error.cancelled()) outcome.error = error.message;
      outcome.kind = error.kind;
    }
    return outcome;
  }));
  return true;
}

void RunJob::cancel() {
  if (state_ != State::kRunning) return;
  state_ = State::kCancelling;
  shared_->cancel = true;
  step_ = tr("cancelling (stops at the next step)");
  Q_EMIT progressed(fraction_, step_);
}

double RunJob::elapsedSeconds() const {
  return clock_.isValid() ? static_cast<double>(clock_.elapsed()) / 1000.0 : 0.0;
}

double RunJob::remainingSeconds() const {
  return eta_;
}

void RunJob::poll() {
  if (!shared_) return;
  double fraction = 0;
  std::string step;
  std::vector<std::string> lines;
  {
    const std::lock_guard lock(shared_->mutex);
    fraction = shared_->fraction;
    step = shared_->step;
    lines.swap(shared_->lines);
  }
  for (const std::string& line : lines) {
    log_ << QString::fromStdString(line);
    Q_EMIT logged(log_.back());
  }
  fraction_ = fraction;
  if (state_ == State::kRunning && !step.empty()) step_ = QString::fromStdString(step);
  // A linear estimate, once the job is far enough in for it to mean something.
  const double elapsed = elapsedSeconds();
  eta_ = fraction >= 0.03 && elapsed >= 3 ? elapsed * (1 - fraction) / fraction : -1;
  Q_EMIT progressed(fraction_, step_);
}

void RunJob::onDone() {
  poll_timer_.stop();
  poll();  // the last lines
  const Outcome outcome = watcher_.result();
  eta_ = -1;
  if (outcome.ok) {
    state_ = State::kFinished;
    fraction_ = 1;
    step_ = tr("finished");
    Q_EMIT progressed(fraction_, step_);
    Q_EMIT finished(output_);
  } else if (outcome.cancelled) {
    state_ = State::kCancelled;
    step_ = tr("cancelled");
    Q_EMIT progressed(fraction_, step_);
    Q_EMIT cancelled();
  } else {
    state_ = State::kFailed;
    error_ = outcome.error;
    error_kind_ = outcome.kind;
    step_ = tr("failed");
    Q_EMIT progressed(fraction_, step_);
    Q_EMIT failed(error_);
  }
}

}  // namespace modeldiff::ui
