#include "main_window.h"

#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QComboBox>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QListView>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QStatusBar>
#include <QSvgGenerator>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>

#include "analysis_plots.h"
#include "core/base/error.h"
#include "counterfactual_panel.h"
#include "direction_table_model.h"
#include "image_grid_model.h"
#include "variance_plot.h"

namespace modeldiff::ui {

namespace {

const QString kRecentKey = QStringLiteral("recentRuns");
constexpr int kMaxRecent = 8;
constexpr int kThumbnail = 64;

QString percent(double share) {
  return share < 0 ? QStringLiteral("?") : QStringLiteral("%1%").arg(100.0 * share, 0, 'f', 1);
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
      tr("Open a run folder (File ▸ Open, or drop it here): create one with "
         "<tt>modeldiff demo -o DIR</tt> or <tt>modeldiff run PROJECT</tt>. A single "
         "comparison's result folder (<tt>modeldiff diff</tt>) opens too."));
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

  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Open Run or Result…"), QKeySequence::Open, this, &MainWindow::chooseFolder);
  recent_ = file->addMenu(tr("Open &Recent"));
  connect(recent_, &QMenu::aboutToShow, this, &MainWindow::fillRecentMenu);
  fillRecentMenu();
  file->addSeparator();
  file->addAction(tr("&Export Figure…"), this, &MainWindow::chooseExportFile);
  file->addAction(tr("&Copy Figure"), this, &MainWindow::copyFigure);
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About ModelDiff Studio"), this, &MainWindow::showAbout);

  connect(&loader_, &QFutureWatcher<LoadOutcome>::finished, this, &MainWindow::onLoaded);
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

  statusBar()->showMessage(tr("Ready"));
  QSettings settings;
  restoreGeometry(settings.value(QStringLiteral("mainWindow/geometry")).toByteArray());
  if (!settings.contains(QStringLiteral("mainWindow/geometry"))) resize(1400, 900);
}

MainWindow::~MainWindow() {
  loader_.waitForFinished();
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
    g.view = new QListView;
    g.view->setModel(g.model);
    g.view->setViewMode(QListView::IconMode);
    g.view->setIconSize(QSize(kThumbnail, kThumbnail));
    g.view->setGridSize(QSize(kThumbnail + 20, kThumbnail + 22));
    g.view->setMovement(QListView::Static);
    g.view->setResizeMode(QListView::Adjust);
    g.view->setWrapping(true);
    g.view->setUniformItemSizes(true);
    g.view->setWordWrap(false);
    g.view->setTextElideMode(Qt::ElideRight);
    g.view->setSelectionMode(QAbstractItemView::SingleSelection);
    g.view->setMinimumHeight(kThumbnail + 30);
    layout->addWidget(g.title);
    layout->addWidget(g.view, 1);
  }
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
  controls->addStretch(1);
  auto* hint =
      new QLabel(tr("<small>ringed: the direction's top validation examples; click a "
                    "point to see it</small>"));
  hint->setTextFormat(Qt::RichText);
  controls->addWidget(hint);

