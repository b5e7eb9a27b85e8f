// `modeldiff validate`: a known-answer benchmark of the method. Each case plants a feature in
// Fashion-MNIST that one algorithm (A) can use and the other (B) cannot, trains both, runs TRAK
// and ModelDiff (run_project), and measures how much of the top of A minus B's first
// directions is the planted training images. Null cases compare an algorithm with itself
// (other seeds): their directions must not stand above the noise floor.
//
// The same scores are also analysed with method variants (validation_variants()), so that the
// table shows which of them finds the planted difference most often:
//   "residual PCA"  the principal directions of row-normalised scores (the reference's method),
//   "raw rows"      the same of the scores as they are,
//   "varimax"       those 5 leading directions rotated by varimax (core/diff/rotation.h): the
//                   default of runs and `modeldiff diff` since this benchmark,
//   "per class"   the directions of the per-class analyses (3 each) ranked in one list by their
//                 explained variance, against one analysis over all rows.
//
// Files in the output folder: <case>/ (each case's run folder, reused by a rerun: models and
// features are keyed by content), validation.json and validation.md (the table).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/base/progress.h"
#include "core/pipeline/project.h"
#include "core/pipeline/run_project.h"

namespace modeldiff::core {

struct ValidationCase {
  std::string name;        // folder name, e.g. "patch-cnn"
  std::string feature;     // what is planted, in words
  std::string difference;  // how A and B differ, in words
  std::string model;       // "CNN" or "ResNet-9"
  bool null = false;       // A and B are the same algorithm (other seeds)
  Project project;
};

// The built-in cases: five planted features (patch, texture, brightness, a feature B's
// preprocessing removes, a feature A learns only with augmentation) on the demo's CNN and on
// ResNet-9 (`resnet`, e.g. "resnet9:width=16"), and two null comparisons. `quick` shrinks them
// to a smoke test. Each case's output is `output`/<name>.
std::vector<ValidationCase> validation_cases(const std::string& cnn_architecture,
                                             const std::string& resnet,
                                             const std::string& fashion_dir,
                                             const std::string& output, bool quick = false);

// The variants' names; the projects' default (Project::rotation) is marked in the table.
const std::vector<std::string>& validation_variants();

// How many of the top training examples per direction the benchmark looks at.
constexpr int kValidationTopK = 50;
// How many leading directions of A minus B count for "found".
constexpr int kValidationDirections = 3;
// A case is found by a variant when one of its first kValidationDirections directions has at
// least this share of planted images among its kValidationTopK top training examples.
constexpr double kFoundShare = 0.5;

struct VariantShares {
  std::string variant;
  std::vector<double> all;       // per direction: planted share over all validation rows
  std::vector<double> in_class;  // the same within the planted class (empty: not applicable)
  bool found() const;            // over all rows; see kFoundShare
  bool found_in_class() const;   // within the planted class
};

struct CaseResult {
  std::string name, feature, difference, model;
  bool null = false;
  std::int64_t planted_train = 0, num_train = 0;
  double chance = 0;                    // planted_train / num_train
  std::vector<VariantShares> variants;  // validation_variants() order
  // Over every comparison (all rows and per class): directions above the noise floor.
  int above_floor_a_minus_b = 0, above_floor_b_minus_a = 0, directions = 0;
  // 1-based ranks of A minus B's directions over all rows above the floor.
  std::vector<int> above_floor_all;
  std::string significance;  // "" or why the run has none
  double accuracy_a = 0, accuracy_b = 0;
  double shift_seeing = 0, shift_hidden = 0;  // the planted feature's prediction shift
  double seconds = 0;
};

// The variants' shares for one finished case, from its run folder's scores (scores/A.npy,
// scores/B.npy) and the project's planted images.
CaseResult evaluate_case(const ValidationCase& c, const RunOutcome& run, Progress& progress);

struct ValidationOutcome {
  std::vector<CaseResult> cases;
  std::string json_path, markdown_path;
  std::string markdown;
  double seconds = 0;
};

// Runs every case (run_project, then evaluate_case), writing the table after each case so that
// an interrupted benchmark keeps what it finished. `log` receives progress lines.
ValidationOutcome run_validation(const std::vector<ValidationCase>& cases,
                                 const std::string& output, Progress& progress,
                                 const std::function<void(const std::string&)>& log = {});

// The table as Markdown: one row per case with the default's shares, then the variants'
// found counts over the planted cases.
std::string validation_markdown(const std::vector<CaseResult>& cases, double seconds);

}  // namespace modeldiff::core
