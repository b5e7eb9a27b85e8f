// Projects in the window: the set-up dialog explains invalid choices, a project saves
// atomically and reopens, a corrupt project file gives one error message, and a run started
// from the window (the quick Fashion-MNIST demo, in process) reports progress, can be
// cancelled keeping what finished, resumes from it and opens its results when done.
#include <QAbstractButton>
#include <QDialogButtonBox>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QLabel>
#include <QListView>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/base/progress.h"
#include "core/pipeline/demo_paths.h"
#include "core/pipeline/project.h"
#include "core/test_paths.h"
#include "example_inspector.h"
#include "image_grid_model.h"
#include "job_panel.h"
#include "main_window.h"
#include "project_dialog.h"
#include "run_job.h"

#include "test_classes.h"

using namespace modeldiff;

class ProjectTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase();
  void dialogExplainsInvalidChoices();
  void dialogChecksModelsInTheBackground();
  void dialogTakesAFinishedCheckBeforeItsSignal();
  void dialogKeepsKeysItHasNoFieldFor();
  void newProjectFromTheDialog();
  void savedProjectReopens();
  void corruptProjectFileShowsAnError();
  void runCancelResumeAndOpen();
  void failedRunShowsOneMessage();
  void jobReportsStepFractionAndTimeLeft();

 private:
  QString demoJson(const QString& output, bool quick) const;
  QTemporaryDir dir_;
  bool have_data_ = false;
};

// The dialog's verdict once its background model checks are done.
QString checked(ui::ProjectDialog& dialog) {
  QString problem = dialog.validate();
  QElapsedTimer waited;
  waited.start();
  while (dialog.checking() && waited.elapsed() < 60000) {
    QTest::qWait(10);
    problem = dialog.validate();
  }
  return problem;
}

void ProjectTest::initTestCase() {
  QVERIFY(dir_.isValid());
  have_data_ = QFile::exists(QString::fromStdString(core::default_fashion_mnist_dir()) +
                             QStringLiteral("/train-images-idx3-ubyte.gz"));
}

QString ProjectTest::demoJson(const QString& output, bool quick) const {
  return QString::fromStdString(core::project_json(
      core::demo_project(core::demo_architecture_path(), core::default_fashion_mnist_dir(),
                         output.toStdString(), quick)));
}

