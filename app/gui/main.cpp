// `modeldiff-gui`: the desktop application.
//   modeldiff-gui [PROJECT.json | RUN_DIR | RESULT_DIR]
// With --screenshot FILE it opens the path, shows the chosen comparison, direction, tab and
// example, waits for the thumbnails, writes the window to FILE and exits: figures and
// documentation images from scripts (QT_QPA_PLATFORM=offscreen needs no display).
#include <QApplication>
#include <QCommandLineParser>
#include <QRegularExpression>
#include <QSettings>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <cstdio>

#include "core/base/blas_check.h"
#include "core/base/error_report.h"
#include "error_reporting.h"
#include "example_inspector.h"
#include "main_window.h"

namespace {

struct Shot {
  QString file;
  QSize size{1600, 1000};
  int comparison = 0;
  int set = 0, direction = 0;  // set 0 = A minus B
  int tab = 0;
  qint64 inspect = -1;
};

int fail(const QString& message) {
  std::fprintf(stderr, "modeldiff-gui: %s\n", qPrintable(message));
  return 2;
}

int runGui(int argc, char** argv) {
  // An exception that escapes an event handler is shown in a message box, not a terminate.
  modeldiff::ui::ErrorReportingApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("ModelDiff Studio"));
  QApplication::setOrganizationName(QStringLiteral("ModelDiff Studio"));
  QApplication::setApplicationVersion(QStringLiteral(MODELDIFF_VERSION));
  QApplication::setDesktopFileName(QStringLiteral("io.modeldiff.Studio"));

  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral("Explore how two training algorithms differ."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(
      QStringLiteral("path"),
      QStringLiteral("A project file (JSON; its results open when it has been run), a run "
                     "folder (`modeldiff run`, `modeldiff demo`) or a result folder "
                     "(`modeldiff diff`)."));
  const QCommandLineOption screenshot(
      QStringLiteral("screenshot"),
      QStringLiteral("Write the window to FILE (PNG) once PATH is shown, then exit."),
      QStringLiteral("FILE"));
  const QCommandLineOption size(QStringLiteral("size"),
                                QStringLiteral("Window size for --screenshot (default 1600x1000)."),
                                QStringLiteral("WxH"));
  const QCommandLineOption comparison(
      QStringLiteral("comparison"),
      QStringLiteral("Comparison to show: its number in the list (1 = the first) or a word of "
                     "its title, e.g. Shirt."),
      QStringLiteral("WHICH"));
  const QCommandLineOption direction(
      QStringLiteral("direction"),
      QStringLiteral("Direction to select: A-B:K or B-A:K (K = 1 for the first)."),
      QStringLiteral("SET:K"));
  const QCommandLineOption tab(QStringLiteral("tab"),
                               QStringLiteral("Figure tab: variance, projections or cosine."),
                               QStringLiteral("NAME"));
  const QCommandLineOption inspect(
      QStringLiteral("inspect"),
      QStringLiteral("Validation example to show in the example inspector."),
      QStringLiteral("INDEX"));
  parser.addOptions({screenshot, size, comparison, direction, tab, inspect});
  parser.process(app);

  const QStringList paths = parser.positionalArguments();
  Shot shot;
  if (parser.isSet(screenshot)) {
    if (paths.isEmpty()) return fail(QStringLiteral("--screenshot needs a PATH to open"));
    shot.file = parser.value(screenshot);
    if (parser.isSet(size)) {
      const QRegularExpressionMatch m =
          QRegularExpression(QStringLiteral("^(\\d+)x(\\d+)$")).match(parser.value(size));
      if (!m.hasMatch()) return fail(QStringLiteral("--size: expected WxH, e.g. 1600x1000"));
      shot.size = QSize(m.captured(1).toInt(), m.captured(2).toInt());
      if (shot.size.width() < 200 || shot.size.height() < 200 || shot.size.width() > 8000 ||
          shot.size.height() > 8000)
        return fail(QStringLiteral("--size: each side between 200 and 8000 pixels"));
    }
    if (parser.isSet(direction)) {
      const QRegularExpressionMatch m = QRegularExpression(QStringLiteral("^([AB])-([AB]):(\\d+)$"))
                                            .match(parser.value(direction));
      if (!m.hasMatch() || m.captured(1) == m.captured(2) || m.captured(3).toInt() < 1)
        return fail(QStringLiteral("--direction: expected A-B:K or B-A:K with K >= 1"));
      shot.set = m.captured(1) == QLatin1String("A") ? 0 : 1;
      shot.direction = m.captured(3).toInt() - 1;
    }
    if (parser.isSet(tab)) {
      const QStringList tabs = {QStringLiteral("variance"), QStringLiteral("projections"),
                                QStringLiteral("cosine")};
      shot.tab = static_cast<int>(tabs.indexOf(parser.value(tab).toLower()));
      if (shot.tab < 0) return fail(QStringLiteral("--tab: variance, projections or cosine"));
    }
    if (parser.isSet(inspect)) {
      bool ok = false;
      shot.inspect = parser.value(inspect).toLongLong(&ok);
      if (!ok || shot.inspect < 0) return fail(QStringLiteral("--inspect: a validation index"));
    }
  }

  // A screenshot is the same on every machine: scratch settings (no saved layout, no entry
  // in the user's recent files).
  QTemporaryDir scratch;
  if (!shot.file.isEmpty()) {
    if (!scratch.isValid()) return fail(QStringLiteral("cannot make a temporary folder"));
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, scratch.path());
  }
  modeldiff::ui::MainWindow window;
  if (!shot.file.isEmpty()) window.resize(shot.size);
  window.show();
  if (shot.file.isEmpty()) {
    if (!paths.isEmpty()) window.open(paths.front());
    return QApplication::exec();
  }

