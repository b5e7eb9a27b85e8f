// Sets up a comparison: the datasets, algorithms A and B (each an architecture plus
// checkpoints, an architecture plus a training recipe, or a precomputed score file), and the
// TRAK and diff settings. The dialog edits a project file's JSON (core/pipeline/project.h):
// keys it has no field for (a planted patch, training seeds, ...) are kept as they were.
// Every edit is checked (shortly after typing stops) by the core's own project parser plus a
// check that each named file exists; then, in the background, whether TRAK can follow each
// named model (core::check_attributable: a parameter inside if/loop, an unsupported op, a
// frozen module, a --params pattern matching nothing). The problem is shown in the dialog and
// OK stays disabled until the project is valid, so nothing starts from an invalid choice.
#pragma once

#include <QDialog>
#include <QFutureWatcher>
#include <QHash>
#include <QString>
#include <memory>

class QLabel;
class QDialogButtonBox;
class QTimer;

namespace modeldiff::ui {

class ProjectDialog : public QDialog {
  Q_OBJECT

 public:
  // `json`: the project to edit (core::project_json or a project file's text); empty for a
  // new one. `base_dir`: the folder relative paths are resolved against (the project file's).
  ProjectDialog(const QString& json, const QString& base_dir, QWidget* parent = nullptr);
  ~ProjectDialog() override;

  // The project as the fields describe it (JSON text).
  QString projectJson() const;
  // Checks the fields now; "" when the project is valid, else what is wrong. A model not
  // checked yet is checked in the background (validate() then says so, and checking() is true
  // until its result is in; the dialog checks again by itself when it is).
  QString validate();
  bool checking() const { return checking_; }
  // The last check's message ("" = valid).
  QString problem() const { return problem_; }
  QLabel* problemLabel() const { return problem_label_; }
  QDialogButtonBox* buttons() const { return buttons_; }

  // Sets a field by its JSON key, e.g. "name", "data.train.images", "A.source" (checkpoints,
  // train or scores), "A.checkpoints" (one path per line), "trak.proj_dim". For scripted set-up
  // and tests; returns false for an unknown key.
  bool setField(const QString& key, const QString& value);
  QString field(const QString& key) const;

 private:
  struct Fields;
  QWidget* buildDataPage();
  QWidget* buildAlgorithmPage(int which);
  QWidget* buildSettingsPage();
  void load(const QString& json);
  void scheduleCheck();
  void updateAlgorithmPages();
  // The problem of the named models ("" when TRAK can follow them), from earlier checks of the
  // same files and settings, or a background check started now.
  QString modelProblem(const QString& project_json);
  // Records the verdict of the check in flight once it has finished (idempotent).
  void takeModelCheckResult();

  std::unique_ptr<Fields> f_;
  QString base_dir_;
  QString problem_;
  QLabel* problem_label_;
  QDialogButtonBox* buttons_;
  QTimer* check_timer_;
  bool checking_ = false;
  QFutureWatcher<QString>* model_check_;
  QString model_check_key_;                // the check in flight, empty when none
  QHash<QString, QString> model_results_;  // check key -> problem ("" = TRAK can follow it)
};

}  // namespace modeldiff::ui