void ProjectTest::dialogExplainsInvalidChoices() {
  if (!have_data_) QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  // A new project names no files yet: not runnable, and the dialog says why.
  {
    ui::ProjectDialog dialog(QString(), dir_.path());
    QVERIFY(!dialog.validate().isEmpty());
    QVERIFY(!dialog.buttons()->button(QDialogButtonBox::Ok)->isEnabled());
    QVERIFY(dialog.problemLabel()->text().contains(dialog.problem().toHtmlEscaped()));
  }
  ui::ProjectDialog dialog(demoJson(dir_.filePath(QStringLiteral("d")), true), dir_.path());
  QCOMPARE(checked(dialog), QString());
  QVERIFY(dialog.buttons()->button(QDialogButtonBox::Ok)->isEnabled());
  QCOMPARE(dialog.field(QStringLiteral("A.source")), QStringLiteral("train"));
  QCOMPARE(dialog.field(QStringLiteral("B.source")), QStringLiteral("train"));

  // A missing file is named with its field.
  QVERIFY(
      dialog.setField(QStringLiteral("data.val.labels"), QStringLiteral("/nonexistent/labels.gz")));
  QString problem = dialog.validate();
  QVERIFY2(problem.contains(QStringLiteral("data.val.labels")) &&
               problem.contains(QStringLiteral("/nonexistent/labels.gz")),
           qPrintable(problem));
  QVERIFY(!dialog.buttons()->button(QDialogButtonBox::Ok)->isEnabled());
  QVERIFY(dialog.setField(QStringLiteral("data.val.labels"),
                          QString::fromStdString(core::default_fashion_mnist_dir()) +
                              QStringLiteral("/t10k-labels-idx1-ubyte.gz")));
  QCOMPARE(checked(dialog), QString());

  // Checkpoints that do not exist.
  QVERIFY(dialog.setField(QStringLiteral("A.source"), QStringLiteral("checkpoints")));
  QVERIFY(dialog.setField(QStringLiteral("A.checkpoints"), QStringLiteral("/nonexistent/a0.pt")));
  problem = dialog.validate();
  QVERIFY2(problem.contains(QStringLiteral("A.checkpoints")), qPrintable(problem));
  // No checkpoints at all: the core's parser says what an algorithm needs.
  QVERIFY(dialog.setField(QStringLiteral("A.checkpoints"), QString()));
  problem = dialog.validate();
  QVERIFY2(problem.contains(QStringLiteral("checkpoints")), qPrintable(problem));
  QVERIFY(!dialog.buttons()->button(QDialogButtonBox::Ok)->isEnabled());
  // B from a score file: one that does not exist is named; one that does is checked by the
  // core's parser (the demo's B hides the patch, which precomputed scores cannot).
  QVERIFY(dialog.setField(QStringLiteral("A.source"), QStringLiteral("train")));
  QVERIFY(dialog.setField(QStringLiteral("B.source"), QStringLiteral("scores")));
  QVERIFY(dialog.setField(QStringLiteral("B.scores"), QStringLiteral("/nonexistent/b.npy")));
  problem = dialog.validate();
  QVERIFY2(problem.contains(QStringLiteral("hide_patch")), qPrintable(problem));
  QCOMPARE(dialog.field(QStringLiteral("B.hide_patch")), QStringLiteral("true"));
  QVERIFY(dialog.setField(QStringLiteral("B.hide_patch"), QStringLiteral("false")));
  problem = dialog.validate();
  QVERIFY2(problem.contains(QStringLiteral("B.scores")), qPrintable(problem));
  QVERIFY(dialog.setField(QStringLiteral("B.scores"),
                          QString::fromStdString(core::demo_architecture_path())));
  QCOMPARE(checked(dialog), QString());  // the file's shape is checked when the run loads it
  auto scores_json = nlohmann::json::parse(dialog.projectJson().toStdString());
  QCOMPARE(scores_json["B"]["scores"].get<std::string>(), core::demo_architecture_path());
  QVERIFY(!scores_json["B"].contains("train"));
  QVERIFY(dialog.setField(QStringLiteral("B.source"), QStringLiteral("train")));
  QVERIFY(dialog.setField(QStringLiteral("B.hide_patch"), QStringLiteral("true")));
  // Back to training: valid again; the JSON has a recipe and no checkpoints.
  QVERIFY(dialog.setField(QStringLiteral("A.source"), QStringLiteral("train")));
  QCOMPARE(checked(dialog), QString());
  const auto j = nlohmann::json::parse(dialog.projectJson().toStdString());
  QVERIFY(j["A"].contains("train"));
  QVERIFY(!j["A"].contains("checkpoints"));
  // Edits are checked shortly after typing stops, without calling validate(): invalid, then
  // valid again.
  QVERIFY(dialog.setField(QStringLiteral("data.train.images"), QStringLiteral("missing.idx")));
  QTRY_VERIFY_WITH_TIMEOUT(!dialog.problem().isEmpty(), 2000);
  QVERIFY(dialog.setField(QStringLiteral("data.train.images"),
                          QString::fromStdString(core::default_fashion_mnist_dir()) +
                              QStringLiteral("/train-images-idx3-ubyte.gz")));
  QTRY_VERIFY_WITH_TIMEOUT(dialog.problem().isEmpty(), 2000);
  QVERIFY(!dialog.setField(QStringLiteral("no.such.key"), QStringLiteral("1")));
}

// A check that has finished counts at the next validate(), also when the event loop has not
// delivered the watcher's finished() signal yet: validating again in between must not start
// the same check again (a poll like this one restarted it for ever).
void ProjectTest::dialogTakesAFinishedCheckBeforeItsSignal() {
  if (!have_data_) QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  const QString refused = QString::fromStdString(test::test_fixture("graph_bn_nostats.pt"));
  ui::ProjectDialog dialog(demoJson(dir_.filePath(QStringLiteral("m")), true), dir_.path());
  QVERIFY(dialog.setField(QStringLiteral("A.architecture"), refused));
  QString problem = dialog.validate();
  QElapsedTimer waited;
  waited.start();
  while (dialog.checking() && waited.elapsed() < 120000) {  // no events processed
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    problem = dialog.validate();
  }
  QVERIFY2(!dialog.checking(), qPrintable(problem));
  QVERIFY2(problem.contains(QLatin1String("aten::batch_norm")), qPrintable(problem));
}

