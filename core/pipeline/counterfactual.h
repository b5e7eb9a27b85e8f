// Testing a hypothesis from a distinguishing direction: does a transformation (a patch, a
// tint, a texture; core/data/transform.h) move A's predictions and not B's?
//
// Every checkpoint of A and of B is evaluated on the chosen images before and after the
// transformation. Per checkpoint: the mean change in P(target class) (delta_p), in the
// correct-class margin (logit_y - logsumexp of the others), and the fraction of images whose
// prediction becomes the target class. Per algorithm: the mean over checkpoints with a 95%
// percentile bootstrap interval over checkpoints (seeded), and A minus B with its interval
// (checkpoints of A and B resampled independently). With a sweep, once per strength; strength
// 0 is the untransformed control.
//
// No LibTorch in this header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/progress.h"
#include "core/data/image_dataset.h"
#include "core/data/preprocessing.h"
#include "core/data/transform.h"

namespace modeldiff::core {

struct ModelSet {
  std::string label;                     // "A", "augmented", ...
  std::string architecture;              // TorchScript; "" when checkpoints are full models
  std::vector<std::string> checkpoints;  // M >= 1
  std::string device = "cpu";
  // A transformation every image gets before this algorithm's models see it, when its data
  // pipeline alters images (e.g. "patch:x=1,y=1,size=3,value=0" for an algorithm that blanks
  // a region); applied after the tested transformation. Empty: none.
  std::string view;
};

struct EffectRow {
  std::string algorithm;  // "A", "B" or "A-B"
  std::string label;      // the user's name ("A-B": "label A minus label B")
  double strength = 0;
  double mean_delta_p = 0, ci_low = 0, ci_high = 0;
  double mean_delta_margin = 0;
  double flip_fraction = 0;  // mean over checkpoints
  // Change in the share of images predicted as the target class (images that become it minus
  // images that stop being it), mean over checkpoints.
  double mean_share_change = 0;
  std::int64_t n_images = 0;
  int n_checkpoints = 0;
  std::vector<double> per_checkpoint_delta_p;  // empty for "A-B"
};

struct CounterfactualResult {
  std::int64_t target_class = 0;
  std::string transform;        // canonical text of the transformation as given
  std::vector<EffectRow> rows;  // per strength: A, B, A-B
};

// `images`: the chosen images (stored pixels, uint8 channels_last) with their labels.
// `strengths`: empty = the transformation's own strength only. Throws InputError for a
// checkpoint that does not load, images the models cannot take, an empty image set or a
// target class the models do not have; Cancelled when `progress` is cancelled.
CounterfactualResult run_counterfactual(const ModelSet& a, const ModelSet& b,
                                        const ImageDataset& images, const Preprocessing& prep,
                                        const Transform& transform,
                                        const std::vector<double>& strengths,
                                        std::int64_t target_class, std::uint64_t seed,
                                        Progress& progress);

// effects.json, effects.csv and effects.png (delta_p against strength with 95% intervals)
// into `dir` (created; written atomically).
void write_counterfactual(const std::string& dir, const CounterfactualResult& result);

// Mean of `values` and the 2.5% / 97.5% percentiles of the means of `resamples` bootstrap
// resamples (seeded); with `other` non-empty, of mean(values) - mean(other) with both
// resampled independently.
struct Interval {
  double mean = 0, low = 0, high = 0;
};
Interval bootstrap_interval(const std::vector<double>& values, const std::vector<double>& other,
                            std::uint64_t seed, int resamples = 4000);

}  // namespace modeldiff::core
