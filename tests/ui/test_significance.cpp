// The GUI's marking of each direction's significance (issue 12): a result with half-ensemble
// significance opens in the main window; the direction table's verdict column and tooltips and
// the variance plot's filled / hollow markers agree with summary.json's above_noise_floor; a
// result without significance shows why. Also (issue 11) a result saved from Python
// (`ModelDiff.save`) opens in the main window with diff.h5's top_train in its grids. Runs
// offscreen.
#include <QDir>
#include <QFile>
#include <QListView>
#include <QProcess>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "core/base/output_directory.h"
#include "core/diff/diff_output.h"
#include "core/diff/model_diff.h"
#include "core/diff/significance.h"
#include "core/io/hdf5_dataset.h"
#include "direction_table_model.h"
#include "image_grid_model.h"
#include "main_window.h"
#include "variance_plot.h"

#include "test_classes.h"

using namespace modeldiff;

namespace {

constexpr int kT = 50, kN = 120, kCheckpoints = 8, kComponents = 4;

// Per-checkpoint T x N scores (row = target example): a shared rank-3 structure plus seed
// noise; A's checkpoints also carry a rank-1 difference on targets 0-19 and training examples
// 0-29 (what only A learns), strong against the noise.
struct Ensembles {
  std::vector<std::vector<float>> a, b;
};

Ensembles makeEnsembles() {
  std::mt19937_64 rng(12);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> base(kT * kN, 0.0f), planted(kT * kN, 0.0f);
  for (int r = 0; r < 3; ++r) {
    std::vector<float> u(kT), v(kN);
    for (float& x : u) x = g(rng);
    for (float& x : v) x = g(rng);
    for (int i = 0; i < kT; ++i)
      for (int j = 0; j < kN; ++j) base[i * kN + j] += u[i] * v[j];
  }
  std::vector<float> u(20), v(30);
  for (float& x : u) x = g(rng);
  for (float& x : v) x = g(rng);
  for (int i = 0; i < 20; ++i)
    for (int j = 0; j < 30; ++j) planted[i * kN + j] = 3.0f * u[i] * v[j];
  Ensembles e;
  for (int m = 0; m < kCheckpoints; ++m) {
    std::vector<float> a(kT * kN), b(kT * kN);
    for (int k = 0; k < kT * kN; ++k) {
      a[k] = base[k] + planted[k] + g(rng);
      b[k] = base[k] + g(rng);
    }
    e.a.push_back(std::move(a));
    e.b.push_back(std::move(b));
  }
  return e;
}

// The mean of checkpoints [first, last) as a T x N float32 array.
core::NdArray meanOf(const std::vector<std::vector<float>>& checkpoints, int first, int last) {
  core::NdArray out = core::NdArray::allocate(core::DType::kFloat32, {kT, kN});
  float* p = out.mutable_data_as<float>();
  std::fill(p, p + kT * kN, 0.0f);
  for (int m = first; m < last; ++m)
    for (int k = 0; k < kT * kN; ++k) p[k] += checkpoints[m][k] / float(last - first);
  return out;
}

nlohmann::json readSummary(const QString& folder) {
  QFile f(folder + QStringLiteral("/summary.json"));
  if (!f.open(QIODevice::ReadOnly)) return {};
  return nlohmann::json::parse(f.readAll().toStdString());
}

}  // namespace

class SignificanceTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase();
  void tableAndPlotMarkEachDirectionAsSummaryJsonSays();
  void resultWithoutSignificanceShowsTheReason();
  void resultSavedFromPythonShowsItsTopTrainIndices();

 private:
  QString folder(const char* name) const { return dir_.filePath(QString::fromLatin1(name)); }
  QTemporaryDir dir_;
};

void SignificanceTest::initTestCase() {
  QVERIFY(dir_.isValid());
  const Ensembles e = makeEnsembles();
  core::DiffOptions options;
  options.components = kComponents;
  core::NullProgress progress;
  core::DiffResult result = core::run_model_diff(
      core::ScoreInput{"A", "a.npy", meanOf(e.a, 0, kCheckpoints)},
      core::ScoreInput{"B", "b.npy", meanOf(e.b, 0, kCheckpoints)}, options, progress);
  // Without halves: the reason the core gives for a run of 2 checkpoints.
  core::DiffResult without = result;
  without.significance.reason = core::significance_absence("A", 2);
  {
    core::OutputDirectory out(folder("without").toStdString());
    core::write_diff_output(out, without, options, {});
    out.commit();
  }
  // Two splits: first / second half, and even / odd blocks of two checkpoints.
  std::vector<core::HalfSplit> splits(2);
  const int half = kCheckpoints / 2;
  for (int h = 0; h < 2; ++h) {
    splits[0].a[h] = meanOf(e.a, h * half, (h + 1) * half);
    splits[0].b[h] = meanOf(e.b, h * half, (h + 1) * half);
  }
  std::vector<std::vector<float>> a_swapped = e.a, b_swapped = e.b;
  std::swap(a_swapped[2], a_swapped[4]);
  std::swap(a_swapped[3], a_swapped[5]);
  std::swap(b_swapped[2], b_swapped[4]);
  std::swap(b_swapped[3], b_swapped[5]);
  for (int h = 0; h < 2; ++h) {
    splits[1].a[h] = meanOf(a_swapped, h * half, (h + 1) * half);
    splits[1].b[h] = meanOf(b_swapped, h * half, (h + 1) * half);
  }
  for (core::HalfSplit& s : splits)
    for (int h = 0; h < 2; ++h) {
      s.source_a[h] = "A half " + std::to_string(h + 1);
      s.source_b[h] = "B half " + std::to_string(h + 1);
      s.checkpoints_a[h] = s.checkpoints_b[h] = half;
    }
  result.significance = core::compute_significance(result, splits, options, progress);
  core::OutputDirectory out(folder("with").toStdString());
  core::write_diff_output(out, result, options, {});
  out.commit();
}

