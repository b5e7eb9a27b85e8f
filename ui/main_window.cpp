#include "main_window.h"

#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListView>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollBar>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QStatusBar>
#include <QSvgGenerator>
#include <QTabWidget>
#include <QTableView>
#include <QTextDocumentFragment>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <limits>

#include "analysis_plots.h"
#include "core/base/error.h"
#include "core/base/output_directory.h"
#include "core/base/percent.h"
#include "core/base/sha256.h"
#include "core/diff/diff_output.h"
#include "core/diff/diff_summary.h"
#include "core/diff/model_diff.h"
#include "core/pipeline/project.h"
#include "counterfactual_panel.h"
#include "direction_table_model.h"
#include "error_reporting.h"
#include "example_inspector.h"
#include "grid_figure.h"
#include "image_grid_model.h"
#include "job_panel.h"
#include "project_dialog.h"
#include "run_job.h"
#include "variance_plot.h"
#if MODELDIFF_UI_RUNS
#include "core/pipeline/demo_paths.h"
#endif

namespace modeldiff::ui {

namespace {

const QString kRecentKey = QStringLiteral("recentRuns");
constexpr int kMaxRecent = 8;
constexpr int kThumbnail = 64;

// The GUI's data mark a share that is not known with a negative value: shown as "?".
QString percent(double share) {
  return QString::fromStdString(
      core::format_percent(share < 0 ? std::numeric_limits<double>::quiet_NaN() : share, 1, "?"));
}

// The projections' example box before a point is clicked; it also says what the rings mean.
QString clickAPointText() {
  return MainWindow::tr(
      "Click a point to see it here.<br><br><small>Ringed: the direction's top "
      "validation examples.</small>");
}

}  // namespace

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent),
      model_(new DirectionTableModel(this)),
      table_(new QTableView),
      plot_(new VariancePlot),
      header_(new QLabel),
      comparisons_(new QComboBox),
      comparison_info_(new QLabel),
      count_(new QSpinBox),
      patch_(new QLabel) {
  setWindowTitle(tr("ModelDiff Studio"));
  setWindowIcon(QIcon(QStringLiteral(":/icons/modeldiff.svg")));
  setAcceptDrops(true);

  table_->setModel(model_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setAlternatingRowColors(true);

  header_->setWordWrap(true);
  header_->setText(
      tr("<a href='new'>Set up a comparison</a> (File ▸ New Project), open a project, a run "
         "folder or a result folder (File ▸ Open, or drop it here), or "
         "<a href='demo'>open the Fashion-MNIST demo</a>."));
  header_->setTextFormat(Qt::RichText);
  header_->setMargin(6);

  comparisons_->setEnabled(false);
  comparisons_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  comparison_info_->setWordWrap(true);
  comparison_info_->setMargin(2);
  auto* selector = new QHBoxLayout;
  selector->setContentsMargins(6, 0, 6, 0);
  selector->addWidget(new QLabel(tr("Comparison:")));
  selector->addWidget(comparisons_, 1);

  auto* left = new QWidget;
  auto* layout = new QVBoxLayout(left);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(header_);
  layout->addLayout(selector);
  layout->addWidget(comparison_info_);
  layout->addWidget(table_, 1);

  auto* right = new QSplitter(Qt::Vertical);
  right->addWidget(buildPlotTabs());
  right->addWidget(buildImagePanel());
  right->setStretchFactor(0, 2);
  right->setStretchFactor(1, 3);
  right->setSizes({330, 520});
  plot_tabs_->setMinimumHeight(240);

  auto* splitter = new QSplitter;
  splitter->addWidget(left);
  splitter->addWidget(right);
  splitter->setStretchFactor(1, 1);
  splitter->setSizes({470, 930});
  setCentralWidget(splitter);

  counterfactual_ = new CounterfactualPanel;
  auto* dock = new QDockWidget(tr("Test a transformation"), this);
  dock->setObjectName(QStringLiteral("counterfactualDock"));
  dock->setWidget(counterfactual_);
  addDockWidget(Qt::RightDockWidgetArea, dock);
  resizeDocks({dock}, {440}, Qt::Horizontal);
  inspector_ = new ExampleInspector;
  inspector_dock_ = new QDockWidget(tr("Example inspector"), this);
  inspector_dock_->setObjectName(QStringLiteral("inspectorDock"));
  inspector_dock_->setWidget(inspector_);
  addDockWidget(Qt::RightDockWidgetArea, inspector_dock_);
  tabifyDockWidget(dock, inspector_dock_);
  dock->raise();
  for (int i = 0; i < 2; ++i) {
    QListView* view = inspector_->gridView(i);
    view->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(view, &QWidget::customContextMenuRequested, this, [this, i, view](const QPoint& pos) {
      showGridMenu(view, inspector_->gridModel(i),
                   QTextDocumentFragment::fromHtml(inspector_->gridTitle(i)->text()).toPlainText() +
                       tr(" (validation example %1)").arg(inspector_->example()),
                   pos);
    });
  }

  job_ = new RunJob(this);
  job_panel_ = new JobPanel(job_);
  job_dock_ = new QDockWidget(tr("Job"), this);
  job_dock_->setObjectName(QStringLiteral("jobDock"));
  job_dock_->setWidget(job_panel_);
  addDockWidget(Qt::BottomDockWidgetArea, job_dock_);
  job_dock_->hide();
  connect(job_, &RunJob::started, this, [this]() {  // whatever started it
    job_dock_->show();
    job_dock_->raise();
    updateJobActions();
  });
  connect(job_, &RunJob::finished, this, &MainWindow::onJobFinished);
  connect(job_, &RunJob::failed, this, &MainWindow::onJobFailed);
  connect(job_, &RunJob::cancelled, this, [this]() {
    pending_comparison_.reset();
    statusBar()->showMessage(tr("Job cancelled; what finished is kept in %1").arg(job_->output()));
    updateJobActions();
  });
  connect(job_, &RunJob::progressed, this, [this](double fraction, const QString& step) {
    statusBar()->showMessage(tr("Running: %1 (%2%)").arg(step).arg(qRound(100 * fraction)));
  });

  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&New Project…"), QKeySequence::New, this, &MainWindow::newProject);
  file->addAction(tr("&Open Project or Result File…"), QKeySequence::Open, this,
                  &MainWindow::chooseProjectFile);
  file->addAction(tr("Open Run or Result &Folder…"), this, &MainWindow::chooseFolder);
  recent_ = file->addMenu(tr("Open &Recent"));
  connect(recent_, &QMenu::aboutToShow, this, &MainWindow::fillRecentMenu);
  fillRecentMenu();
  save_action_ =
      file->addAction(tr("&Save Project"), QKeySequence::Save, this, [this]() { saveProject(); });
  save_as_action_ = file->addAction(tr("Save Project &As…"), QKeySequence::SaveAs, this,
                                    &MainWindow::chooseSaveFile);
  file->addSeparator();
  file->addAction(tr("&Export Figure…"), this, &MainWindow::chooseExportFile);
  file->addAction(tr("&Copy Figure"), this, &MainWindow::copyFigure);
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
  QMenu* project = menuBar()->addMenu(tr("&Project"));
  edit_action_ = project->addAction(tr("&Edit Comparison…"), this, &MainWindow::editProject);
  run_action_ = project->addAction(tr("&Run"), QKeySequence(Qt::CTRL | Qt::Key_R), this,
                                   [this]() { runProject(); });
  cancel_action_ = project->addAction(tr("&Cancel Job"), this, [this]() { job_->cancel(); });
  project->addSeparator();
  project->addAction(job_dock_->toggleViewAction());
  QMenu* help = menuBar()->addMenu(tr("&Help"));
  QMenu* demos = help->addMenu(tr("Open &Demo"));
  demos->setObjectName(QStringLiteral("demoMenu"));
  const std::pair<QString, QString> studies[] = {
      {QString(), tr("&Planted Patch (small CNN)")},
      {QStringLiteral("augmentation"), tr("&Augmentation: Crop + Flip vs None (ResNet-9)")},
      {QStringLiteral("pretraining"), tr("P&re-training vs From Scratch (ResNet-9)")},
      {QStringLiteral("sgd"), tr("&SGD: Large vs Small Learning Rate (ResNet-9)")}};
  for (const auto& [study, title] : studies) {
    QAction* action =
        demos->addAction(title, this, [this, study = study]() { openDemo({}, study); });
    action->setObjectName(QStringLiteral("openDemo-") +
                          (study.isEmpty() ? QStringLiteral("planted") : study));
  }
  help->addSeparator();
  help->addAction(tr("&About ModelDiff Studio"), this, &MainWindow::showAbout);
  connect(header_, &QLabel::linkActivated, this, [this](const QString& link) {
    if (link == QLatin1String("run")) runProject();
    if (link == QLatin1String("new")) newProject();
    if (link == QLatin1String("demo")) openDemo();
  });
  updateJobActions();

  connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this,
          &MainWindow::onRowSelected);
  connect(plot_, &VariancePlot::directionClicked, this,
          [this](int set, int component) { selectDirection(set, component); });
  connect(comparisons_, &QComboBox::currentIndexChanged, this, &MainWindow::onComparisonChanged);
  connect(count_, &QSpinBox::valueChanged, this, [this](int k) {
    wanted_count_ = k;
    for (GridWidgets& g : grids_) g.model->setLimit(k);
    updatePatchLabel();
    updateDirectionImages();
  });
  connect(proj_x_, &QSpinBox::valueChanged, this, &MainWindow::updateProjections);
  connect(proj_y_, &QSpinBox::valueChanged, this, &MainWindow::updateProjections);
  connect(projection_, &ProjectionPlot::rowClicked, this, &MainWindow::showExample);
  connect(projection_, &ProjectionPlot::regionChanged, this, &MainWindow::updateRegionControls);
  updateRegionControls();

  statusBar()->showMessage(tr("Ready"));
  QSettings settings;
  restoreGeometry(settings.value(QStringLiteral("mainWindow/geometry")).toByteArray());
  restoreState(settings.value(QStringLiteral("mainWindow/state")).toByteArray());
  job_dock_->hide();  // shown when a job starts
  if (!settings.contains(QStringLiteral("mainWindow/geometry"))) resize(1400, 900);
}

