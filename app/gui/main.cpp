// `modeldiff-gui`: the desktop application.
//   modeldiff-gui [PROJECT.json | RUN_DIR | RESULT_DIR]
// With --screenshot FILE it opens the path, shows the chosen comparison, direction, tab and
// example, waits for the thumbnails, writes the window to FILE and exits: figures and
// documentation images from scripts (QT_QPA_PLATFORM=offscreen needs no display). With
// --test TRANSFORM it also runs that test in the transformation panel and waits for it; with
// --select it compares the validation examples in a region of the projections first; with
// --run it reruns the project (PATH a project file) and shows the window when its results are
// back; with --grid it writes that image grid as a figure instead of the window. It gives up
// after --timeout seconds (status 3), saying what it was still waiting for.
#include <QApplication>
#include <QComboBox>
#include <QCommandLineParser>
#include <QLabel>
#include <QLineEdit>
#include <QRectF>
#include <QRegularExpression>
#include <QSettings>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "analysis_plots.h"
#include "core/base/blas_check.h"
#include "core/base/error_report.h"
#include "core/pipeline/project.h"
#include "counterfactual_panel.h"
#include "error_reporting.h"
#include "example_inspector.h"
#include "main_window.h"
#include "run_job.h"

namespace {

struct Shot {
  QString file;
  QSize size{1600, 1000};
  int comparison = 0;
  // The direction to select (A minus B's first by default); one named by class is resolved
  // once the run is read.
  modeldiff::core::DirectionRef direction;
  int tab = 0;
  qint64 inspect = -1;
  // The transformation panel's test: empty = none.
  QString test, test_strengths;
  int test_target = -1;
  bool test_direction_images = false;
  QRectF select;        // projections-plot region to compare on its own (empty: none)
  bool rerun = false;   // rerun the project first
  int grid = -1;        // MainWindow::Grid to write as a figure (-1: the window)
  int timeout_s = 900;  // give up, saying what is still awaited, after this long
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
      QStringLiteral("Direction to select: A-B:K or B-A:K (K = 1 for the first), or by what it "
                     "shows, B-A:class=C: the first whose top validation images are mostly of "
                     "class C, as a study's finding names it (a_minus_b / b_minus_a work too)."),
      QStringLiteral("SET:K"));
  const QCommandLineOption tab(QStringLiteral("tab"),
                               QStringLiteral("Figure tab: variance, projections or cosine."),
                               QStringLiteral("NAME"));
  const QCommandLineOption inspect(
      QStringLiteral("inspect"),
      QStringLiteral("Validation example to show in the example inspector."),
      QStringLiteral("INDEX"));
  const QCommandLineOption test(
      QStringLiteral("test"),
      QStringLiteral("Run this transformation in the transformation panel first (its syntax is "
                     "modeldiff counterfactual --transform)."),
      QStringLiteral("TRANSFORM"));
  const QCommandLineOption test_target(QStringLiteral("test-target"),
                                       QStringLiteral("The test's target class (its number)."),
                                       QStringLiteral("K"));
  const QCommandLineOption test_strengths(
      QStringLiteral("test-strengths"),
      QStringLiteral("The test's strengths, comma-separated (default: the panel's)."),
      QStringLiteral("LIST"));
  const QCommandLineOption test_images(
      QStringLiteral("test-images"),
      QStringLiteral("The test's images: direction (the direction's top validation images) or "
                     "others (those not of the target class, the default)."),
      QStringLiteral("WHICH"));
  const QCommandLineOption select(
      QStringLiteral("select"),
      QStringLiteral("Compare the validation examples inside this region of the projections "
                     "plot (its coordinates) on their own first, as Compare Selected does."),
      QStringLiteral("X0,Y0,X1,Y1"));
  const QCommandLineOption rerun(
      QStringLiteral("run"),
      QStringLiteral("Rerun the project (PATH a project file) first, as Project > Run does; the "
                     "window is written when its results are back."));
  const QCommandLineOption grid(
      QStringLiteral("grid"),
      QStringLiteral("Write this image grid as a figure (FILE .png, .svg or .pdf) instead of the "
                     "window: top-train, bottom-train, top-val or bottom-val."),
      QStringLiteral("GRID"));
  const QCommandLineOption timeout(
      QStringLiteral("timeout"),
      QStringLiteral("Give up after this many seconds (default 900; with --run, a day), "
                     "saying what was still awaited, with status 3."),
      QStringLiteral("SECONDS"));
  parser.addOptions({screenshot, size, comparison, direction, tab, inspect, test, test_target,
                     test_strengths, test_images, select, rerun, grid, timeout});
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
      // The window's spelling of the sets, or the core's (findings, modeldiff counterfactual).
      QString text = parser.value(direction);
      if (text.startsWith(QLatin1String("A-B:")))
        text.replace(0, 3, QStringLiteral("a_minus_b"));
      else if (text.startsWith(QLatin1String("B-A:")))
        text.replace(0, 3, QStringLiteral("b_minus_a"));
      const std::optional<modeldiff::core::DirectionRef> d =
          modeldiff::core::parse_direction(text.toStdString());
      if (!d)
        return fail(QStringLiteral("--direction %1: expected A-B:K, B-A:K (K >= 1) or "
                                   "B-A:class=C")
                        .arg(parser.value(direction)));
      shot.direction = *d;
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
    shot.test = parser.value(test);
    if (shot.test.isEmpty() &&
        (parser.isSet(test_target) || parser.isSet(test_strengths) || parser.isSet(test_images)))
      return fail(QStringLiteral("--test-target, --test-strengths, --test-images: need --test"));
    if (parser.isSet(test_target)) {
      bool ok = false;
      shot.test_target = parser.value(test_target).toInt(&ok);
      if (!ok || shot.test_target < 0) return fail(QStringLiteral("--test-target: a class number"));
    }
    shot.test_strengths = parser.value(test_strengths);
    if (parser.isSet(test_images)) {
      const QString which = parser.value(test_images);
      if (which != QLatin1String("direction") && which != QLatin1String("others"))
        return fail(QStringLiteral("--test-images: direction or others"));
      shot.test_direction_images = which == QLatin1String("direction");
    }
    if (parser.isSet(select)) {
      std::vector<double> v;
      for (const QString& part : parser.value(select).split(QLatin1Char(','))) {
        bool ok = false;
        const double x = part.toDouble(&ok);
        if (!ok || !std::isfinite(x)) break;
        v.push_back(x);
      }
      if (v.size() != 4 || v[0] >= v[2] || v[1] >= v[3])
        return fail(QStringLiteral("--select: expected X0,Y0,X1,Y1 with X0 < X1 and Y0 < Y1"));
      shot.select = QRectF(QPointF(v[0], v[1]), QPointF(v[2], v[3]));
    }
    shot.rerun = parser.isSet(rerun);
    if (shot.rerun) shot.timeout_s = 86400;  // a run from scratch may take its time
    if (parser.isSet(timeout)) {
      bool ok = false;
      shot.timeout_s = parser.value(timeout).toInt(&ok);
      if (!ok || shot.timeout_s < 1 || shot.timeout_s > 86400)
        return fail(QStringLiteral("--timeout: seconds, from 1 to 86400"));
    }
    if (parser.isSet(grid)) {
      const QStringList grids = {QStringLiteral("top-train"), QStringLiteral("bottom-train"),
                                 QStringLiteral("top-val"), QStringLiteral("bottom-val")};
      shot.grid = static_cast<int>(grids.indexOf(parser.value(grid)));
      if (shot.grid < 0)
        return fail(QStringLiteral("--grid: top-train, bottom-train, top-val or bottom-val"));
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
  QObject::connect(window.job(), &modeldiff::ui::RunJob::failed, &app, [](const QString& message) {
    QApplication::exit(fail(QStringLiteral("the job failed: ") + message));
  });
  bool shown = false;  // the view is set up (later loads are the selection's)
  // What the shot still waits for once the view is set up (empty: it can be written); the
  // --timeout message names the same.
  std::function<QStringList()> awaited;
  QObject::connect(&window, &modeldiff::ui::MainWindow::resultLoaded, &app, [&]() {
    if (shot.rerun) {
      shot.rerun = false;  // the next load is the rerun's
      if (!window.runProject())
        QApplication::exit(fail(QStringLiteral("--run: the project cannot run")));
      return;
    }
    if (shown) return;
    shown = true;
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
    const int set = shot.direction.a_minus_b ? 0 : 1;
    const auto& directions = set == 0 ? summary.a_minus_b : summary.b_minus_a;
    if (shot.direction.of_class >= 0 && !run->val) {
      QApplication::exit(fail(QStringLiteral("--direction %1: naming a direction by class needs "
                                             "the validation labels of a run folder")
                                  .arg(parser.value(direction))));
      return;
    }
    // By class: resolved over all the top validation images the result keeps, as
    // `modeldiff counterfactual --direction` does by default.
    static const std::vector<std::int64_t> kNoLabels;  // a number needs none
    const int component = modeldiff::core::resolve_direction(
        shot.direction, directions.top_target, run->val ? run->val->labels : kNoLabels, 0);
    if (component < 0) {
      QApplication::exit(fail(
          shot.direction.of_class >= 0
              ? QStringLiteral("--direction %1: no direction of this comparison has mostly class "
                               "%2 among its top validation images")
                    .arg(parser.value(direction))
                    .arg(shot.direction.of_class)
              : QStringLiteral("--direction %1: this comparison has %2 directions per set")
                    .arg(parser.value(direction))
                    .arg(directions.top_target.size())));
      return;
    }
    window.selectComparison(chosen);
    window.selectDirection(set, component);
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
    const std::size_t comparisons_before = run->comparisons.size();
    if (!shot.select.isEmpty()) {
      window.plotTabs()->setCurrentIndex(1);  // the projections, where a region is chosen
      window.projectionPlot()->setRegionSelection(true);
      window.projectionPlot()->selectRegion(shot.select);
      if (!window.compareSelection()) {
        QApplication::exit(
            fail(QStringLiteral("--select: fewer than 3 examples in the region, "
                                "or no score files in the run")));
        return;
      }
    }
    auto* panel = window.counterfactualPanel();
    if (!shot.test.isEmpty()) {
      if (shot.test_target >= panel->targetBox()->count()) {
        QApplication::exit(fail(QStringLiteral("--test-target %1: the run has %2 classes")
                                    .arg(shot.test_target)
                                    .arg(panel->targetBox()->count())));
        return;
      }
      if (shot.test_target >= 0) panel->targetBox()->setCurrentIndex(shot.test_target);
      panel->imageChoiceBox()->setCurrentIndex(
          shot.test_direction_images ? modeldiff::ui::CounterfactualPanel::kDirectionTop
                                     : modeldiff::ui::CounterfactualPanel::kNotTargetClass);
      panel->presetBox()->setCurrentIndex(0);  // "(presets)": the text below is none of them
      panel->transformEdit()->setText(shot.test);
      if (!shot.test_strengths.isEmpty()) panel->strengthsEdit()->setText(shot.test_strengths);
      panel->parentWidget()->show();
      panel->parentWidget()->raise();
      QObject::connect(panel, &modeldiff::ui::CounterfactualPanel::finished, &app,
                       [](bool ok, const QString& message) {
                         if (!ok) QApplication::exit(fail(QStringLiteral("--test: ") + message));
                       });
      if (!panel->start()) {
        QApplication::exit(fail(QStringLiteral("--test: ") + panel->errorLabel()->text()));
        return;
      }
    }
    awaited = [&, panel, comparisons_before]() {
      QStringList pending;
      if (window.thumbnailsPending()) pending << QStringLiteral("image thumbnails");
      // A test that failed has no result either: the exit is under way.
      if (panel->isRunning() || (!shot.test.isEmpty() && !panel->hasResult()))
        pending << QStringLiteral("the transformation test (--test)");
      if (!shot.select.isEmpty() &&
          (window.job()->isRunning() || window.run()->comparisons.size() == comparisons_before))
        pending << QStringLiteral("the selection's comparison");
      return pending;
    };
    // Written once every thumbnail (and the test, if any) is in (checked every 100 ms).
    auto* wait = new QTimer(&window);
    QObject::connect(wait, &QTimer::timeout, &app, [&, wait, chosen, set, component]() {
      if (!awaited().isEmpty()) return;
      wait->stop();
      if (window.size() != shot.size)
        std::fprintf(stderr, "modeldiff-gui: the window is %dx%d (its smallest size)\n",
                     window.width(), window.height());
      if (shot.grid >= 0) {
        if (!window.exportGrid(static_cast<modeldiff::ui::MainWindow::Grid>(shot.grid),
                               shot.file)) {
          QApplication::exit(fail(QStringLiteral("%1: cannot write the figure").arg(shot.file)));
          return;
        }
      } else if (!window.grab().save(shot.file, "PNG")) {
        QApplication::exit(fail(QStringLiteral("%1: cannot write the screenshot").arg(shot.file)));
        return;
      }
      // What is shown: a direction named by class is resolved only now.
      std::printf("%s: comparison %d, %s direction %d\n", qPrintable(shot.file), chosen + 1,
                  set == 0 ? "A-B" : "B-A", component + 1);
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
  // A screenshot never waits for ever: past --timeout it says what it was still waiting for.
  QTimer::singleShot(std::chrono::seconds(shot.timeout_s), &app, [&]() {
    QStringList pending;
    if (!shown)
      pending << (window.job()->isRunning()
                      ? QStringLiteral("the project's run (--run)")
                      : QStringLiteral("the results of %1").arg(paths.front()));
    else if (awaited)
      pending = awaited();
    if (pending.isEmpty())  // shown, and nothing pending (or the view stopped on an error)
      pending << QStringLiteral("the window to be written, its view set up");
    std::fprintf(stderr, "modeldiff-gui: --timeout %d s passed; still waiting for %s\n",
                 shot.timeout_s, qPrintable(pending.join(QStringLiteral(", "))));
    // Not through the event loop's exit: a worker blocked in what it waits for would hold
    // the thread pool's shutdown for ever.
    scratch.remove();
    std::fflush(nullptr);
    std::_Exit(3);
  });
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