void SignificanceTest::tableAndPlotMarkEachDirectionAsSummaryJsonSays() {
  const nlohmann::json summary = readSummary(folder("with"));
  const nlohmann::json& sig = summary.at("significance");
  QVERIFY(sig.at("computed").get<bool>());

  ui::MainWindow w;
  w.resize(1200, 600);
  w.show();
  QVERIFY(QTest::qWaitForWindowExposed(&w));
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  w.openResult(folder("with"));
  QVERIFY(loaded.wait(10000));
  ui::DirectionTableModel* model = w.directionModel();
  ui::VariancePlot* plot = w.variancePlot();
  QCOMPARE(model->rowCount(), 2 * kComponents);
  QCOMPARE(
      model->headerData(ui::DirectionTableModel::kSignificance, Qt::Horizontal, Qt::DisplayRole)
          .toString(),
      QStringLiteral("Significance"));
  QVERIFY(plot->legendExplainsHollow());
  QCoreApplication::processEvents();
  plot->replot();
  // The verdict is read without scrolling: its column ends inside the table's default width.
  const QTableView* view = w.directionView();
  QVERIFY2(
      view->columnViewportPosition(ui::DirectionTableModel::kSignificance) +
              view->columnWidth(ui::DirectionTableModel::kSignificance) <=
          view->viewport()->width(),
      qPrintable(QStringLiteral("the Significance column ends at %1 of %2 pixels (%3, %4, %5)")
                     .arg(view->columnViewportPosition(ui::DirectionTableModel::kSignificance) +
                          view->columnWidth(ui::DirectionTableModel::kSignificance))
                     .arg(view->viewport()->width())
                     .arg(view->columnWidth(0))
                     .arg(view->columnWidth(1))
                     .arg(view->columnWidth(2))));

  int above = 0, below = 0;
  int clicked[2] = {0, 0};  // hollow, filled markers clicked
  const char* keys[2] = {"a_minus_b", "b_minus_a"};
  for (int set = 0; set < 2; ++set) {
    const nlohmann::json& d = sig.at(keys[set]);
    QCOMPARE(static_cast<int>(d.at("above_noise_floor").size()), kComponents);
    QCOMPARE(plot->pointCount(set), kComponents);
    for (int c = 0; c < kComponents; ++c) {
      const bool expected = d.at("above_noise_floor")[c].get<bool>();
      (expected ? above : below) += 1;
      const QModelIndex cell =
          model->index(model->rowOf(set, c), ui::DirectionTableModel::kSignificance);
      QCOMPARE(model->data(cell, Qt::DisplayRole).toString(),
               expected ? QStringLiteral("above floor") : QStringLiteral("seed noise"));
      QCOMPARE(model->data(cell, ui::DirectionTableModel::kAboveFloorRole).toBool(), expected);
      // The tooltip gives the verdict and the numbers as summary.json has them.
      const QString tip = model->data(cell, Qt::ToolTipRole).toString();
      QVERIFY2(tip.startsWith(QString::fromStdString(d.at("verdict")[c].get<std::string>())),
               qPrintable(tip));
      const QString half =
          QString::number(d.at("half_explained_variance")[c].get<double>(), 'g', 4);
      const QString floor = QString::number(d.at("noise_floor")[c].get<double>(), 'g', 4);
      const QString repro = QString::number(d.at("reproducibility")[c].get<double>(), 'f', 3);
      QVERIFY2(
          tip.contains(QStringLiteral("explained variance %1 vs noise floor %2").arg(half, floor)),
          qPrintable(tip));
      QVERIFY2(tip.contains(
                   QStringLiteral("reproducibility (best |cos| across splits) %1 ± ").arg(repro)),
               qPrintable(tip));
      // The plot: filled above the floor, hollow below; hovering the marker gives the numbers.
      QCOMPARE(plot->markerFilled(set, c), expected);
      const nlohmann::json& s = summary.at(keys[set]);
      const QPoint at(qRound(plot->xAxis->coordToPixel(s.at("variance_a")[c].get<double>())),
                      qRound(plot->yAxis->coordToPixel(s.at("variance_b")[c].get<double>())));
      const QString plot_tip = plot->toolTipAt(at);
      QVERIFY2(plot_tip.contains(QStringLiteral("direction %1\n%2").arg(c + 1).arg(tip)),
               qPrintable(plot_tip));
      // Clicking a marker, filled or hollow, selects its direction's row (where the legend
      // does not cover it).
      if (!plot->legend->outerRect().contains(at)) {
        QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, at);
        const QModelIndexList rows = w.directionView()->selectionModel()->selectedRows();
        QCOMPARE(rows.size(), 1);
        QCOMPARE(rows.front().row(), model->rowOf(set, c));
        ++clicked[expected ? 1 : 0];
      }
    }
  }
  // The planted difference is above the floor, and some direction is not: both markings are
  // exercised.
  QVERIFY(sig.at("a_minus_b").at("above_noise_floor")[0].get<bool>());
  QVERIFY(above > 0);
  QVERIFY(below > 0);
  QVERIFY(clicked[0] > 0);
  QVERIFY(clicked[1] > 0);
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    QDir().mkpath(dir);
    QVERIFY(w.grab().save(dir + QStringLiteral("/significance.png")));
  }
}

