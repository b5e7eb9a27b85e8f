// Testing a distinguishing transformation on an opened run: choose a transformation (the
// one-line syntax of core/data/transform.h, or a preset), a target class, which validation
// images and the strengths to sweep; preview it on a few images; run core::run_counterfactual
// on a worker thread (progress, Cancel) with every checkpoint of A and of B; plot the change
// in P(target class) against strength with 95% intervals and list it in a table; export the
// plot (PNG, SVG) and the table (core::write_counterfactual: effects.json/.csv/.png).
#pragma once

#include <QFutureWatcher>
#include <QThreadPool>
#include <QWidget>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/base/error_report.h"
#include "core/pipeline/counterfactual.h"
#include "run_data.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;

namespace modeldiff::ui {

// Forwards core::Progress reports (from the worker) to the GUI thread through queued signals;
// cancelled() reads an atomic flag the Cancel button sets.
class ForwardingProgress : public QObject, public core::Progress {
  Q_OBJECT

 public:
  using QObject::QObject;
  void report(double fraction, std::string_view message) override;
  bool cancelled() const override { return cancel_.load(); }
  void cancel() { cancel_.store(true); }
  void reset() { cancel_.store(false); }

 Q_SIGNALS:
  void progressed(double fraction, const QString& message);

 private:
  std::atomic<bool> cancel_{false};
};

// Everything one run of the test takes (what the panel passes to core::run_counterfactual).
struct CounterfactualInputs {
  core::ModelSet a, b;
  std::shared_ptr<const core::ImageDataset> images;  // the chosen validation images
  core::Preprocessing prep;
  core::Transform transform;
  std::vector<double> strengths;
  std::int64_t target_class = 0;
  std::uint64_t seed = 0;
};

class CounterfactualPanel : public QWidget {
  Q_OBJECT

 public:
  enum ImageChoice { kNotTargetClass, kDirectionTop };

  explicit CounterfactualPanel(QWidget* parent = nullptr);
  ~CounterfactualPanel() override;

  // The opened run (null, or a single result without images: the panel is disabled).
  void setRun(std::shared_ptr<const RunData> run);
  // The current direction's top validation images (for kDirectionTop).
  void setDirectionImages(const std::vector<std::int64_t>& indices);

  // The inputs as the controls now say; false with `error` set when they do not parse.
  bool inputs(CounterfactualInputs& out, QString& error) const;
  // Starts the test on a worker thread; false when the inputs are invalid or one is running.
  // When it fails, the status line and a message box say why; a cancel is only reported.
  bool start();
  void cancel();
  // From start() until the result (or the cancel, or the error) has been shown.
  bool isRunning() const { return running_; }
  bool hasResult() const { return has_result_; }
  const core::CounterfactualResult& result() const { return result_; }
  // Writes plot.png (`size` pixels), plot.svg and effects.json/.csv/.png into `dir`.
  bool exportTo(const QString& dir, QSize size, QString* error = nullptr);

  // What the worker runs on the inputs: core::run_counterfactual (an empty function restores
  // it). Replaced in tests to make the worker fail in every way it can. Runs on the worker
  // thread: it must not touch the panel.
  using Evaluation =
      std::function<core::CounterfactualResult(const CounterfactualInputs&, core::Progress&)>;
  void setEvaluation(Evaluation evaluation);

  QLineEdit* transformEdit() const { return transform_; }
  QComboBox* presetBox() const { return presets_; }
  QComboBox* targetBox() const { return target_; }
  QComboBox* imageChoiceBox() const { return choice_; }
  QLineEdit* strengthsEdit() const { return strengths_; }
  QLabel* errorLabel() const { return error_; }
  QPushButton* runButton() const { return run_; }
  QPushButton* cancelButton() const { return cancel_; }
  QPushButton* exportButton() const { return export_; }
  QProgressBar* progressBar() const { return progress_; }
  QCustomPlot* plot() const { return plot_; }
  QTableWidget* table() const { return table_; }
  // Preview thumbnails shown (original, transformed pairs).
  int previewCount() const;

 Q_SIGNALS:
  void finished(bool ok, const QString& message);

 private:
  struct Outcome {
    core::CounterfactualResult result;
    QString error;
    core::ErrorKind kind = core::ErrorKind::kInternal;  // of the error
    bool cancelled = false;
  };

  bool readInputs(CounterfactualInputs& out, QString& error) const;
  std::vector<std::int64_t> chosenIndices() const;
  void fillPresets();
  void validate();
  void updatePreview();
  void onFinished();
  void showResult();
  void chooseExportFolder();

  QLineEdit* transform_;
  QComboBox* presets_;
  QComboBox* target_;
  QComboBox* choice_;
  QLineEdit* strengths_;
  QLabel* error_;
  QLabel* status_;
  std::vector<QLabel*> originals_, transformed_;
  QPushButton* run_;
  QPushButton* cancel_;
  QPushButton* export_;
  QProgressBar* progress_;
  QCustomPlot* plot_;
  QTableWidget* table_;
  std::shared_ptr<const RunData> run_data_;
  std::vector<std::int64_t> direction_images_;
  bool valid_ = false;
  bool running_ = false;
  bool has_result_ = false;
  core::CounterfactualResult result_;
  ForwardingProgress* progress_forwarder_;
  Evaluation evaluation_;
  QThreadPool pool_;  // its own thread: loading and thumbnails keep the shared pool
  QFutureWatcher<Outcome> watcher_;
};

}  // namespace modeldiff::ui
