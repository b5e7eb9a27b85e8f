// The main window on a real run folder: `modeldiff demo --quick` (the CLI itself, started with
// QProcess) writes one; the window opens it, switches comparisons and directions, and its
// image grids must list exactly the indices the comparison's summary.json stores. Also: k
// changes the grids' row counts, a corrupt or incomplete run folder gives one error message.
// Writes screenshots when MODELDIFF_SCREENSHOT_DIR is set.
#include <sys/stat.h>
#include <QComboBox>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QMessageBox>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QSvgRenderer>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include <qcustomplot.h>
#include "analysis_plots.h"
#include "core/diff/diff_summary.h"
#include "core/diff/model_diff.h"
#include "core/io/hdf5_dataset.h"
#include "core/io/npy.h"
#include "core/pipeline/counterfactual.h"
#include "core/pipeline/project.h"
#include "counterfactual_panel.h"
#include "direction_table_model.h"
#include "example_inspector.h"
#include "grid_figure.h"
#include "image_grid_model.h"
#include "main_window.h"
#include "run_job.h"
#include "variance_plot.h"

#include "test_classes.h"

using namespace modeldiff;

class RunWindowTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase();
  void opensRunAndListsEveryComparison();
  void gridsShowTheSummarysIndices();
  void imageCountChangesTheGrids();
  void patchedImagesAreCounted();
  void corruptRunJsonShowsAnError();
  void missingComparisonFolderShowsAnError();
  void hdf5FileThatCrashesLibhdf5ShowsAnError();
  void counterfactualOfThePlantedPatch();
  void counterfactualCanBeCancelled();
  void invalidTransformationDisablesRun();
  void projectionPlotShowsDiffH5sProjections();
  void clickingAProjectionShowsTheExample();
  void cosineHistogramCountsEveryTarget();
  void exportsTheVisibleFigure();
  void inspectorListsEachAlgorithmsTopInfluencers();
  void exportsImageGrids();
  void runsAProjectOfTwoScoreFiles();
  void openDemoOpensExistingResults();
  void screenshotModeWritesTheWindow();
  void badScoreFileLeavesTheRestOfTheRun();
  void comparesASelectedRegion();  // last: it adds a comparison to the run folder

 private:
  void openRun(ui::MainWindow& w);
  void showProjections(ui::MainWindow& w);
  void saveScreenshot(QWidget& w, const QString& name);
  static std::vector<std::int64_t> indices(const ui::ImageGridModel* model);
  QTemporaryDir dir_;
  QString run_;
  QJsonObject record_;  // run.json, read independently of the GUI
};

void RunWindowTest::initTestCase() {
#ifndef MODELDIFF_EXECUTABLE
  QSKIP("built without LibTorch: no `modeldiff demo` to make a run folder");
#else
  if (!QFile::exists(
          QStringLiteral("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")))
    QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  QVERIFY(dir_.isValid());
  run_ = dir_.filePath(QStringLiteral("run"));
  QProcess cli;
  cli.setProcessChannelMode(QProcess::MergedChannels);
  cli.start(QStringLiteral(MODELDIFF_EXECUTABLE),
            {QStringLiteral("demo"), QStringLiteral("--quick"), QStringLiteral("-o"), run_,
             QStringLiteral("--threads"), QStringLiteral("2")});
  QVERIFY2(cli.waitForStarted(10000), qPrintable(cli.errorString()));
  if (!cli.waitForFinished(300000)) {
    cli.kill();
    QFAIL("modeldiff demo --quick took more than 5 minutes");
  }
  const QByteArray log = cli.readAll();
  QVERIFY2(cli.exitStatus() == QProcess::NormalExit && cli.exitCode() == 0, log.constData());
  QFile f(run_ + QStringLiteral("/run.json"));
  QVERIFY(f.open(QIODevice::ReadOnly));
  record_ = QJsonDocument::fromJson(f.readAll()).object();
  QVERIFY(record_.value(QStringLiteral("comparisons")).toArray().size() > 1);
#endif
}

// Shows `w` at the screenshots' size and opens the run in it.
void RunWindowTest::openRun(ui::MainWindow& w) {
  w.resize(1400, 900);
  w.show();
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  QSignalSpy failed(&w, &ui::MainWindow::loadFailed);
  QVERIFY(w.open(run_));
  QVERIFY(loaded.wait(120000));
  QCOMPARE(failed.size(), 0);
}

// Opens the run with the Projections tab showing direction 1 of A minus B over all examples.
void RunWindowTest::showProjections(ui::MainWindow& w) {
  openRun(w);
  w.selectComparison(0);
  w.selectDirection(0, 0);
  w.plotTabs()->setCurrentIndex(1);
  QVERIFY(QTest::qWaitForWindowExposed(&w));
  QCoreApplication::processEvents();
  w.projectionPlot()->replot();
}

void RunWindowTest::saveScreenshot(QWidget& w, const QString& name) {
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (dir.isEmpty()) return;
  QDir().mkpath(dir);
  QVERIFY(w.grab().save(dir + QLatin1Char('/') + name));
}

std::vector<std::int64_t> RunWindowTest::indices(const ui::ImageGridModel* model) {
  std::vector<std::int64_t> out;
  for (int r = 0; r < model->rowCount(); ++r)
    out.push_back(model->data(model->index(r), ui::ImageGridModel::kIndexRole).toLongLong());
  return out;
}

void RunWindowTest::opensRunAndListsEveryComparison() {
  ui::MainWindow w;
  openRun(w);
  // The header says what TRAK attributed for each algorithm (every parameter of the demo CNN).
  const QString attributed = w.headerLabel()->toolTip();
  for (const char* line : {"patched data: TRAK attributes 20490 parameters in 6 tensors",
                           "patch hidden: TRAK attributes 20490 parameters in 6 tensors"})
    QVERIFY2(attributed.contains(QLatin1String(line)), qPrintable(attributed));
  // The run's project is the current one, with the run folder as its output.
  QVERIFY(!w.projectJson().isEmpty());
  QCOMPARE(QString::fromStdString(
               core::parse_project(w.projectJson().toStdString(), "/", "run.json").output),
           QFileInfo(run_).absoluteFilePath());
  const QJsonArray comparisons = record_.value(QStringLiteral("comparisons")).toArray();
  QCOMPARE(w.comparisonBox()->count(), comparisons.size());
  for (int i = 0; i < comparisons.size(); ++i)
    QCOMPARE(w.comparisonBox()->itemText(i),
             comparisons[i].toObject().value(QStringLiteral("title")).toString());
  QCOMPARE(w.comparisonBox()->itemText(0), QStringLiteral("all validation examples"));
  QCOMPARE(w.comparisonBox()->itemText(1), QStringLiteral("class 0 (T-shirt/top)"));
  QVERIFY(w.run() != nullptr && w.run()->is_run);
  QCOMPARE(static_cast<qint64>(w.run()->train->size()),
           record_.value(QStringLiteral("num_train")).toInteger());
  QCOMPARE(static_cast<qint64>(w.run()->val->size()),
           record_.value(QStringLiteral("num_val")).toInteger());
  QCOMPARE(w.directionView()->selectionModel()->selectedRows().size(), 1);
  QVERIFY(w.gridModel(ui::MainWindow::kTopTrain)->rowCount() > 0);
  QTRY_VERIFY_WITH_TIMEOUT(!w.thumbnailsPending(), 20000);
  QCoreApplication::processEvents();
  saveScreenshot(w, QStringLiteral("run_window.png"));
}