MainWindow::~MainWindow() {
  if (loader_ != nullptr) loader_->waitForFinished();
  delete job_;  // cancels a running job and waits for it
  job_ = nullptr;
}

QWidget* MainWindow::buildImagePanel() {
  auto* panel = new QWidget;
  auto* layout = new QVBoxLayout(panel);
  layout->setContentsMargins(6, 4, 6, 4);
  layout->setSpacing(2);

  count_->setRange(1, wanted_count_);
  count_->setValue(wanted_count_);
  count_->setEnabled(false);
  count_->setToolTip(tr("How many images each grid shows (at most what the result stores)"));
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Images per grid:")));
  controls->addWidget(count_);
  controls->addSpacing(16);
  controls->addWidget(patch_, 1);
  layout->addLayout(controls);

  for (GridWidgets& g : grids_) {
    g.title = new QLabel;
    g.title->setTextFormat(Qt::RichText);
    g.title->setWordWrap(true);
    g.model = new ImageGridModel(this);
    g.model->setLimit(count_->value());
    g.view = makeGridView(g.model, kThumbnail, false);  // strips: four fit on screen
    layout->addWidget(g.title);
    layout->addWidget(g.view, 1);
    g.view->setContextMenuPolicy(Qt::CustomContextMenu);
    const Grid grid = static_cast<Grid>(&g - grids_);
    connect(g.view, &QWidget::customContextMenuRequested, this, [this, grid](const QPoint& pos) {
      showGridMenu(grids_[grid].view, grids_[grid].model, gridFigureTitle(grid), pos);
    });
  }
  // A validation image opens in the example inspector.
  for (Grid grid : {kTopVal, kBottomVal})
    connect(grids_[grid].view, &QListView::clicked, this, [this](const QModelIndex& index) {
      inspectValidation(index.data(ImageGridModel::kIndexRole).toLongLong());
    });
  return panel;
}

