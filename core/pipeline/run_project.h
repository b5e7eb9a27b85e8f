// The main job: a project (project.h) from data and models to distinguishing directions and a
// report, as `modeldiff run` and `modeldiff demo` do it.
//
// Steps: load both datasets (seeded subsets, planted patch, each algorithm's view of the data);
// train the algorithms that have a recipe (resumable: finished models are kept); TRAK scores
// of both over all validation examples (per-checkpoint features cached, so a killed run
// resumes), or for an algorithm given by precomputed scores, its matrix loaded and checked
// (T x N or N x T against the datasets' sizes, finite); ModelDiff both ways over all
// validation examples and over each class; the HTML report. Files in the project's output
// folder:
//   models/A/, models/B/   trained checkpoints (model_<m>.pt) and recipe.json
//   cache/                 TRAK features per checkpoint
//   scores/A.npy, B.npy    T x N float32 TRAK scores (row = validation example); for a
//                          precomputed algorithm, its matrix as loaded (T x N float32)
//   diff/<slug>/           diff.h5 + summary.json per comparison ("all", "class-6-shirt", ...)
//   report/index.html      the report (see core/report/html_report.h)
//   run.json               the project, per-algorithm accuracies and quality numbers, timings
// Every file is written atomically; nothing finished is lost to a later failure.
//
// No LibTorch in this header.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/base/progress.h"
#include "core/pipeline/project.h"

namespace modeldiff::core {

// How many of a validation example's highest-scored training examples the same-label check of
// the scores looks at (run.json: same_label_top_k beside each same_label_rate).
constexpr int kSameLabelTopK = 20;

struct AlgorithmOutcome {
  std::string label;
  std::vector<std::string> checkpoints;  // empty for precomputed scores
  std::vector<double> val_accuracy;      // per checkpoint, on the validation set this run uses
  int trained = 0, reused = 0;           // models trained now / found from an earlier run
  int cached = 0;                        // checkpoints whose TRAK features came from the cache
  std::int64_t kernel_dropped = 0;       // kernel directions without signal, over all checkpoints
  double train_seconds = 0, trak_seconds = 0;
  // Average share of a validation example's kSameLabelTopK highest-scored training examples
  // that have its label (10% for a random ranking over ten balanced classes).
  double same_label_rate = std::numeric_limits<double>::quiet_NaN();
  std::string scores;  // scores/<A|B>.npy
  // What TRAK attributed and left out ("" for precomputed scores or all features cached).
  std::string attributed;
};

struct ComparisonOutcome {
  std::string title;   // "all validation examples", "class 6 (Shirt)"
  std::string folder;  // diff/<slug>
  std::int64_t targets = 0;
  // Directions (0-based ranks) marked above the noise floor (core/diff/significance.h).
  std::vector<int> above_floor_a_minus_b, above_floor_b_minus_a;
};

// How well the known difference of a planted patch shows: in the direction set of the
// algorithm that sees the patch minus the one that does not, the share of each direction's
// top-k training examples that are patched (chance = base_rate).
struct PlantedCheck {
  bool enabled = false;
  std::int64_t patched_train = 0, patched_val = 0;
  double base_rate = 0;                 // patched training examples / N
  std::string direction_set;            // "A minus B" or "B minus A"
  std::vector<double> precision;        // per direction, overall comparison
  std::vector<double> class_precision;  // per direction, comparison of the patched class
  // Prediction shift when the patch is stamped on every validation image of another class:
  // the share of those images each algorithm's models then assign to the patched class,
  // minus the share before (averaged over the checkpoints). NaN for an algorithm without
  // checkpoints (given by precomputed scores): not measured.
  double shift_seeing = std::numeric_limits<double>::quiet_NaN();
  double shift_hidden = std::numeric_limits<double>::quiet_NaN();
};

// A finding of the project (Finding, project.h) re-measured on this run's models and validation
// images: the experiment `modeldiff counterfactual` runs, at the finding's own strength.
struct FindingOutcome {
  std::size_t index = 0;  // into Project::findings
  // Its comparison in this run (into RunOutcome::comparisons), -1 when the run has none.
  int comparison = -1;
  // The direction it is about in this run (0-based; resolve_direction), -1 when there is none.
  int component = -1;
  std::string skipped;  // why it was not measured ("" = measured)
  std::int64_t images = 0;
  int checkpoints_a = 0, checkpoints_b = 0;
  double a = std::numeric_limits<double>::quiet_NaN();  // mean change in P(target), A
  double b = std::numeric_limits<double>::quiet_NaN();  // and B
  // A minus B with its 95% bootstrap interval over checkpoints (counterfactual seed 0).
  double effect = std::numeric_limits<double>::quiet_NaN(), ci_low = effect, ci_high = effect;
  // Whether the recorded effect reproduces: the measured mean lies inside the recorded 95%
  // interval; empty when the project records no interval.
  std::optional<bool> reproduces;
};

struct RunOutcome {
  std::string output, report_index, run_json;
  std::string blas;  // the BLAS and its measured speed (a warning when slow)
  std::int64_t num_train = 0, num_val = 0;
  AlgorithmOutcome a, b;
  std::vector<ComparisonOutcome> comparisons;
  PlantedCheck planted;
  std::vector<FindingOutcome> findings;
  // "" when every comparison carries the significance of its directions, else why not.
  std::string significance;
  double significance_seconds = 0;  // half ensembles and their residual PCAs
  double seconds = 0;
};

// Runs `project`. `log` receives one line per finished step (may be empty). Throws InputError
// for bad input (naming the file), Cancelled when `progress` is cancelled; whatever finished
// (trained models, cached features, scores) stays on disk for the next run.
RunOutcome run_project(const Project& project, Progress& progress,
                       const std::function<void(const std::string&)>& log = {});

}  // namespace modeldiff::core