  auto* example = new QGroupBox(tr("Example"));
  example_image_ = new QLabel;
  example_image_->setFixedSize(96, 96);
  example_image_->setAlignment(Qt::AlignCenter);
  example_text_ = new QLabel(tr("Click a point."));
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
    example_text_->setText(tr("Click a point."));
    projection_->setSelectedRow(-1);
    return;
  }
  example_row_ = row;
  const std::int64_t index = comp->target_rows[static_cast<std::size_t>(row)];
  QString cls = tr("unknown");
  example_image_->clear();
  if (run_->val && index >= 0 && index < run_->val->size()) {
    cls = QString::fromStdString(
        run_->val->class_name(run_->val->labels[static_cast<std::size_t>(index)]));
    try {
      example_image_->setPixmap(QPixmap::fromImage(
          ThumbnailCache::render(*run_->val, index, 96, run_->isPatchedVal(index))));
    } catch (const std::exception&) {
      example_image_->setText(tr("(no image)"));
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
    ok = figure->savePng(path, width, height, scale);
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
  QString filter;
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Export Figure"), QString(),
      tr("PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"), &filter);
  if (path.isEmpty()) return;
  QString file = path;
  if (QFileInfo(file).suffix().isEmpty())
    file += filter.contains(QStringLiteral("svg"))   ? QStringLiteral(".svg")
            : filter.contains(QStringLiteral("pdf")) ? QStringLiteral(".pdf")
                                                     : QStringLiteral(".png");
  double scale = 1;
  if (QFileInfo(file).suffix().compare(QStringLiteral("png"), Qt::CaseInsensitive) == 0) {
    bool ok = false;
    scale =
        QInputDialog::getInt(this, tr("Export Figure"), tr("Scale (1x to 4x):"), 2, 1, 4, 1, &ok);
    if (!ok) return;
  }
  const QCustomPlot* figure = currentFigure();
  if (!exportFigure(file, figure->width(), figure->height(), scale))
    QMessageBox::warning(this, tr("Export Figure"), tr("Could not write %1.").arg(file));
}

void MainWindow::showFigureMenu(QCustomPlot* plot, const QPoint& pos) {
  QMenu menu(this);
  menu.addAction(tr("Export Figure…"), this, &MainWindow::chooseExportFile);
  menu.addAction(tr("Copy Figure"), this, &MainWindow::copyFigure);
  menu.exec(plot->mapToGlobal(pos));
}

bool MainWindow::open(const QString& path) {
  return startLoading(path, isRunPath(path));
}

bool MainWindow::openResult(const QString& path) {
  return startLoading(path, false);
}

bool MainWindow::startLoading(const QString& path, bool as_run) {
  if (loader_.isRunning()) {
    statusBar()->showMessage(tr("Still loading; try again when it is done"));
    return false;
  }
  statusBar()->showMessage(tr("Loading %1…").arg(path));
  QApplication::setOverrideCursor(Qt::BusyCursor);
  // Everything is read on a worker thread; the GUI thread only receives the outcome.
  loader_.setFuture(QtConcurrent::run([path, as_run]() {
    LoadOutcome outcome;
    outcome.path = path;
    try {
      outcome.run = as_run ? loadRun(path) : loadDiffResult(path);
    } catch (const core::InputError& e) {
      outcome.error = QString::fromStdString(e.what());
    } catch (const std::exception& e) {
      outcome.error = QStringLiteral("%1: %2").arg(path, QString::fromUtf8(e.what()));
    }
    return outcome;
  }));
  return true;
}

void MainWindow::onLoaded() {
  QApplication::restoreOverrideCursor();
  const LoadOutcome outcome = loader_.result();
  if (!outcome.error.isEmpty()) {
    statusBar()->showMessage(tr("Could not open %1").arg(outcome.path));
    auto* box = new QMessageBox(QMessageBox::Critical, tr("Cannot open"), outcome.error,
                                QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();  // window-modal, does not block the event loop
    Q_EMIT loadFailed(outcome.error);
    return;
  }
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
  grids_[kTopTrain].model->setCache(train_thumbnails_);
  grids_[kBottomTrain].model->setCache(train_thumbnails_);
  grids_[kTopVal].model->setCache(val_thumbnails_);

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
  const QString direction = tr("<b>%1 minus %2, direction %3</b>: ")
                                .arg(QString::fromStdString(s.first).toHtmlEscaped(),
                                     QString::fromStdString(s.second).toHtmlEscaped())
                                .arg(c + 1);
  grids_[kTopTrain].title->setText(direction + tr("training images with the largest loadings"));
  grids_[kBottomTrain].title->setText(direction + tr("training images with the smallest loadings"));
  grids_[kTopVal].title->setText(direction + tr("validation images with the largest projections"));

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
  QSettings().setValue(QStringLiteral("mainWindow/geometry"), saveGeometry());
  QMainWindow::closeEvent(event);
}

}  // namespace modeldiff::ui