// A model TRAK cannot follow is explained while the project is set up, before anything runs,
// without blocking the dialog: the check runs in the background and the verdict replaces the
// "checking" line by itself.
void ProjectTest::dialogChecksModelsInTheBackground() {
  if (!have_data_) QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  const QString refused = QString::fromStdString(test::test_fixture("graph_bn_nostats.pt"));
  QVERIFY2(QFile::exists(refused), qPrintable(refused));
  ui::ProjectDialog dialog(demoJson(dir_.filePath(QStringLiteral("m")), true), dir_.path());
  QCOMPARE(checked(dialog), QString());
  QVERIFY(dialog.setField(QStringLiteral("A.architecture"), refused));
  const QString first = dialog.validate();
  QVERIFY2(dialog.checking() && first.contains(QStringLiteral("Checking")), qPrintable(first));
  QVERIFY(!dialog.buttons()->button(QDialogButtonBox::Ok)->isEnabled());
  QTRY_VERIFY_WITH_TIMEOUT(!dialog.checking(), 60000);  // no validate() call: by itself
  const QString problem = dialog.problem();
  for (const char* word : {"A:", "graph_bn_nostats.pt", "aten::batch_norm"})
    QVERIFY2(problem.contains(QLatin1String(word)), qPrintable(problem));
  QVERIFY(!dialog.buttons()->button(QDialogButtonBox::Ok)->isEnabled());
  QVERIFY(dialog.problemLabel()->text().contains(QStringLiteral("b00020")));  // shown as an error
  // The verdict is kept: checking the same file again needs no new check.
  QCOMPARE(dialog.validate(), problem);
  QVERIFY(!dialog.checking());
  // A built-in architecture needs no check; a model TRAK follows is ready to run.
  QVERIFY(dialog.setField(QStringLiteral("A.architecture"), QStringLiteral("resnet9:width=8")));
  QCOMPARE(dialog.validate(), QString());
  QVERIFY(!dialog.checking());
  QVERIFY(dialog.setField(QStringLiteral("A.architecture"),
                          QString::fromStdString(core::demo_architecture_path())));
  QCOMPARE(checked(dialog), QString());
  QVERIFY(dialog.buttons()->button(QDialogButtonBox::Ok)->isEnabled());
}

