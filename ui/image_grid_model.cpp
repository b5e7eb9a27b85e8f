#include "image_grid_model.h"

#include <QFutureWatcher>
#include <QPainter>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <utility>

#include "dataset_image.h"
#include "error_reporting.h"

namespace modeldiff::ui {

namespace {
const QColor kPatchColour(0xf0, 0x8a, 0x00);
struct Thumbnail {
  std::int64_t index = 0;
  QImage image;   // null when it could not be rendered
  QString error;  // then why
};
using Rendered = std::vector<Thumbnail>;
}  // namespace

ThumbnailCache::ThumbnailCache(std::shared_ptr<const core::ImageDataset> data,
                               std::shared_ptr<const std::vector<std::int64_t>> patched, int size,
                               QObject* parent)
    : QObject(parent), data_(std::move(data)), patched_(std::move(patched)), size_(size) {
  cache_.setMaxCost(4000);  // thumbnails, each of cost 1
}

bool ThumbnailCache::isPatched(std::int64_t index) const {
  return patched_ && std::binary_search(patched_->begin(), patched_->end(), index);
}

QPixmap ThumbnailCache::thumbnail(std::int64_t index) {
  if (const QPixmap* p = cache_.object(index)) return *p;
  request({index});
  return {};
}

void ThumbnailCache::request(const std::vector<std::int64_t>& indices) {
  std::vector<std::pair<std::int64_t, bool>> todo;
  for (std::int64_t i : indices)
    if (!cache_.contains(i) && !in_flight_.contains(i) && !errors_.contains(i) && i >= 0 &&
        i < data_->size()) {
      in_flight_.insert(i);
      todo.emplace_back(i, isPatched(i));
    }
  if (todo.empty()) return;
  auto* watcher = new QFutureWatcher<Rendered>(this);
  connect(watcher, &QFutureWatcher<Rendered>::finished, this, [this, watcher]() {
    QString first_error;
    for (const Thumbnail& t : watcher->result()) {
      in_flight_.remove(t.index);
      if (!t.image.isNull()) {
        cache_.insert(t.index, new QPixmap(QPixmap::fromImage(t.image)));
      } else {
        // Not rendered again: the item shows the placeholder and says why in its tooltip.
        const QString why = t.error.isEmpty() ? tr("the thumbnail could not be drawn") : t.error;
        errors_.insert(t.index, why);
        if (first_error.isEmpty()) first_error = why;
      }
    }
    watcher->deleteLater();
    Q_EMIT thumbnailsReady();
    if (!first_error.isEmpty()) Q_EMIT renderFailed(first_error);
  });
  // The job holds the dataset, so it may outlive this cache (a newly opened run).
  watcher->setFuture(QtConcurrent::run([data = data_, todo = std::move(todo), size = size_]() {
    Rendered out;
    for (const auto& [index, patched] : todo) {
      Thumbnail t;
      t.index = index;
      try {
        t.image = render(*data, index, size, patched);
      } catch (...) {
        t.image = QImage();
        t.error = currentError().message;
      }
      out.push_back(std::move(t));
    }
    return out;
  }));
}

QString ThumbnailCache::error(std::int64_t index) const {
  return errors_.value(index);
}

QImage ThumbnailCache::render(const core::ImageDataset& data, std::int64_t index, int size,
                              bool patched) {
  QImage image = datasetImage(data, index);
  const int w = image.width(), h = image.height();
  // Nearest neighbour when enlarging keeps 28 x 28 pixels crisp; smooth when shrinking.
  const bool enlarge = w <= size && h <= size;
  image = image.scaled(size, size, Qt::KeepAspectRatio,
                       enlarge ? Qt::FastTransformation : Qt::SmoothTransformation);
  QImage framed(size, size, QImage::Format_RGB32);
  framed.fill(Qt::white);
  QPainter painter(&framed);
  painter.drawImage((size - image.width()) / 2, (size - image.height()) / 2, image);
  if (patched) {
    painter.setPen(QPen(kPatchColour, 3));
    painter.setBrush(Qt::NoBrush);
    painter.drawRect(QRectF(1.5, 1.5, size - 3, size - 3));
  }
  return framed;
}

ImageGridModel::ImageGridModel(QObject* parent) : QAbstractListModel(parent) {}

void ImageGridModel::setCache(ThumbnailCache* cache) {
  beginResetModel();
  if (cache_ != nullptr) disconnect(cache_, nullptr, this, nullptr);
  cache_ = cache;
  placeholder_ = QPixmap();
  if (cache_ != nullptr) {
    placeholder_ = QPixmap(cache_->size(), cache_->size());
    placeholder_.fill(QColor(0xee, 0xee, 0xee));
    connect(cache_, &ThumbnailCache::thumbnailsReady, this, [this]() {
      if (rowCount() > 0) Q_EMIT dataChanged(index(0), index(rowCount() - 1), {Qt::DecorationRole});
    });
    connect(cache_, &QObject::destroyed, this, [this]() { setCache(nullptr); });
  }
  endResetModel();
  requestShown();
}

void ImageGridModel::setItems(std::vector<std::int64_t> indices, std::vector<double> values,
                              const QString& value_name, const QString& example_kind) {
  beginResetModel();
  indices_ = std::move(indices);
  values_ = std::move(values);
  if (values_.size() != indices_.size()) values_.clear();
  value_name_ = value_name;
  example_kind_ = example_kind;
  endResetModel();
  requestShown();
}

void ImageGridModel::setLimit(int k) {
  k = std::max(0, k);
  if (k == limit_) return;
  beginResetModel();
  limit_ = k;
  endResetModel();
  requestShown();
}

void ImageGridModel::requestShown() {
  if (cache_ != nullptr) cache_->request(shownIndices());
}

std::vector<std::int64_t> ImageGridModel::shownIndices() const {
  return {indices_.begin(), indices_.begin() + rowCount()};
}

int ImageGridModel::patchedCount() const {
  if (cache_ == nullptr) return 0;
  int count = 0;
  for (std::int64_t i : shownIndices()) count += cache_->isPatched(i) ? 1 : 0;
  return count;
}

int ImageGridModel::rowCount(const QModelIndex& parent) const {
  if (parent.isValid()) return 0;
  return std::min(limit_, static_cast<int>(indices_.size()));
}

QVariant ImageGridModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const auto row = static_cast<std::size_t>(index.row());
  const std::int64_t i = indices_[row];
  const bool patched = cache_ != nullptr && cache_->isPatched(i);
  QString label;
  if (cache_ != nullptr && i >= 0 && i < cache_->dataset().size())
    label = QString::fromStdString(
        cache_->dataset().class_name(cache_->dataset().labels[static_cast<std::size_t>(i)]));
  switch (role) {
    case kIndexRole:
      return QVariant::fromValue<qint64>(i);
    case kValueRole:
      return values_.empty() ? QVariant() : QVariant(values_[row]);
    case kPatchedRole:
      return patched;
    case Qt::DisplayRole:
      return label.isEmpty() ? QStringLiteral("#%1").arg(i)
                             : QStringLiteral("#%1 %2").arg(i).arg(label);
    case Qt::ToolTipRole: {
      QString tip = tr("%1 #%2").arg(example_kind_).arg(i);
      if (!label.isEmpty()) tip += tr("\nclass: %1").arg(label);
      if (!values_.empty())
        tip += QStringLiteral("\n%1: %2").arg(value_name_).arg(values_[row], 0, 'g', 4);
      if (patched) tip += tr("\ncarries the planted patch");
      if (cache_ != nullptr && !cache_->error(i).isEmpty())
        tip += tr("\ncannot be shown: %1").arg(cache_->error(i));
      return tip;
    }
    case Qt::DecorationRole: {
      if (cache_ == nullptr) return {};
      const QPixmap p = cache_->thumbnail(i);
      return p.isNull() ? placeholder_ : p;
    }
    default:
      return {};
  }
}

QListView* makeGridView(ImageGridModel* model, int thumbnail, bool wrapping) {
  auto* view = new QListView;
  view->setModel(model);
  view->setViewMode(QListView::IconMode);
  view->setIconSize(QSize(thumbnail, thumbnail));
  view->setGridSize(QSize(thumbnail + 20, thumbnail + 22));
  view->setMovement(QListView::Static);
  view->setResizeMode(QListView::Adjust);
  view->setWrapping(wrapping);
  view->setFlow(QListView::LeftToRight);
  view->setUniformItemSizes(true);
  view->setWordWrap(false);
  view->setTextElideMode(Qt::ElideRight);
  view->setSelectionMode(QAbstractItemView::SingleSelection);
  view->setMinimumHeight(thumbnail + 30);
  return view;
}

}  // namespace modeldiff::ui
