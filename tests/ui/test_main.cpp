// One QtTest executable for every GUI test class; settings go to a throw-away test location.
#include <QApplication>
#include <QStandardPaths>

int runMainWindowTests(int argc, char** argv);
int runRunWindowTests(int argc, char** argv);
int runProjectTests(int argc, char** argv);

int main(int argc, char** argv) {
  Q_INIT_RESOURCE(resources);  // the icons live in the static ui library
  QApplication app(argc, argv);
  QStandardPaths::setTestModeEnabled(true);  // QSettings (recent runs) stay out of the user's
  QApplication::setOrganizationName(QStringLiteral("ModelDiff Studio tests"));
  QApplication::setApplicationName(QStringLiteral("ui_tests"));
  int failed = 0;
  failed += runMainWindowTests(argc, argv) != 0 ? 1 : 0;
  failed += runRunWindowTests(argc, argv) != 0 ? 1 : 0;
  failed += runProjectTests(argc, argv) != 0 ? 1 : 0;
  return failed;
}