QWidget* MainWindow::buildPlotTabs() {
  plot_tabs_ = new QTabWidget;
  plot_tabs_->setDocumentMode(true);
  plot_tabs_->addTab(plot_, tr("Variance"));

  projection_ = new ProjectionPlot;
  proj_x_ = new QSpinBox;
  proj_y_ = new QSpinBox;
  for (QSpinBox* box : {proj_x_, proj_y_}) {
    box->setRange(1, 1);
    box->setEnabled(false);
    box->setToolTip(tr("A direction of the selected direction's set (1 = the first)"));
  }
  auto* controls = new QHBoxLayout;
  controls->setContentsMargins(6, 2, 6, 0);
  controls->addWidget(new QLabel(tr("x: direction")));
  controls->addWidget(proj_x_);
  controls->addSpacing(12);
  controls->addWidget(new QLabel(tr("y: direction")));
  controls->addWidget(proj_y_);
  controls->addSpacing(12);
  region_button_ = new QPushButton(tr("Select Region"));
  region_button_->setCheckable(true);
  region_button_->setToolTip(
      tr("Drag a rectangle around validation examples to select them "
         "(instead of panning)"));
  compare_button_ = new QPushButton(tr("Compare Selected"));
  compare_button_->setToolTip(
      tr("ModelDiff of A and B over the selected validation examples "
         "only: a new comparison"));
  region_label_ = new QLabel;
  controls->addWidget(region_button_);
  controls->addWidget(region_label_);
  controls->addWidget(compare_button_);
  controls->addStretch(1);
  connect(region_button_, &QPushButton::toggled, this,
          [this](bool on) { projection_->setRegionSelection(on); });
  connect(compare_button_, &QPushButton::clicked, this, [this]() { compareSelection(); });

  auto* example = new QGroupBox(tr("Example"));
  example_image_ = new QLabel;
  example_image_->setFixedSize(96, 96);
  example_image_->setAlignment(Qt::AlignCenter);
  example_text_ = new QLabel(clickAPointText());
  example_text_->setWordWrap(true);
  example_text_->setTextFormat(Qt::RichText);
  example_text_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  auto* example_layout = new QVBoxLayout(example);
  example_layout->addWidget(example_image_, 0, Qt::AlignHCenter);
  example_layout->addWidget(example_text_, 1);
  example->setFixedWidth(170);

  auto* body = new QHBoxLayout;
  body->setContentsMargins(0, 0, 0, 0);
  body->addWidget(projection_, 1);
  body->addWidget(example);
  auto* page = new QWidget;
  auto* layout = new QVBoxLayout(page);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(2);
  layout->addLayout(controls);
  layout->addLayout(body, 1);
  plot_tabs_->addTab(page, tr("Projections"));

  cosine_ = new CosineHistogram;
  plot_tabs_->addTab(cosine_, tr("Cosine"));

  auto* export_button = new QPushButton(tr("Export…"));
  export_button->setToolTip(tr("Export the visible figure as PNG, SVG or PDF"));
  export_button->setFlat(true);
  connect(export_button, &QPushButton::clicked, this, &MainWindow::chooseExportFile);
  plot_tabs_->setCornerWidget(export_button, Qt::TopRightCorner);
  for (QCustomPlot* figure : std::initializer_list<QCustomPlot*>{plot_, projection_, cosine_}) {
    figure->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(figure, &QWidget::customContextMenuRequested, this,
            [this, figure](const QPoint& pos) { showFigureMenu(figure, pos); });
  }
  return plot_tabs_;
}

void MainWindow::updateProjections() {
  const int comparison = currentComparison();
  if (!run_ || comparison < 0) {
    projection_->setData(nullptr, nullptr, 0, 0, 1);
    for (QSpinBox* box : {proj_x_, proj_y_}) box->setEnabled(false);
    return;
  }
  const Comparison& comp = run_->comparisons[static_cast<std::size_t>(comparison)];
  const QModelIndexList rows = table_->selectionModel()->selectedRows();
  const int set =
      rows.isEmpty() ? 0 : rows.front().data(DirectionTableModel::kSetIndexRole).toInt();
  const int columns = static_cast<int>(comp.projection_columns[set]);
  if (set != projection_set_) {
    // A new set (or comparison): its first two directions.
    const QSignalBlocker block_x(proj_x_), block_y(proj_y_);
    for (QSpinBox* box : {proj_x_, proj_y_}) {
      box->setRange(1, std::max(columns, 1));
      box->setEnabled(columns > 0);
    }
    proj_x_->setValue(1);
    proj_y_->setValue(std::min(2, std::max(columns, 1)));
    projection_set_ = set;
  }
  projection_->setData(run_.get(), &comp, set, proj_x_->value() - 1, proj_y_->value() - 1);
  updateDirectionImages();  // the highlighted examples
  projection_->setSelectedRow(example_row_);
  if (example_row_ >= 0) showExample(example_row_);
}

void MainWindow::showExample(int row) {
  const int comparison = currentComparison();
  const Comparison* comp =
      run_ && comparison >= 0 ? &run_->comparisons[static_cast<std::size_t>(comparison)] : nullptr;
  if (comp == nullptr || row < 0 || static_cast<std::size_t>(row) >= comp->target_rows.size()) {
    example_row_ = -1;
    example_image_->clear();
    example_text_->setText(clickAPointText());
    projection_->setSelectedRow(-1);
    return;
  }
  example_row_ = row;
  const std::int64_t index = comp->target_rows[static_cast<std::size_t>(row)];
  if (inspector_->example() != index) inspectValidation(index);
  QString cls = tr("unknown");
  example_image_->clear();
  if (run_->val && index >= 0 && index < run_->val->size()) {
    cls = QString::fromStdString(
        run_->val->class_name(run_->val->labels[static_cast<std::size_t>(index)]));
    try {
      example_image_->setPixmap(QPixmap::fromImage(
          ThumbnailCache::render(*run_->val, index, 96, run_->isPatchedVal(index))));
      example_image_->setToolTip(QString());
    } catch (...) {
      example_image_->setText(tr("(no image)"));
      example_image_->setToolTip(currentError().message);
    }
  }
  const QPointF point = projection_->pointOf(row);
  example_text_->setText(tr("Validation example <b>%1</b><br>class: %2<br>direction %3: "
                            "%4<br>direction %5: %6")
                             .arg(index)
                             .arg(cls.toHtmlEscaped())
                             .arg(proj_x_->value())
                             .arg(point.x(), 0, 'g', 4)
                             .arg(proj_y_->value())
                             .arg(point.y(), 0, 'g', 4));
  projection_->setSelectedRow(row);
}

QCustomPlot* MainWindow::currentFigure() const {
  switch (plot_tabs_->currentIndex()) {
    case 1:
      return projection_;
    case 2:
      return cosine_;
    default:
      return plot_;
  }
}

bool MainWindow::exportFigure(const QString& path, int width, int height, double scale) {
  QCustomPlot* figure = currentFigure();
  const QString suffix = QFileInfo(path).suffix().toLower();
  bool ok = false;
  if (suffix == QStringLiteral("png")) {
    // The file records its resolution: `scale` x 96 dpi (2x = 192 dpi prints at the size shown).
    ok = figure->savePng(path, width, height, scale, -1, qRound(96 * scale));
  } else if (suffix == QStringLiteral("pdf")) {
    ok = figure->savePdf(path, width, height);
  } else if (suffix == QStringLiteral("svg")) {
    QSvgGenerator generator;
    generator.setFileName(path);
    generator.setSize(QSize(width, height));
    generator.setViewBox(QRect(0, 0, width, height));
    generator.setTitle(plot_tabs_->tabText(plot_tabs_->currentIndex()));
    generator.setDescription(tr("ModelDiff Studio figure"));
    QCPPainter painter;
    if (painter.begin(&generator)) {
      figure->toPainter(&painter, width, height);
      ok = painter.end();
    }
  }
  statusBar()->showMessage(ok ? tr("Figure written to %1").arg(path)
                              : tr("Could not write the figure to %1").arg(path));
  return ok;
}

void MainWindow::copyFigure() {
  QCustomPlot* figure = currentFigure();
  QGuiApplication::clipboard()->setImage(
      figure->toPixmap(figure->width(), figure->height(), 2.0).toImage());
  statusBar()->showMessage(tr("Figure copied to the clipboard"));
}

