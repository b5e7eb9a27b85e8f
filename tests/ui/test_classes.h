// The GUI test classes ui_tests runs (test_main.cpp): each is its own CTest entry
// (tests/ui/CMakeLists.txt registers them by these names).
#pragma once

#include <QObject>
#include <functional>
#include <memory>
#include <vector>

namespace modeldiff::test {

struct UiTestClass {
  const char* name;  // the QtTest class, as given on the command line
  std::function<std::unique_ptr<QObject>()> make;
  bool listed = true;  // false: run only when named (the runner's own probes)
};

const std::vector<UiTestClass>& uiTestClasses();

// One per test file.
std::unique_ptr<QObject> makeMainWindowTest();
std::unique_ptr<QObject> makeRunWindowTest();
std::unique_ptr<QObject> makeProjectTest();
std::unique_ptr<QObject> makeErrorReportingTest();
std::unique_ptr<QObject> makeClassPaletteTest();
std::unique_ptr<QObject> makeTestRunnerTest();
std::unique_ptr<QObject> makeStudyMenuTest();
std::unique_ptr<QObject> makeSignificanceTest();
// Probes for TestRunnerTest: a class whose one test passes (0), fails (1) or is skipped (2), or
// which skips in initTestCase (3).
std::unique_ptr<QObject> makeRunnerProbe(int outcome);

}  // namespace modeldiff::test