void ProjectTest::dialogKeepsKeysItHasNoFieldFor() {
  if (!have_data_) QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  const QString original = demoJson(dir_.filePath(QStringLiteral("keep")), true);
  ui::ProjectDialog dialog(original, dir_.path());
  QCOMPARE(checked(dialog), QString());
  // Unchanged fields: the same project (planted patch, hide_patch, seeds and all).
  const core::Project before =
      core::parse_project(original.toStdString(), dir_.path().toStdString(), "original");
  const core::Project after =
      core::parse_project(dialog.projectJson().toStdString(), dir_.path().toStdString(), "dialog");
  QCOMPARE(QString::fromStdString(core::project_json(after)),
           QString::fromStdString(core::project_json(before)));
  QVERIFY(after.plant.enabled);
  QVERIFY(after.b.hide_patch);
  // A changed field changes exactly that.
  QVERIFY(dialog.setField(QStringLiteral("B.train.epochs"), QStringLiteral("7")));
  QVERIFY(dialog.setField(QStringLiteral("data.class_names"), QStringLiteral("a, b ,c")));
  const core::Project edited =
      core::parse_project(dialog.projectJson().toStdString(), dir_.path().toStdString(), "dialog");
  QCOMPARE(edited.b.train.epochs, 7);
  QCOMPARE(edited.a.train.epochs, before.a.train.epochs);
  QCOMPARE(edited.class_names, (std::vector<std::string>{"a", "b", "c"}));
  QVERIFY(edited.a.view.empty());
  QCOMPARE(edited.rotation, core::Rotation::kVarimax);
  // An algorithm's view and the rotation of the directions have fields too: set, they are
  // written; a view emptied again is removed, and a loaded view shows in its field.
  QVERIFY(dialog.setField(QStringLiteral("A.view"), QStringLiteral("autocontrast")));
  QVERIFY(dialog.setField(QStringLiteral("diff.rotation"), QStringLiteral("none")));
  const core::Project viewed =
      core::parse_project(dialog.projectJson().toStdString(), dir_.path().toStdString(), "dialog");
  QCOMPARE(viewed.a.view, std::string("autocontrast"));
  QVERIFY(viewed.b.view.empty());
  QCOMPARE(viewed.rotation, core::Rotation::kNone);
  ui::ProjectDialog reopened(dialog.projectJson(), dir_.path());
  QCOMPARE(reopened.field(QStringLiteral("A.view")), QStringLiteral("autocontrast"));
  QCOMPARE(reopened.field(QStringLiteral("diff.rotation")), QStringLiteral("none"));
  QVERIFY(reopened.setField(QStringLiteral("A.view"), QString()));
  QVERIFY(!QString::fromStdString(reopened.projectJson().toStdString())
               .contains(QStringLiteral("\"view\"")));
  // The planted patch has fields: loaded, they show the project's; unplanted, the project has
  // none (and B's hide_patch is then refused, by name); planted again with another class,
  // only the class changes.
  QCOMPARE(reopened.field(QStringLiteral("data.planted_patch")), QStringLiteral("true"));
  QCOMPARE(reopened.field(QStringLiteral("data.planted_patch.class")),
           QString::number(before.plant.target_class));
  QCOMPARE(reopened.field(QStringLiteral("data.planted_patch.size")),
           QString::number(before.plant.patch.size));
  QVERIFY(reopened.setField(QStringLiteral("data.planted_patch"), QStringLiteral("false")));
  QVERIFY(!QString::fromStdString(reopened.projectJson().toStdString())
               .contains(QStringLiteral("planted_patch")));
  QVERIFY2(reopened.validate().contains(QStringLiteral("hide_patch needs a planted patch")),
           qPrintable(reopened.validate()));
  QVERIFY(reopened.setField(QStringLiteral("data.planted_patch"), QStringLiteral("true")));
  QVERIFY(reopened.setField(QStringLiteral("data.planted_patch.class"), QStringLiteral("2")));
  QCOMPARE(checked(reopened), QString());
  const core::Project replanted = core::parse_project(reopened.projectJson().toStdString(),
                                                      dir_.path().toStdString(), "dialog");
  QVERIFY(replanted.plant.enabled);
  QCOMPARE(replanted.plant.target_class, std::int64_t{2});
  QCOMPARE(replanted.plant.patch.x, before.plant.patch.x);
  QCOMPARE(replanted.plant.patch.y, before.plant.patch.y);
  QCOMPARE(replanted.plant.train_fraction, before.plant.train_fraction);
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    ui::ProjectDialog shown(original, dir_.path());
    shown.setField(QStringLiteral("A.checkpoints"), QStringLiteral("/nonexistent/a0.pt"));
    shown.setField(QStringLiteral("A.source"), QStringLiteral("checkpoints"));
    shown.validate();
    if (auto* tabs = shown.findChild<QTabWidget*>()) tabs->setCurrentIndex(1);  // Algorithm A
    shown.resize(640, 560);
    shown.show();
    QVERIFY(QTest::qWaitForWindowExposed(&shown));
    QDir().mkpath(dir);
    QVERIFY(shown.grab().save(dir + QStringLiteral("/gui_project_dialog.png")));
  }
}

