// The main window, driven as a user would: open a result, read the table, click the plot,
// open a corrupt result. Runs offscreen; writes screenshots when MODELDIFF_SCREENSHOT_DIR is set.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <QDir>
#include <QMessageBox>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>

#include "core/base/output_directory.h"
#include "core/diff/diff_output.h"
#include "core/diff/model_diff.h"
#include "core/io/npy.h"
#include "core/test_paths.h"
#include "direction_table_model.h"
#include "main_window.h"
#include "variance_plot.h"

#include "test_classes.h"

using namespace modeldiff;

class MainWindowTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase();
  void opensResultAndShowsEveryDirection();
  void clickingAPlotPointSelectsItsDirection();
  void corruptResultShowsAnErrorInsteadOfCrashing();
  void openingAnotherSupersedesALoadInFlight();

 private:
  void saveScreenshot(QWidget& w, const QString& name);
  QTemporaryDir dir_;
  core::DiffResult result_;
  const int components_ = 4;
};

void MainWindowTest::initTestCase() {
  QVERIFY(dir_.isValid());
  const std::string ref = test::shared_fixture("modeldiff_ref_seed0/");
  core::ScoreInput a{"augmented", ref + "scores_A.npy", core::read_npy(ref + "scores_A.npy")};
  core::ScoreInput b{"plain", ref + "scores_B.npy", core::read_npy(ref + "scores_B.npy")};
  core::DiffOptions options;
  options.components = components_;
  core::NullProgress progress;
  result_ = core::run_model_diff(a, b, options, progress);
  core::OutputDirectory out(dir_.filePath(QStringLiteral("result")).toStdString());
  core::write_diff_output(out, result_, options, {});
  out.commit();
}

void MainWindowTest::saveScreenshot(QWidget& w, const QString& name) {
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (dir.isEmpty()) return;
  QDir().mkpath(dir);
  QVERIFY(w.grab().save(dir + QLatin1Char('/') + name));
}

void MainWindowTest::opensResultAndShowsEveryDirection() {
  ui::MainWindow w;
  w.resize(1200, 600);
  w.show();
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  w.openResult(dir_.filePath(QStringLiteral("result")));
  QVERIFY(loaded.wait(10000));

  ui::DirectionTableModel* model = w.directionModel();
  QCOMPARE(model->rowCount(), 2 * components_);
  QCOMPARE(model->headerData(ui::DirectionTableModel::kVarianceA, Qt::Horizontal, Qt::DisplayRole)
               .toString(),
           QStringLiteral("Var augmented"));
  for (int c = 0; c < components_; ++c) {
    const QModelIndex va = model->index(c, ui::DirectionTableModel::kVarianceA);
    QCOMPARE(model->data(va, Qt::DisplayRole).toString().toDouble(),
             QString::number(result_.a_minus_b.variance_a(c), 'g', 4).toDouble());
    const QModelIndex vb = model->index(components_ + c, ui::DirectionTableModel::kVarianceB);
    QCOMPARE(model->data(vb, Qt::DisplayRole).toString().toDouble(),
             QString::number(result_.b_minus_a.variance_b(c), 'g', 4).toDouble());
  }
  QCOMPARE(model->data(model->index(components_, 0), Qt::DisplayRole).toString(),
           QStringLiteral("B − A"));
  QVERIFY(model->data(model->index(components_, 0), Qt::ToolTipRole)
              .toString()
              .startsWith(QStringLiteral("plain − augmented, direction 1")));
  QCOMPARE(w.variancePlot()->pointCount(0), components_);
  QCOMPARE(w.variancePlot()->pointCount(1), components_);
  saveScreenshot(w, QStringLiteral("main_window.png"));
}