void RunWindowTest::gridsShowTheSummarysIndices() {
  ui::MainWindow w;
  openRun(w);
  const QJsonArray comparisons = record_.value(QStringLiteral("comparisons")).toArray();
  for (int comparison : {1, static_cast<int>(comparisons.size()) - 1}) {
    w.selectComparison(comparison);
    QCOMPARE(w.currentComparison(), comparison);
    const QString folder = QDir(run_).filePath(
        comparisons[comparison].toObject().value(QStringLiteral("folder")).toString());
    const core::DiffSummary s = core::read_diff_summary(folder.toStdString());
    QCOMPARE(w.directionModel()->rowCount(),
             static_cast<int>(s.a_minus_b.explained_variance.size() +
                              s.b_minus_a.explained_variance.size()));
    QCOMPARE(w.variancePlot()->pointCount(0),
             static_cast<int>(s.a_minus_b.explained_variance.size()));
    for (int set : {0, 1}) {
      const core::DirectionSummary& d = set == 0 ? s.a_minus_b : s.b_minus_a;
      const int component = std::min<int>(1, static_cast<int>(d.top_train.size()) - 1);
      w.selectDirection(set, component);
      const auto c = static_cast<std::size_t>(component);
      const int k = w.imageCountBox()->value();
      QCOMPARE(w.imageCountBox()->maximum(), static_cast<int>(d.top_train[c].size()));
      auto first_k = [k](const std::vector<std::int64_t>& v) {
        return std::vector<std::int64_t>(v.begin(), v.begin() + std::min<std::size_t>(k, v.size()));
      };
      QCOMPARE(indices(w.gridModel(ui::MainWindow::kTopTrain)), first_k(d.top_train[c]));
      QCOMPARE(indices(w.gridModel(ui::MainWindow::kBottomTrain)), first_k(d.bottom_train[c]));
      QCOMPARE(indices(w.gridModel(ui::MainWindow::kTopVal)), first_k(d.top_target[c]));
      QCOMPARE(indices(w.gridModel(ui::MainWindow::kBottomVal)), first_k(d.bottom_target[c]));
      // Projections: the top grid's descending, the bottom grid's ascending and below them.
      const ui::ImageGridModel* top = w.gridModel(ui::MainWindow::kTopVal);
      const ui::ImageGridModel* bottom = w.gridModel(ui::MainWindow::kBottomVal);
      auto value = [](const ui::ImageGridModel* m, int r) {
        return m->data(m->index(r), ui::ImageGridModel::kValueRole).toDouble();
      };
      for (int r = 1; r < top->rowCount(); ++r) QVERIFY(value(top, r) <= value(top, r - 1));
      for (int r = 1; r < bottom->rowCount(); ++r)
        QVERIFY(value(bottom, r) >= value(bottom, r - 1));
      QVERIFY(value(bottom, 0) <= value(top, top->rowCount() - 1));
      const QString title = w.gridTitle(ui::MainWindow::kTopTrain)->text();
      QVERIFY2(title.contains(QStringLiteral("direction %1").arg(component + 1)),
               qPrintable(title));
      QVERIFY2(title.contains(QStringLiteral("largest loadings")), qPrintable(title));
    }
  }
  // Items: caption "#index class", tooltip with the value, a thumbnail once rendered.
  ui::ImageGridModel* top = w.gridModel(ui::MainWindow::kTopTrain);
  const QModelIndex first = top->index(0);
  const qint64 index = top->data(first, ui::ImageGridModel::kIndexRole).toLongLong();
  const std::string label =
      w.run()->train->class_name(w.run()->train->labels[static_cast<std::size_t>(index)]);
  QCOMPARE(top->data(first, Qt::DisplayRole).toString(),
           QStringLiteral("#%1 %2").arg(index).arg(QString::fromStdString(label)));
  QVERIFY(top->data(first, Qt::ToolTipRole).toString().contains(QStringLiteral("loading: ")));
  QVERIFY(top->data(first, ui::ImageGridModel::kValueRole).isValid());
  QTRY_VERIFY_WITH_TIMEOUT(!w.thumbnailsPending(), 20000);
  const QPixmap thumb = top->data(first, Qt::DecorationRole).value<QPixmap>();
  QCOMPARE(thumb.size(), QSize(64, 64));
  // The largest loadings come first.
  QVERIFY(top->data(top->index(0), ui::ImageGridModel::kValueRole).toDouble() >=
          top->data(top->index(1), ui::ImageGridModel::kValueRole).toDouble());
}

void RunWindowTest::imageCountChangesTheGrids() {
  ui::MainWindow w;
  openRun(w);
  QSpinBox* k = w.imageCountBox();
  QVERIFY(k->isEnabled());
  QCOMPARE(k->value(), std::min(10, k->maximum()));
  k->setValue(3);
  for (auto grid : {ui::MainWindow::kTopTrain, ui::MainWindow::kBottomTrain,
                    ui::MainWindow::kTopVal, ui::MainWindow::kBottomVal})
    QCOMPARE(w.gridModel(grid)->rowCount(), 3);
  k->setValue(k->maximum());
  QCOMPARE(w.gridModel(ui::MainWindow::kTopTrain)->rowCount(), k->maximum());
  // k stays when the direction changes.
  k->setValue(4);
  w.selectDirection(1, 0);
  QCOMPARE(w.gridModel(ui::MainWindow::kBottomTrain)->rowCount(), 4);
}

void RunWindowTest::patchedImagesAreCounted() {
  const QJsonObject planted = record_.value(QStringLiteral("planted")).toObject();
  if (planted.isEmpty()) QSKIP("the quick demo planted no patch");
  std::vector<std::int64_t> patched;
  for (const QJsonValue& v : planted.value(QStringLiteral("patched_train_indices")).toArray())
    patched.push_back(v.toInteger());
  std::sort(patched.begin(), patched.end());
  ui::MainWindow w;
  openRun(w);
  // The patched class's comparison shows the patch most clearly.
  const QJsonArray comparisons = record_.value(QStringLiteral("comparisons")).toArray();
  int shirt = 0;
  for (int i = 0; i < comparisons.size(); ++i)
    if (comparisons[i]
            .toObject()
            .value(QStringLiteral("title"))
            .toString()
            .contains(QStringLiteral("Shirt")))
      shirt = i;
  w.selectComparison(shirt);
  const int set =
      planted.value(QStringLiteral("direction_set")).toString().startsWith(QStringLiteral("A")) ? 0
                                                                                                : 1;
  w.selectDirection(set, 0);
  ui::ImageGridModel* top = w.gridModel(ui::MainWindow::kTopTrain);
  int expected = 0;
  for (std::int64_t i : indices(top))
    expected += std::binary_search(patched.begin(), patched.end(), i) ? 1 : 0;
  QCOMPARE(top->patchedCount(), expected);
  for (int r = 0; r < top->rowCount(); ++r) {
    const qint64 i = top->data(top->index(r), ui::ImageGridModel::kIndexRole).toLongLong();
    QCOMPARE(top->data(top->index(r), ui::ImageGridModel::kPatchedRole).toBool(),
             std::binary_search(patched.begin(), patched.end(), i));
  }
  const QString label = w.patchLabel()->text();
  QVERIFY2(label.contains(QStringLiteral("%1 of the %2").arg(expected).arg(top->rowCount())),
           qPrintable(label));
  QTRY_VERIFY_WITH_TIMEOUT(!w.thumbnailsPending(), 20000);
  QCoreApplication::processEvents();
  saveScreenshot(w, QStringLiteral("run_window_patched_class.png"));
}

void RunWindowTest::corruptRunJsonShowsAnError() {
  const QString bad = dir_.filePath(QStringLiteral("corrupt-run"));
  QVERIFY(QDir().mkpath(bad));
  QFile f(bad + QStringLiteral("/run.json"));
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write("{\"format\": \"modeldiff-run\", \"project\": {\"name\": ");  // truncated
  f.close();
  ui::MainWindow w;
  w.show();
  QSignalSpy failed(&w, &ui::MainWindow::loadFailed);
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  QVERIFY(w.open(bad));
  QVERIFY(failed.wait(20000));
  QVERIFY2(failed.front().front().toString().contains(QStringLiteral("run.json")),
           qPrintable(failed.front().front().toString()));
  QCOMPARE(loaded.size(), 0);
  auto* box = w.findChild<QMessageBox*>();
  QVERIFY(box != nullptr);
  QVERIFY(box->isVisible());
  QVERIFY(w.run() == nullptr);
  QCOMPARE(w.gridModel(ui::MainWindow::kTopTrain)->rowCount(), 0);
}

