// The main window: opens a comparison's results and shows its distinguishing directions as a
// table beside the variance figure. Loading runs on a worker thread; the GUI thread only
// receives the finished summary.
#pragma once

#include <QFutureWatcher>
#include <QMainWindow>
#include <memory>

#include "core/diff/diff_summary.h"

class QLabel;
class QTableView;

namespace modeldiff::ui {

class DirectionTableModel;
class VariancePlot;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  // Starts loading a result directory (or its summary.json) in the background.
  void openResult(const QString& path);

  DirectionTableModel* directionModel() const { return model_; }
  QTableView* directionView() const { return table_; }
  VariancePlot* variancePlot() const { return plot_; }

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
    std::shared_ptr<const core::DiffSummary> summary;
    QString error;
  };

  void chooseResult();
  void onLoaded();
  void onRowSelected();
  void showAbout();

  DirectionTableModel* model_;
  QTableView* table_;
  VariancePlot* plot_;
  QLabel* header_;
  QFutureWatcher<LoadOutcome> loader_;
};

}  // namespace modeldiff::ui
