#include "counterfactual_panel.h"

#include <qcustomplot.h>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QPixmap>
#include <QProgressBar>
#include <QPushButton>
#include <QSvgGenerator>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <cmath>

#include "core/base/error.h"
#include "core/base/percent.h"
#include "dataset_image.h"
#include "error_reporting.h"

namespace modeldiff::ui {

namespace {

constexpr int kPreviewImages = 4;
constexpr int kPreviewSize = 56;
const QColor kColorA(31, 119, 180);
const QColor kColorB(255, 127, 14);

QPixmap toPixmap(const core::ImageDataset& data, std::int64_t index, int size) {
  return QPixmap::fromImage(
      datasetImage(data, index).scaled(size, size, Qt::KeepAspectRatio, Qt::FastTransformation));
}

QString interval(double mean, double low, double high) {
  return QStringLiteral("%1 [%2, %3]")
      .arg(mean, 0, 'f', 4)
      .arg(low, 0, 'f', 4)
      .arg(high, 0, 'f', 4);
}

}  // namespace

void ForwardingProgress::report(double fraction, std::string_view message) {
  Q_EMIT progressed(fraction, QString::fromUtf8(message.data(), static_cast<int>(message.size())));
}

CounterfactualPanel::CounterfactualPanel(QWidget* parent)
    : QWidget(parent),
      transform_(new QLineEdit),
      presets_(new QComboBox),
      target_(new QComboBox),
      choice_(new QComboBox),
      strengths_(new QLineEdit(QStringLiteral("0,1,2,3"))),
      error_(new QLabel),
      status_(new QLabel),
      run_(new QPushButton(tr("Run"))),
      cancel_(new QPushButton(tr("Cancel"))),
      export_(new QPushButton(tr("Export…"))),
      progress_(new QProgressBar),
      plot_(new QCustomPlot),
      table_(new QTableWidget),
      progress_forwarder_(new ForwardingProgress(this)) {
  pool_.setMaxThreadCount(1);
  setEvaluation({});
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(6, 6, 6, 6);

  auto* form = new QFormLayout;
  form->addRow(tr("Preset:"), presets_);
  transform_->setPlaceholderText(QStringLiteral("patch:x=1,y=1,size=3,value=255"));
  transform_->setToolTip(
      tr("Steps separated by ';': patch, paste, texture, tint, grayscale, blur, noise, rotate, "
         "crop_resize, brightness, autocontrast"));
  form->addRow(tr("Transformation:"), transform_);
  form->addRow(tr("Target class:"), target_);
  choice_->addItem(tr("validation images not of the target class"));
  choice_->addItem(tr("the current direction's top validation images"));
  form->addRow(tr("Images:"), choice_);
  strengths_->setToolTip(tr("Strengths to sweep, comma-separated; 0 is the control"));
  form->addRow(tr("Strengths:"), strengths_);
  layout->addLayout(form);
  error_->setStyleSheet(QStringLiteral("color: #c00000;"));
  error_->setWordWrap(true);
  layout->addWidget(error_);

  auto* preview = new QGridLayout;
  preview->addWidget(new QLabel(tr("original")), 0, 0);
  preview->addWidget(new QLabel(tr("transformed")), 1, 0);
  for (int i = 0; i < kPreviewImages; ++i) {
    auto* o = new QLabel;
    auto* t = new QLabel;
    o->setFixedSize(kPreviewSize, kPreviewSize);
    t->setFixedSize(kPreviewSize, kPreviewSize);
    preview->addWidget(o, 0, i + 1);
    preview->addWidget(t, 1, i + 1);
    originals_.push_back(o);
    transformed_.push_back(t);
  }
  preview->setColumnStretch(kPreviewImages + 1, 1);
  layout->addLayout(preview);

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  buttons->addWidget(progress_, 1);
  buttons->addWidget(export_);
  layout->addLayout(buttons);
  status_->setWordWrap(true);
  layout->addWidget(status_);

  plot_->setMinimumHeight(220);
  plot_->xAxis->setLabel(tr("strength"));
  plot_->yAxis->setLabel(tr("change in P(target class)"));
  plot_->legend->setVisible(false);  // shown with the first result: an empty one is a stray box
  layout->addWidget(plot_, 3);

  table_->setColumnCount(6);
  table_->setHorizontalHeaderLabels(
      {tr("strength"), tr("A"), tr("B"), tr("A − B"), tr("A flips"), tr("B flips")});
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->horizontalHeader()->setStretchLastSection(true);
  layout->addWidget(table_, 2);

  progress_->setRange(0, 1000);
  progress_->setValue(0);
  cancel_->setEnabled(false);
  export_->setEnabled(false);
  setEnabled(false);

  connect(transform_, &QLineEdit::textChanged, this, [this] {
    validate();
    updatePreview();
  });
  connect(strengths_, &QLineEdit::textChanged, this, &CounterfactualPanel::validate);
  connect(presets_, &QComboBox::activated, this, [this](int i) {
    if (i > 0) transform_->setText(presets_->itemData(i).toString());
  });
  connect(target_, &QComboBox::currentIndexChanged, this, &CounterfactualPanel::updatePreview);
  connect(choice_, &QComboBox::currentIndexChanged, this, [this] {
    validate();
    updatePreview();
  });
  connect(run_, &QPushButton::clicked, this, &CounterfactualPanel::start);
  connect(cancel_, &QPushButton::clicked, this, &CounterfactualPanel::cancel);
  connect(export_, &QPushButton::clicked, this, &CounterfactualPanel::chooseExportFolder);
  connect(
      progress_forwarder_, &ForwardingProgress::progressed, this,
      [this](double fraction, const QString& message) {
        progress_->setValue(static_cast<int>(std::lround(1000 * std::clamp(fraction, 0.0, 1.0))));
        status_->setText(message);
      });
  connect(&watcher_, &QFutureWatcher<Outcome>::finished, this, &CounterfactualPanel::onFinished);
  validate();
}

CounterfactualPanel::~CounterfactualPanel() {
  progress_forwarder_->cancel();
  watcher_.waitForFinished();
}

void CounterfactualPanel::setRun(std::shared_ptr<const RunData> run) {
  run_data_ = run && run->is_run && run->val ? std::move(run) : nullptr;
  direction_images_.clear();
  {
    const QSignalBlocker block(target_);
    target_->clear();
    if (run_data_) {
      const core::ImageDataset& val = *run_data_->val;
      std::int64_t classes = static_cast<std::int64_t>(val.class_names.size());
      for (std::int64_t y : val.labels) classes = std::max(classes, y + 1);
      for (std::int64_t c = 0; c < classes; ++c)
        target_->addItem(
            QStringLiteral("%1 (%2)").arg(c).arg(QString::fromStdString(val.class_name(c))));
      if (run_data_->planted_class >= 0 && run_data_->planted_class < classes)
        target_->setCurrentIndex(static_cast<int>(run_data_->planted_class));
    }
  }
  fillPresets();
  setEnabled(run_data_ != nullptr && !isRunning());
  if (run_data_ && transform_->text().isEmpty() && presets_->count() > 1) {
    presets_->setCurrentIndex(1);
    transform_->setText(presets_->itemData(1).toString());
  }
  validate();
  updatePreview();
}

void CounterfactualPanel::setDirectionImages(const std::vector<std::int64_t>& indices) {
  direction_images_ = indices;
  if (choice_->currentIndex() == kDirectionTop) {
    validate();
    updatePreview();
  }
}

void CounterfactualPanel::fillPresets() {
  presets_->clear();
  presets_->addItem(tr("(presets)"));
  if (run_data_ && run_data_->planted) {
    const QString patch = QStringLiteral("patch:x=%1,y=%2,size=%3,value=%4")
                              .arg(run_data_->patch_x)
                              .arg(run_data_->patch_y)
                              .arg(run_data_->patch_size)
                              .arg(run_data_->patch_value);
    presets_->addItem(tr("the planted patch"), patch);
  }
  presets_->addItem(tr("red tint"), QStringLiteral("tint:r=255,g=0,b=0,alpha=0.3"));
  presets_->addItem(tr("blur"), QStringLiteral("blur:sigma=1"));
  presets_->addItem(tr("noise"), QStringLiteral("noise:sigma=20"));
  presets_->addItem(tr("rotation"), QStringLiteral("rotate:degrees=15"));
}

std::vector<std::int64_t> CounterfactualPanel::chosenIndices() const {
  if (!run_data_) return {};
  if (choice_->currentIndex() == kDirectionTop) return direction_images_;
  const std::int64_t target = target_->currentIndex();
  std::vector<std::int64_t> out;
  const std::vector<std::int64_t>& labels = run_data_->val->labels;
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] != target) out.push_back(static_cast<std::int64_t>(i));
  return out;
}

