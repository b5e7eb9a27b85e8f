// Every kind of exception the core and its libraries throw (core::throw_exception_of_kind:
// bad input, filesystem, OpenCV, LibTorch, LibTorch out of memory, std::runtime_error, a type
// not derived from std::exception, std::bad_alloc, a cancel) injected at each kind of GUI entry
// point: a slot's work through reportErrors(), an exception escaping an event handler (the
// application's notify), a job (RunJob, through the main window), the transformation panel's
// worker; and real inputs that throw in real slots and workers (an image that cannot be shown,
// a paste of a missing file). Each must end in one message box or the panel's own error line
// holding exactly the core's one-line message, and nothing may terminate. No dataset needed:
// the runs are made up here.
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalSpy>
#include <QStatusBar>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <memory>
#include <string>
#include <vector>

#include <qcustomplot.h>
#include "core/base/error_report.h"
#include "core/base/progress.h"
#include "core/data/transform.h"
#include "counterfactual_panel.h"
#include "dataset_image.h"
#include "error_reporting.h"
#include "example_inspector.h"
#include "grid_figure.h"
#include "image_grid_model.h"
#include "main_window.h"
#include "run_data.h"
#include "run_job.h"
#include "test_classes.h"

using namespace modeldiff;

namespace {

struct Kind {
  const char* name;
  const char* word;  // what its message must say: the exception's own text, not a generic one
};

const Kind kKinds[] = {
    {"input", "injected.npy"},
    {"filesystem", "/injected/path"},
    {"opencv", "injected OpenCV error"},
#if MODELDIFF_UI_TESTS_TORCH
    {"torch", "injected LibTorch error"},
    {"torch_out_of_memory", "CUDA out of memory"},
#endif
    {"runtime", "injected runtime error"},
    {"unknown", "unknown type"},
    {"bad_alloc", "out of memory"},
    {"cancelled", "cancelled"},
};

// What the core says of an exception of this kind: the line every entry point must show.
core::ErrorReport reportOf(const char* kind) {
  try {
    core::throw_exception_of_kind(kind);
  } catch (...) {
    return core::describe_current_exception();
  }
  return {};
}

QString expectedMessage(const Kind& kind) {
  return QString::fromStdString(reportOf(kind.name).message);
}

bool isCancel(const Kind& kind) {
  return reportOf(kind.name).kind == core::ErrorKind::kCancelled;
}

// The message boxes shown now over `parent` (its children), or anywhere for null.
QList<QMessageBox*> boxesOf(QWidget* parent) {
  QList<QMessageBox*> out;
  if (parent != nullptr) {
    for (QMessageBox* b : parent->findChildren<QMessageBox*>())
      if (b->isVisible()) out << b;
    return out;
  }
  for (QWidget* w : QApplication::allWidgets())
    if (auto* b = qobject_cast<QMessageBox*>(w); b != nullptr && b->isVisible()) out << b;
  return out;
}

void closeBoxes(QWidget* parent) {
  for (QMessageBox* b : boxesOf(parent)) b->done(QMessageBox::Ok);
  QCoreApplication::processEvents();  // their deleteLater (WA_DeleteOnClose)
  QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
}

// `n` images of `channels` channels (8 x 8 uint8, channels last), three classes.
std::shared_ptr<const core::ImageDataset> makeImages(int channels, int n = 8) {
  core::ImageDataset d;
  d.source = channels == 1 ? "grey-images.npy" : "two-channel-images.npy";
  d.images = core::NdArray::allocate(core::DType::kUInt8, {n, 8, 8, channels});
  auto* p = d.images.mutable_data_as<std::uint8_t>();
  for (std::int64_t i = 0; i < d.images.numel(); ++i) p[i] = static_cast<std::uint8_t>(i * 7);
  for (int i = 0; i < n; ++i) d.labels.push_back(i % 3);
  d.class_names = {"zero", "one", "two"};
  return std::make_shared<const core::ImageDataset>(std::move(d));
}

// A run as loadRun makes one, without files: its models are never read (the panel's
// evaluation is replaced).
std::shared_ptr<const ui::RunData> makeRun(int channels) {
  auto run = std::make_shared<ui::RunData>();
  run->folder = QStringLiteral("/nonexistent/run");
  run->is_run = true;
  run->name = QStringLiteral("made up");
  run->a.label = QStringLiteral("plain");
  run->b.label = QStringLiteral("augmented");
  run->a.checkpoints = {"/nonexistent/A/model_0.pt"};
  run->b.checkpoints = {"/nonexistent/B/model_0.pt"};
  run->train = makeImages(channels);
  run->val = makeImages(channels);
  return run;
}

// An exception thrown from an event handler, as a defect would let one escape.
class ThrowingObject : public QObject {
 public:
  explicit ThrowingObject(const char* kind) : kind_(kind) {}
  bool event(QEvent* e) override {
    if (e->type() == QEvent::User) core::throw_exception_of_kind(kind_);
    return QObject::event(e);
  }