void RunWindowTest::missingComparisonFolderShowsAnError() {
  // A run.json whose comparison folders are not there (copied without diff/).
  const QString bad = dir_.filePath(QStringLiteral("incomplete-run"));
  QVERIFY(QDir().mkpath(bad));
  QVERIFY(QFile::copy(run_ + QStringLiteral("/run.json"), bad + QStringLiteral("/run.json")));
  ui::MainWindow w;
  w.show();
  QSignalSpy failed(&w, &ui::MainWindow::loadFailed);
  QVERIFY(w.open(bad + QStringLiteral("/run.json")));
  QVERIFY(failed.wait(60000));
  QVERIFY2(failed.front().front().toString().contains(QStringLiteral("diff/all")),
           qPrintable(failed.front().front().toString()));
  QVERIFY(w.run() == nullptr);
}

// A diff.h5 that crashes libhdf5 itself (read in-process it killed the GUI): the result opens,
// and a box names the file as a corrupt HDF5 file.
void RunWindowTest::hdf5FileThatCrashesLibhdf5ShowsAnError() {
  QTemporaryDir copy;
  QVERIFY(copy.isValid());
  namespace fs = std::filesystem;
  const fs::path result = fs::path(copy.filePath(QStringLiteral("all")).toStdString());
  fs::copy(fs::path(run_.toStdString()) / "diff" / "all", result, fs::copy_options::recursive);
  const fs::path crash = fs::path(__FILE__).parent_path() / ".." / "fuzz" / "known_hdf5_crashes" /
                         "stab_group_local_heap_segv.h5";
  QVERIFY(fs::exists(crash));
  fs::copy_file(crash, result / "diff.h5", fs::copy_options::overwrite_existing);
  ui::MainWindow w;
  w.show();
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  QVERIFY(w.openResult(QString::fromStdString(result.string())));
  QVERIFY(loaded.wait(60000));
  QVERIFY(w.run() != nullptr);
  const QString problem = w.run()->comparisons.front().values_problem;
  QVERIFY2(problem.contains(QStringLiteral("corrupt HDF5 file")) &&
               problem.contains(QString::fromStdString((result / "diff.h5").string())),
           qPrintable(problem));
  QMessageBox* box = nullptr;
  for (QMessageBox* b : w.findChildren<QMessageBox*>())
    if (b->isVisible() && b->text().contains(QStringLiteral("corrupt HDF5 file"))) box = b;
  QVERIFY(box != nullptr);
  // The rest of the result is there.
  QVERIFY(w.gridModel(ui::MainWindow::kTopTrain)->rowCount() > 0);
}

// The planted patch as the project recorded it: "patch:x=X,y=Y,size=S,value=V", or "" without.
static QString plantedPatchText(const QJsonObject& record) {
  const QJsonObject p = record.value(QStringLiteral("project"))
                            .toObject()
                            .value(QStringLiteral("data"))
                            .toObject()
                            .value(QStringLiteral("planted_patch"))
                            .toObject();
  if (p.isEmpty()) return {};
  return QStringLiteral("patch:x=%1,y=%2,size=%3,value=%4")
      .arg(p.value(QStringLiteral("x")).toInt())
      .arg(p.value(QStringLiteral("y")).toInt())
      .arg(p.value(QStringLiteral("size")).toInt())
      .arg(p.value(QStringLiteral("value")).toInt());
}

void RunWindowTest::counterfactualOfThePlantedPatch() {
  const QString patch = plantedPatchText(record_);
  if (patch.isEmpty()) QSKIP("the quick demo planted no patch");
  ui::MainWindow w;
  openRun(w);
  w.resize(1800, 1000);
  ui::CounterfactualPanel* panel = w.counterfactualPanel();
  QVERIFY(panel->isEnabled());
  // The planted patch is the first preset and the default; the target is the planted class.
  QCOMPARE(panel->presetBox()->itemData(1).toString(), patch);
  QCOMPARE(panel->transformEdit()->text(), patch);
  const int planted_class = record_.value(QStringLiteral("project"))
                                .toObject()
                                .value(QStringLiteral("data"))
                                .toObject()
                                .value(QStringLiteral("planted_patch"))
                                .toObject()
                                .value(QStringLiteral("class"))
                                .toInt();
  QCOMPARE(panel->targetBox()->currentIndex(), planted_class);
  panel->strengthsEdit()->setText(QStringLiteral("0,3"));
  QVERIFY(panel->errorLabel()->text().isEmpty());
  QVERIFY(panel->runButton()->isEnabled());
  QCOMPARE(panel->previewCount(), 4);

  ui::CounterfactualInputs in;
  QString error;
  QVERIFY2(panel->inputs(in, error), qPrintable(error));
  // The models are the run's checkpoints; B (hide_patch) sees the patch region blanked.
  const QJsonObject algorithms = record_.value(QStringLiteral("algorithms")).toObject();
  QCOMPARE(in.a.checkpoints.size(),
           static_cast<std::size_t>(algorithms.value(QStringLiteral("A"))
                                        .toObject()
                                        .value(QStringLiteral("checkpoints"))
                                        .toArray()
                                        .size()));
  QCOMPARE(in.strengths, (std::vector<double>{0, 3}));
  for (std::int64_t y : in.images->labels) QVERIFY(y != planted_class);

  QSignalSpy finished(panel, &ui::CounterfactualPanel::finished);
  // No legend before there is anything to name (an empty one is a stray box in the figure).
  QVERIFY(!panel->plot()->legend->visible());
  QVERIFY(panel->start());
  QVERIFY(panel->isRunning());
  QVERIFY(!panel->runButton()->isEnabled());
  QTRY_VERIFY_WITH_TIMEOUT(!panel->isRunning(), 600000);
  QCOMPARE(finished.size(), 1);
  QVERIFY2(finished.front().at(0).toBool(), qPrintable(finished.front().at(1).toString()));
  QVERIFY(panel->hasResult());
  QVERIFY(panel->plot()->legend->visible());
  const core::CounterfactualResult& shown = panel->result();
  for (const core::EffectRow& r : shown.rows) {
    if (r.strength == 0) {
      QCOMPARE(r.mean_delta_p, 0.0);
      QCOMPARE(r.flip_fraction, 0.0);
    }
  }

  // The same inputs straight through the core give the plotted values.
  core::NullProgress quiet;
  const core::CounterfactualResult direct = core::run_counterfactual(
      in.a, in.b, *in.images, in.prep, in.transform, in.strengths, in.target_class, in.seed, quiet);
  QCOMPARE(direct.rows.size(), shown.rows.size());
  QCustomPlot* plot = panel->plot();
  QCOMPARE(plot->graphCount(), 2);
  for (int g = 0; g < 2; ++g) {
    const std::string algorithm = g == 0 ? "A" : "B";
    std::vector<const core::EffectRow*> rows;
    for (const core::EffectRow& r : direct.rows)
      if (r.algorithm == algorithm) rows.push_back(&r);
    QCPGraph* graph = plot->graph(g);
    QCOMPARE(graph->dataCount(), static_cast<int>(rows.size()));
    QVERIFY(graph->name().contains(QString::fromStdString(rows.front()->label)));
    for (int i = 0; i < graph->dataCount(); ++i) {
      QCOMPARE(graph->data()->at(i)->key, rows[static_cast<std::size_t>(i)]->strength);
      QCOMPARE(graph->data()->at(i)->value, rows[static_cast<std::size_t>(i)]->mean_delta_p);
      if (rows[static_cast<std::size_t>(i)]->strength == 0) {
        QCOMPARE(graph->data()->at(i)->value, 0.0);
      }
    }
  }
  QCOMPARE(panel->table()->rowCount(), 2);
  QVERIFY(panel->exportButton()->isEnabled());

  // Export: plot.png at the size asked for, plot.svg that parses, effects.json.
  QTemporaryDir out;
  QVERIFY(out.isValid());
  QString export_error;
  QVERIFY2(panel->exportTo(out.path(), QSize(640, 400), &export_error), qPrintable(export_error));
  const QImage png(out.filePath(QStringLiteral("plot.png")));
  QCOMPARE(png.size(), QSize(640, 400));
  QSvgRenderer svg(out.filePath(QStringLiteral("plot.svg")));
  QVERIFY(svg.isValid());
  QFile json(out.filePath(QStringLiteral("effects.json")));
  QVERIFY(json.open(QIODevice::ReadOnly));
  QJsonParseError parse{};
  const QJsonDocument effects = QJsonDocument::fromJson(json.readAll(), &parse);
  QCOMPARE(parse.error, QJsonParseError::NoError);
  QVERIFY(effects.isObject());
  QVERIFY(QFile::exists(out.filePath(QStringLiteral("effects.csv"))));

  QCoreApplication::processEvents();
  saveScreenshot(w, QStringLiteral("gui_counterfactual.png"));
}