bool CounterfactualPanel::inputs(CounterfactualInputs& out, QString& error) const {
  try {
    return readInputs(out, error);
  } catch (...) {
    error = currentError().message;
    return false;
  }
}

bool CounterfactualPanel::readInputs(CounterfactualInputs& out, QString& error) const {
  if (!run_data_) {
    error = tr("Open a run folder first");
    return false;
  }
  try {
    out.transform = core::parse_transform(transform_->text().trimmed().toStdString());
  } catch (...) {
    error = tr("Transformation: %1").arg(currentError().message);
    return false;
  }
  if (out.transform.steps.empty()) {
    error = tr("Transformation: enter one (e.g. blur:sigma=1)");
    return false;
  }
  out.strengths.clear();
  for (const QString& part : strengths_->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
    bool ok = false;
    const double v = part.trimmed().toDouble(&ok);
    if (!ok || !std::isfinite(v)) {
      error = tr("Strengths: \"%1\" is not a number").arg(part.trimmed());
      return false;
    }
    out.strengths.push_back(v);
  }
  if (out.strengths.empty()) {
    error = tr("Strengths: give at least one, e.g. 0,1,2,3");
    return false;
  }
  const std::vector<std::int64_t> chosen = chosenIndices();
  if (chosen.empty()) {
    error = choice_->currentIndex() == kDirectionTop ? tr("Images: select a direction first")
                                                     : tr("Images: none is left");
    return false;
  }
  const RunData& run = *run_data_;
  for (int i = 0; i < 2; ++i) {
    const AlgorithmInfo& info = i == 0 ? run.a : run.b;
    core::ModelSet& m = i == 0 ? out.a : out.b;
    m.label = info.label.toStdString();
    m.architecture = info.architecture;
    m.checkpoints = info.checkpoints;
    m.view.clear();
    if (info.hide_patch && run.planted)
      m.view = QStringLiteral("patch:x=%1,y=%2,size=%3,value=0")
                   .arg(run.patch_x)
                   .arg(run.patch_y)
                   .arg(run.patch_size)
                   .toStdString();
    if (m.checkpoints.empty()) {
      error = tr("%1 has no checkpoints to evaluate (an algorithm given by precomputed scores "
                 "has no models)")
                  .arg(info.label);
      return false;
    }
  }
  out.images = std::make_shared<const core::ImageDataset>(core::subset(*run.val, chosen));
  out.prep = run.preprocessing;
  out.target_class = target_->currentIndex();
  out.seed = 0;
  return true;
}