  // Screenshot mode: errors end the program with a message instead of a dialog.
  int status = 0;
  QObject::connect(&window, &modeldiff::ui::MainWindow::loadFailed, &app,
                   [&](const QString& message) {
                     status = fail(message);
                     QApplication::exit(status);
                   });
  QObject::connect(&window, &modeldiff::ui::MainWindow::resultLoaded, &app, [&]() {
    const auto* run = window.run();
    int chosen = -1;
    const QString which = parser.value(comparison);
    if (which.isEmpty()) {
      chosen = 0;
    } else {
      bool number = false;
      const int n = which.toInt(&number);
      if (number) chosen = n - 1;
      // A class name in parentheses first ("Shirt" is not "T-shirt/top"), then any part.
      for (int pass = 0; !number && pass < 2 && chosen < 0; ++pass)
        for (int i = 0; i < static_cast<int>(run->comparisons.size()) && chosen < 0; ++i) {
          const QString& title = run->comparisons[static_cast<std::size_t>(i)].title;
          if (pass == 0
                  ? title.endsWith(QLatin1Char('(') + which + QLatin1Char(')'), Qt::CaseInsensitive)
                  : title.contains(which, Qt::CaseInsensitive))
            chosen = i;
        }
    }
    if (chosen < 0 || chosen >= static_cast<int>(run->comparisons.size())) {
      QApplication::exit(fail(QStringLiteral("--comparison %1: no such comparison").arg(which)));
      return;
    }
    const auto& summary = *run->comparisons[static_cast<std::size_t>(chosen)].summary;
    const auto directions = static_cast<int>(
        (shot.set == 0 ? summary.a_minus_b : summary.b_minus_a).explained_variance.size());
    if (shot.direction >= directions) {
      QApplication::exit(fail(QStringLiteral("--direction %1: this comparison has %2 directions "
                                             "per set")
                                  .arg(parser.value(direction))
                                  .arg(directions)));
      return;
    }
    window.selectComparison(chosen);
    window.selectDirection(shot.set, shot.direction);
    window.plotTabs()->setCurrentIndex(shot.tab);
    if (shot.inspect >= 0) {
      if (!run->val || shot.inspect >= run->val->size()) {
        QApplication::exit(
            fail(QStringLiteral("--inspect %1: no such validation example").arg(shot.inspect)));
        return;
      }
      window.inspector()->showExample(shot.inspect);
      window.inspector()->parentWidget()->show();
      window.inspector()->parentWidget()->raise();
    }
    // Written once every thumbnail is in (checked every 100 ms).
    auto* wait = new QTimer(&window);
    QObject::connect(wait, &QTimer::timeout, &app, [&, wait]() {
      if (window.thumbnailsPending()) return;
      wait->stop();
      if (window.size() != shot.size)
        std::fprintf(stderr, "modeldiff-gui: the window is %dx%d (its smallest size)\n",
                     window.width(), window.height());
      if (!window.grab().save(shot.file, "PNG")) {
        QApplication::exit(fail(QStringLiteral("%1: cannot write the screenshot").arg(shot.file)));
        return;
      }
      std::printf("%s\n", qPrintable(shot.file));
      QApplication::exit(0);
    });
    wait->start(100);
  });
  if (!window.open(paths.front()))  // the message is out already when loadFailed said why
    return status != 0 ? status : fail(QStringLiteral("%1: cannot open").arg(paths.front()));
  if (!window.projectJson().isEmpty() && !modeldiff::ui::isRunPath(window.projectOutput()))
    return fail(QStringLiteral("%1: the project has not been run yet (modeldiff run, or Project "
                               "> Run in the window)")
                    .arg(paths.front()));
  const int code = QApplication::exec();
  return code != 0 ? code : status;
}

}  // namespace

int main(int argc, char** argv) {
  modeldiff::core::configure_process_environment(argv);  // may re-execute once
  Q_INIT_RESOURCE(resources);                            // the icons live in the static ui library
  try {
    return runGui(argc, argv);
  } catch (...) {
    // Outside the event loop (setting up, or after it): one line and the exit status.
    const modeldiff::core::ErrorReport report = modeldiff::core::describe_current_exception();
    std::fprintf(stderr, "modeldiff-gui: %s\n", report.message.c_str());
    return report.exit_code();
  }
}