// Cancel takes effect: the run ends reported as cancelled, before it got past its first
// checkpoint (the progress it reported), with nothing plotted, tabulated or exportable, and
// no error box; the same test uncancelled runs to the end and shows its result.
void RunWindowTest::counterfactualCanBeCancelled() {
  ui::MainWindow w;
  openRun(w);
  ui::CounterfactualPanel* panel = w.counterfactualPanel();
  panel->transformEdit()->setText(QStringLiteral("blur:sigma=1"));
  panel->strengthsEdit()->setText(QStringLiteral("0,0.5,1,1.5,2,2.5,3"));
  ui::CounterfactualInputs in;
  QString error;
  QVERIFY2(panel->inputs(in, error), qPrintable(error));
  const auto checkpoints = static_cast<int>(in.a.checkpoints.size() + in.b.checkpoints.size());
  QVERIFY(checkpoints >= 2);
  // The progress bar's values in a run: per mille of the checkpoints evaluated, reported
  // before each checkpoint.
  std::set<int> shown;
  connect(panel->progressBar(), &QProgressBar::valueChanged, this,
          [&shown](int value) { shown.insert(value); });
  const int last_checkpoint =
      static_cast<int>(std::lround(1000.0 * (checkpoints - 1) / checkpoints));
  QSignalSpy finished(panel, &ui::CounterfactualPanel::finished);

  QVERIFY(!panel->hasResult());
  QVERIFY(panel->start());
  QVERIFY(panel->cancelButton()->isEnabled());
  panel->cancel();
  QTRY_VERIFY_WITH_TIMEOUT(!panel->isRunning(), 600000);
  QCOMPARE(finished.size(), 1);
  QCOMPARE(finished.front().at(0).toBool(), false);
  QCOMPARE(finished.front().at(1).toString(), QStringLiteral("Cancelled"));
  // The core checks the cancel before each checkpoint: the first at most was evaluated.
  const int furthest = shown.empty() ? 0 : *shown.rbegin();
  QVERIFY2(
      furthest <= 1000 / checkpoints,
      qPrintable(
          QStringLiteral("got to %1 per mille of %2 checkpoints").arg(furthest).arg(checkpoints)));
  QVERIFY(!panel->hasResult());
  QCOMPARE(panel->plot()->graphCount(), 0);
  QCOMPARE(panel->table()->rowCount(), 0);
  QVERIFY(!panel->exportButton()->isEnabled());
  QVERIFY(!panel->cancelButton()->isEnabled());
  QVERIFY(panel->runButton()->isEnabled());
  QVERIFY(w.findChild<QMessageBox*>() == nullptr);  // a cancel is not an error

  // Uncancelled, the same test gets to its last checkpoint and shows its result.
  shown.clear();
  QVERIFY(panel->start());
  QTRY_VERIFY_WITH_TIMEOUT(!panel->isRunning(), 600000);
  QCOMPARE(finished.size(), 2);
  QVERIFY2(finished.back().at(0).toBool(), qPrintable(finished.back().at(1).toString()));
  QVERIFY2(shown.count(last_checkpoint) == 1,
           qPrintable(QStringLiteral("no report of the last of %1 checkpoints").arg(checkpoints)));
  QVERIFY(panel->hasResult());
  QCOMPARE(panel->plot()->graphCount(), 2);
  QCOMPARE(panel->table()->rowCount(), 7);
  QVERIFY(panel->exportButton()->isEnabled());
}

void RunWindowTest::invalidTransformationDisablesRun() {
  ui::MainWindow w;
  openRun(w);
  ui::CounterfactualPanel* panel = w.counterfactualPanel();
  panel->transformEdit()->setText(QStringLiteral("blur:sigma=1"));
  QVERIFY(panel->runButton()->isEnabled());
  // The current direction's top validation images are the top-validation grid's.
  panel->imageChoiceBox()->setCurrentIndex(ui::CounterfactualPanel::kDirectionTop);
  ui::CounterfactualInputs in;
  QString error;
  QVERIFY2(panel->inputs(in, error), qPrintable(error));
  QCOMPARE(static_cast<int>(in.images->size()), w.gridModel(ui::MainWindow::kTopVal)->rowCount());
  QVERIFY(panel->runButton()->isEnabled());
  QVERIFY(panel->errorLabel()->text().isEmpty());
  panel->transformEdit()->setText(QStringLiteral("swirl:amount=3"));
  QVERIFY(!panel->errorLabel()->text().isEmpty());
  QVERIFY(panel->errorLabel()->isVisibleTo(panel));
  QVERIFY(!panel->runButton()->isEnabled());
  QVERIFY(!panel->start());
  QVERIFY(!panel->isRunning());
  panel->transformEdit()->setText(QStringLiteral("blur:sigma=1"));
  panel->strengthsEdit()->setText(QStringLiteral("0,x"));
  QVERIFY(panel->errorLabel()->text().contains(QStringLiteral("Strengths")));
  QVERIFY(!panel->runButton()->isEnabled());
}