void CounterfactualPanel::validate() {
  QString error;
  // Checks the text only (the image subset is cheap, but is not needed here).
  valid_ = false;
  if (run_data_) {
    try {
      const core::Transform t = core::parse_transform(transform_->text().trimmed().toStdString());
      if (t.steps.empty()) throw core::InputError("", "enter a transformation");
      valid_ = true;
    } catch (...) {
      error = tr("Transformation: %1").arg(currentError().message);
    }
    if (valid_)
      for (const QString& part : strengths_->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        bool ok = false;
        (void)part.trimmed().toDouble(&ok);
        if (!ok) {
          error = tr("Strengths: \"%1\" is not a number").arg(part.trimmed());
          valid_ = false;
          break;
        }
      }
    if (valid_ && strengths_->text().trimmed().isEmpty()) {
      error = tr("Strengths: give at least one, e.g. 0,1,2,3");
      valid_ = false;
    }
    for (const AlgorithmInfo* info : {&run_data_->a, &run_data_->b})
      if (valid_ && info->checkpoints.empty()) {
        error = tr("%1 has no checkpoints to evaluate (an algorithm given by precomputed "
                   "scores has no models)")
                    .arg(info->label);
        valid_ = false;
      }
    if (valid_ && chosenIndices().empty()) {
      error = tr("Images: select a direction first");
      valid_ = false;
    }
  }
  error_->setText(error);
  error_->setVisible(!error.isEmpty());
  run_->setEnabled(valid_ && !isRunning());
}

int CounterfactualPanel::previewCount() const {
  int n = 0;
  for (const QLabel* l : transformed_) n += l->pixmap().isNull() ? 0 : 1;
  return n;
}