void MainWindowTest::clickingAPlotPointSelectsItsDirection() {
  ui::MainWindow w;
  w.resize(1200, 600);
  w.show();
  QVERIFY(QTest::qWaitForWindowExposed(&w));
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  w.openResult(dir_.filePath(QStringLiteral("result")));
  QVERIFY(loaded.wait(10000));
  ui::VariancePlot* plot = w.variancePlot();
  // Loading changes the window's layout; the plot lays out its axes again on its next replot.
  QCoreApplication::processEvents();
  plot->replot();
  // The B-minus-A direction 1 point, in widget pixels.
  const QPoint at(qRound(plot->xAxis->coordToPixel(result_.b_minus_a.variance_a(1))),
                  qRound(plot->yAxis->coordToPixel(result_.b_minus_a.variance_b(1))));
  QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, at);
  const QModelIndexList rows = w.directionView()->selectionModel()->selectedRows();
  QCOMPARE(rows.size(), 1);
  QCOMPARE(rows.front().row(), components_ + 1);
}

void MainWindowTest::corruptResultShowsAnErrorInsteadOfCrashing() {
  const QString bad = dir_.filePath(QStringLiteral("corrupt"));
  QDir().mkpath(bad);
  QFile f(bad + QStringLiteral("/summary.json"));
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write("{\"format\": \"modeldiff-studio diff\", \"inputs\": {\"a\": 3}");  // truncated JSON
  f.close();
  ui::MainWindow w;
  w.show();
  QSignalSpy failed(&w, &ui::MainWindow::loadFailed);
  w.openResult(bad);
  QVERIFY(failed.wait(10000));
  QVERIFY(failed.front().front().toString().contains(QStringLiteral("summary.json")));
  auto* box = w.findChild<QMessageBox*>();
  QVERIFY(box != nullptr);
  QVERIFY(box->isVisible());
  QCOMPARE(w.directionModel()->rowCount(), 0);
}

// A read that does not finish (a summary that is a pipe nobody writes to yet) does not hold
// the window: opening another result meanwhile shows that one, and the first one's outcome,
// when it comes, is dropped.
void MainWindowTest::openingAnotherSupersedesALoadInFlight() {
  const QString stuck = dir_.filePath(QStringLiteral("stuck"));
  QVERIFY(QDir().mkpath(stuck));
  const QByteArray fifo = QDir(stuck).filePath(QStringLiteral("summary.json")).toLocal8Bit();
  QCOMPARE(::mkfifo(fifo.constData(), 0600), 0);
  // Whatever happens below, the blocked reader is released at the end (a reader that never
  // returns would hold the thread pool, and the test's exit, for ever).
  struct Release {
    QByteArray path;
    void now() {
      if (path.isEmpty()) return;
      const int fd = ::open(path.constData(), O_WRONLY | O_NONBLOCK);  // fails without a reader
      if (fd >= 0) {
        (void)!::write(fd, "{}", 2);
        ::close(fd);
      }
      path.clear();
    }
    ~Release() { now(); }
  } release{fifo};
  ui::MainWindow w;
  w.show();
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  QSignalSpy failed(&w, &ui::MainWindow::loadFailed);
  QVERIFY(w.openResult(stuck));
  QTest::qWait(200);  // its worker is blocked opening the pipe
  QVERIFY(w.openResult(dir_.filePath(QStringLiteral("result"))));
  QVERIFY(loaded.wait(10000));
  QCOMPARE(loaded.front().front().toString(), dir_.filePath(QStringLiteral("result")));
  QCOMPARE(w.directionModel()->rowCount(), 2 * components_);
  // Let the first read finish (with a summary that is no result): nothing changes.
  release.now();
  QTest::qWait(500);
  QCOMPARE(failed.size(), 0);
  QCOMPARE(loaded.size(), 1);
  QCOMPARE(w.directionModel()->rowCount(), 2 * components_);
  QVERIFY(!w.findChild<QMessageBox*>());
}

std::unique_ptr<QObject> modeldiff::test::makeMainWindowTest() {
  return std::make_unique<MainWindowTest>();
}

#include "test_main_window.moc"
