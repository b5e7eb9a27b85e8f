// Thumbnails of dataset examples for QListViews in icon mode: the training examples with the
// largest or smallest loadings along a direction, the validation examples with the largest
// projections.
//
// ThumbnailCache renders core::display_image() thumbnails on worker threads (QtConcurrent) and
// keeps them in a QCache on the GUI thread; a patched image (planted patch) gets a thin orange
// frame. ImageGridModel lists the first k of a list of indices; its DecorationRole is the
// cached thumbnail (a grey placeholder until the worker delivers it).
#pragma once

#include <QAbstractListModel>
#include <QCache>
#include <QHash>
#include <QImage>
#include <QListView>
#include <QPixmap>
#include <QSet>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/data/image_dataset.h"

namespace modeldiff::ui {

// One dataset's thumbnails, `size` x `size` pixels.
class ThumbnailCache : public QObject {
  Q_OBJECT

 public:
  // `patched`: the indices carrying the planted patch, ascending (may be null).
  ThumbnailCache(std::shared_ptr<const core::ImageDataset> data,
                 std::shared_ptr<const std::vector<std::int64_t>> patched, int size,
                 QObject* parent = nullptr);

  const core::ImageDataset& dataset() const { return *data_; }
  bool isPatched(std::int64_t index) const;
  int size() const { return size_; }

  // The cached thumbnail, or a null pixmap (then rendering is queued).
  QPixmap thumbnail(std::int64_t index);
  // Queues rendering of those not cached yet (one background job per call).
  void request(const std::vector<std::int64_t>& indices);
  // Whether a background job is still running.
  bool busy() const { return !in_flight_.isEmpty(); }
  // Why image `index` could not be rendered ("" when it was, or has not been tried). Such an
  // image keeps the placeholder and is not tried again.
  QString error(std::int64_t index) const;

  // The thumbnail of one image, as the workers render it (thread-safe, no GUI objects).
  // Throws core::InputError for an image that cannot be shown (see datasetImage()).
  static QImage render(const core::ImageDataset& data, std::int64_t index, int size, bool patched);

 Q_SIGNALS:
  void thumbnailsReady();
  // Some images of the last job could not be rendered: the first one's message.
  void renderFailed(const QString& message);

 private:
  std::shared_ptr<const core::ImageDataset> data_;
  std::shared_ptr<const std::vector<std::int64_t>> patched_;
  int size_;
  QCache<qint64, QPixmap> cache_;
  QSet<qint64> in_flight_;
  QHash<qint64, QString> errors_;
};

class ImageGridModel : public QAbstractListModel {
  Q_OBJECT

 public:
  enum Role { kIndexRole = Qt::UserRole + 1, kValueRole, kPatchedRole };

  explicit ImageGridModel(QObject* parent = nullptr);

  // The dataset's thumbnails (null: no images, captions only).
  void setCache(ThumbnailCache* cache);
  ThumbnailCache* cache() const { return cache_; }
  // What the values are ("loading", "score").
  QString valueName() const { return value_name_; }
  // What the grid lists (in order) and each item's value, e.g. "loading". `values` is empty or
  // as long as `indices`.
  void setItems(std::vector<std::int64_t> indices, std::vector<double> values,
                const QString& value_name, const QString& example_kind);
  // Shows the first k items (all when k exceeds them).
  void setLimit(int k);
  int limit() const { return limit_; }
  int available() const { return static_cast<int>(indices_.size()); }

  std::vector<std::int64_t> shownIndices() const;
  int patchedCount() const;  // among the shown items

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;

 private:
  void requestShown();
  ThumbnailCache* cache_ = nullptr;
  std::vector<std::int64_t> indices_;
  std::vector<double> values_;
  QString value_name_, example_kind_;
  int limit_ = 10;
  QPixmap placeholder_;
};

// A QListView in icon mode showing `model`'s thumbnails (`thumbnail` pixels) with their
// captions: one strip scrolled sideways, or wrapped into rows.
QListView* makeGridView(ImageGridModel* model, int thumbnail, bool wrapping);

}  // namespace modeldiff::ui