void CounterfactualPanel::updatePreview() {
  for (QLabel* l : originals_) l->clear();
  for (QLabel* l : transformed_) l->clear();
  if (!run_data_) return;
  // Whatever the images or the transformation throw is shown in the error line (the first
  // problem stays: validate() has put the text's own there already).
  const auto show = [this](const QString& prefix) {
    if (!error_->text().isEmpty()) return;
    error_->setText(prefix.arg(currentError().message));
    error_->setVisible(true);
  };
  std::vector<std::int64_t> chosen;
  try {
    chosen = chosenIndices();
    if (chosen.size() > static_cast<std::size_t>(kPreviewImages)) chosen.resize(kPreviewImages);
    for (std::size_t i = 0; i < chosen.size(); ++i)
      originals_[i]->setPixmap(toPixmap(*run_data_->val, chosen[i], kPreviewSize));
  } catch (...) {
    show(tr("Preview: %1"));
  }
  if (chosen.empty()) return;
  try {
    const core::Transform t = core::parse_transform(transform_->text().trimmed().toStdString());
    if (t.steps.empty()) return;
    // A handful of small images: quick enough for the GUI thread.
    const core::ImageDataset out = core::apply_transform(*run_data_->val, t, chosen);
    for (std::size_t i = 0; i < chosen.size(); ++i)
      transformed_[i]->setPixmap(toPixmap(out, static_cast<std::int64_t>(i), kPreviewSize));
  } catch (...) {
    show(tr("Transformation: %1"));
  }
}

void CounterfactualPanel::setEvaluation(Evaluation evaluation) {
  if (evaluation) {
    evaluation_ = std::move(evaluation);
    return;
  }
#if MODELDIFF_UI_RUNS
  evaluation_ = [](const CounterfactualInputs& in, core::Progress& progress) {
    return core::run_counterfactual(in.a, in.b, *in.images, in.prep, in.transform, in.strengths,
                                    in.target_class, in.seed, progress);
  };
#else
  evaluation_ = [](const CounterfactualInputs&, core::Progress&) -> core::CounterfactualResult {
    throw core::InputError("", "this build (without LibTorch) cannot evaluate models");
  };
#endif
}

bool CounterfactualPanel::start() {
  if (isRunning()) return false;
  CounterfactualInputs in;
  QString error;
  if (!inputs(in, error)) {
    error_->setText(error);
    error_->setVisible(true);
    return false;
  }
  progress_forwarder_->reset();
  progress_->setValue(0);
  status_->setText(tr("Evaluating %1 and %2 checkpoints on %3 images…")
                       .arg(in.a.checkpoints.size())
                       .arg(in.b.checkpoints.size())
                       .arg(in.images->size()));
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  export_->setEnabled(false);
  ForwardingProgress* progress = progress_forwarder_;
  running_ = true;
  watcher_.setFuture(QtConcurrent::run(&pool_, [in, progress, evaluation = evaluation_]() {
    Outcome outcome;
    try {
      outcome.result = evaluation(in, *progress);
    } catch (...) {
      const CaughtError caught = currentError();
      outcome.cancelled = caught.cancelled();
      if (!caught.cancelled()) outcome.error = caught.message;
      outcome.kind = caught.kind;
    }
    return outcome;
  }));
  return true;
}

void CounterfactualPanel::cancel() {
  if (!isRunning()) return;
  progress_forwarder_->cancel();
  status_->setText(tr("Cancelling…"));
  cancel_->setEnabled(false);
}

void CounterfactualPanel::onFinished() {
  const Outcome outcome = watcher_.result();
  running_ = false;
  setEnabled(run_data_ != nullptr);
  cancel_->setEnabled(false);
  run_->setEnabled(valid_);
  if (outcome.cancelled) {
    progress_->setValue(0);
    status_->setText(tr("Cancelled"));
    export_->setEnabled(has_result_);
    Q_EMIT finished(false, status_->text());
    return;
  }
  if (!outcome.error.isEmpty()) {
    status_->setText(tr("Failed: %1").arg(outcome.error));
    export_->setEnabled(has_result_);
    showErrorBox(this, tr("The transformation test failed"), outcome.error, outcome.kind);
    Q_EMIT finished(false, outcome.error);
    return;
  }
  result_ = outcome.result;
  has_result_ = true;
  progress_->setValue(progress_->maximum());
  showResult();
  export_->setEnabled(true);
  status_->setText(tr("%1, target class %2")
                       .arg(QString::fromStdString(result_.transform))
                       .arg(result_.target_class));
  Q_EMIT finished(true, status_->text());
}