void MainWindow::chooseExportFile() {
  // Size and resolution first, then the file (its extension picks the format).
  const QCustomPlot* figure = currentFigure();
  QDialog dialog(this);
  dialog.setWindowTitle(tr("Export Figure"));
  auto* width = new QSpinBox;
  auto* height = new QSpinBox;
  auto* dpi = new QSpinBox;
  width->setRange(100, 8000);
  height->setRange(100, 8000);
  width->setValue(figure->width());
  height->setValue(figure->height());
  width->setSuffix(tr(" px"));
  height->setSuffix(tr(" px"));
  dpi->setRange(72, 1200);
  dpi->setSingleStep(24);
  dpi->setValue(192);
  dpi->setSuffix(tr(" dpi"));
  dpi->setToolTip(
      tr("PNG only: pixels per inch, the figure's size being at 96 dpi (192 dpi = "
         "twice as many pixels). SVG and PDF are vector drawings."));
  auto* form = new QFormLayout;
  form->addRow(tr("Width:"), width);
  form->addRow(tr("Height:"), height);
  form->addRow(tr("PNG resolution:"), dpi);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  auto* layout = new QVBoxLayout(&dialog);
  layout->addLayout(form);
  layout->addWidget(buttons);
  if (dialog.exec() != QDialog::Accepted) return;
  const QString file = chooseFigureFile(tr("Export Figure"));
  if (file.isEmpty()) return;
  if (!exportFigure(file, width->value(), height->value(), dpi->value() / 96.0))
    showError(tr("Export Figure"), tr("Could not write %1.").arg(file));
}

QString MainWindow::chooseFigureFile(const QString& title) {
  QString filter;
  QString path = QFileDialog::getSaveFileName(
      this, title, QString(), tr("PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"),
      &filter);
  // No extension typed: the chosen filter's.
  if (!path.isEmpty() && QFileInfo(path).suffix().isEmpty())
    path += filter.contains(QStringLiteral("svg"))   ? QStringLiteral(".svg")
            : filter.contains(QStringLiteral("pdf")) ? QStringLiteral(".pdf")
                                                     : QStringLiteral(".png");
  return path;
}

void MainWindow::showFigureMenu(QCustomPlot* plot, const QPoint& pos) {
  QMenu menu(this);
  menu.addAction(tr("Export Figure…"), this, &MainWindow::chooseExportFile);
  menu.addAction(tr("Copy Figure"), this, &MainWindow::copyFigure);
  menu.exec(plot->mapToGlobal(pos));
}

bool MainWindow::open(const QString& path) {
  const QFileInfo info(path);
  if (info.isFile() && info.suffix().compare(QLatin1String("json"), Qt::CaseInsensitive) == 0 &&
      info.fileName() != QLatin1String("run.json") &&
      info.fileName() != QLatin1String("summary.json"))
    return openProject(path);
  return startLoading(path, isRunPath(path));
}

bool MainWindow::openResult(const QString& path) {
  return startLoading(path, false);
}

bool MainWindow::startLoading(const QString& path, bool as_run) {
  if (loader_ != nullptr) {
    // Superseded: the old read finishes on its worker and its outcome is dropped (it holds
    // nothing of the window's).
    loader_->disconnect(this);
    connect(loader_, &QFutureWatcher<LoadOutcome>::finished, loader_, &QObject::deleteLater);
    loader_ = nullptr;
  } else {
    QApplication::setOverrideCursor(Qt::BusyCursor);
  }
  statusBar()->showMessage(tr("Loading %1…").arg(path));
  auto* watcher = new QFutureWatcher<LoadOutcome>(this);
  loader_ = watcher;
  connect(watcher, &QFutureWatcher<LoadOutcome>::finished, this,
          [this, watcher]() { onLoaded(watcher); });
  // Everything is read on a worker thread; the GUI thread only receives the outcome.
  watcher->setFuture(QtConcurrent::run([path, as_run]() {
    LoadOutcome outcome;
    outcome.path = path;
    try {
      outcome.run = as_run ? loadRun(path) : loadDiffResult(path);
    } catch (...) {
      const CaughtError error = currentError();
      outcome.kind = error.kind;
      // An InputError names its file; anything else is said of the path being opened.
      outcome.error = error.kind == core::ErrorKind::kInput
                          ? error.message
                          : QStringLiteral("%1: %2").arg(path, error.message);
    }
    return outcome;
  }));
  return true;
}

void MainWindow::onLoaded(QFutureWatcher<LoadOutcome>* watcher) {
  watcher->deleteLater();
  if (watcher != loader_) return;  // superseded by a later open
  loader_ = nullptr;
  QApplication::restoreOverrideCursor();
  const LoadOutcome outcome = watcher->result();
  if (!outcome.error.isEmpty()) {
    statusBar()->showMessage(tr("Could not open %1").arg(outcome.path));
    showError(tr("Cannot open"), outcome.error, outcome.kind);
    Q_EMIT loadFailed(outcome.error);
    return;
  }
  QString message;
  if (!reportErrors(
          this, tr("Cannot show %1").arg(outcome.path), [&] { showLoaded(outcome); }, &message)) {
    statusBar()->showMessage(tr("Could not show %1").arg(outcome.path));
    Q_EMIT loadFailed(message);
  }
}

