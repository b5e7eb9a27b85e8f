// What the GUI shows of a result, read on a worker thread: either a whole run folder (run.json
// from `modeldiff run` / `modeldiff demo`, with the datasets the run used and every
// comparison) or a single diff result folder (one comparison, no images).
//
// Everything here is plain data, immutable once loaded and shared between the GUI thread and
// the thumbnail workers through shared_ptr<const ...>. No LibTorch (only core headers without
// it); load_project_data lives in modeldiff_trak, which ui links privately.
#pragma once

#include <QString>
#include <QStringList>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/data/image_dataset.h"
#include "core/data/preprocessing.h"
#include "core/diff/diff_summary.h"

namespace modeldiff::ui {

// The numbers behind a direction set's index lists, aligned with DirectionSummary's lists:
// loading of top_train[c][i] along direction c, and so on. Empty when diff.h5 was not read.
struct DirectionValues {
  std::vector<std::vector<double>> top_train, bottom_train, top_target, bottom_target;
};

struct Comparison {
  QString title;   // "all validation examples", "class 6 (Shirt)"
  QString folder;  // absolute
  std::int64_t targets = 0;
  std::shared_ptr<const core::DiffSummary> summary;
  DirectionValues values[2];  // 0 = A minus B, 1 = B minus A
  // From diff.h5 (empty when it was not read): the analysed target rows (original validation
  // indices), each set's projections (row i = target_rows[i], T' x projection_columns[set],
  // row-major) and the cosine of A's and B's attribution rows.
  std::vector<std::int64_t> target_rows;
  std::vector<float> projections[2];
  std::int64_t projection_columns[2] = {0, 0};
  std::vector<float> cosine_ab;
  // Why diff.h5 is there but could not be read (e.g. a corrupt HDF5 file); "" otherwise.
  QString values_problem;
};

struct AlgorithmInfo {
  QString label;
  double mean_val_accuracy = -1;  // < 0: unknown
  double same_label_rate = -1;    // share of the top same_label_top_k with the target's label
  int same_label_top_k = 20;
  // What TRAK attributed, as run.json says it: "attributes 20490 parameters in 6 tensors (3
  // ops)", with "; left out: ..." when --params or --skip-normalization left some out. "" for
  // precomputed scores and runs that did not record it.
  QString attributed;
  // What the counterfactual panel needs to evaluate the algorithm's models (runs only).
  std::string architecture;              // "" when the checkpoints are full models
  std::vector<std::string> checkpoints;  // absolute
  bool hide_patch = false;               // sees the planted patch's region blanked
};

struct RunData {
  QString folder;        // the run or result folder (absolute)
  bool is_run = false;   // false: a single diff result folder
  QString name;          // project name, or the folder's name
  QString project_json;  // the run's project (run.json's "project"), "" for a single result
  AlgorithmInfo a, b;
  std::vector<Comparison> comparisons;
  // The run's datasets exactly as it used them (null for a single diff result).
  std::shared_ptr<const core::ImageDataset> train, val;
  // Planted patch: stamped indices, ascending (empty without a patch).
  bool planted = false;
  std::vector<std::int64_t> planted_train, planted_val;
  double planted_base_rate = 0;
  QString planted_direction_set;                                    // "A minus B" or "B minus A"
  int patch_x = 0, patch_y = 0, patch_size = 0, patch_value = 255;  // the planted patch
  std::int64_t planted_class = -1;
  core::Preprocessing preprocessing;  // the run's (what its models were trained on)
  // Each algorithm's TRAK scores (scores/A.npy, scores/B.npy: validation x training float32),
  // null when the run folder has none. For the example inspector.
  std::shared_ptr<const core::NdArray> scores[2];
  QString scores_problem;  // why a score file could not be used ("" when both could)

  bool isPatchedTrain(std::int64_t index) const;
  bool isPatchedVal(std::int64_t index) const;
};

// Reads one comparison's result folder (or its summary.json; diff.h5 is beside it) under
// `title` ("" = the summary's target selection). Throws core::InputError naming the file;
// when `need_values` is false, a diff.h5 that cannot be read only leaves the values and
// projections empty.
Comparison loadComparison(const QString& path, const QString& title = {}, bool need_values = true);

// Where a selection's comparison of run folder `run_folder` goes: diff/selection-<n>, the
// first n not taken. loadRun lists those folders after run.json's comparisons.
QString nextSelectionFolder(const QString& run_folder);

// True when `path` is a run folder (holds run.json) or a run.json file.
bool isRunPath(const QString& path);

// Reads a run folder (or its run.json): run.json, the project (core::parse_project), the
// datasets (core::load_project_data) and every comparison's summary.json and diff.h5. Throws
// core::InputError naming the file and what is wrong.
std::shared_ptr<const RunData> loadRun(const QString& path);

// Reads a single diff result folder (or its summary.json): one comparison, no datasets. The
// values come from diff.h5 when it can be read (else they stay empty).
std::shared_ptr<const RunData> loadDiffResult(const QString& path);

}  // namespace modeldiff::ui
