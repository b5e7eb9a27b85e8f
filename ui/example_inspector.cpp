#include "example_inspector.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QListView>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>
#include <set>

#include "core/diff/model_diff.h"
#include "error_reporting.h"
#include "image_grid_model.h"
#include "run_data.h"

namespace modeldiff::ui {

namespace {
constexpr int kThumbnail = 64;
constexpr int kImage = 112;
}  // namespace

ExampleInspector::ExampleInspector(QWidget* parent)
    : QWidget(parent),
      image_(new QLabel),
      text_(new QLabel(tr("Click a point of the projection plot or a validation image."))),
      count_(new QSpinBox),
      order_(new QComboBox) {
  image_->setFixedSize(kImage, kImage);
  image_->setAlignment(Qt::AlignCenter);
  image_->setStyleSheet(QStringLiteral("background: palette(base);"));
  text_->setWordWrap(true);
  text_->setTextFormat(Qt::RichText);
  text_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  count_->setRange(1, 50);
  count_->setValue(8);
  count_->setToolTip(tr("How many training images per algorithm"));
  order_->addItem(tr("highest scores (proponents)"));
  order_->addItem(tr("lowest scores (opponents)"));
  order_->setToolTip(
      tr("Proponents push the prediction towards the example's label; "
         "opponents push it away"));

  auto* top = new QHBoxLayout;
  top->addWidget(image_, 0, Qt::AlignTop);
  top->addWidget(text_, 1);
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Show")));
  controls->addWidget(count_);
  controls->addWidget(order_, 1);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(6, 4, 6, 4);
  layout->addLayout(top);
  layout->addLayout(controls);
  for (int i = 0; i < 2; ++i) {
    titles_[i] = new QLabel;
    titles_[i]->setTextFormat(Qt::RichText);
    titles_[i]->setWordWrap(true);
    models_[i] = new ImageGridModel(this);
    models_[i]->setLimit(count_->value());
    views_[i] = makeGridView(models_[i], kThumbnail, true);
    layout->addWidget(titles_[i]);
    layout->addWidget(views_[i], 1);
  }
  connect(count_, &QSpinBox::valueChanged, this, &ExampleInspector::refresh);
  connect(order_, &QComboBox::currentIndexChanged, this, &ExampleInspector::refresh);
  refresh();
}

void ExampleInspector::setRun(std::shared_ptr<const RunData> run,
                              ThumbnailCache* train_thumbnails) {
  run_ = std::move(run);
  for (ImageGridModel* m : models_) m->setCache(train_thumbnails);
  example_ = -1;
  refresh();
}

void ExampleInspector::showExample(std::int64_t index) {
  example_ = index;
  refresh();
}

std::vector<std::int64_t> ExampleInspector::influencers(int algorithm, std::int64_t index, int k,
                                                        bool lowest) const {
  if (!run_ || algorithm < 0 || algorithm > 1 || !run_->scores[algorithm]) return {};
  const core::NdArray& s = *run_->scores[algorithm];
  if (index < 0 || index >= s.dim(0)) return {};
  const std::int64_t n = s.dim(1);
  return core::top_k_indices(s.data_as<float>() + index * n, n, k, !lowest);
}

void ExampleInspector::refresh() {
  try {
    showCurrent();
  } catch (...) {
    const QString why = currentError().message;
    image_->clear();
    for (int i = 0; i < 2; ++i) {
      models_[i]->setItems({}, {}, {}, {});
      titles_[i]->clear();
    }
    text_->setText(
        tr("Validation example %1 cannot be shown: %2").arg(example_).arg(why.toHtmlEscaped()));
  }
}

void ExampleInspector::showCurrent() {
  const bool valid = run_ && run_->val && example_ >= 0 && example_ < run_->val->size();
  if (!valid) {
    example_ = -1;
    image_->clear();
    text_->setText(
        run_ && !run_->scores_problem.isEmpty()
            ? tr("The score files cannot be used: %1").arg(run_->scores_problem.toHtmlEscaped())
        : run_ && !run_->scores[0] && !run_->scores[1]
            ? tr("This result has no score files (a run folder's scores/ has them).")
            : tr("Click a point of the projection plot or a validation image."));
    for (int i = 0; i < 2; ++i) {
      models_[i]->setItems({}, {}, {}, {});
      titles_[i]->clear();
    }
    return;
  }
  const core::ImageDataset& val = *run_->val;
  const bool patched = run_->isPatchedVal(example_);
  image_->setPixmap(QPixmap::fromImage(ThumbnailCache::render(val, example_, kImage, patched)));
  const int k = count_->value();
  const bool lowest = order_->currentIndex() == 1;
  std::vector<std::int64_t> lists[2];
  for (int i = 0; i < 2; ++i) {
    lists[i] = influencers(i, example_, k, lowest);
    const core::NdArray* s = run_->scores[i].get();
    std::vector<double> values;
    for (std::int64_t j : lists[i]) values.push_back(s->data_as<float>()[example_ * s->dim(1) + j]);
    models_[i]->setItems(lists[i], values, tr("score"), tr("Training example"));
    models_[i]->setLimit(k);
    const AlgorithmInfo& algorithm = i == 0 ? run_->a : run_->b;
    const ImageGridModel* m = models_[i];
    titles_[i]->setText(
        s == nullptr
            ? tr("<b>%1</b>: no scores").arg(algorithm.label.toHtmlEscaped())
            : tr("<b>%1 (%2)</b>: the %3 training images with the %4 scores%5")
                  .arg(i == 0 ? QStringLiteral("A") : QStringLiteral("B"),
                       algorithm.label.toHtmlEscaped())
                  .arg(lists[i].size())
                  .arg(lowest ? tr("lowest") : tr("highest"))
                  .arg(run_->planted ? tr("; %1 carry the planted patch").arg(m->patchedCount())
                                     : QString()));
  }
  const std::set<std::int64_t> in_a(lists[0].begin(), lists[0].end());
  int shared = 0;
  for (std::int64_t j : lists[1]) shared += in_a.count(j) ? 1 : 0;
  const std::int64_t label = val.labels[static_cast<std::size_t>(example_)];
  text_->setText(tr("<b>Validation example %1</b><br>class %2 (%3)%4<br>%5 of the %6 shown "
                    "training images are in both lists")
                     .arg(example_)
                     .arg(label)
                     .arg(QString::fromStdString(val.class_name(label)).toHtmlEscaped())
                     .arg(patched ? tr("<br><span style='color:#f08a00'>carries the planted "
                                       "patch</span>")
                                  : QString())
                     .arg(shared)
                     .arg(std::max(lists[0].size(), lists[1].size())));
}

}  // namespace modeldiff::ui
