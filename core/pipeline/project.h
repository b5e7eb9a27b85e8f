// A ModelDiff project: everything `modeldiff run` needs to compare two training algorithms
// end to end (the C++ counterpart of the reference package's
// ModelDiff(modelA, modelB, ckptsA, ckptsB, train_loader).get_A_minus_B(val_loader, k)).
//
// A project names a labelled training set and validation set, two algorithms (each one of: an
// architecture plus existing checkpoints; an architecture plus a training recipe whose
// checkpoints the run trains; or a precomputed T x N score matrix, e.g. TRAK scores computed
// elsewhere), the TRAK and diff settings, and an output folder. It is a JSON file; every
// relative path in it is relative to the file's folder:
//
//   {
//     "name": "augmentation study",
//     "output": "runs/augmentation",                       // default: "<file stem>-run"
//     "threads": 0,                                        // 0 = all cores
//     "data": {
//       "train": {"images": "train-images.idx3-ubyte.gz", "labels": "train-labels.idx1-ubyte.gz",
//                 "subset": 10000, "subset_seed": 0},     // subset: seeded random sample
//       "val":   {"images": "...", "labels": "...", "subset": 2000},
//       "class_names": ["T-shirt/top", ...],              // optional; or a text file with
//                                                          // one name per line ("classes.txt")
//       "preprocessing": "scale=1/255,mean=0.5,std=0.25", // optional, preprocessing.h syntax
//       "planted_patch": {"class": 6, "train_fraction": 0.3, "val_fraction": 0.1,
//                         "size": 3, "x": 1, "y": 1, "value": 255, "seed": 0}   // optional
//       // or any feature as a transformation (transform.h), e.g. a checkerboard texture:
//       // "planted_feature": {"class": 8, "train_fraction": 0.3, "val_fraction": 0.1,
//       //                     "transform": "patch:x=20,y=20,w=6,h=6,pattern=checker",
//       //                     "val_transform": "...", "seed": 0}   // val_transform optional
//     },
//     "A": {"label": "augmented", "architecture": "arch.pt", "checkpoints": ["a0.pt", ...]},
//     "B": {"label": "plain", "architecture": "arch.pt",
//           "train": {"models": 8, "epochs": 4, "batch_size": 128, "lr": 0.05,
//                     "momentum": 0.9, "weight_decay": 5e-4, "augment": false, "seed": 0,
//                     "init": "pretrained.pt"},        // optional: fine-tune this checkpoint
//           "hide_patch": true,                        // B sees the patch region blanked
//           "view": "autocontrast"},                   // optional: a transformation of every
//                                                      // image B sees (its own preprocessing)
//     // or fine-tuning a model that the run pre-trains itself (once; reused by later runs):
//     // "train": {"models": 8, "epochs": 4, ...,
//     //           "pretrain": {"data": {"images": ..., "labels": ..., "subset": 20000,
//     //                                 "subset_seed": 0, "subset_offset": 2000},
//     //                        "epochs": 4, "batch_size": 128, "lr": 0.05, "seed": 0}},
//     // or, scores computed elsewhere (any file `modeldiff diff` reads: .npy, .h5, .pt,
//     // safetensors, a traker save_dir; T x N or N x T over the datasets below, as sampled):
//     // "A": {"label": "augmented", "scores": "a_scores.npy", "scores_key": "weight"},
//     "trak": {"proj_dim": 2048, "projection": "structured", "seed": 0, "lambda": 0,
//              "out_to_loss": false, "batch_size": 256},
//     "diff": {"components": 5, "class_components": 3, "top_k": 10, "per_class": true,
//              "raw_rows": false, "rotation": "varimax"},       // or "none" (the reference's)
//     "report": {"images_per_grid": 10},
//     "findings": [                                        // optional: tested hypotheses
//       {"comparison": "all", "direction": "a_minus_b:1",  // as counterfactual --direction
//        "hypothesis": "...", "transform": "patch:x=1,y=1,size=3,value=255",
//        "target_class": 6, "effect": {"mean": 0.12, "ci95": [0.08, 0.16]},  // A minus B
//        "images": {"exclude_class": 6},  // or "class": K, "direction_k": 20 (default: the
//                                         // comparison's validation examples)
//        "verdict": "supported"}]                          // or "rejected"
//   }
//
// A run re-measures every finding that names a transform and a target class on its own models
// and validation images (the experiment of `modeldiff counterfactual`), records the measured
// effect beside the recorded one in run.json and the report, and says whether the recorded
// effect reproduces (the measured A-minus-B mean inside the recorded 95% interval).
//
// A subset with "subset_offset" k takes the seeded permutation's examples k .. k + subset - 1
// instead of its first ones: with the same subset_seed, a set disjoint from the subset of size
// k (the pre-training data beside a small fine-tuning set).
//
// "init" (a checkpoint of the architecture) or "pretrain" (a recipe the run trains first, one
// model in models/<A|B>-pretrain/, keyed by content like every model) make each model start
// from those weights instead of the seeded initialisation; the checkpoint's sha256 is part of
// the fine-tuned models' recipe, so another init retrains them.
//
// A planted patch is part of the data (both algorithms' data carry it): stamped on
// train_fraction of the training images of `class` and on val_fraction of the validation
// images of every class (at test time such a feature turns up anywhere). An algorithm with
// "hide_patch" sees every image with the patch region set to 0, in training, attribution and
// evaluation alike: a known difference between two algorithms, whose answer the run checks.
//
// An algorithm given by "scores" (optional "scores_key": the array inside a container file)
// is neither trained nor attributed: the run loads the matrix (transposed when only N x T fits
// the datasets' sizes), checks it and uses it as that algorithm's TRAK scores. Its rows must be
// the validation examples and its columns the training examples exactly as the project samples
// them. "architecture" is optional and only recorded. "hide_patch" is refused for it: the view
// of the data cannot be applied to scores computed elsewhere, and the planted check would then
// rest on a claim the run cannot honour. Without checkpoints there is no validation accuracy
// and no counterfactual test of the planted patch for that algorithm (reported as not
// measured). The file's existence is checked when the run loads it, not when the project is
// parsed (as for checkpoints).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/image_dataset.h"
#include "core/data/planted_feature.h"
#include "core/data/preprocessing.h"
#include "core/diff/rotation_kind.h"
#include "core/trak/trainer.h"
#include "core/trak/trak_settings.h"