void RunWindowTest::projectionPlotShowsDiffH5sProjections() {
  ui::MainWindow w;
  openRun(w);
  w.selectComparison(0);
  w.selectDirection(0, 0);
  w.plotTabs()->setCurrentIndex(1);
  const ui::Comparison& c = w.run()->comparisons[0];
  QCOMPARE(c.title, QStringLiteral("all validation examples"));
  ui::ProjectionPlot* plot = w.projectionPlot();
  QCOMPARE(static_cast<std::int64_t>(plot->pointCount()), c.summary->num_analysed_targets);
  QCOMPARE(w.projectionComponentBox(0)->value(), 1);
  QCOMPARE(w.projectionComponentBox(1)->value(), 2);

  // diff.h5 read independently of the GUI.
  const std::string h5 = (c.folder + QStringLiteral("/diff.h5")).toStdString();
  const core::NdArray rows = core::read_hdf5_dataset(h5, "target_rows");
  const core::NdArray projections =
      core::read_hdf5_dataset(h5, "a_minus_b/projections").to_float32();
  QCOMPARE(rows.dim(0), c.summary->num_analysed_targets);
  const std::int64_t columns = projections.dim(1);
  const float* p = projections.data_as<float>();
  for (int row : {0, 1, static_cast<int>(rows.dim(0)) - 1}) {
    const QPointF point = plot->pointOf(row);
    QCOMPARE(point.x(), static_cast<double>(p[row * columns + 0]));
    QCOMPARE(point.y(), static_cast<double>(p[row * columns + 1]));
  }
  // The plotted points are exactly diff.h5's rows (as a multiset of coordinates).
  std::vector<std::pair<double, double>> plotted, stored;
  for (int k = 0; k < plot->plottableCount(); ++k) {
    auto* curve = qobject_cast<QCPCurve*>(plot->plottable(k));
    if (curve == nullptr || curve->selectable() == QCP::stNone) continue;
    for (auto it = curve->data()->constBegin(); it != curve->data()->constEnd(); ++it)
      plotted.emplace_back(it->key, it->value);
  }
  for (std::int64_t row = 0; row < rows.dim(0); ++row)
    stored.emplace_back(p[row * columns + 0], p[row * columns + 1]);
  std::sort(plotted.begin(), plotted.end());
  std::sort(stored.begin(), stored.end());
  QVERIFY(plotted == stored);

  // Other components: x = direction 3.
  if (columns >= 3) {
    w.projectionComponentBox(0)->setValue(3);
    QCOMPARE(plot->pointOf(0).x(), static_cast<double>(p[2]));
    QCOMPARE(plot->xAxis->label().contains(QStringLiteral("direction 3")), true);
  }
  QTRY_VERIFY_WITH_TIMEOUT(!w.thumbnailsPending(), 20000);
  w.projectionComponentBox(0)->setValue(1);
  plot->replot();
  QCoreApplication::processEvents();
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    // With an example picked, as a user would see it.
    w.showExample(0);
    saveScreenshot(w, QStringLiteral("projections.png"));
  }
}

void RunWindowTest::clickingAProjectionShowsTheExample() {
  ui::MainWindow w;
  showProjections(w);
  ui::ProjectionPlot* plot = w.projectionPlot();
  const ui::Comparison& c = w.run()->comparisons[0];
  // The point farthest (in pixels) from every other point, outside the legend: the click can
  // only mean it.
  const auto n = static_cast<int>(c.target_rows.size());
  std::vector<QPointF> pixels;
  for (int row = 0; row < n; ++row)
    pixels.emplace_back(plot->xAxis->coordToPixel(plot->pointOf(row).x()),
                        plot->yAxis->coordToPixel(plot->pointOf(row).y()));
  int best = -1;
  double best_gap = -1;
  for (int row = 0; row < n; ++row) {
    if (plot->legend->outerRect().contains(pixels[static_cast<std::size_t>(row)].toPoint()) ||
        !plot->axisRect()->rect().contains(pixels[static_cast<std::size_t>(row)].toPoint()))
      continue;
    double gap = 1e9;
    for (int other = 0; other < n; ++other)
      if (other != row) {
        const QPointF d =
            pixels[static_cast<std::size_t>(row)] - pixels[static_cast<std::size_t>(other)];
        gap = std::min(gap, std::hypot(d.x(), d.y()));
      }
    if (gap > best_gap) {
      best_gap = gap;
      best = row;
    }
  }
  QVERIFY(best >= 0);
  const QPoint pixel = pixels[static_cast<std::size_t>(best)].toPoint();
  QCPAbstractPlottable* under = plot->plottableAt(pixels[static_cast<std::size_t>(best)], true);
  QVERIFY2(under != nullptr, qPrintable(QStringLiteral("no plottable at %1,%2 (gap %3, plot %4x%5)")
                                            .arg(pixel.x())
                                            .arg(pixel.y())
                                            .arg(best_gap)
                                            .arg(plot->width())
                                            .arg(plot->height())));
  QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, pixel);
  const QString index = QString::number(c.target_rows[static_cast<std::size_t>(best)]);
  QTRY_VERIFY2_WITH_TIMEOUT(
      w.exampleText()->text().contains(QStringLiteral("<b>%1</b>").arg(index)),
      qPrintable(QStringLiteral("want %1 at %2,%3; box says %4")
                     .arg(index)
                     .arg(pixel.x())
                     .arg(pixel.y())
                     .arg(w.exampleText()->text())),
      5000);
  QVERIFY(w.exampleImage()->pixmap().width() > 0);
  const std::int64_t label =
      w.run()->val->labels[static_cast<std::size_t>(c.target_rows[static_cast<std::size_t>(best)])];
  QVERIFY(w.exampleText()->text().contains(
      QString::fromStdString(w.run()->val->class_name(label)).toHtmlEscaped()));
  // The inspector shows the same example with its top influencers.
  QCOMPARE(w.inspector()->example(), c.target_rows[static_cast<std::size_t>(best)]);
  QVERIFY(w.inspector()->textLabel()->text().contains(QStringLiteral("example %1").arg(index)));
  QVERIFY(w.inspector()->imageLabel()->pixmap().width() > 0);
  QCOMPARE(static_cast<int>(indices(w.inspector()->gridModel(0)).size()),
           w.inspector()->countBox()->value());
}

// Each algorithm's list is the example's row of its score file (read here on its own),
// sorted by score: highest first, or lowest first for opponents; the values are the scores.
void RunWindowTest::inspectorListsEachAlgorithmsTopInfluencers() {
  ui::MainWindow w;
  openRun(w);
  ui::ExampleInspector* inspector = w.inspector();
  const std::int64_t example = 7;
  w.gridView(ui::MainWindow::kTopVal)->setFocus();
  inspector->showExample(example);
  for (int order = 0; order < 2; ++order) {
    inspector->orderBox()->setCurrentIndex(order);
    for (int algorithm = 0; algorithm < 2; ++algorithm) {
      const core::NdArray scores = core::read_npy(
          (run_ + QStringLiteral("/scores/%1.npy").arg(algorithm == 0 ? 'A' : 'B')).toStdString());
      QCOMPARE(scores.ndim(), 2);
      QCOMPARE(scores.dim(0), w.run()->val->size());
      const std::int64_t n = scores.dim(1);
      const float* row = scores.data_as<float>() + example * n;
      std::vector<std::int64_t> order_of(static_cast<std::size_t>(n));
      std::iota(order_of.begin(), order_of.end(), 0);
      std::stable_sort(order_of.begin(), order_of.end(), [&](std::int64_t x, std::int64_t y) {
        return order == 0 ? row[x] > row[y] : row[x] < row[y];
      });
      const ui::ImageGridModel* model = inspector->gridModel(algorithm);
      const int k = inspector->countBox()->value();
      QCOMPARE(model->rowCount(), k);
      for (int r = 0; r < k; ++r) {
        const QModelIndex index = model->index(r);
        QCOMPARE(index.data(ui::ImageGridModel::kIndexRole).toLongLong(),
                 order_of[static_cast<std::size_t>(r)]);
        QCOMPARE(index.data(ui::ImageGridModel::kValueRole).toDouble(),
                 static_cast<double>(row[order_of[static_cast<std::size_t>(r)]]));
      }
    }
  }
  inspector->orderBox()->setCurrentIndex(0);
  inspector->countBox()->setValue(5);
  QCOMPARE(inspector->gridModel(0)->rowCount(), 5);
  // A validation image of the top grid opens in the inspector.
  w.selectComparison(0);
  w.selectDirection(0, 0);
  QListView* view = w.gridView(ui::MainWindow::kTopVal);
  QVERIFY(view->model()->rowCount() > 1);
  const QModelIndex second = view->model()->index(1, 0);
  view->scrollTo(second);
  QTest::mouseClick(view->viewport(), Qt::LeftButton, Qt::NoModifier,
                    view->visualRect(second).center());
  QCOMPARE(inspector->example(), second.data(ui::ImageGridModel::kIndexRole).toLongLong());
  w.resize(1600, 1000);
  QTRY_VERIFY_WITH_TIMEOUT(!w.thumbnailsPending(), 10000);
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    QDir().mkpath(dir);
    QCoreApplication::processEvents();
    QVERIFY(w.grab().save(dir + QStringLiteral("/gui_inspector.png")));
  }
}