void MainWindow::showLoaded(const LoadOutcome& outcome) {
  run_ = outcome.run;
  const RunData& run = *run_;
  counterfactual_->setRun(run_);

  // Fresh thumbnail caches for the new datasets (jobs still running for the old ones keep
  // their own reference to the old data and are dropped with their cache).
  delete train_thumbnails_;
  delete val_thumbnails_;
  train_thumbnails_ = val_thumbnails_ = nullptr;
  if (run.train)
    train_thumbnails_ = new ThumbnailCache(
        run.train, std::shared_ptr<const std::vector<std::int64_t>>(run_, &run.planted_train),
        kThumbnail, this);
  if (run.val)
    val_thumbnails_ = new ThumbnailCache(
        run.val, std::shared_ptr<const std::vector<std::int64_t>>(run_, &run.planted_val),
        kThumbnail, this);
  for (ThumbnailCache* cache : {train_thumbnails_, val_thumbnails_})
    if (cache != nullptr)
      connect(cache, &ThumbnailCache::renderFailed, this, [this](const QString& why) {
        statusBar()->showMessage(tr("Some images cannot be shown: %1").arg(why));
      });
  grids_[kTopTrain].model->setCache(train_thumbnails_);
  grids_[kBottomTrain].model->setCache(train_thumbnails_);
  grids_[kTopVal].model->setCache(val_thumbnails_);
  grids_[kBottomVal].model->setCache(val_thumbnails_);
  inspector_->setRun(run_, train_thumbnails_);

  auto accuracy = [](const AlgorithmInfo& a) {
    return a.mean_val_accuracy < 0
               ? QString()
               : tr(", %1 validation accuracy").arg(percent(a.mean_val_accuracy));
  };
  if (run.is_run)
    header_->setText(tr("<b>%1</b><br>A = <b>%2</b>%3<br>B = <b>%4</b>%5<br>%6 training, %7 "
                        "validation images%8")
                         .arg(run.name.toHtmlEscaped(), run.a.label.toHtmlEscaped(),
                              accuracy(run.a), run.b.label.toHtmlEscaped(), accuracy(run.b))
                         .arg(run.train->size())
                         .arg(run.val->size())
                         .arg(run.planted ? tr("; %1 training images carry a planted patch")
                                                .arg(run.planted_train.size())
                                          : QString()));
  else
    header_->setText(tr("<b>%1</b> vs <b>%2</b> — a single result (open a run folder to see "
                        "the images)")
                         .arg(run.a.label.toHtmlEscaped(), run.b.label.toHtmlEscaped()));
  // Which parameters TRAK attributed for each algorithm (all trainable ones by default).
  QStringList attributed;
  for (const AlgorithmInfo* a : {&run.a, &run.b})
    if (!a->attributed.isEmpty()) attributed << tr("%1: TRAK %2").arg(a->label, a->attributed);
  header_->setToolTip(attributed.join(QLatin1Char('\n')));

  {
    const QSignalBlocker block(comparisons_);
    comparisons_->clear();
    for (const Comparison& c : run.comparisons) comparisons_->addItem(c.title);
    comparisons_->setCurrentIndex(-1);
  }
  comparisons_->setEnabled(run.comparisons.size() > 1);
  selectComparison(0);

  setWindowTitle(tr("%1 — ModelDiff Studio").arg(QFileInfo(run.folder).fileName()));
  statusBar()->showMessage(tr("Loaded %1").arg(run.folder));
  rememberRecent(run.folder);
  // A run folder opened on its own: its project (from run.json) becomes the current one, so
  // that it can be edited, saved as a project file and run again.
  if (run.is_run && !run.project_json.isEmpty() &&
      QDir::cleanPath(project_output_) != QDir::cleanPath(run.folder))
    adoptProject(run.project_json, run.folder, QString(), run.name, run.folder);
  updateRegionControls();
  QStringList unread;
  for (const Comparison& c : run.comparisons)
    if (!c.values_problem.isEmpty()) unread << c.values_problem;
  if (!unread.isEmpty()) {
    // The rest of the result is shown; what could not be read is said once.
    statusBar()->showMessage(tr("Loaded %1; some projections cannot be shown").arg(run.folder));
    showError(tr("Some results cannot be read"), unread.join(QLatin1Char('\n')),
              core::ErrorKind::kInput);
  }
  Q_EMIT resultLoaded(outcome.path);
}

int MainWindow::currentComparison() const {
  return comparisons_->currentIndex();
}

void MainWindow::selectComparison(int comparison) {
  if (comparisons_->currentIndex() == comparison)
    onComparisonChanged(comparison);
  else
    comparisons_->setCurrentIndex(comparison);
}

void MainWindow::onComparisonChanged(int comparison) {
  if (!run_ || comparison < 0 || comparison >= static_cast<int>(run_->comparisons.size())) return;
  // Keep the selected direction across comparisons where it exists.
  int set = 0, component = 0;
  const QModelIndexList rows = table_->selectionModel()->selectedRows();
  if (!rows.isEmpty()) {
    set = rows.front().data(DirectionTableModel::kSetIndexRole).toInt();
    component = rows.front().data(DirectionTableModel::kComponentRole).toInt();
  }
  const Comparison& c = run_->comparisons[static_cast<std::size_t>(comparison)];
  const core::DiffSummary& s = *c.summary;
  model_->setSummary(c.summary);
  plot_->setSummary(c.summary.get());
  cosine_->setValues(c.cosine_ab, QString::fromStdString(s.label_a),
                     QString::fromStdString(s.label_b));
  projection_set_ = -1;  // the new comparison's first two directions
  example_row_ = -1;
  showExample(-1);
  comparison_info_->setText(tr("<small>%1 of %2 targets analysed (%3), rows %4</small>")
                                .arg(s.num_analysed_targets)
                                .arg(s.num_targets)
                                .arg(QString::fromStdString(s.target_selection).toHtmlEscaped(),
                                     QString::fromStdString(s.row_normalization).toHtmlEscaped()));
  table_->resizeColumnsToContents();
  // The set, the number and the verdict stay in view however narrow the panel is made.
  int essentials = 2 * table_->frameWidth() + table_->verticalScrollBar()->sizeHint().width();
  for (int col = 0; col <= DirectionTableModel::kSignificance; ++col)
    essentials += table_->columnWidth(col);
  table_->setMinimumWidth(essentials);
  const int per_set = static_cast<int>(s.a_minus_b.explained_variance.size());
  if (component >= per_set) component = 0;
  if (model_->rowCount() > 0)
    selectDirection(set, component);
  else
    updateGrids();
}

void MainWindow::selectDirection(int set, int component) {
  if (model_->summary() == nullptr) return;
  const int row = model_->rowOf(set, component);
  if (row < 0 || row >= model_->rowCount()) return;
  if (table_->selectionModel()->isRowSelected(row, {}))
    onRowSelected();  // same row, new comparison
  else
    table_->selectRow(row);
}

void MainWindow::onRowSelected() {
  const QModelIndexList rows = table_->selectionModel()->selectedRows();
  if (rows.isEmpty()) {
    plot_->setSelectedDirection(-1, -1);
  } else {
    const QModelIndex index = rows.front();
    plot_->setSelectedDirection(model_->data(index, DirectionTableModel::kSetIndexRole).toInt(),
                                model_->data(index, DirectionTableModel::kComponentRole).toInt());
  }
  updateGrids();
}