// A project set up from nothing: the fields start at the core's defaults, a recipe can be
// chosen for an algorithm that had none, and what the dialog writes is a valid project.
// Values the user did not touch are kept exactly (no spin-box rounding).
void ProjectTest::newProjectFromTheDialog() {
  if (!have_data_) QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  const QString dir = QString::fromStdString(core::default_fashion_mnist_dir()) + QLatin1Char('/');
  ui::ProjectDialog dialog(QString(), dir_.path());
  const core::Project defaults;
  QCOMPARE(dialog.field(QStringLiteral("trak.proj_dim")), QString::number(defaults.trak.proj_dim));
  QCOMPARE(dialog.field(QStringLiteral("diff.top_k")), QString::number(defaults.top_k));
  QVERIFY(dialog.setField(QStringLiteral("data.train.images"),
                          dir + QStringLiteral("train-images-idx3-ubyte.gz")));
  QVERIFY(dialog.setField(QStringLiteral("data.train.labels"),
                          dir + QStringLiteral("train-labels-idx1-ubyte.gz")));
  QVERIFY(dialog.setField(QStringLiteral("data.val.images"),
                          dir + QStringLiteral("t10k-images-idx3-ubyte.gz")));
  QVERIFY(dialog.setField(QStringLiteral("data.val.labels"),
                          dir + QStringLiteral("t10k-labels-idx1-ubyte.gz")));
  for (const QString& letter : {QStringLiteral("A"), QStringLiteral("B")}) {
    QVERIFY(dialog.setField(letter + QStringLiteral(".source"), QStringLiteral("train")));
    QVERIFY(dialog.setField(letter + QStringLiteral(".architecture"),
                            QString::fromStdString(core::demo_architecture_path())));
  }
  QVERIFY(dialog.setField(QStringLiteral("B.train.augment"), QStringLiteral("true")));
  QCOMPARE(checked(dialog), QString());
  const core::Project p =
      core::parse_project(dialog.projectJson().toStdString(), dir_.path().toStdString(), "dialog");
  QVERIFY(p.a.trains() && p.b.trains());
  QVERIFY(p.b.train.augment && !p.a.train.augment);
  QCOMPARE(p.trak.proj_dim, defaults.trak.proj_dim);
  QCOMPARE(p.components, defaults.components);
  QCOMPARE(p.per_class, defaults.per_class);
  QVERIFY(!p.plant.enabled);
  // A known answer set up in the dialog: the patch planted with the core's defaults where a
  // field was left alone, and B blind to it.
  QVERIFY(dialog.setField(QStringLiteral("data.planted_patch"), QStringLiteral("true")));
  QVERIFY(dialog.setField(QStringLiteral("data.planted_patch.class"), QStringLiteral("6")));
  QVERIFY(dialog.setField(QStringLiteral("data.planted_patch.x"), QStringLiteral("2")));
  QVERIFY(dialog.setField(QStringLiteral("B.hide_patch"), QStringLiteral("true")));
  QCOMPARE(checked(dialog), QString());
  const core::Project planted =
      core::parse_project(dialog.projectJson().toStdString(), dir_.path().toStdString(), "dialog");
  const core::PlantSpec plant_defaults;
  QVERIFY(planted.plant.enabled && !planted.plant.is_transform());
  QCOMPARE(planted.plant.target_class, std::int64_t{6});
  QCOMPARE(planted.plant.patch.x, 2);
  QCOMPARE(planted.plant.patch.size, plant_defaults.patch.size);
  QCOMPARE(planted.plant.patch.value, plant_defaults.patch.value);
  QCOMPARE(planted.plant.train_fraction, plant_defaults.train_fraction);
  QCOMPARE(planted.plant.val_fraction, plant_defaults.val_fraction);
  QVERIFY(planted.b.hide_patch && !planted.a.hide_patch);
  QVERIFY(dialog.setField(QStringLiteral("B.hide_patch"), QStringLiteral("false")));
  QVERIFY(dialog.setField(QStringLiteral("data.planted_patch"), QStringLiteral("false")));

  // A learning rate finer than the field shows survives an edit of another field.
  auto j = nlohmann::json::parse(dialog.projectJson().toStdString());
  j["A"]["train"]["lr"] = 3e-6;
  j["trak"]["lambda"] = 1e-9;
  ui::ProjectDialog again(QString::fromStdString(j.dump()), dir_.path());
  QVERIFY(again.setField(QStringLiteral("name"), QStringLiteral("renamed")));
  const auto k = nlohmann::json::parse(again.projectJson().toStdString());
  QCOMPARE(k["A"]["train"]["lr"].get<double>(), 3e-6);
  QCOMPARE(k["trak"]["lambda"].get<double>(), 1e-9);
  QCOMPARE(k["name"].get<std::string>(), std::string("renamed"));
}

