// The main window: opens a project file (and runs it in the background, with a progress
// panel), a run folder (run.json from `modeldiff run` / `modeldiff demo`) or a
// single comparison's result folder. Left: the comparison selector and the table of
// distinguishing directions; right: the variance figure above three image grids for the
// selected direction (training images with the largest and the smallest loadings, validation
// images with the largest projections). Loading runs on a worker thread and thumbnails are
// rendered on workers; the GUI thread only receives finished data.
#pragma once

#include <QFutureWatcher>
#include <QMainWindow>
#include <memory>

#include "core/base/error_report.h"
#include "run_data.h"

class QAction;
class QComboBox;
class QDockWidget;
class QLabel;
class QListView;
class QMenu;
class QPushButton;
class QCustomPlot;
class QSpinBox;
class QTabWidget;
class QTableView;

namespace modeldiff::ui {

class CosineHistogram;
class ExampleInspector;
class JobPanel;
class RunJob;
class CounterfactualPanel;
class ProjectionPlot;
class DirectionTableModel;
class ImageGridModel;
class ThumbnailCache;
class VariancePlot;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  enum Grid { kTopTrain, kBottomTrain, kTopVal, kBottomVal, kGridCount };

  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  // Starts loading `path` in the background: a run folder (or its run.json) or a result
  // folder (or its summary.json). Ignored while another load is running (returns false).
  bool open(const QString& path);
  // The same, for a single diff result folder.
  bool openResult(const QString& path);

  // Projects (core/pipeline/project.h): a JSON file naming the data, the two algorithms and
  // the settings. Opening one shows its results when its run folder holds them; otherwise
  // the header offers to run it. False (with an error message, nothing else changed) for a
  // file that cannot be read or is not a valid project.
  bool openProject(const QString& path);
  // Makes `json` the current project (as from the set-up dialog); `path` is its file ("" =
  // not saved yet), `base_dir` where its relative paths resolve. False when it is invalid.
  bool setProject(const QString& json, const QString& base_dir, const QString& path = {});
  QString projectPath() const { return project_path_; }
  QString projectJson() const { return project_json_; }
  // The current project's run folder (absolute; "" without a project).
  QString projectOutput() const { return project_output_; }
  // Writes the current project atomically (QSaveFile) to its file / to `path`.
  bool saveProject();
  bool saveProjectAs(const QString& path);
  // Starts the current project's run in the background; its results open when it finishes.
  bool runProject();
  // Help > Open Demo: the built-in Fashion-MNIST comparison in `folder` (default: the
  // application's data folder): opens its results, or runs it first as a job (minutes).
  // `study`: one of core::study_names() (the menu lists them, actions "openDemo-<study>";
  // default folder demo-<study>); empty: the planted demo (action "openDemo-planted").
  bool openDemo(const QString& folder = {}, const QString& study = {});
  RunJob* job() const { return job_; }
  JobPanel* jobPanel() const { return job_panel_; }
  QLabel* headerLabel() const { return header_; }

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
  // The example inspector (a dock beside the transformation panel): a validation example's top
  // influencers under A and B. A clicked projection point or validation image shows there.
  ExampleInspector* inspector() const { return inspector_; }
  // Writes grid `grid` (title, images, captions) as a figure: .png (scale x), .svg or .pdf.
  bool exportGrid(Grid grid, const QString& path, double scale = 2);
  // The grid's title as plain text (the figure's title).
  QString gridFigureTitle(Grid grid) const;
  // The figures' tabs: "Variance", "Projections", "Cosine".
  QTabWidget* plotTabs() const { return plot_tabs_; }
  ProjectionPlot* projectionPlot() const { return projection_; }
  CosineHistogram* cosineHistogram() const { return cosine_; }
  // The projection plot's components (1-based): axis 0 = x, 1 = y.
  QSpinBox* projectionComponentBox(int axis) const { return axis == 0 ? proj_x_ : proj_y_; }
  // ModelDiff of the examples selected on the projection plot (at least 3, a run with score
  // files) as a job; when it finishes, the comparison joins the list and is selected. Its
  // result is kept in the run folder (diff/selection-<n>) and listed when the run reopens.
  // False (nothing started) without such a selection or while a job runs.
  bool compareSelection();
  QPushButton* regionButton() const { return region_button_; }
  QPushButton* compareSelectionButton() const { return compare_button_; }
  // The example box: the clicked validation example's text (index, class, projections).
  QLabel* exampleText() const { return example_text_; }
  QLabel* exampleImage() const { return example_image_; }
  // Shows projections row `row` of the current comparison in the example box (-1 clears).
  void showExample(int row);
  // The figure of the visible tab.
  QCustomPlot* currentFigure() const;
  // Writes the visible figure to `path`, the format from its extension: .png (width * scale x
  // height * scale pixels), .svg or .pdf (width x height). False when it cannot be written.
  bool exportFigure(const QString& path, int width, int height, double scale = 1.0);
  // Puts the visible figure on the clipboard as an image.
  void copyFigure();
  // Whether thumbnails are still being rendered.
  bool thumbnailsPending() const;