void MainWindow::updateGrids() {
  const QModelIndexList rows = table_->selectionModel()->selectedRows();
  const int comparison = currentComparison();
  if (!run_ || rows.isEmpty() || comparison < 0) {
    for (GridWidgets& g : grids_) {
      g.model->setItems({}, {}, {}, {});
      g.title->clear();
    }
    count_->setEnabled(false);
    updatePatchLabel();
    counterfactual_->setDirectionImages({});
    updateProjections();
    projection_->setHighlighted({});
    return;
  }
  const int set = rows.front().data(DirectionTableModel::kSetIndexRole).toInt();
  const auto c =
      static_cast<std::size_t>(rows.front().data(DirectionTableModel::kComponentRole).toInt());
  const Comparison& comp = run_->comparisons[static_cast<std::size_t>(comparison)];
  const core::DirectionSummary& s = set == 0 ? comp.summary->a_minus_b : comp.summary->b_minus_a;
  const DirectionValues& v = comp.values[set];
  auto at = [c](const auto& lists) {
    using List = typename std::decay_t<decltype(lists)>::value_type;
    return c < lists.size() ? lists[c] : List{};
  };
  grids_[kTopTrain].model->setItems(at(s.top_train), at(v.top_train), tr("loading"),
                                    tr("Training example"));
  grids_[kBottomTrain].model->setItems(at(s.bottom_train), at(v.bottom_train), tr("loading"),
                                       tr("Training example"));
  grids_[kTopVal].model->setItems(at(s.top_target), at(v.top_target), tr("projection"),
                                  tr("Validation example"));
  grids_[kBottomVal].model->setItems(at(s.bottom_target), at(v.bottom_target), tr("projection"),
                                     tr("Validation example"));
  const QString direction = tr("<b>%1 minus %2, direction %3</b>: ")
                                .arg(QString::fromStdString(s.first).toHtmlEscaped(),
                                     QString::fromStdString(s.second).toHtmlEscaped())
                                .arg(c + 1);
  grids_[kTopTrain].title->setText(direction + tr("training images with the largest loadings"));
  grids_[kBottomTrain].title->setText(direction + tr("training images with the smallest loadings"));
  grids_[kTopVal].title->setText(direction + tr("validation images with the largest projections"));
  grids_[kBottomVal].title->setText(direction +
                                    tr("validation images with the smallest projections"));

  int available = 1;
  for (const GridWidgets& g : grids_) available = std::max(available, g.model->available());
  {
    const QSignalBlocker block(count_);
    count_->setMaximum(available);
    count_->setValue(std::min(wanted_count_, available));
  }
  count_->setEnabled(true);
  for (GridWidgets& g : grids_) g.model->setLimit(count_->value());
  updatePatchLabel();
  updateProjections();  // also updates the direction's images
}

void MainWindow::updateDirectionImages() {
  // The validation images the top-validation grid shows: the counterfactual panel's "current
  // direction's top validation images".
  const ImageGridModel* top = grids_[kTopVal].model;
  std::vector<std::int64_t> indices;
  for (int r = 0; r < top->rowCount(); ++r)
    indices.push_back(top->data(top->index(r), ImageGridModel::kIndexRole).toLongLong());
  projection_->setHighlighted(indices);
  counterfactual_->setDirectionImages(indices);
}

void MainWindow::updatePatchLabel() {
  if (!run_ || !run_->planted || grids_[kTopTrain].model->rowCount() == 0) {
    patch_->clear();
    return;
  }
  const ImageGridModel* top = grids_[kTopTrain].model;
  patch_->setText(tr("<span style='color:#f08a00'>■</span> planted patch: %1 of the %2 "
                     "training images with the largest loadings carry it (%3 of all "
                     "training images)")
                      .arg(top->patchedCount())
                      .arg(top->rowCount())
                      .arg(percent(run_->planted_base_rate)));
}

bool MainWindow::thumbnailsPending() const {
  return (train_thumbnails_ != nullptr && train_thumbnails_->busy()) ||
         (val_thumbnails_ != nullptr && val_thumbnails_->busy());
}

void MainWindow::chooseFolder() {
  const QString dir =
      QFileDialog::getExistingDirectory(this, tr("Open a Run Folder or a Result Folder"));
  if (!dir.isEmpty()) open(dir);
}

void MainWindow::rememberRecent(const QString& path) {
  QSettings settings;
  QStringList list = settings.value(kRecentKey).toStringList();
  list.removeAll(path);
  list.prepend(path);
  while (list.size() > kMaxRecent) list.removeLast();
  settings.setValue(kRecentKey, list);
}

void MainWindow::fillRecentMenu() {
  recent_->clear();
  const QStringList list = QSettings().value(kRecentKey).toStringList();
  for (const QString& path : list)
    recent_->addAction(QDir::toNativeSeparators(path), this, [this, path]() { open(path); });
  if (list.isEmpty())
    recent_->addAction(tr("(none)"))->setEnabled(false);
  else {
    recent_->addSeparator();
    recent_->addAction(tr("Clear List"), this, []() { QSettings().remove(kRecentKey); });
  }
}

void MainWindow::showAbout() {
  QMessageBox::about(this, tr("About ModelDiff Studio"),
                     tr("<b>ModelDiff Studio %1</b><p>Compares two learning algorithms through "
                        "their data attributions and finds the training-set directions that "
                        "distinguish them (Shah, Park, Ilyas, Madry, ICML 2023).</p>")
                         .arg(QStringLiteral(MODELDIFF_VERSION)));
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  const QList<QUrl> urls = event->mimeData()->urls();
  if (!urls.isEmpty() && urls.front().isLocalFile()) open(urls.front().toLocalFile());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (job_ != nullptr && job_->isRunning()) {
    const auto answer = QMessageBox::question(
        this, tr("A run is in progress"),
        tr("Cancel the run and quit? Finished models and cached features are kept for the "
           "next run."));
    if (answer != QMessageBox::Yes) {
      event->ignore();
      return;
    }
    job_->cancel();
  }
  QSettings settings;
  settings.setValue(QStringLiteral("mainWindow/geometry"), saveGeometry());
  settings.setValue(QStringLiteral("mainWindow/state"), saveState());
  QMainWindow::closeEvent(event);
}

void MainWindow::showError(const QString& title, const QString& message, core::ErrorKind kind) {
  showErrorBox(this, title, message, kind);
}

bool MainWindow::openProject(const QString& path) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    const QString message =
        tr("%1: cannot read the project file (%2)").arg(path, file.errorString());
    showError(tr("Cannot open"), message);
    Q_EMIT loadFailed(message);
    return false;
  }
  const QByteArray text = file.readAll();
  if (!setProject(QString::fromUtf8(text), QFileInfo(path).absolutePath(),
                  QFileInfo(path).absoluteFilePath()))
    return false;
  rememberRecent(project_path_);
  return true;
}

bool MainWindow::setProject(const QString& json, const QString& base_dir, const QString& path) {
  const QString source = path.isEmpty() ? tr("the new project") : path;
  QString name, output;
  try {
    const core::Project p =
        core::parse_project(json.toStdString(), base_dir.toStdString(), source.toStdString());
    name = QString::fromStdString(p.name);
    output = QString::fromStdString(p.output);
  } catch (...) {
    const QString message = reportCurrentError(this, tr("Not a valid project"));
    statusBar()->showMessage(tr("Could not open %1").arg(source));
    Q_EMIT loadFailed(message);
    return false;
  }
  adoptProject(json, base_dir, path, name, output);
  // Its results when they are there, else the offer to run it.
  if (isRunPath(project_output_) && !job_->isRunning())
    open(project_output_);
  else
    showProjectHeader();
  return true;
}