void ProjectTest::savedProjectReopens() {
  if (!have_data_) QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  ui::MainWindow w;
  const QString output = dir_.filePath(QStringLiteral("never-run"));
  QSignalSpy changed(&w, &ui::MainWindow::projectChanged);
  QVERIFY(w.setProject(demoJson(output, true), dir_.path()));
  QCOMPARE(changed.size(), 1);
  QVERIFY(w.headerLabel()->text().contains(QStringLiteral("Not run yet")));
  const QString path = dir_.filePath(QStringLiteral("study.json"));
  QVERIFY(!w.saveProjectAs(dir_.filePath(QStringLiteral("no/such/folder/study.json"))));
  QVERIFY(w.saveProjectAs(path));
  QCOMPARE(w.projectPath(), QFileInfo(path).absoluteFilePath());
  // The file is the core's JSON of the project, and loads as the same project.
  const core::Project saved = core::load_project(path.toStdString());
  QCOMPARE(QString::fromStdString(saved.output), output);
  QVERIFY(saved.plant.enabled);
  // No temporary file left beside it.
  QCOMPARE(QDir(dir_.path()).entryList({QStringLiteral("study.json*")}, QDir::Files).size(), 1);

  ui::MainWindow reopened;
  QSignalSpy failed(&reopened, &ui::MainWindow::loadFailed);
  QVERIFY(reopened.open(path));
  QCOMPARE(failed.size(), 0);
  QCOMPARE(reopened.projectPath(), QFileInfo(path).absoluteFilePath());
  QCOMPARE(QString::fromStdString(core::project_json(core::parse_project(
               reopened.projectJson().toStdString(), dir_.path().toStdString(), "reopened"))),
           QString::fromStdString(core::project_json(saved)));
}

void ProjectTest::corruptProjectFileShowsAnError() {
  const struct {
    const char* name;
    const char* text;
    const char* expected;  // part of the message
  } cases[] = {
      {"truncated.json", "{\"name\": \"x\", \"data\": {", "truncated.json"},
      {"wrong_type.json",
       "{\"data\": {\"train\": {\"images\": \"a\", \"labels\": \"b\"}, \"val\": {\"images\": "
       "\"a\", \"labels\": \"b\"}}, \"A\": 5, \"B\": {\"checkpoints\": [\"x.pt\"]}}",
       "A"},
      {"binary.json", "\x89PNG\r\n\x1a\n\x00\x01", "binary.json"},
  };
  for (const auto& c : cases) {
    const QString path = dir_.filePath(QString::fromLatin1(c.name));
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(c.text);
    f.close();
    ui::MainWindow w;
    QSignalSpy failed(&w, &ui::MainWindow::loadFailed);
    QVERIFY(!w.open(path));
    QCOMPARE(failed.size(), 1);
    const QString message = failed.front().front().toString();
    QVERIFY2(message.contains(QString::fromLatin1(c.expected)), qPrintable(message));
    QVERIFY(w.projectJson().isEmpty());  // nothing half-loaded
    QVERIFY(!w.runProject());
  }
  ui::MainWindow w;
  QSignalSpy failed(&w, &ui::MainWindow::loadFailed);
  QVERIFY(!w.openProject(dir_.filePath(QStringLiteral("missing.json"))));
  QCOMPARE(failed.size(), 1);
  QVERIFY(failed.front().front().toString().contains(QStringLiteral("missing.json")));
}