 private:
  const char* kind_;
};

}  // namespace

class ErrorReportingTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void messagesAreOneLineAndNameTheCause();
  void slotHelperShowsEachKindInAMessageBox();
  void exceptionEscapingAHandlerIsShownNotFatal();
  void jobShowsEachKindInTheWindow();
  void transformationWorkerReportsEachKind();
  void transformationPreviewShowsWhatThrew();
  void unshowableImagesSayWhyInGridsAndInspector();
};

// The premise of the checks below: the core's one line names the cause and has no second line
// (a LibTorch or OpenCV backtrace, the second line of a what()).
void ErrorReportingTest::messagesAreOneLineAndNameTheCause() {
  for (const Kind& kind : kKinds) {
    const QString message = expectedMessage(kind);
    QVERIFY2(message.contains(QLatin1String(kind.word)), qPrintable(kind.name + (": " + message)));
    QVERIFY2(!message.contains(QLatin1Char('\n')), qPrintable(message));
    QVERIFY(!message.contains(QStringLiteral("second line")));
  }
}

void ErrorReportingTest::slotHelperShowsEachKindInAMessageBox() {
  QWidget window;
  window.show();
  QVERIFY(ui::reportErrors(&window, QStringLiteral("Nothing"), [] {}));
  QVERIFY(boxesOf(&window).isEmpty());
  for (const Kind& kind : kKinds) {
    QString message;
    const bool ran = ui::reportErrors(
        &window, QStringLiteral("Injected"), [&] { core::throw_exception_of_kind(kind.name); },
        &message);
    QVERIFY(!ran);
    const QString expected = expectedMessage(kind);
    QCOMPARE(message, expected);
    const QList<QMessageBox*> boxes = boxesOf(&window);
    QCOMPARE(boxes.size(), 1);
    QCOMPARE(boxes.front()->text(), expected);
    QCOMPARE(boxes.front()->windowTitle(), QStringLiteral("Injected"));
    // A defect or a lack of memory says so below the message; bad input needs no advice.
    const core::ErrorKind k = reportOf(kind.name).kind;
    const QString advice = boxes.front()->informativeText();
    if (k == core::ErrorKind::kInternal)
      QVERIFY2(advice.contains(QStringLiteral("defect")), qPrintable(advice));
    else if (k == core::ErrorKind::kOutOfMemory)
      QVERIFY2(advice.contains(QStringLiteral("Close other programs")), qPrintable(advice));
    else
      QVERIFY2(advice.isEmpty(), qPrintable(advice));
    closeBoxes(&window);
    QVERIFY(boxesOf(&window).isEmpty());
  }
}

void ErrorReportingTest::exceptionEscapingAHandlerIsShownNotFatal() {
  QVERIFY2(dynamic_cast<ui::ErrorReportingApplication*>(QCoreApplication::instance()) != nullptr,
           "ui_tests runs under the application's own class");
  closeBoxes(nullptr);
  for (const Kind& kind : kKinds) {
    ThrowingObject object(kind.name);
    QEvent event(QEvent::User);
    QVERIFY(!QCoreApplication::sendEvent(&object, &event));  // not handled, and still running
    const QList<QMessageBox*> boxes = boxesOf(nullptr);
    QCOMPARE(boxes.size(), 1);
    QCOMPARE(boxes.front()->text(), expectedMessage(kind));
    closeBoxes(nullptr);
  }
  // The event loop goes on as before.
  bool fired = false;
  QTimer::singleShot(0, this, [&] { fired = true; });
  QTRY_VERIFY(fired);
}