void CounterfactualPanel::showResult() {
  plot_->clearPlottables();
  const char* algorithms[] = {"A", "B"};
  const QColor colors[] = {kColorA, kColorB};
  double lo = 0, hi = 0, smin = 0, smax = 1;
  bool first = true;
  for (int a = 0; a < 2; ++a) {
    QVector<double> x, y, minus, plus;
    QString label;
    for (const core::EffectRow& r : result_.rows) {
      if (r.algorithm != algorithms[a]) continue;
      label = QString::fromStdString(r.label);
      x << r.strength;
      y << r.mean_delta_p;
      minus << r.mean_delta_p - r.ci_low;
      plus << r.ci_high - r.mean_delta_p;
      lo = std::min(lo, r.ci_low);
      hi = std::max(hi, r.ci_high);
      smin = first ? r.strength : std::min(smin, r.strength);
      smax = first ? r.strength : std::max(smax, r.strength);
      first = false;
    }
    QCPGraph* g = plot_->addGraph();
    g->setName(QStringLiteral("%1 = %2").arg(QLatin1String(algorithms[a]), label));
    g->setPen(QPen(colors[a], 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 6));
    g->setData(x, y);
    auto* bars = new QCPErrorBars(plot_->xAxis, plot_->yAxis);
    bars->removeFromLegend();
    bars->setDataPlottable(g);
    bars->setData(minus, plus);
    bars->setPen(QPen(colors[a], 1));
  }
  const double pad = std::max(0.02, 0.1 * (hi - lo));
  plot_->yAxis->setRange(lo - pad, hi + pad);
  const double xpad = std::max(0.1, 0.08 * (smax - smin));
  plot_->xAxis->setRange(smin - xpad, smax + xpad);
  plot_->legend->setVisible(true);
  plot_->replot();

  // One table row per strength: A, B, A - B.
  std::vector<double> strengths;
  for (const core::EffectRow& r : result_.rows)
    if (std::find(strengths.begin(), strengths.end(), r.strength) == strengths.end())
      strengths.push_back(r.strength);
  table_->setRowCount(static_cast<int>(strengths.size()));
  for (std::size_t i = 0; i < strengths.size(); ++i) {
    const int row = static_cast<int>(i);
    table_->setItem(row, 0, new QTableWidgetItem(QString::number(strengths[i])));
    for (const core::EffectRow& r : result_.rows) {
      if (r.strength != strengths[i]) continue;
      const QString text = interval(r.mean_delta_p, r.ci_low, r.ci_high);
      const QString flips = QString::fromStdString(core::format_percent(r.flip_fraction));
      if (r.algorithm == "A") {
        table_->setItem(row, 1, new QTableWidgetItem(text));
        table_->setItem(row, 4, new QTableWidgetItem(flips));
      } else if (r.algorithm == "B") {
        table_->setItem(row, 2, new QTableWidgetItem(text));
        table_->setItem(row, 5, new QTableWidgetItem(flips));
      } else {
        table_->setItem(row, 3, new QTableWidgetItem(text));
      }
    }
  }
  table_->resizeColumnsToContents();
}

bool CounterfactualPanel::exportTo(const QString& dir, QSize size, QString* error) {
  auto fail = [error](const QString& message) {
    if (error) *error = message;
    return false;
  };
  if (!has_result_) return fail(tr("nothing to export yet"));
  if (!QDir().mkpath(dir)) return fail(tr("%1 cannot be created").arg(dir));
  const QString png = QDir(dir).filePath(QStringLiteral("plot.png"));
  if (!plot_->savePng(png, size.width(), size.height(), 1.0))
    return fail(tr("%1 cannot be written").arg(png));
  const QString svg = QDir(dir).filePath(QStringLiteral("plot.svg"));
  {
    QSvgGenerator generator;
    generator.setFileName(svg);
    generator.setSize(size);
    generator.setViewBox(QRect(QPoint(0, 0), size));
    generator.setTitle(tr("Counterfactual test"));
    QCPPainter painter(&generator);
    if (!painter.isActive()) return fail(tr("%1 cannot be written").arg(svg));
    plot_->toPainter(&painter, size.width(), size.height());
  }
#if MODELDIFF_UI_RUNS
  try {
    core::write_counterfactual(dir.toStdString(), result_);
  } catch (...) {
    return fail(currentError().message);
  }
#endif
  return true;
}

void CounterfactualPanel::chooseExportFolder() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Export the test to"));
  if (dir.isEmpty()) return;
  QString error;
  if (exportTo(dir, QSize(900, 600), &error))
    status_->setText(tr("Wrote plot.png, plot.svg and effects.json/.csv/.png to %1").arg(dir));
  else
    status_->setText(tr("Export failed: %1").arg(error));
}

}  // namespace modeldiff::ui