// A grid as a figure: PNG at 2x the figure's size, an SVG that parses, a PDF; every shown
// image in it.
void RunWindowTest::exportsImageGrids() {
  ui::MainWindow w;
  openRun(w);
  w.selectComparison(0);
  w.selectDirection(0, 0);
  QTemporaryDir out;
  QVERIFY(out.isValid());
  const ui::ImageGridModel* model = w.gridModel(ui::MainWindow::kTopTrain);
  QVERIFY(model->rowCount() > 0);
  const QString title = w.gridFigureTitle(ui::MainWindow::kTopTrain);
  QVERIFY(title.contains(QStringLiteral("largest loadings")));
  QVERIFY(!title.contains(QLatin1Char('<')));
  const QSize size = ui::gridFigureSize(*model, title);
  QVERIFY(w.exportGrid(ui::MainWindow::kTopTrain, out.filePath(QStringLiteral("grid.png")), 2));
  const QImage png(out.filePath(QStringLiteral("grid.png")));
  QCOMPARE(png.size(), size * 2);
  // Not blank: the images are drawn (Fashion-MNIST thumbnails are mostly dark on a white page).
  int dark = 0;
  for (int y = 0; y < png.height(); y += 2)
    for (int x = 0; x < png.width(); x += 2) dark += qGray(png.pixel(x, y)) < 64 ? 1 : 0;
  QVERIFY2(dark > model->rowCount() * 100, qPrintable(QString::number(dark)));
  QVERIFY(w.exportGrid(ui::MainWindow::kBottomTrain, out.filePath(QStringLiteral("grid.svg"))));
  QSvgRenderer svg(out.filePath(QStringLiteral("grid.svg")));
  QVERIFY(svg.isValid());
  QCOMPARE(svg.viewBox().size(),
           ui::gridFigureSize(*w.gridModel(ui::MainWindow::kBottomTrain),
                              w.gridFigureTitle(ui::MainWindow::kBottomTrain)));
  QVERIFY(w.exportGrid(ui::MainWindow::kTopVal, out.filePath(QStringLiteral("grid.pdf"))));
  QFile pdf(out.filePath(QStringLiteral("grid.pdf")));
  QVERIFY(pdf.open(QIODevice::ReadOnly));
  QVERIFY(pdf.size() > 1000);
  QCOMPARE(pdf.read(4), QByteArray("%PDF"));
  QVERIFY(!w.exportGrid(ui::MainWindow::kTopVal, out.filePath(QStringLiteral("grid.bmpx"))));
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    QDir().mkpath(dir);
    QVERIFY(w.exportGrid(ui::MainWindow::kTopTrain, dir + QStringLiteral("/grid_figure.png"), 2));
  }
}

void RunWindowTest::cosineHistogramCountsEveryTarget() {
  ui::MainWindow w;
  openRun(w);
  for (int comparison = 0; comparison < 2; ++comparison) {
    w.selectComparison(comparison);
    const ui::Comparison& c = w.run()->comparisons[static_cast<std::size_t>(comparison)];
    const std::vector<int> counts = w.cosineHistogram()->counts();
    const auto total = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
    QCOMPARE(total, c.summary->num_analysed_targets);
    const core::NdArray cosine =
        core::read_hdf5_dataset((c.folder + QStringLiteral("/diff.h5")).toStdString(), "cosine_ab")
            .to_float32();
    std::vector<float> sorted(cosine.data_as<float>(), cosine.data_as<float>() + cosine.dim(0));
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    const double median =
        n % 2 == 1 ? sorted[n / 2] : 0.5 * (double(sorted[n / 2 - 1]) + sorted[n / 2]);
    QCOMPARE(w.cosineHistogram()->median(), median);
  }
  QVERIFY(!w.cosineHistogram()->xAxis->label().isEmpty());
  QVERIFY(!w.cosineHistogram()->yAxis->label().isEmpty());
}

void RunWindowTest::exportsTheVisibleFigure() {
  ui::MainWindow w;
  openRun(w);
  QTemporaryDir out;
  QVERIFY(out.isValid());
  for (int tab = 0; tab < 3; ++tab) {
    w.plotTabs()->setCurrentIndex(tab);
    const QString base = out.filePath(QStringLiteral("figure%1").arg(tab));
    QVERIFY(w.exportFigure(base + QStringLiteral(".png"), 400, 300, 2.0));
    const QImage png(base + QStringLiteral(".png"));
    QCOMPARE(png.size(), QSize(800, 600));
    QCOMPARE(qRound(png.dotsPerMeterX() * 0.0254), 192);  // 2x of 96 dpi, recorded
    QVERIFY(w.exportFigure(base + QStringLiteral(".svg"), 400, 300));
    QSvgRenderer svg(base + QStringLiteral(".svg"));
    QVERIFY(svg.isValid());
    QVERIFY(w.exportFigure(base + QStringLiteral(".pdf"), 400, 300));
    QFile pdf(base + QStringLiteral(".pdf"));
    QVERIFY(pdf.open(QIODevice::ReadOnly));
    QVERIFY(pdf.size() > 100);
    QCOMPARE(pdf.read(4), QByteArray("%PDF"));
  }
  QVERIFY(!w.exportFigure(out.filePath(QStringLiteral("figure.txt")), 400, 300));
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    QDir().mkpath(dir);
    w.plotTabs()->setCurrentIndex(2);
    QVERIFY(w.exportFigure(dir + QStringLiteral("/cosine_figure.png"), 640, 400, 1.0));
  }
}

// "Two score files plus the datasets": a project whose algorithms are the quick run's score
// files runs from the window without models, and gives the same directions as the run did.
void RunWindowTest::runsAProjectOfTwoScoreFiles() {
  QTemporaryDir out;
  QVERIFY(out.isValid());
  nlohmann::json project = nlohmann::json::parse(
      QJsonDocument(record_.value(QStringLiteral("project")).toObject()).toJson().toStdString());
  for (const char* letter : {"A", "B"}) {
    nlohmann::json& a = project[letter];
    a.erase("train");
    a.erase("checkpoints");
    a.erase("hide_patch");
    a["scores"] =
        (run_ + QStringLiteral("/scores/%1.npy").arg(QLatin1String(letter))).toStdString();
  }
  project["output"] = out.filePath(QStringLiteral("scores-run")).toStdString();
  ui::MainWindow w;
  w.resize(1400, 900);
  w.show();
  QVERIFY(w.setProject(QString::fromStdString(project.dump(2)), out.path()));
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  QSignalSpy failed(w.job(), &ui::RunJob::failed);
  QVERIFY(w.runProject());
  QVERIFY2(loaded.wait(300000), qPrintable(w.job()->error()));
  QCOMPARE(failed.size(), 0);
  const QStringList log = w.job()->log();
  QVERIFY2(
      std::any_of(log.begin(), log.end(),
                  [](const QString& line) { return line.startsWith(QStringLiteral("scores ")); }),
      qPrintable(log.join(QLatin1Char('\n'))));
  QVERIFY(w.run()->a.checkpoints.empty());
  // The same scores, the same comparisons: summary for summary, the run's directions.
  ui::MainWindow original;
  openRun(original);
  QCOMPARE(w.run()->comparisons.size(), original.run()->comparisons.size());
  for (std::size_t i = 0; i < w.run()->comparisons.size(); ++i) {
    const core::DiffSummary& x = *w.run()->comparisons[i].summary;
    const core::DiffSummary& y = *original.run()->comparisons[i].summary;
    QCOMPARE(x.a_minus_b.top_train, y.a_minus_b.top_train);
    QCOMPARE(x.b_minus_a.top_target, y.b_minus_a.top_target);
    QCOMPARE(x.a_minus_b.explained_variance, y.a_minus_b.explained_variance);
  }
  // The inspector works from the copied scores; the transformation panel says why it cannot.
  w.inspector()->showExample(3);
  QCOMPARE(w.inspector()->gridModel(0)->rowCount(), w.inspector()->countBox()->value());
  QVERIFY(!w.counterfactualPanel()->runButton()->isEnabled());
  QVERIFY2(w.counterfactualPanel()->errorLabel()->text().contains(QStringLiteral("precomputed")),
           qPrintable(w.counterfactualPanel()->errorLabel()->text()));
}