// A job's task that throws: the job fails with the one line (or ends as cancelled), and the
// window shows that line in one box; the window takes the next job.
void ErrorReportingTest::jobShowsEachKindInTheWindow() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  ui::MainWindow w;
  w.show();
  ui::RunJob* job = w.job();
  for (const Kind& kind : kKinds) {
    QSignalSpy failed(job, &ui::RunJob::failed);
    QSignalSpy cancelled(job, &ui::RunJob::cancelled);
    QSignalSpy finished(job, &ui::RunJob::finished);
    const std::string name = kind.name;
    QVERIFY(job->start(
        QStringLiteral("injected %1").arg(QLatin1String(kind.name)), dir.path(),
        [name](core::Progress& progress, const std::function<void(const std::string&)>& log) {
          progress.report(0.5, "half way");
          log("about to throw");
          core::throw_exception_of_kind(name);
        }));
    QTRY_VERIFY_WITH_TIMEOUT(!job->isRunning(), 10000);
    QCOMPARE(finished.size(), 0);
    QCOMPARE(job->log(), QStringList{QStringLiteral("about to throw")});
    if (isCancel(kind)) {
      QCOMPARE(cancelled.size(), 1);
      QCOMPARE(failed.size(), 0);
      QCOMPARE(job->state(), ui::RunJob::State::kCancelled);
      QVERIFY(boxesOf(&w).isEmpty());  // a cancel is not an error
      continue;
    }
    const QString expected = expectedMessage(kind);
    QCOMPARE(failed.size(), 1);
    QCOMPARE(failed.front().front().toString(), expected);
    QCOMPARE(job->state(), ui::RunJob::State::kFailed);
    QCOMPARE(job->error(), expected);
    QCOMPARE(job->errorKind(), reportOf(kind.name).kind);
    QTRY_COMPARE_WITH_TIMEOUT(boxesOf(&w).size(), 1, 2000);
    QCOMPARE(boxesOf(&w).front()->text(), expected);
    closeBoxes(&w);
  }
}

// The transformation panel's worker: whatever the evaluation throws is the panel's status
// line and one box (a cancel only says "Cancelled"); no result is shown and it runs again.
void ErrorReportingTest::transformationWorkerReportsEachKind() {
  ui::CounterfactualPanel panel;
  panel.show();
  panel.setRun(makeRun(1));
  QVERIFY(panel.isEnabled());
  panel.transformEdit()->setText(QStringLiteral("blur:sigma=1"));
  panel.strengthsEdit()->setText(QStringLiteral("0,1"));
  QVERIFY2(panel.runButton()->isEnabled(), qPrintable(panel.errorLabel()->text()));
  for (const Kind& kind : kKinds) {
    const std::string name = kind.name;
    panel.setEvaluation(
        [name](const ui::CounterfactualInputs&, core::Progress&) -> core::CounterfactualResult {
          core::throw_exception_of_kind(name);
        });
    QSignalSpy finished(&panel, &ui::CounterfactualPanel::finished);
    QVERIFY(panel.start());
    QTRY_VERIFY_WITH_TIMEOUT(!panel.isRunning(), 10000);
    QCOMPARE(finished.size(), 1);
    QCOMPARE(finished.front().at(0).toBool(), false);
    QVERIFY(!panel.hasResult());
    QCOMPARE(panel.plot()->graphCount(), 0);
    QVERIFY(panel.runButton()->isEnabled());
    if (isCancel(kind)) {
      QCOMPARE(finished.front().at(1).toString(), QStringLiteral("Cancelled"));
      QVERIFY(boxesOf(&panel).isEmpty());
      continue;
    }
    const QString expected = expectedMessage(kind);
    QCOMPARE(finished.front().at(1).toString(), expected);
    const QList<QMessageBox*> boxes = boxesOf(&panel);
    QCOMPARE(boxes.size(), 1);
    QCOMPARE(boxes.front()->text(), expected);
    closeBoxes(&panel);
  }

  // The same worker with an evaluation that succeeds: the inputs are the panel's, the result
  // is plotted and tabulated (flips as percentages).
  std::int64_t images_seen = -1;
  panel.setEvaluation([&images_seen](const ui::CounterfactualInputs& in, core::Progress& progress) {
    images_seen = in.images->size();
    progress.report(1.0, "done");
    core::CounterfactualResult r;
    r.transform = in.transform.text;
    for (double strength : in.strengths)
      for (const char* algorithm : {"A", "B", "A-B"}) {
        core::EffectRow row;
        row.algorithm = algorithm;
        row.label = algorithm;
        row.strength = strength;
        row.mean_delta_p = 0.1 * strength;
        row.ci_low = row.mean_delta_p - 0.01;
        row.ci_high = row.mean_delta_p + 0.01;
        row.flip_fraction = 0.25 * strength;
        r.rows.push_back(row);
      }
    return r;
  });
  QSignalSpy finished(&panel, &ui::CounterfactualPanel::finished);
  QVERIFY(panel.start());
  QTRY_VERIFY_WITH_TIMEOUT(!panel.isRunning(), 10000);
  QCOMPARE(finished.size(), 1);
  QVERIFY2(finished.front().at(0).toBool(), qPrintable(finished.front().at(1).toString()));
  QCOMPARE(images_seen, std::int64_t{5});  // the 8 images less the 3 of target class 0
  QVERIFY(panel.hasResult());
  QCOMPARE(panel.plot()->graphCount(), 2);
  QCOMPARE(panel.table()->rowCount(), 2);
  QCOMPARE(panel.table()->item(1, 4)->text(), QStringLiteral("25.0%"));
  QVERIFY(boxesOf(&panel).isEmpty());
}

