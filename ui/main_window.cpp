#include "main_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include "core/base/error.h"
#include "direction_table_model.h"
#include "variance_plot.h"

namespace modeldiff::ui {

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent),
      model_(new DirectionTableModel(this)),
      table_(new QTableView),
      plot_(new VariancePlot),
      header_(new QLabel) {
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
      tr("Open a comparison's results (File ▸ Open Result, or drop a result "
         "folder here). Create one with <tt>modeldiff diff</tt>."));
  header_->setTextFormat(Qt::RichText);
  header_->setMargin(6);

  auto* left = new QWidget;
  auto* layout = new QVBoxLayout(left);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(header_);
  layout->addWidget(table_);
  auto* splitter = new QSplitter;
  splitter->addWidget(left);
  splitter->addWidget(plot_);
  splitter->setStretchFactor(1, 1);
  splitter->setSizes({520, 680});
  setCentralWidget(splitter);

  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Open Result…"), QKeySequence::Open, this, &MainWindow::chooseResult);
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About ModelDiff Studio"), this, &MainWindow::showAbout);

  connect(&loader_, &QFutureWatcher<LoadOutcome>::finished, this, &MainWindow::onLoaded);
  connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this,
          &MainWindow::onRowSelected);
  connect(plot_, &VariancePlot::directionClicked, this,
          [this](int set, int component) { table_->selectRow(model_->rowOf(set, component)); });

  statusBar()->showMessage(tr("Ready"));
  QSettings settings;
  restoreGeometry(settings.value(QStringLiteral("mainWindow/geometry")).toByteArray());
  if (!settings.contains(QStringLiteral("mainWindow/geometry"))) resize(1100, 650);
}

MainWindow::~MainWindow() {
  loader_.waitForFinished();
}

void MainWindow::openResult(const QString& path) {
  if (loader_.isRunning()) return;
  statusBar()->showMessage(tr("Loading %1…").arg(path));
  // The summary is parsed on a worker thread; the GUI thread only receives the outcome.
  loader_.setFuture(QtConcurrent::run([path]() {
    LoadOutcome outcome;
    outcome.path = path;
    try {
      outcome.summary =
          std::make_shared<const core::DiffSummary>(core::read_diff_summary(path.toStdString()));
    } catch (const core::InputError& e) {
      outcome.error = QString::fromStdString(e.what());
    } catch (const std::exception& e) {
      outcome.error = QStringLiteral("%1: %2").arg(path, QString::fromUtf8(e.what()));
    }
    return outcome;
  }));
}

void MainWindow::onLoaded() {
  const LoadOutcome outcome = loader_.result();
  if (!outcome.error.isEmpty()) {
    statusBar()->showMessage(tr("Could not open %1").arg(outcome.path));
    auto* box = new QMessageBox(QMessageBox::Critical, tr("Cannot open result"), outcome.error,
                                QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();  // window-modal, does not block the event loop
    Q_EMIT loadFailed(outcome.error);
    return;
  }
  model_->setSummary(outcome.summary);
  plot_->setSummary(outcome.summary.get());
  const core::DiffSummary& s = *outcome.summary;
  header_->setText(tr("<b>%1</b> vs <b>%2</b> — %3 training examples, %4 of %5 targets (%6), %7")
                       .arg(QString::fromStdString(s.label_a).toHtmlEscaped(),
                            QString::fromStdString(s.label_b).toHtmlEscaped())
                       .arg(s.num_train)
                       .arg(s.num_analysed_targets)
                       .arg(s.num_targets)
                       .arg(QString::fromStdString(s.target_selection).toHtmlEscaped(),
                            QString::fromStdString(s.row_normalization).toHtmlEscaped()));
  table_->resizeColumnsToContents();
  if (model_->rowCount() > 0) table_->selectRow(0);
  setWindowTitle(tr("%1 — ModelDiff Studio").arg(QFileInfo(outcome.path).fileName()));
  statusBar()->showMessage(tr("Loaded %1").arg(outcome.path));
  Q_EMIT resultLoaded(outcome.path);
}

void MainWindow::onRowSelected() {
  const QModelIndexList rows = table_->selectionModel()->selectedRows();
  if (rows.isEmpty()) {
    plot_->setSelectedDirection(-1, -1);
    return;
  }
  const QModelIndex index = rows.front();
  plot_->setSelectedDirection(model_->data(index, DirectionTableModel::kSetIndexRole).toInt(),
                              model_->data(index, DirectionTableModel::kComponentRole).toInt());
}

void MainWindow::chooseResult() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Result Folder"));
  if (!dir.isEmpty()) openResult(dir);
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
  if (!urls.isEmpty() && urls.front().isLocalFile()) openResult(urls.front().toLocalFile());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  QSettings().setValue(QStringLiteral("mainWindow/geometry"), saveGeometry());
  QMainWindow::closeEvent(event);
}

}  // namespace modeldiff::ui