void ProjectTest::runCancelResumeAndOpen() {
  if (!have_data_) QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  ui::MainWindow w;
  w.resize(1400, 900);
  w.show();
  const QString output = dir_.filePath(QStringLiteral("gui-run"));
  QVERIFY(w.setProject(demoJson(output, true), dir_.path()));
  ui::RunJob* job = w.job();

  // How long the GUI thread goes without handling events while the job runs (reported, not
  // asserted: timings depend on the machine).
  QElapsedTimer since_tick;
  qint64 longest_stall = 0;
  QTimer tick;
  tick.setInterval(10);
  connect(&tick, &QTimer::timeout, this,
          [&]() { longest_stall = std::max(longest_stall, since_tick.restart()); });

  // 1. Start, and cancel once algorithm A's models are trained.
  QSignalSpy cancelled(job, &ui::RunJob::cancelled);
  QSignalSpy logged(job, &ui::RunJob::logged);
  QVERIFY(w.runProject());
  QVERIFY(job->isRunning());
  QVERIFY(!w.runProject());  // one job at a time, and a message says so
  QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QMessageBox*>() != nullptr, 2000);
  QVERIFY(w.findChild<QMessageBox*>()->text().contains(QStringLiteral("still running")));
  w.findChild<QMessageBox*>()->accept();
  since_tick.start();
  tick.start();
  QTRY_VERIFY_WITH_TIMEOUT(
      std::any_of(logged.begin(), logged.end(),
                  [](const QList<QVariant>& l) {
                    return l.front().toString().startsWith(QStringLiteral("trained"));
                  }),
      300000);
  QVERIFY(job->fraction() > 0);
  QVERIFY(w.jobPanel()->progressBar()->value() > 0);
  QVERIFY(w.jobPanel()->cancelButton()->isEnabled());
  QTest::mouseClick(w.jobPanel()->cancelButton(), Qt::LeftButton);
  QVERIFY(cancelled.wait(300000));
  QCOMPARE(job->state(), ui::RunJob::State::kCancelled);
  QVERIFY(!w.jobPanel()->cancelButton()->isEnabled());
  QVERIFY(!QFile::exists(output + QStringLiteral("/run.json")));
  // What finished stays: algorithm A's trained models.
  QVERIFY(QFile::exists(output + QStringLiteral("/models/A/recipe.json")));
  const QStringList kept =
      QDir(output + QStringLiteral("/models/A")).entryList({QStringLiteral("*.pt")}, QDir::Files);
  QVERIFY2(
      !kept.isEmpty(),
      qPrintable(QDir(output + QStringLiteral("/models/A")).entryList().join(QLatin1Char(' '))));

  // 2. Run again: it reuses them, finishes, and the results open.
  QSignalSpy finished(job, &ui::RunJob::finished);
  QSignalSpy loaded(&w, &ui::MainWindow::resultLoaded);
  QVERIFY(w.runProject());
  QVERIFY(finished.wait(300000));
  QVERIFY(loaded.wait(120000));
  tick.stop();
  qInfo("longest GUI-thread stall while the job ran: %lld ms",
        static_cast<long long>(longest_stall));
  QCOMPARE(job->state(), ui::RunJob::State::kFinished);
  QCOMPARE(w.jobPanel()->progressBar()->value(), 1000);
  const QStringList log = job->log();
  QVERIFY2(
      std::any_of(log.begin(), log.end(),
                  [&](const QString& line) {
                    return line.startsWith(QStringLiteral("trained ")) &&
                           line.contains(
                               QStringLiteral("(%1 kept from an earlier run)").arg(kept.size()));
                  }),
      qPrintable(log.join(QLatin1Char('\n'))));
  QVERIFY(QFile::exists(output + QStringLiteral("/run.json")));
  QVERIFY(w.run() != nullptr);
  QCOMPARE(w.run()->folder, QFileInfo(output).absoluteFilePath());
  QVERIFY(w.run()->comparisons.size() > 1);
  QVERIFY(w.run()->scores[0] != nullptr && w.run()->scores[1] != nullptr);
  QVERIFY(w.gridModel(ui::MainWindow::kTopTrain)->rowCount() > 0);
  QVERIFY(w.jobPanel()->logView()->toPlainText().contains(QStringLiteral("ModelDiff")));
  // Reopening the project now shows its results directly.
  ui::MainWindow again;
  QSignalSpy again_loaded(&again, &ui::MainWindow::resultLoaded);
  QVERIFY(again.setProject(w.projectJson(), dir_.path()));
  QVERIFY(again_loaded.wait(120000));
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    QDir().mkpath(dir);
    QTRY_VERIFY_WITH_TIMEOUT(!w.thumbnailsPending(), 10000);
    QVERIFY(w.grab().save(dir + QStringLiteral("/gui_job_done.png")));
  }
}

