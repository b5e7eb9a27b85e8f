// The main window: opens a run folder (run.json from `modeldiff run` / `modeldiff demo`) or a
// single comparison's result folder. Left: the comparison selector and the table of
// distinguishing directions; right: the variance figure above three image grids for the
// selected direction (training images with the largest and the smallest loadings, validation
// images with the largest projections). Loading runs on a worker thread and thumbnails are
// rendered on workers; the GUI thread only receives finished data.
#pragma once

#include <QFutureWatcher>
#include <QMainWindow>
#include <memory>

#include "run_data.h"

class QComboBox;
class QLabel;
class QListView;
class QMenu;
class QSpinBox;
class QTableView;

namespace modeldiff::ui {

class CounterfactualPanel;
class DirectionTableModel;
class ImageGridModel;
class ThumbnailCache;
class VariancePlot;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  enum Grid { kTopTrain, kBottomTrain, kTopVal, kGridCount };

  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  // Starts loading `path` in the background: a run folder (or its run.json) or a result
  // folder (or its summary.json). Ignored while another load is running (returns false).
  bool open(const QString& path);
  // The same, for a single diff result folder.
  bool openResult(const QString& path);

  // The loaded run or result (null before the first successful load).
  const RunData* run() const { return run_.get(); }
  int currentComparison() const;
  void selectComparison(int comparison);
  // Selects a direction (set 0 = first minus second, 1 = the reverse) in the table.
  void selectDirection(int set, int component);

  DirectionTableModel* directionModel() const { return model_; }
  QTableView* directionView() const { return table_; }
  VariancePlot* variancePlot() const { return plot_; }
  QComboBox* comparisonBox() const { return comparisons_; }
  QSpinBox* imageCountBox() const { return count_; }
  ImageGridModel* gridModel(Grid grid) const { return grids_[grid].model; }
  QListView* gridView(Grid grid) const { return grids_[grid].view; }
  QLabel* gridTitle(Grid grid) const { return grids_[grid].title; }
  QLabel* patchLabel() const { return patch_; }
  // The "test a transformation" panel (a dock on the right).
  CounterfactualPanel* counterfactualPanel() const { return counterfactual_; }
  // Whether thumbnails are still being rendered.
  bool thumbnailsPending() const;

 Q_SIGNALS:
  void resultLoaded(const QString& path);
  void loadFailed(const QString& message);

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;
  void closeEvent(QCloseEvent* event) override;

 private:
  struct LoadOutcome {
    QString path;
    std::shared_ptr<const RunData> run;
    QString error;
  };
  struct GridWidgets {
    QLabel* title = nullptr;
    QListView* view = nullptr;
    ImageGridModel* model = nullptr;
  };

  bool startLoading(const QString& path, bool as_run);
  QWidget* buildImagePanel();
  void chooseFolder();
  void onLoaded();
  void onComparisonChanged(int comparison);
  void onRowSelected();
  void updateGrids();
  void updatePatchLabel();
  void updateDirectionImages();
  void rememberRecent(const QString& path);
  void fillRecentMenu();
  void showAbout();

  DirectionTableModel* model_;
  QTableView* table_;
  VariancePlot* plot_;
  QLabel* header_;
  QComboBox* comparisons_;
  QLabel* comparison_info_;
  QSpinBox* count_;
  QLabel* patch_;
  GridWidgets grids_[kGridCount];
  QMenu* recent_ = nullptr;
  CounterfactualPanel* counterfactual_ = nullptr;
  int wanted_count_ = 10;  // the k the user chose; a grid shows fewer when fewer are stored
  ThumbnailCache* train_thumbnails_ = nullptr;
  ThumbnailCache* val_thumbnails_ = nullptr;
  std::shared_ptr<const RunData> run_;
  QFutureWatcher<LoadOutcome> loader_;
};

}  // namespace modeldiff::ui