// Real inputs that throw in the preview slot (setRun and typing run it on the GUI thread):
// images that cannot be shown, and a transformation that fails on them (a paste of a file
// that is not there). The panel's error line says what threw; nothing escapes.
void ErrorReportingTest::transformationPreviewShowsWhatThrew() {
  {
    const auto run = makeRun(2);
    QString expected;
    try {
      ui::datasetImage(*run->val, 1);
    } catch (...) {
      expected = QString::fromStdString(core::describe_current_exception().message);
    }
    QVERIFY2(expected.contains(QStringLiteral("two-channel-images.npy")), qPrintable(expected));
    QVERIFY2(expected.contains(QStringLiteral("2 channels")), qPrintable(expected));
    ui::CounterfactualPanel panel;
    panel.show();
    panel.setRun(run);
    QVERIFY(panel.errorLabel()->isVisibleTo(&panel));
    QCOMPARE(panel.errorLabel()->text(), QStringLiteral("Preview: %1").arg(expected));
    QCOMPARE(panel.previewCount(), 0);
  }
  const auto run = makeRun(1);
  const std::string missing = "/nonexistent/patch.png";
  const std::string spec = "paste:image=" + missing + ",x=0,y=0";
  QString expected;
  try {
    core::apply_transform(*run->val, core::parse_transform(spec), {1, 2});
  } catch (...) {
    expected = QString::fromStdString(core::describe_current_exception().message);
  }
  QVERIFY2(expected.contains(QString::fromStdString(missing)), qPrintable(expected));
  ui::CounterfactualPanel panel;
  panel.show();
  panel.setRun(run);
  panel.transformEdit()->setText(QString::fromStdString(spec));
  QCOMPARE(panel.errorLabel()->text(), QStringLiteral("Transformation: %1").arg(expected));
  QCOMPARE(panel.previewCount(), 0);
  panel.transformEdit()->setText(QStringLiteral("blur:sigma=1"));
  QCOMPARE(panel.errorLabel()->text(), QString());
  QCOMPARE(panel.previewCount(), 4);
}

// The thumbnail workers and the example inspector on images that cannot be shown: the
// placeholder stays, the message is kept (tooltip, signal, the inspector's text), the image
// is not tried again, and a grid figure still draws.
void ErrorReportingTest::unshowableImagesSayWhyInGridsAndInspector() {
  const auto run = makeRun(2);
  QString expected;
  try {
    ui::datasetImage(*run->train, 0);
  } catch (...) {
    expected = QString::fromStdString(core::describe_current_exception().message);
  }
  QVERIFY(!expected.isEmpty());
  ui::ThumbnailCache cache(run->train, nullptr, 32);
  ui::ImageGridModel model;
  model.setCache(&cache);
  QSignalSpy failed(&cache, &ui::ThumbnailCache::renderFailed);
  model.setItems({0, 1, 2}, {0.5, 0.25, 0.125}, QStringLiteral("loading"),
                 QStringLiteral("Training example"));
  QVERIFY(failed.wait(10000));
  QTRY_VERIFY_WITH_TIMEOUT(!cache.busy(), 10000);
  QCOMPARE(failed.front().front().toString(), expected);
  QCOMPARE(cache.error(0), expected);
  QVERIFY(cache.thumbnail(0).isNull());
  QVERIFY(!cache.busy());  // not queued again
  const QString tip = model.data(model.index(0), Qt::ToolTipRole).toString();
  QVERIFY2(tip.contains(QStringLiteral("cannot be shown: ") + expected), qPrintable(tip));
  const QImage figure = ui::gridFigureImage(model, QStringLiteral("unshowable"), 1);
  QCOMPARE(figure.size(), ui::gridFigureSize(model, QStringLiteral("unshowable")));

  QString expected_val;
  try {
    ui::datasetImage(*run->val, 3);
  } catch (...) {
    expected_val = QString::fromStdString(core::describe_current_exception().message);
  }
  ui::ExampleInspector inspector;
  inspector.setRun(run, &cache);
  inspector.showExample(3);
  const QString text = inspector.textLabel()->text();
  QVERIFY2(text.contains(QStringLiteral("cannot be shown")), qPrintable(text));
  QVERIFY2(text.contains(expected_val.toHtmlEscaped()), qPrintable(text));
  QCOMPARE(inspector.gridModel(0)->rowCount(), 0);
}

std::unique_ptr<QObject> modeldiff::test::makeErrorReportingTest() {
  return std::make_unique<ErrorReportingTest>();
}

#include "test_error_reporting.moc"