// A checkpoint that is not one (a corrupt file): the run fails with one message naming the
// file; the window keeps working and the project can be fixed and run again.
void ProjectTest::failedRunShowsOneMessage() {
  if (!have_data_) QSKIP("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
  const QString bad = dir_.filePath(QStringLiteral("corrupt_model.pt"));
  {
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("PK\x03\x04 this is not a checkpoint");
  }
  auto project =
      nlohmann::json::parse(demoJson(dir_.filePath(QStringLiteral("bad-run")), true).toStdString());
  project["A"].erase("train");
  project["A"]["checkpoints"] = {bad.toStdString()};
  ui::MainWindow w;
  w.show();
  QVERIFY(w.setProject(QString::fromStdString(project.dump()), dir_.path()));
  QSignalSpy failed(w.job(), &ui::RunJob::failed);
  QVERIFY(w.runProject());
  QVERIFY(failed.wait(300000));
  QCOMPARE(failed.size(), 1);
  const QString message = failed.front().front().toString();
  QVERIFY2(message.contains(QStringLiteral("corrupt_model.pt")), qPrintable(message));
  QCOMPARE(w.job()->state(), ui::RunJob::State::kFailed);
  QVERIFY(w.jobPanel()->titleLabel()->text().contains(QStringLiteral("failed")));
  QVERIFY(w.jobPanel()->stepLabel()->text().contains(QStringLiteral("corrupt_model.pt")));
  // One message box, with the same text.
  QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QMessageBox*>() != nullptr, 2000);
  const QList<QMessageBox*> boxes = w.findChildren<QMessageBox*>();
  QCOMPARE(boxes.size(), 1);
  QCOMPARE(boxes.front()->text(), message);
  boxes.front()->accept();
  QVERIFY(!w.job()->isRunning());
}

// Any core task runs as a job: the panel shows its step and fraction, and once it is a few
// seconds in, the time left as the linear estimate elapsed x (1 - f) / f; Cancel stops it.
void ProjectTest::jobReportsStepFractionAndTimeLeft() {
  QCOMPARE(ui::JobPanel::formatDuration(65), QStringLiteral("1:05"));
  QCOMPARE(ui::JobPanel::formatDuration(3723), QStringLiteral("1:02:03"));
  QCOMPARE(ui::JobPanel::formatDuration(-4), QStringLiteral("0:00"));
  ui::RunJob job;
  ui::JobPanel panel(&job);
  QSignalSpy cancelled(&job, &ui::RunJob::cancelled);
  QVERIFY(
      job.start(QStringLiteral("a test task"), dir_.path(),
                [](core::Progress& progress, const std::function<void(const std::string&)>& log) {
                  progress.report(0.25, "the first quarter");
                  log("a quarter done");
                  while (true) {  // until cancelled
                    progress.throw_if_cancelled();
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                  }
                }));
  QVERIFY(!job.start(QStringLiteral("another"), dir_.path(),
                     [](core::Progress&, const std::function<void(const std::string&)>&) {}));
  QTRY_VERIFY_WITH_TIMEOUT(job.remainingSeconds() >= 0, 20000);
  const double elapsed = job.elapsedSeconds(), left = job.remainingSeconds();
  // The estimate was made at the last poll, at most a moment before `elapsed` was read.
  QVERIFY2(left <= 3 * elapsed + 1e-6 && left >= 3 * (elapsed - 1.0),
           qPrintable(QStringLiteral("%1 / %2").arg(left).arg(elapsed)));
  QCOMPARE(panel.progressBar()->value(), 250);
  QCOMPARE(panel.stepLabel()->text(), QStringLiteral("the first quarter"));
  QVERIFY(panel.timeLabel()->text().contains(QStringLiteral("left")));
  QVERIFY(panel.titleLabel()->text().contains(QStringLiteral("a test task")));
  QCOMPARE(job.log(), QStringList{QStringLiteral("a quarter done")});
  QTest::mouseClick(panel.cancelButton(), Qt::LeftButton);
  QVERIFY(cancelled.wait(10000));
  QCOMPARE(job.state(), ui::RunJob::State::kCancelled);
  QVERIFY(!panel.cancelButton()->isEnabled());
}

std::unique_ptr<QObject> modeldiff::test::makeProjectTest() {
  return std::make_unique<ProjectTest>();
}

#include "test_projects.moc"