namespace modeldiff::core {

struct DatasetSpec {
  std::string images, labels;
  std::int64_t subset = 0;  // > 0: a seeded random sample of this many examples
  std::uint64_t subset_seed = 0;
  std::int64_t subset_offset = 0;  // skip this many of the seeded permutation first
};

// The pre-training of a fine-tuned algorithm: its own data and recipe (one model).
struct PretrainSpec {
  bool enabled = false;
  DatasetSpec data;
  TrainSettings train;
};

// A direction of a comparison as findings and `modeldiff counterfactual --direction` name it:
// "a_minus_b:C" or "b_minus_a:C" with C = 1, 2, ..., or by what it shows, "b_minus_a:class=K":
// the first direction of the set whose top validation examples are mostly of class K. Below the
// seed-noise floor the order of directions is not stable: a model trained on another CPU (its
// BLAS rounds differently) can swap directions 1 and 2, and a finding named by class still
// finds its images.
struct DirectionRef {
  bool a_minus_b = true;
  int component = 0;           // 0-based (when of_class < 0)
  std::int64_t of_class = -1;  // >= 0: named by class
};
// Empty when `text` is not of that form (C and K without sign or leading zero, at most 6
// digits).
std::optional<DirectionRef> parse_direction(std::string_view text);

// The 0-based component `d` names in a direction set whose per-component top validation
// examples are `top_target` (original rows, labels[row] their classes): its own component, or
// for a class the first whose first k examples (k = 0 or more than kept: all kept) are more than
// half of that class. -1 when there is no such component.
int resolve_direction(const DirectionRef& d,
                      const std::vector<std::vector<std::int64_t>>& top_target,
                      const std::vector<std::int64_t>& labels, int k);

// A tested hypothesis about one distinguishing direction (core/pipeline/counterfactual.h).
// Numbers that were not measured are NaN.
struct Finding {
  std::string comparison = "all";         // the comparison's folder name under diff/
  std::string direction = "a_minus_b:1";  // set and 1-based component, as counterfactual takes it
  std::string hypothesis;
  std::string transform;  // core/data/transform.h syntax
  std::int64_t target_class = -1;
  double effect = std::numeric_limits<double>::quiet_NaN();  // A minus B, mean delta P
  double ci_low = std::numeric_limits<double>::quiet_NaN(), ci_high = ci_low;  // 95%
  std::string verdict;  // "supported" or "rejected"
  // The validation images the transformation is tested on: the comparison's (all, or one
  // class's), narrowed to the direction's direction_k examples with the largest projections (0: not
  // narrowed), then to one class (only_class) or to all but one (exclude_class); -1: no class
  // condition.
  int direction_k = 0;
  std::int64_t only_class = -1, exclude_class = -1;
};

struct PlantSpec {
  bool enabled = false;
  // A planted feature given as a transformation (core/data/transform.h syntax) instead of the
  // square patch: applied to the chosen training images (choose_planted) and, as val_transform
  // ("" = the same), to val_fraction of the validation images of every class.
  std::string transform, val_transform;
  bool is_transform() const { return !transform.empty(); }
  PlantedPatch patch;
  std::int64_t target_class = -1;
  double train_fraction = 0.3;  // of the training images of target_class
  double val_fraction = 0.1;    // of the validation images of every class
  std::uint64_t seed = 0;
};

struct AlgorithmSpec {
  std::string label;
  std::string architecture;              // TorchScript; "" when checkpoints are full models
  std::vector<std::string> checkpoints;  // existing checkpoints; empty = train them
  int models = 0;                        // models to train when checkpoints is empty
  TrainSettings train;    // train.init: a checkpoint to fine-tune ("" = none, or pretrain)
  PretrainSpec pretrain;  // when enabled, train.init is set by the run to its checkpoint
  bool hide_patch = false;
  // A transformation (transform.h syntax) applied to every image this algorithm sees, in
  // training, attribution and evaluation: its preprocessing of the raw pixels ("" = none),
  // e.g. a border blanked by a centre crop, or a per-image contrast stretch.
  std::string view;
  std::string scores;      // a precomputed score matrix: no training, no TRAK
  std::string scores_key;  // the array inside a container file; "" = its only array or "weight"
  bool precomputed() const { return !scores.empty(); }
  bool trains() const { return checkpoints.empty() && !precomputed(); }
};

struct Project {
  std::string source;  // the project file, or "built-in demo"
  std::string name;
  std::string output;  // the run folder
  int threads = 0;
  DatasetSpec train, val;
  // Class names in label order, from the project or from class_names_file (one per line);
  // empty: classes are shown by number. Nothing is guessed from file names.
  std::vector<std::string> class_names;
  std::string class_names_file;  // when the project names a file (kept for project_json)
  Preprocessing preprocessing;
  PlantSpec plant;
  AlgorithmSpec a, b;
  TrakSettings trak;
  int components = 5, class_components = 3, top_k = 10;
  bool per_class = true;
  bool normalize_rows = true;
  // The known-answer benchmark's choice (README, `modeldiff validate`): varimax found the
  // planted difference more often than the principal directions. "none" = the reference's.
  Rotation rotation = Rotation::kVarimax;
  int images_per_grid = 10;
  std::vector<Finding> findings;
};

// The data of a project exactly as `modeldiff run` uses it (and as the GUI shows it): both
// datasets loaded, sampled (seeded subsets) and with the planted patch stamped; raw pixels.
struct ProjectData {
  ImageDataset train, val;
  std::vector<std::int64_t> planted_train, planted_val;  // stamped indices, ascending
};
// Throws InputError naming the file for unreadable or empty datasets.
ProjectData load_project_data(const Project& project);

// One dataset of a project, sampled as the spec says (`role` names it in messages: "training").
// Throws InputError naming the file for an unreadable or empty dataset or an offset past it.
ImageDataset load_dataset_spec(const DatasetSpec& spec, const char* role);

// Class names from a text file: one per line in label order, surrounding blanks and trailing
// empty lines ignored. InputError naming the file for an empty name or no names.
std::vector<std::string> read_class_names(const std::string& path);

// Reads and checks a project file. Throws InputError naming the file and the key for a
// syntax error, an unknown key, a value of the wrong type or out of range, or a missing
// required entry.
Project load_project(const std::string& path);

// The same from JSON text; relative paths are resolved against `base_dir`; `source` names the
// text in messages.
Project parse_project(const std::string& text, const std::string& base_dir,
                      const std::string& source);

// The project as JSON (absolute paths), for run records and for `modeldiff demo --print`.
std::string project_json(const Project& project);

// The built-in Fashion-MNIST demo: a small CNN (`architecture`, resources/demo/demo_cnn.pt)
// trained by two algorithms on a subset of Fashion-MNIST (`fashion_dir` holds Debian's
// dataset-fashion-mnist files): A's data carries a 3 x 3 white patch in the top-left corner of
// 30% of the "Shirt" training images (and 10% of the validation images of every class), B sees
// the patch region blanked. A minus B should single out the
// patched shirts. `quick` shrinks it to a smoke test (seconds).
Project demo_project(const std::string& architecture, const std::string& fashion_dir,
                     const std::string& output, bool quick = false);

// The built-in studies beside the planted demo, after the ModelDiff paper's three case studies,
// each ResNet-9 (`architecture`, e.g. "resnet9:width=16") on Fashion-MNIST:
//   "augmentation": A trained with random crop + horizontal flip, B without;
//   "pretraining":  A pre-trained on a part of the training images disjoint from a small
//                   training set, then fine-tuned on it; B trained from scratch on that set;
//   "sgd":          A with a large learning rate and small batches, B with a small learning
//                   rate and large batches.
// `quick` shrinks each to a smoke test. Throws InputError for an unknown name.
Project study_project(const std::string& study, const std::string& architecture,
                      const std::string& fashion_dir, const std::string& output,
                      bool quick = false);
// The names study_project takes, in the order menus list them.
const std::vector<std::string>& study_names();
// The studies' default architecture: "resnet9:width=16".
inline constexpr const char* kStudyArchitecture = "resnet9:width=16";

}  // namespace modeldiff::core