void MainWindow::adoptProject(const QString& json, const QString& base_dir, const QString& path,
                              const QString& name, const QString& output) {
  project_json_ = json;
  project_dir_ = base_dir;
  project_path_ = path;
  project_name_ = name.isEmpty() ? QFileInfo(path).completeBaseName() : name;
  project_output_ = QDir::cleanPath(QDir(base_dir).absoluteFilePath(output));
  updateJobActions();
  setWindowTitle(tr("%1 — ModelDiff Studio").arg(project_name_));
  Q_EMIT projectChanged(path);
}

void MainWindow::showProjectHeader() {
  header_->setText(tr("<b>%1</b><br>Not run yet: its results will be in %2.<br>"
                      "<a href='run'>Run it now</a> (Project ▸ Run): trains or loads the "
                      "models, computes TRAK scores and the distinguishing directions.")
                       .arg(project_name_.toHtmlEscaped(),
                            QDir::toNativeSeparators(project_output_).toHtmlEscaped()));
}

bool MainWindow::saveProjectAs(const QString& path) {
  if (project_json_.isEmpty()) return false;
  // Relative paths stay right: the JSON written is the core's, with absolute paths.
  QString text = project_json_;
  try {
    text = QString::fromStdString(core::project_json(core::parse_project(
        project_json_.toStdString(), project_dir_.toStdString(), path.toStdString())));
  } catch (...) {
    // Kept as it is; it was valid when it became current.
  }
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly) || file.write(text.toUtf8()) < 0 || !file.commit()) {
    showError(tr("Cannot save"),
              tr("%1: cannot write the project file (%2)").arg(path, file.errorString()));
    return false;
  }
  project_json_ = text;
  project_path_ = QFileInfo(path).absoluteFilePath();
  project_dir_ = QFileInfo(path).absolutePath();
  rememberRecent(project_path_);
  statusBar()->showMessage(tr("Project saved to %1").arg(path));
  updateJobActions();
  return true;
}

bool MainWindow::saveProject() {
  if (project_json_.isEmpty()) return false;
  if (project_path_.isEmpty()) {
    chooseSaveFile();
    return !project_path_.isEmpty();
  }
  return saveProjectAs(project_path_);
}

void MainWindow::chooseSaveFile() {
  if (project_json_.isEmpty()) return;
  QString path = QFileDialog::getSaveFileName(
      this, tr("Save Project"),
      project_path_.isEmpty() ? QDir(project_dir_).filePath(project_name_ + QStringLiteral(".json"))
                              : project_path_,
      tr("ModelDiff project (*.json)"));
  if (path.isEmpty()) return;
  if (QFileInfo(path).suffix().isEmpty()) path += QStringLiteral(".json");
  saveProjectAs(path);
}

void MainWindow::chooseProjectFile() {
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Open a Project, a Run or a Result"), QString(),
      tr("Projects, run.json and summary.json (*.json);;All files (*)"));
  if (!path.isEmpty()) open(path);
}