// Help > Open Demo on a folder that holds a run opens its results; no job starts.
void RunWindowTest::openDemoOpensExistingResults() {
  ui::MainWindow w;
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  QSignalSpy started(w.job(), &ui::RunJob::started);
  QVERIFY(w.openDemo(run_));
  QVERIFY(loaded.wait(120000));
  QCOMPARE(started.size(), 0);
  QCOMPARE(w.run()->folder, QFileInfo(run_).absoluteFilePath());
  QVERIFY(w.projectJson().contains(QStringLiteral("fashion")));
}

// `modeldiff-gui --screenshot FILE ...`: the window at the asked size with the asked view,
// written without a display; a request that cannot be met ends with a message and status 2.
void RunWindowTest::screenshotModeWritesTheWindow() {
#ifndef MODELDIFF_GUI_EXECUTABLE
  QSKIP("modeldiff-gui is not built");
#else
  QTemporaryDir out;
  QVERIFY(out.isValid());
  auto gui = [&](const QStringList& args, QByteArray* output) {
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    env.insert(QStringLiteral("XDG_CONFIG_HOME"), out.filePath(QStringLiteral("config")));
    p.setProcessEnvironment(env);
    p.setProcessChannelMode(QProcess::MergedChannels);
    // Its own --timeout comes first (one given in `args` overrides it), so that a screenshot
    // that does not finish says what it was waiting for.
    p.start(QStringLiteral(MODELDIFF_GUI_EXECUTABLE),
            QStringList{QStringLiteral("--timeout"), QStringLiteral("100")} + args);
    const bool finished = p.waitForFinished(120000);
    if (!finished) {
      p.kill();
      p.waitForFinished(10000);
    }
    *output = p.readAll();
    const int code = finished && p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    if (code != 0 && code != 2) qWarning("modeldiff-gui exit %d: %s", code, output->constData());
    return code;
  };
  QByteArray log;
  const QString shot = out.filePath(QStringLiteral("shot.png"));
  QCOMPARE(gui({QStringLiteral("--screenshot"), shot, QStringLiteral("--size"),
                QStringLiteral("1700x1050"), QStringLiteral("--comparison"), QStringLiteral("2"),
                QStringLiteral("--direction"), QStringLiteral("B-A:1"), QStringLiteral("--tab"),
                QStringLiteral("cosine"), QStringLiteral("--inspect"), QStringLiteral("3"), run_},
               &log),
           0);
  const QImage image(shot);
  QCOMPARE(image.size(), QSize(1700, 1050));
  QVERIFY2(log.contains("comparison 2, B-A direction 1"), log.constData());
  // A direction named by class, as a study's finding names it: the first of the set whose top
  // validation images are mostly of that class, in either spelling of the set. The class is
  // one that first has the majority in a later direction than the first, where there is one.
  {
    const auto run = ui::loadRun(run_);
    const auto& top = run->comparisons.front().summary->a_minus_b.top_target;
    const auto& labels = run->val->labels;
    const auto majority = [&](std::size_t c) -> std::int64_t {  // -1: none
      std::map<std::int64_t, std::size_t> count;
      for (const std::int64_t row : top[c]) ++count[labels[static_cast<std::size_t>(row)]];
      for (const auto& [label, n] : count)
        if (2 * n > top[c].size()) return label;
      return -1;
    };
    // c is where class k first has the majority: no earlier direction has it.
    const auto first_of_its_class = [&](std::size_t c) {
      const std::int64_t k = majority(c);
      for (std::size_t e = 0; e < c && k >= 0; ++e)
        if (majority(e) == k) return false;
      return k >= 0;
    };
    std::int64_t klass = -1;
    std::size_t expected = 0;
    for (std::size_t c = 1; c < top.size() && klass < 0; ++c)
      if (first_of_its_class(c)) {
        klass = majority(c);
        expected = c;
      }
    if (klass < 0) klass = majority(0);
    QVERIFY2(klass >= 0, "some direction of the demo has mostly one class among its top images");
    for (const QString& set : {QStringLiteral("A-B"), QStringLiteral("a_minus_b")}) {
      QCOMPARE(gui({QStringLiteral("--screenshot"), shot, QStringLiteral("--direction"),
                    set + QStringLiteral(":class=") + QString::number(klass), run_},
                   &log),
               0);
      QVERIFY2(
          log.contains(QStringLiteral("comparison 1, A-B direction %1").arg(expected + 1).toUtf8()),
          log.constData());
    }
  }
  // A class named in parentheses: the comparison of that class.
  // (Fashion-MNIST, which the demo uses: "Shirt" is class 6, not "T-shirt/top".)
  const QString planted = QStringLiteral("Shirt");
  QCOMPARE(
      gui({QStringLiteral("--screenshot"), shot, QStringLiteral("--comparison"), planted, run_},
          &log),
      0);
  // The transformation panel's test, run before the window is written; an image grid as a
  // figure (2x, not the window's size).
  QCOMPARE(gui({QStringLiteral("--screenshot"), shot, QStringLiteral("--direction"),
                QStringLiteral("A-B:1"), QStringLiteral("--test"),
                QStringLiteral("patch:x=1,y=1,size=3,value=255"), QStringLiteral("--test-target"),
                QStringLiteral("6"), QStringLiteral("--test-strengths"), QStringLiteral("0,3"),
                QStringLiteral("--test-images"), QStringLiteral("direction"), run_},
               &log),
           0);
  QCOMPARE(QImage(shot).size(), QSize(1600, 1000));
  const QString figure = out.filePath(QStringLiteral("grid.png"));
  QCOMPARE(gui({QStringLiteral("--screenshot"), figure, QStringLiteral("--grid"),
                QStringLiteral("top-val"), run_},
               &log),
           0);
  const QImage grid(figure);
  QVERIFY(!grid.isNull());
  QVERIFY(grid.size() != QSize(1600, 1000));
  const struct {
    QStringList args;
    const char* message;
  } bad[] = {
      {{QStringLiteral("--test"), QStringLiteral("patch:x=1,y=1,size=3"),
        QStringLiteral("--test-target"), QStringLiteral("99"), run_},
       "classes"},
      {{QStringLiteral("--test"), QStringLiteral("nosuch:x=1"), run_}, "--test"},
      {{QStringLiteral("--test-target"), QStringLiteral("1"), run_}, "need --test"},
      {{QStringLiteral("--test"), QStringLiteral("blur:sigma=1"), QStringLiteral("--test-images"),
        QStringLiteral("some"), run_},
       "--test-images"},
      {{QStringLiteral("--select"), QStringLiteral("1,1,0,0"), run_}, "--select"},
      {{QStringLiteral("--grid"), QStringLiteral("middle"), run_}, "--grid"},
      {{QStringLiteral("--comparison"), QStringLiteral("99"), run_}, "no such comparison"},
      {{QStringLiteral("--direction"), QStringLiteral("A-A:1"), run_}, "--direction"},
      {{QStringLiteral("--direction"), QStringLiteral("A-B:99"), run_}, "directions per set"},
      {{QStringLiteral("--direction"), QStringLiteral("B-A:class=99"), run_}, "mostly class 99"},
      {{QStringLiteral("--direction"), QStringLiteral("B-A:class=x"), run_}, "B-A:class=C"},
      {{QStringLiteral("--inspect"), QStringLiteral("100000"), run_}, "no such validation"},
      {{QStringLiteral("--size"), QStringLiteral("10x10"), run_}, "--size"},
      {{out.filePath(QStringLiteral("missing"))}, "missing"},
      {{QStringLiteral("--timeout"), QStringLiteral("0"), run_}, "--timeout"},
  };
  for (const auto& b : bad) {
    QCOMPARE(gui(QStringList{QStringLiteral("--screenshot"), shot} + b.args, &log), 2);
    QVERIFY2(log.contains(b.message), log.constData());
  }
  // What never finishes (a result whose summary is a pipe nobody writes to keeps the loader
  // blocked) ends at --timeout with status 3 and what was awaited, not never.
  const QString stuck = out.filePath(QStringLiteral("stuck"));
  QVERIFY(QDir().mkpath(stuck));
  QCOMPARE(::mkfifo(QDir(stuck).filePath(QStringLiteral("summary.json")).toLocal8Bit().constData(),
                    0600),
           0);
  QElapsedTimer clock;
  clock.start();
  QCOMPARE(gui({QStringLiteral("--screenshot"), shot, QStringLiteral("--timeout"),
                QStringLiteral("2"), stuck},
               &log),
           3);
  QVERIFY2(log.contains("still waiting for the results of"), log.constData());
  QVERIFY2(clock.elapsed() < 60000, "it ended at its timeout");
#endif
}

