// The example inspector: one validation image and the training images that influence it most
// under algorithm A and under algorithm B, side by side, each with its TRAK score (the run's
// scores/A.npy and scores/B.npy; the ranking is core::top_k_indices over the example's row).
// The highest scores are the examples that push its prediction towards its label; the lowest,
// those that push it away.
#pragma once

#include <QWidget>
#include <cstdint>
#include <memory>
#include <vector>

class QComboBox;
class QLabel;
class QListView;
class QSpinBox;

namespace modeldiff::ui {

class ImageGridModel;
class ThumbnailCache;
struct RunData;

class ExampleInspector : public QWidget {
  Q_OBJECT

 public:
  explicit ExampleInspector(QWidget* parent = nullptr);

  // The run to inspect (null clears) and the thumbnails of its training images.
  void setRun(std::shared_ptr<const RunData> run, ThumbnailCache* train_thumbnails);
  // Shows validation example `index` (-1 clears).
  void showExample(std::int64_t index);
  std::int64_t example() const { return example_; }

  // The k training indices with the highest (lowest when `lowest`) scores in row `index` of
  // algorithm `algorithm`'s score matrix (0 = A, 1 = B), best first. Empty without scores.
  std::vector<std::int64_t> influencers(int algorithm, std::int64_t index, int k,
                                        bool lowest) const;

  ImageGridModel* gridModel(int algorithm) const { return models_[algorithm]; }
  QListView* gridView(int algorithm) const { return views_[algorithm]; }
  QLabel* gridTitle(int algorithm) const { return titles_[algorithm]; }
  QLabel* imageLabel() const { return image_; }
  QLabel* textLabel() const { return text_; }
  QSpinBox* countBox() const { return count_; }
  QComboBox* orderBox() const { return order_; }

 private:
  // Shows the current example; whatever it throws is said in the text instead.
  void refresh();
  void showCurrent();

  std::shared_ptr<const RunData> run_;
  std::int64_t example_ = -1;
  QLabel* image_;
  QLabel* text_;
  QSpinBox* count_;
  QComboBox* order_;
  QLabel* titles_[2];
  QListView* views_[2];
  ImageGridModel* models_[2];
};

}  // namespace modeldiff::ui