void SignificanceTest::resultWithoutSignificanceShowsTheReason() {
  const nlohmann::json summary = readSummary(folder("without"));
  const nlohmann::json& sig = summary.at("significance");
  QVERIFY(!sig.at("computed").get<bool>());
  const QString reason = QString::fromStdString(sig.at("reason").get<std::string>());
  QVERIFY(!reason.isEmpty());

  ui::MainWindow w;
  w.show();
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  w.openResult(folder("without"));
  QVERIFY(loaded.wait(10000));
  ui::DirectionTableModel* model = w.directionModel();
  ui::VariancePlot* plot = w.variancePlot();
  QVERIFY(!plot->legendExplainsHollow());
  for (int set = 0; set < 2; ++set)
    for (int c = 0; c < kComponents; ++c) {
      const QModelIndex cell =
          model->index(model->rowOf(set, c), ui::DirectionTableModel::kSignificance);
      QCOMPARE(model->data(cell, Qt::DisplayRole).toString(), QStringLiteral("—"));
      QVERIFY(!model->data(cell, ui::DirectionTableModel::kAboveFloorRole).isValid());
      QVERIFY(model->data(cell, Qt::ToolTipRole).toString().contains(reason));
      QVERIFY(plot->markerFilled(set, c));  // no significance: every marker as before
    }
}

void SignificanceTest::resultSavedFromPythonShowsItsTopTrainIndices() {
#if defined(MODELDIFF_PYTHON) && defined(MODELDIFF_PYTHON_DIR)
  const QString out = folder("from_python");
  QProcess python;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert(QStringLiteral("PYTHONPATH"), QStringLiteral(MODELDIFF_PYTHON_DIR));
  python.setProcessEnvironment(env);
  python.start(QStringLiteral(MODELDIFF_PYTHON),
               {QStringLiteral("-c"),
                QStringLiteral("import sys, numpy as np, modeldiff\n"
                               "rng = np.random.default_rng(3)\n"
                               "a = rng.standard_normal((30, 80)).astype('f4')\n"
                               "b = rng.standard_normal((30, 80)).astype('f4')\n"
                               "md = modeldiff.ModelDiff(progress=False)\n"
                               "md.get_A_minus_B_from_scores(a, b, 3)\n"
                               "md.save(sys.argv[1])\n"),
                out});
  QVERIFY(python.waitForFinished(120000));
  QVERIFY2(python.exitStatus() == QProcess::NormalExit && python.exitCode() == 0,
           python.readAllStandardError().constData());

  ui::MainWindow w;
  w.resize(1200, 600);
  w.show();
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  w.openResult(out);
  QVERIFY(loaded.wait(10000));
  const char* sets[2] = {"a_minus_b", "b_minus_a"};
  ui::DirectionTableModel* model = w.directionModel();
  for (int set = 0; set < 2; ++set) {
    const core::NdArray top = core::read_hdf5_dataset(
        (out + QStringLiteral("/diff.h5")).toStdString(), std::string(sets[set]) + "/top_train");
    QCOMPARE(top.ndim(), 2);
    QCOMPARE(top.dim(0), 3);
    for (int c = 0; c < 3; ++c) {
      w.directionView()->selectRow(model->rowOf(set, c));
      const ui::ImageGridModel* grid = w.gridModel(ui::MainWindow::kTopTrain);
      const std::vector<std::int64_t> shown = grid->shownIndices();
      QVERIFY(!shown.empty());
      QVERIFY(static_cast<std::int64_t>(shown.size()) <= top.dim(1));
      const std::int64_t* row = top.data_as<std::int64_t>() + c * top.dim(1);
      QCOMPARE(shown, std::vector<std::int64_t>(row, row + shown.size()));
    }
  }
#else
  QSKIP("the Python package is not built (no _modeldiff target)");
#endif
}

std::unique_ptr<QObject> modeldiff::test::makeSignificanceTest() {
  return std::make_unique<SignificanceTest>();
}

#include "test_significance.moc"