 Q_SIGNALS:
  void resultLoaded(const QString& path);
  void loadFailed(const QString& message);
  // A project became current (opened, set up, or the demo).
  void projectChanged(const QString& path);

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;
  void closeEvent(QCloseEvent* event) override;

 private:
  struct LoadOutcome {
    QString path;
    std::shared_ptr<const RunData> run;
    QString error;
    core::ErrorKind kind = core::ErrorKind::kInput;  // of the error
  };
  struct GridWidgets {
    QLabel* title = nullptr;
    QListView* view = nullptr;
    ImageGridModel* model = nullptr;
  };

  bool startLoading(const QString& path, bool as_run);
  QWidget* buildImagePanel();
  void chooseFolder();
  void onLoaded(QFutureWatcher<LoadOutcome>* watcher);
  void showLoaded(const LoadOutcome& outcome);
  bool startSelectionJob();
  void onComparisonChanged(int comparison);
  void onRowSelected();
  void updateGrids();
  void updatePatchLabel();
  QWidget* buildPlotTabs();
  void updateProjections();
  void chooseExportFile();
  void showFigureMenu(QCustomPlot* plot, const QPoint& pos);
  // A save dialog for a figure (PNG, SVG or PDF); "" when cancelled.
  QString chooseFigureFile(const QString& title);
  void showGridMenu(QListView* view, const ImageGridModel* model, const QString& title,
                    const QPoint& pos);
  void inspectValidation(std::int64_t index);
  void updateDirectionImages();
  void rememberRecent(const QString& path);
  void fillRecentMenu();
  void showAbout();
  void newProject();
  void editProject();
  void chooseProjectFile();
  void chooseSaveFile();
  void showProjectHeader();
  void adoptProject(const QString& json, const QString& base_dir, const QString& path,
                    const QString& name, const QString& output);
  void onJobFinished(const QString& output);
  void onJobFailed(const QString& message);
  void updateJobActions();
  void updateRegionControls();
  void showError(const QString& title, const QString& message,
                 core::ErrorKind kind = core::ErrorKind::kInput);

  DirectionTableModel* model_;
  QTableView* table_;
  VariancePlot* plot_;
  QTabWidget* plot_tabs_ = nullptr;
  ProjectionPlot* projection_ = nullptr;
  CosineHistogram* cosine_ = nullptr;
  QSpinBox* proj_x_ = nullptr;
  QSpinBox* proj_y_ = nullptr;
  QLabel* example_image_ = nullptr;
  QLabel* example_text_ = nullptr;
  int projection_set_ = -1;  // the set the projection plot shows (-1: reset the components)
  int example_row_ = -1;     // the example box's projections row
  QLabel* header_;
  QComboBox* comparisons_;
  QLabel* comparison_info_;
  QSpinBox* count_;
  QLabel* patch_;
  GridWidgets grids_[kGridCount];
  QMenu* recent_ = nullptr;
  CounterfactualPanel* counterfactual_ = nullptr;
  ExampleInspector* inspector_ = nullptr;
  QDockWidget* inspector_dock_ = nullptr;
  int wanted_count_ = 10;  // the k the user chose; a grid shows fewer when fewer are stored
  ThumbnailCache* train_thumbnails_ = nullptr;
  ThumbnailCache* val_thumbnails_ = nullptr;
  std::shared_ptr<const RunData> run_;
  // The load in flight (null when none). Opening something else meanwhile supersedes it: its
  // watcher is dropped and its outcome, when it comes, with it.
  QFutureWatcher<LoadOutcome>* loader_ = nullptr;
  RunJob* job_ = nullptr;
  JobPanel* job_panel_ = nullptr;
  QDockWidget* job_dock_ = nullptr;
  QString project_json_, project_dir_, project_path_, project_name_, project_output_;
  QAction* save_action_ = nullptr;
  QAction* save_as_action_ = nullptr;
  QAction* edit_action_ = nullptr;
  QAction* run_action_ = nullptr;
  QAction* cancel_action_ = nullptr;
  QPushButton* region_button_ = nullptr;
  QPushButton* compare_button_ = nullptr;
  QLabel* region_label_ = nullptr;
  // The comparison a running selection job fills (null for other jobs).
  std::shared_ptr<Comparison> pending_comparison_;
  QString pending_run_folder_;  // the run folder it belongs to (clean path)
};

}  // namespace modeldiff::ui
