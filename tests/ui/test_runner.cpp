// ui_tests' own exit status, which CTest reads: 0 when every test passed, 1 when one failed,
// 77 (CTest's SKIP_RETURN_CODE: "skipped", not "passed") when one was skipped, and 1 for a
// skip under CI=true. Runs this executable on probe classes, one test each.
#include <QProcess>
#include <QProcessEnvironment>
#include <QtTest>
#include <algorithm>
#include <memory>

#include "test_classes.h"

namespace {

class RunnerProbe : public QObject {
  Q_OBJECT

 public:
  explicit RunnerProbe(int outcome) : outcome_(outcome) {}

 private Q_SLOTS:
  // As RunWindowTest skips all its tests when the dataset is missing.
  void initTestCase() {
    if (outcome_ == 3) QSKIP("a probe skipping its whole class");
  }
  void probe() {
    if (outcome_ == 1) QFAIL("a failing probe");
    if (outcome_ == 2) QSKIP("a skipping probe");
    QVERIFY(true);
  }

 private:
  int outcome_;
};

// ui_tests `args`, with CI set to `ci` (unset when empty): its exit status and output (with
// its standard error unless `stdout_only`).
int runUiTests(const QStringList& args, const QString& ci, QByteArray* output,
               bool stdout_only = false) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.remove(QStringLiteral("CI"));
  if (!ci.isEmpty()) env.insert(QStringLiteral("CI"), ci);
  env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
  p.setProcessEnvironment(env);
  p.setProcessChannelMode(stdout_only ? QProcess::SeparateChannels : QProcess::MergedChannels);
  p.start(QCoreApplication::applicationFilePath(), args);
  if (!p.waitForFinished(60000)) {
    p.kill();
    p.waitForFinished();
    return -1;
  }
  *output = p.readAllStandardOutput();
  return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
}

}  // namespace

class TestRunnerTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void exitStatusSaysPassedFailedOrSkipped();
  void skipIsAFailureUnderCi();
  void listsTheRegisteredClasses();
};

void TestRunnerTest::exitStatusSaysPassedFailedOrSkipped() {
  QByteArray out;
  QCOMPARE(runUiTests({QStringLiteral("PassingProbe")}, {}, &out), 0);
  QVERIFY2(out.contains("PASS   : RunnerProbe::probe()"), out.constData());  // console kept
  QCOMPARE(runUiTests({QStringLiteral("FailingProbe")}, {}, &out), 1);
  QCOMPARE(runUiTests({QStringLiteral("SkippingProbe")}, {}, &out), 77);
  QVERIFY2(out.contains("1 test(s) skipped"), out.constData());
  QCOMPARE(runUiTests({QStringLiteral("ClassSkippingProbe")}, {}, &out), 77);
  QCOMPARE(runUiTests({QStringLiteral("NoSuchClass")}, {}, &out), 1);
  // QtTest's own options still work: the probe's one function by name, and another format.
  QCOMPARE(runUiTests({QStringLiteral("PassingProbe"), QStringLiteral("probe")}, {}, &out), 0);
  QCOMPARE(runUiTests({QStringLiteral("SkippingProbe"), QStringLiteral("-tap")}, {}, &out), 77);
  QVERIFY2(out.contains("# SKIP"), out.constData());
}

void TestRunnerTest::skipIsAFailureUnderCi() {
  QByteArray out;
  QCOMPARE(runUiTests({QStringLiteral("SkippingProbe")}, QStringLiteral("true"), &out), 1);
  QVERIFY2(out.contains("under CI=true a skip is a failure"), out.constData());
  QCOMPARE(runUiTests({QStringLiteral("ClassSkippingProbe")}, QStringLiteral("true"), &out), 1);
  QCOMPARE(runUiTests({QStringLiteral("PassingProbe")}, QStringLiteral("true"), &out), 0);
  QCOMPARE(runUiTests({QStringLiteral("SkippingProbe")}, QStringLiteral("false"), &out), 77);
}

void TestRunnerTest::listsTheRegisteredClasses() {
  QByteArray out;
  QCOMPARE(runUiTests({QStringLiteral("--list")}, {}, &out, /*stdout_only=*/true), 0);
  const QList<QByteArray> names = out.trimmed().split('\n');
  QVERIFY(names.contains("RunWindowTest"));
  QVERIFY(names.contains("ErrorReportingTest"));
  QVERIFY(!names.contains("SkippingProbe"));  // the probes run only by name
  // Each is a CTest entry (tests/ui/CMakeLists.txt), and nothing else is.
  QList<QByteArray> registered = QByteArray(MODELDIFF_UI_CTEST_CLASSES).split(',');
  QList<QByteArray> listed = names;
  std::sort(registered.begin(), registered.end());
  std::sort(listed.begin(), listed.end());
  QCOMPARE(listed, registered);
}

std::unique_ptr<QObject> modeldiff::test::makeTestRunnerTest() {
  return std::make_unique<TestRunnerTest>();
}

std::unique_ptr<QObject> modeldiff::test::makeRunnerProbe(int outcome) {
  return std::make_unique<RunnerProbe>(outcome);
}

#include "test_runner.moc"
