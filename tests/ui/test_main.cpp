// One QtTest executable for every GUI test class; settings go to a throw-away test location.
//   ui_tests CLASS [QtTest options]   runs one class (CTest registers each as its own test)
//   ui_tests --list                   prints the classes
//   ui_tests [QtTest options]         runs every class
// Exit status: 0 all passed; 1 some failed; 77 none failed but some were skipped (CTest's
// SKIP_RETURN_CODE: shown as skipped, not as passed). Under CI=true a skip is a failure
// (status 1): the CI installs every dependency (install_deps.sh), so a skip there means a test
// silently stopped running.
#include <QApplication>
#include <QFile>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QStringList>
#include <QTemporaryFile>
#include <QtTest>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "error_reporting.h"
#include "test_classes.h"

namespace {

constexpr int kSkipped = 77;

bool underCi() {
  const QByteArray ci = qgetenv("CI").trimmed().toLower();
  return ci == "true" || ci == "1" || ci == "yes";
}

// The skips QtTest counted, from its plain-text log's "Totals: ..., N skipped, ..." line (-1
// when the log has none).
int skippedIn(const QString& log_file) {
  QFile f(log_file);
  if (!f.open(QIODevice::ReadOnly)) return -1;
  const QString text = QString::fromUtf8(f.readAll());
  const QRegularExpressionMatch m =
      QRegularExpression(QStringLiteral("^Totals: .*\\b(\\d+) skipped\\b"),
                         QRegularExpression::MultilineOption)
          .match(text);
  return m.hasMatch() ? m.captured(1).toInt() : -1;
}

// Runs one class with the user's QtTest options, plus a plain-text log in a temporary file to
// count its skips. Returns the exit status above.
int runClass(const modeldiff::test::UiTestClass& test, const QStringList& options,
             const char* program) {
  QTemporaryFile log;
  if (!log.open()) {
    std::fprintf(stderr, "ui_tests: cannot make a temporary file for the test log\n");
    return 1;
  }
  log.close();
  QStringList args{QString::fromLocal8Bit(program)};
  static const QStringList kFormats = {QStringLiteral("-txt"),      QStringLiteral("-csv"),
                                       QStringLiteral("-junitxml"), QStringLiteral("-xml"),
                                       QStringLiteral("-lightxml"), QStringLiteral("-teamcity"),
                                       QStringLiteral("-tap")};
  bool has_output = false;
  QString format = QStringLiteral("txt");
  for (const QString& o : options) {
    if (o == QLatin1String("-o")) has_output = true;
    if (kFormats.contains(o))
      format = o.mid(1);  // given as "-o -,FORMAT" below, beside the log
    else
      args << o;
  }
  // With a second logger QtTest writes only to the loggers named: keep the console's.
  if (!has_output) args << QStringLiteral("-o") << QStringLiteral("-,%1").arg(format);
  args << QStringLiteral("-o") << log.fileName() + QStringLiteral(",txt");

  const std::unique_ptr<QObject> object = test.make();
  const int failed = QTest::qExec(object.get(), args);
  const int skipped = skippedIn(log.fileName());
  if (failed != 0) return 1;
  if (skipped < 0) {
    std::fprintf(stderr, "ui_tests: %s: no totals in the test log\n", test.name);
    return 1;
  }
  if (skipped == 0) return 0;
  if (underCi()) {
    std::fprintf(stderr,
                 "ui_tests: %s: %d test(s) skipped; under CI=true a skip is a failure (the CI "
                 "installs everything the tests need)\n",
                 test.name, skipped);
    return 1;
  }
  std::fprintf(stderr, "ui_tests: %s: %d test(s) skipped\n", test.name, skipped);
  return kSkipped;
}

}  // namespace

namespace modeldiff::test {

const std::vector<UiTestClass>& uiTestClasses() {
  static const std::vector<UiTestClass> classes = {
      {"MainWindowTest", makeMainWindowTest},
      {"RunWindowTest", makeRunWindowTest},
      {"ProjectTest", makeProjectTest},
      {"ErrorReportingTest", makeErrorReportingTest},
      {"ClassPaletteTest", makeClassPaletteTest},
      {"TestRunnerTest", makeTestRunnerTest},
      {"StudyMenuTest", makeStudyMenuTest},
      {"SignificanceTest", makeSignificanceTest},
      {"PassingProbe", [] { return makeRunnerProbe(0); }, false},
      {"FailingProbe", [] { return makeRunnerProbe(1); }, false},
      {"SkippingProbe", [] { return makeRunnerProbe(2); }, false},
      {"ClassSkippingProbe", [] { return makeRunnerProbe(3); }, false},
  };
  return classes;
}

}  // namespace modeldiff::test

int main(int argc, char** argv) {
  Q_INIT_RESOURCE(resources);  // the icons live in the static ui library
  // The application's own class: an exception escaping a handler becomes a message box.
  modeldiff::ui::ErrorReportingApplication app(argc, argv);
  QStandardPaths::setTestModeEnabled(true);  // QSettings (recent runs) stay out of the user's
  QApplication::setOrganizationName(QStringLiteral("ModelDiff Studio tests"));
  QApplication::setApplicationName(QStringLiteral("ui_tests"));

  const std::vector<modeldiff::test::UiTestClass>& classes = modeldiff::test::uiTestClasses();
  QStringList options;
  for (int i = 1; i < argc; ++i) options << QString::fromLocal8Bit(argv[i]);
  if (options.value(0) == QLatin1String("--list")) {
    for (const auto& c : classes)
      if (c.listed) std::printf("%s\n", c.name);
    return 0;
  }
  // A class by name (the first argument), or every listed class.
  if (!options.isEmpty() && !options.front().startsWith(QLatin1Char('-'))) {
    const QString name = options.takeFirst();
    for (const auto& c : classes)
      if (name == QLatin1String(c.name)) return runClass(c, options, argv[0]);
    std::fprintf(stderr, "ui_tests: no test class %s (ui_tests --list names them)\n",
                 qPrintable(name));
    return 1;
  }
  int status = 0;
  for (const auto& c : classes) {
    if (!c.listed) continue;
    const int s = runClass(c, options, argv[0]);
    if (s == 1 || status == 0) status = s;
  }
  return status;
}