void MainWindow::newProject() {
  auto* dialog = new ProjectDialog(QString(), QDir::homePath(), this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  connect(dialog, &QDialog::accepted, this, [this, dialog]() {
    if (!setProject(dialog->projectJson(), QDir::homePath())) return;
    chooseSaveFile();
    runProject();
  });
  dialog->open();
}

void MainWindow::editProject() {
  auto* dialog = new ProjectDialog(project_json_,
                                   project_dir_.isEmpty() ? QDir::homePath() : project_dir_, this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  connect(dialog, &QDialog::accepted, this, [this, dialog]() {
    const QString path = project_path_;
    if (!setProject(dialog->projectJson(), project_dir_.isEmpty() ? QDir::homePath() : project_dir_,
                    path))
      return;
    if (!path.isEmpty()) saveProjectAs(path);
    runProject();
  });
  dialog->open();
}

bool MainWindow::runProject() {
  if (project_json_.isEmpty()) return false;
  if (job_->isRunning()) {
    showError(tr("A job is running"),
              tr("%1 is still running. Wait for it to finish, or cancel it (Project ▸ Cancel "
                 "Job), then run again.")
                  .arg(job_->title()));
    return false;
  }
  try {
    const core::Project p = core::parse_project(
        project_json_.toStdString(), project_dir_.toStdString(),
        (project_path_.isEmpty() ? project_name_ : project_path_).toStdString());
    if (!job_->start(p)) return false;
  } catch (...) {
    reportCurrentError(this, tr("Cannot run"));
    return false;
  }
  return true;
}

bool MainWindow::openDemo(const QString& folder, const QString& study) {
#if MODELDIFF_UI_RUNS
  const QString output =
      folder.isEmpty() ? QString::fromStdString(core::default_demo_output_dir(study.toStdString()))
                       : folder;
  QString json;
  try {
    json = QString::fromStdString(core::project_json(
        study.isEmpty()
            ? core::demo_project(core::demo_architecture_path(), core::default_fashion_mnist_dir(),
                                 output.toStdString())
            : core::study_project(study.toStdString(), core::kStudyArchitecture,
                                  core::default_fashion_mnist_dir(), output.toStdString())));
  } catch (...) {
    reportCurrentError(this, tr("Cannot open the demo"));
    return false;
  }
  if (!setProject(json, output)) return false;
  if (!isRunPath(output)) return runProject();
  return true;
#else
  (void)folder;
  (void)study;
  showError(tr("Cannot open the demo"), tr("This build has no LibTorch: the demo needs it."));
  return false;
#endif
}

void MainWindow::onJobFinished(const QString& output) {
  updateJobActions();
  if (pending_comparison_) {
    // A selection's comparison: the same run with one more comparison, selected.
    const std::shared_ptr<Comparison> comparison = std::move(pending_comparison_);
    if (!run_ || QDir::cleanPath(run_->folder) != pending_run_folder_) {
      statusBar()->showMessage(
          tr("Compared the selection (kept in %1); its run is no longer open").arg(output));
      return;  // another run was opened meanwhile: the result stays in its own run's folder
    }
    auto run = std::make_shared<RunData>(*run_);
    run->comparisons.push_back(*comparison);
    run_ = std::move(run);
    counterfactual_->setRun(run_);
    inspector_->setRun(run_, train_thumbnails_);
    {
      const QSignalBlocker block(comparisons_);
      comparisons_->addItem(comparison->title);
    }
    comparisons_->setEnabled(true);
    selectComparison(static_cast<int>(run_->comparisons.size()) - 1);
    statusBar()->showMessage(tr("Compared the selection: %1").arg(output));
    return;
  }
  // Its results open unless another project became current meanwhile.
  if (!project_output_.isEmpty() && QDir::cleanPath(output) != project_output_) {
    statusBar()->showMessage(tr("Run finished: %1 (open it from File ▸ Open Recent)").arg(output));
    rememberRecent(QDir::cleanPath(output));
    return;
  }
  statusBar()->showMessage(tr("Run finished: %1").arg(output));
  open(output);
}

void MainWindow::updateRegionControls() {
  const int count = static_cast<int>(projection_->regionRows().size());
  const bool scores = run_ && run_->is_run && run_->scores[0] && run_->scores[1];
  region_label_->setText(count > 0 ? tr("%1 selected").arg(count) : QString());
  compare_button_->setEnabled(count >= 3 && scores && !job_->isRunning());
  compare_button_->setToolTip(
      !scores     ? tr("Needs a run folder with both algorithms' score files")
      : count < 3 ? tr("Select at least 3 validation examples (Select Region, then drag)")
                  : tr("ModelDiff of A and B over the %1 selected validation examples only: "
                       "a new comparison")
                        .arg(count));
}

bool MainWindow::compareSelection() {
  bool started = false;
  if (!reportErrors(this, tr("Compare Selected"), [&] { started = startSelectionJob(); }))
    pending_comparison_.reset();
  return started;
}

bool MainWindow::startSelectionJob() {
  const int comparison = currentComparison();
  if (!run_ || !run_->is_run || !run_->scores[0] || !run_->scores[1] || comparison < 0 ||
      job_->isRunning())
    return false;
  const Comparison& from = run_->comparisons[static_cast<std::size_t>(comparison)];
  std::vector<std::int64_t> rows;
  for (int row : projection_->regionRows())
    rows.push_back(from.target_rows[static_cast<std::size_t>(row)]);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  if (rows.size() < 3) return false;

  const QString output = nextSelectionFolder(run_->folder);
  const core::DiffSummary& s = *from.summary;
  const QString title = tr("selection of %1 validation examples (%2, directions %3 and %4)")
                            .arg(rows.size())
                            .arg(from.title)
                            .arg(projection_->regionComponents().x() + 1)
                            .arg(projection_->regionComponents().y() + 1);
  core::DiffOptions options;
  options.target_rows = rows;
  options.components = std::min(5, static_cast<int>(rows.size()) - 1);
  options.normalize_rows = s.normalized_rows;
  options.top_k = s.a_minus_b.top_train.empty()
                      ? 10
                      : std::max<int>(1, static_cast<int>(s.a_minus_b.top_train.front().size()));
  const std::shared_ptr<const core::NdArray> scores[2] = {run_->scores[0], run_->scores[1]};
  const std::string labels[2] = {run_->a.label.toStdString(), run_->b.label.toStdString()};
  const std::string files[2] = {
      QDir(run_->folder).filePath(QStringLiteral("scores/A.npy")).toStdString(),
      QDir(run_->folder).filePath(QStringLiteral("scores/B.npy")).toStdString()};
  auto result = std::make_shared<Comparison>();
  pending_comparison_ = result;
  pending_run_folder_ = QDir::cleanPath(run_->folder);
  const bool started = job_->start(
      tr("ModelDiff of a selection"), output,
      [=](core::Progress& progress, const std::function<void(const std::string&)>& log) {
        const core::ScoreInput a{labels[0], files[0], *scores[0]};
        const core::ScoreInput b{labels[1], files[1], *scores[1]};
        const core::DiffResult diff = core::run_model_diff(a, b, options, progress);
        core::DiffProvenance provenance;
        for (int i = 0; i < 2; ++i) {
          core::InputProvenance& p = i == 0 ? provenance.a : provenance.b;
          p.path = files[i];
          p.sha256 = core::sha256_path(files[i]);
          p.format = "npy";
          p.file_shape = scores[i]->shape();
        }
        provenance.target_selection = title.toStdString();
        provenance.command_line = "modeldiff-gui: Compare Selected";
        core::OutputDirectory dir(output.toStdString());
        core::write_diff_output(dir, diff, options, provenance);
        dir.commit();
        *result = loadComparison(output, title);
        log("ModelDiff of " + std::to_string(rows.size()) +
            " selected validation examples: " + std::to_string(options.components) +
            " directions each way, in " + output.toStdString());
      });
  if (!started) {
    pending_comparison_.reset();
    return false;
  }
  return true;
}

void MainWindow::onJobFailed(const QString& message) {
  pending_comparison_.reset();
  updateJobActions();
  statusBar()->showMessage(tr("The run failed"));
  showError(tr("The run failed"), message, job_->errorKind());
}

void MainWindow::updateJobActions() {
  const bool running = job_ != nullptr && job_->isRunning();
  if (compare_button_ != nullptr && projection_ != nullptr) updateRegionControls();
  const bool has_project = !project_json_.isEmpty();
  if (run_action_ != nullptr) run_action_->setEnabled(has_project && !running);
  if (cancel_action_ != nullptr) cancel_action_->setEnabled(running);
  if (save_action_ != nullptr) save_action_->setEnabled(has_project);
  if (save_as_action_ != nullptr) save_as_action_->setEnabled(has_project);
  if (edit_action_ != nullptr) edit_action_->setEnabled(!running);
}

void MainWindow::inspectValidation(std::int64_t index) {
  inspector_->showExample(index);
  inspector_dock_->show();
  inspector_dock_->raise();
}

QString MainWindow::gridFigureTitle(Grid grid) const {
  QString title = QTextDocumentFragment::fromHtml(grids_[grid].title->text()).toPlainText();
  const int comparison = currentComparison();
  if (run_ && comparison >= 0 && run_->comparisons.size() > 1)
    title +=
        QStringLiteral(" (%1)").arg(run_->comparisons[static_cast<std::size_t>(comparison)].title);
  return title;
}

bool MainWindow::exportGrid(Grid grid, const QString& path, double scale) {
  const bool ok = exportGridFigure(*grids_[grid].model, gridFigureTitle(grid), path, scale);
  statusBar()->showMessage(ok ? tr("Images written to %1").arg(path)
                              : tr("Could not write the images to %1").arg(path));
  return ok;
}

void MainWindow::showGridMenu(QListView* view, const ImageGridModel* model, const QString& title,
                              const QPoint& pos) {
  if (model->rowCount() == 0) return;
  QMenu menu(this);
  menu.addAction(tr("Export Images…"), this, [this, model, title]() {
    const QString path = chooseFigureFile(tr("Export Images"));
    if (path.isEmpty()) return;
    if (!exportGridFigure(*model, title, path, 2))
      showError(tr("Export Images"), tr("Could not write %1.").arg(path));
    else
      statusBar()->showMessage(tr("Images written to %1").arg(path));
  });
  menu.addAction(tr("Copy Images"), this, [this, model, title]() {
    QGuiApplication::clipboard()->setImage(gridFigureImage(*model, title, 2));
    statusBar()->showMessage(tr("Images copied to the clipboard"));
  });
  menu.exec(view->viewport()->mapToGlobal(pos));
}

}  // namespace modeldiff::ui
