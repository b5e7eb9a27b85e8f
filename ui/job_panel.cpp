#include "job_panel.h"

#include <QDir>
#include <QGridLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <cmath>

#include "run_job.h"

namespace modeldiff::ui {

JobPanel::JobPanel(RunJob* job, QWidget* parent)
    : QWidget(parent),
      job_(job),
      title_(new QLabel(tr("No job running."))),
      step_(new QLabel),
      time_(new QLabel),
      bar_(new QProgressBar),
      cancel_(new QPushButton(tr("Cancel"))),
      log_(new QPlainTextEdit) {
  title_->setTextFormat(Qt::RichText);
  title_->setWordWrap(true);
  step_->setWordWrap(true);
  bar_->setRange(0, 1000);
  bar_->setValue(0);
  bar_->setFormat(QStringLiteral("%p%"));
  cancel_->setEnabled(false);
  cancel_->setToolTip(
      tr("Stop at the next step; trained models and cached features are kept for the next run"));
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  log_->setPlaceholderText(tr("The job's log"));
  log_->setMinimumHeight(60);

  auto* layout = new QGridLayout(this);
  layout->setContentsMargins(6, 4, 6, 4);
  layout->addWidget(title_, 0, 0, 1, 3);
  layout->addWidget(bar_, 1, 0);
  layout->addWidget(time_, 1, 1);
  layout->addWidget(cancel_, 1, 2);
  layout->addWidget(step_, 2, 0, 1, 3);
  layout->addWidget(log_, 3, 0, 1, 3);
  layout->setColumnStretch(0, 1);
  layout->setRowStretch(3, 1);

  connect(cancel_, &QPushButton::clicked, job_, &RunJob::cancel);
  connect(job_, &RunJob::started, this, &JobPanel::onStarted);
  connect(job_, &RunJob::progressed, this, &JobPanel::onProgressed);
  connect(job_, &RunJob::logged, log_, &QPlainTextEdit::appendPlainText);
  connect(job_, &RunJob::finished, this,
          [this](const QString& output) { onEnded(tr("Finished: %1").arg(output), false); });
  connect(job_, &RunJob::failed, this, [this](const QString& message) { onEnded(message, true); });
  connect(job_, &RunJob::cancelled, this, [this]() {
    onEnded(tr("Cancelled. Everything finished so far (trained models, cached TRAK features, "
               "scores) stays in %1 and is reused by the next run.")
                .arg(QDir::toNativeSeparators(job_->output())),
            false);
  });
}

QString JobPanel::formatDuration(double seconds) {
  const auto s = static_cast<long long>(std::llround(std::max(seconds, 0.0)));
  if (s >= 3600)
    return QStringLiteral("%1:%2:%3")
        .arg(s / 3600)
        .arg((s / 60) % 60, 2, 10, QLatin1Char('0'))
        .arg(s % 60, 2, 10, QLatin1Char('0'));
  return QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
}

void JobPanel::onStarted(const QString& output) {
  title_->setText(
      tr("<b>%1</b> into %2")
          .arg(job_->title().toHtmlEscaped(), QDir::toNativeSeparators(output).toHtmlEscaped()));
  log_->clear();
  bar_->setValue(0);
  cancel_->setEnabled(true);
  onProgressed(0, job_->step());
}

void JobPanel::onProgressed(double fraction, const QString& step) {
  bar_->setValue(static_cast<int>(std::lround(1000 * fraction)));
  step_->setText(step);
  const double left = job_->remainingSeconds();
  time_->setText(left < 0 ? tr("elapsed %1").arg(formatDuration(job_->elapsedSeconds()))
                          : tr("elapsed %1, about %2 left")
                                .arg(formatDuration(job_->elapsedSeconds()), formatDuration(left)));
  cancel_->setEnabled(job_->state() == RunJob::State::kRunning);
}

void JobPanel::onEnded(const QString& message, bool error) {
  cancel_->setEnabled(false);
  title_->setText(
      error ? tr("<b style='color:#b00020'>%1: failed</b>").arg(job_->title().toHtmlEscaped())
            : tr("<b>%1: done</b>").arg(job_->title().toHtmlEscaped()));
  step_->setText(message);
  time_->setText(tr("took %1").arg(formatDuration(job_->elapsedSeconds())));
}

}  // namespace modeldiff::ui
