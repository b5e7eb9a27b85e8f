// Help > Open Demo lists the built-in studies; a study whose results exist (here the quick
// runs `modeldiff demo STUDY --quick` wrote into the default folders) opens at once, no job.
#include <QAction>
#include <QFile>
#include <QFileInfo>
#include <QMenu>
#include <QMenuBar>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "core/pipeline/demo_paths.h"
#include "core/pipeline/project.h"
#include "main_window.h"
#include "run_job.h"
#include "test_classes.h"

namespace modeldiff::test {
namespace {

class StudyMenuTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void helpMenuOpensEachStudysResults();

 private:
  QTemporaryDir dir_;
};

void StudyMenuTest::initTestCase() {
#ifndef MODELDIFF_EXECUTABLE
  QSKIP("built without LibTorch: no `modeldiff demo` to make the studies' run folders");
#else
  if (!QFile::exists(
          QStringLiteral("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")))
    QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  QVERIFY(dir_.isValid());
  // The default folders (XDG data home) are where the menu looks.
  qputenv("XDG_DATA_HOME", dir_.path().toLocal8Bit());
  for (const std::string& study : core::study_names()) {
    QProcess cli;
    cli.setProcessChannelMode(QProcess::MergedChannels);
    cli.start(QStringLiteral(MODELDIFF_EXECUTABLE),
              {QStringLiteral("demo"), QString::fromStdString(study), QStringLiteral("--quick"),
               QStringLiteral("--threads"), QStringLiteral("2")});
    QVERIFY2(cli.waitForStarted(10000), qPrintable(cli.errorString()));
    if (!cli.waitForFinished(300000)) {
      cli.kill();
      QFAIL("modeldiff demo STUDY --quick took more than 5 minutes");
    }
    const QByteArray log = cli.readAll();
    QVERIFY2(cli.exitStatus() == QProcess::NormalExit && cli.exitCode() == 0, log.constData());
    QVERIFY(QFile::exists(QString::fromStdString(core::default_demo_output_dir(study)) +
                          QStringLiteral("/run.json")));
  }
#endif
}

void StudyMenuTest::helpMenuOpensEachStudysResults() {
  ui::MainWindow w;
  auto* menu = w.menuBar()->findChild<QMenu*>(QStringLiteral("demoMenu"));
  QVERIFY(menu != nullptr);
  QStringList listed;
  for (const QAction* a : menu->actions()) listed << a->objectName();
  QVERIFY2(listed.contains(QStringLiteral("openDemo-planted")), qPrintable(listed.join(',')));
  for (const std::string& s : core::study_names()) {
    const QString study = QString::fromStdString(s);
    QAction* action = nullptr;
    for (QAction* a : menu->actions())
      if (a->objectName() == QStringLiteral("openDemo-") + study) action = a;
    QVERIFY2(action != nullptr, qPrintable(study));
    QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
    QSignalSpy started(w.job(), &ui::RunJob::started);
    action->trigger();
    QVERIFY2(loaded.wait(120000), qPrintable(study));
    QCOMPARE(started.size(), 0);  // the results exist: no job
    const QString folder = QString::fromStdString(core::default_demo_output_dir(s));
    QCOMPARE(w.run()->folder, QFileInfo(folder).absoluteFilePath());
    QCOMPARE(w.projectOutput(), QFileInfo(folder).absoluteFilePath());
    QVERIFY(w.run()->comparisons.size() > 1);
  }
}

}  // namespace

std::unique_ptr<QObject> makeStudyMenuTest() {
  return std::make_unique<StudyMenuTest>();
}

}  // namespace modeldiff::test

#include "test_studies.moc"