// A score file that cannot be read only takes away what needs it (the inspector says why);
// the run's comparisons and images still open.
void RunWindowTest::badScoreFileLeavesTheRestOfTheRun() {
  QTemporaryDir copy;
  QVERIFY(copy.isValid());
  namespace fs = std::filesystem;
  const fs::path from(run_.toStdString()), to(copy.filePath(QStringLiteral("run")).toStdString());
  fs::create_directories(to / "scores");
  fs::copy_file(from / "run.json", to / "run.json");
  fs::copy(from / "diff", to / "diff", fs::copy_options::recursive);
  fs::copy_file(from / "scores" / "B.npy", to / "scores" / "B.npy");
  {
    QFile a(QString::fromStdString((to / "scores" / "A.npy").string()));
    QVERIFY(a.open(QIODevice::WriteOnly));
    a.write("\x93NUMPY\x01\x00");  // a header cut short
  }
  ui::MainWindow w;
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  QVERIFY(w.open(QString::fromStdString(to.string())));
  QVERIFY(loaded.wait(120000));
  QVERIFY(w.run()->comparisons.size() > 1);
  QVERIFY(w.run()->scores[0] == nullptr);
  QVERIFY(w.run()->scores[1] != nullptr);
  QVERIFY2(w.run()->scores_problem.contains(QStringLiteral("A.npy")),
           qPrintable(w.run()->scores_problem));
  QVERIFY(w.inspector()->textLabel()->text().contains(QStringLiteral("cannot be used")));
  QVERIFY(w.gridModel(ui::MainWindow::kTopTrain)->rowCount() > 0);
}

// Examples selected on the projection plot (with the mouse, as a user does) become a new
// comparison: ModelDiff over exactly those rows, the same numbers as the core computes
// directly, kept in the run folder and listed again when the run reopens.
void RunWindowTest::comparesASelectedRegion() {
  ui::MainWindow w;
  showProjections(w);
  ui::ProjectionPlot* plot = w.projectionPlot();
  QVERIFY(!w.compareSelectionButton()->isEnabled());
  QVERIFY(!w.compareSelection());  // nothing selected

  // Drag over the right half of the axis rect.
  w.regionButton()->setChecked(true);
  const QRect area = plot->axisRect()->rect();
  const QPoint from(area.center().x(), area.top() + 2), to(area.right() - 2, area.bottom() - 2);
  QTest::mousePress(plot, Qt::LeftButton, Qt::NoModifier, from);
  QTest::mouseMove(plot, (from + to) / 2);
  QTest::mouseMove(plot, to);
  QTest::mouseRelease(plot, Qt::LeftButton, Qt::NoModifier, to);
  // Copies: the window replaces its run (with one more comparison) when the job finishes.
  const ui::Comparison c = w.run()->comparisons[0];
  const QRectF region =
      QRectF(QPointF(plot->xAxis->pixelToCoord(from.x()), plot->yAxis->pixelToCoord(from.y())),
             QPointF(plot->xAxis->pixelToCoord(to.x()), plot->yAxis->pixelToCoord(to.y())))
          .normalized();
  std::vector<int> expected;
  for (int row = 0; row < static_cast<int>(c.target_rows.size()); ++row)
    if (region.contains(plot->pointOf(row))) expected.push_back(row);
  QVERIFY2(expected.size() >= 3, qPrintable(QString::number(expected.size())));
  QCOMPARE(plot->regionRows(), expected);
  QVERIFY(w.compareSelectionButton()->isEnabled());

  const int before = static_cast<int>(w.run()->comparisons.size());
  QSignalSpy finished(w.job(), &ui::RunJob::finished);
  QVERIFY(w.compareSelection());
  QVERIFY(finished.wait(120000));
  QCOMPARE(static_cast<int>(w.run()->comparisons.size()), before + 1);
  QCOMPARE(w.currentComparison(), before);
  const ui::Comparison& added = w.run()->comparisons.back();
  std::vector<std::int64_t> rows;
  for (int row : expected) rows.push_back(c.target_rows[static_cast<std::size_t>(row)]);
  std::sort(rows.begin(), rows.end());
  QCOMPARE(added.target_rows, rows);
  QCOMPARE(added.summary->num_analysed_targets, static_cast<std::int64_t>(rows.size()));
  QVERIFY(added.title.startsWith(QStringLiteral("selection of %1").arg(rows.size())));
  QCOMPARE(w.directionModel()->rowCount(), 2 * std::min(5, static_cast<int>(rows.size()) - 1));

  // The core on the same score files and rows gives the same directions.
  core::DiffOptions options;
  options.target_rows = rows;
  options.components = std::min(5, static_cast<int>(rows.size()) - 1);
  options.normalize_rows = c.summary->normalized_rows;
  core::NullProgress quiet;
  const core::DiffResult direct = core::run_model_diff(
      {"A", "", core::read_npy((run_ + QStringLiteral("/scores/A.npy")).toStdString())},
      {"B", "", core::read_npy((run_ + QStringLiteral("/scores/B.npy")).toStdString())}, options,
      quiet);
  for (int k = 0; k < options.components; ++k) {
    QCOMPARE(added.summary->a_minus_b.explained_variance[static_cast<std::size_t>(k)],
             direct.a_minus_b.explained_variance[k]);
    QCOMPARE(added.summary->a_minus_b.top_train[static_cast<std::size_t>(k)],
             direct.a_minus_b.top_train[static_cast<std::size_t>(k)]);
  }

  // Reopened, the run lists it again.
  ui::MainWindow again;
  openRun(again);
  QCOMPARE(static_cast<int>(again.run()->comparisons.size()), before + 1);
  QCOMPARE(again.run()->comparisons.back().title, added.title);
  QCOMPARE(again.run()->comparisons.back().target_rows, rows);
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    QDir().mkpath(dir);
    w.plotTabs()->setCurrentIndex(1);
    QTRY_VERIFY_WITH_TIMEOUT(!w.thumbnailsPending(), 10000);
    QVERIFY(w.grab().save(dir + QStringLiteral("/gui_selection.png")));
  }
  QVERIFY(QDir(added.folder).removeRecursively());
}

std::unique_ptr<QObject> modeldiff::test::makeRunWindowTest() {
  return std::make_unique<RunWindowTest>();
}

#include "test_run_window.moc"
