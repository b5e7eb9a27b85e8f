// TRAK attribution of one learning algorithm from its checkpoints (ALGORITHM.md section 1).
// No LibTorch in this header.
//
// Inputs are model-ready arrays: float32 N x C x H x W (or N x D) training inputs and
// T x ... target inputs, with int64 labels. The result is the T x N float32 score matrix
// (row = target example, column = training example).
//
// Each checkpoint's features (training features Phi_m, target features G_m, out-to-loss
// weights Q_m) are cached in `cache_dir` under a name derived from the SHA-256 of everything
// they depend on (architecture and checkpoint files, input arrays, labels, TRAK settings and
// the checkpoint's position, which seeds its projection): a killed or cancelled run resumes
// without recomputing finished checkpoints, and any change of input misses the cache. An entry
// is a folder `features-<key>/` of float32 .npy files (train_features N x k, target_features
// T x k, out_to_loss N, target_accuracy 1), staged beside it and renamed into place whole, so
// a killed run never leaves a partial entry. The device (settings.device) is not in the key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/attribution/trak_ensemble.h"
#include "core/base/ndarray.h"
#include "core/base/progress.h"
#include "core/trak/trak_settings.h"

namespace modeldiff::core {

struct Algorithm {
  std::string label;                     // the user's name, e.g. "augmented"
  std::string architecture;              // TorchScript file; "" when checkpoints are full models
  std::vector<std::string> checkpoints;  // one file per trained model (M >= 1)
};

struct TrakData {
  NdArray train_inputs;                     // N x ... float32
  std::vector<std::int64_t> train_labels;   // N
  NdArray target_inputs;                    // T x ... float32
  std::vector<std::int64_t> target_labels;  // T
};

struct CheckpointReport {
  std::string checkpoint;
  bool from_cache = false;
  double target_accuracy = 0;  // of this checkpoint on the target examples
  double seconds = 0;          // featurization time (0 when cached)
  std::int64_t feature_dim = 0;
  // Directions of the kernel left out of the solve: features zero on every training example,
  // plus null directions of a singular kernel (inverted as the pseudo-inverse would).
  std::int64_t kernel_dropped = 0;
};

struct TrakReport {
  std::vector<CheckpointReport> checkpoints;
  std::int64_t num_parameters = 0;
  std::vector<std::string> frozen_parameters;  // parameters left out of the attribution
  // What is attributed and what is left out, one line ("" when every checkpoint came from
  // the cache), e.g. "attributes 7850 parameters in 2 tensors (1 ops); left out: gain".
  std::string attributed;
};

// Partial ensembles at no extra cost: the checkpoints split into consecutive blocks, and per
// block the sums over its checkpoints of the terms the full ensemble averages, which the run's
// one TrakEnsemble records as the differences of its running sums at the block cuts
// (TrakEnsemble::record_blocks, core/attribution/trak_ensemble.h).
// A partial ensemble over any union U of blocks with |U| checkpoints is then
//   S_U = (sum_{b in U} score_sums[b] / |U|) * diag(sum_{b in U} out_to_loss_sums[b] / |U|)
// (without the diagonal when out-to-loss weights are off): the ensemble of U's checkpoints,
// each with the projection its position in the full run seeds (so for the first blocks, the
// same matrix as TRAK over those first checkpoints alone).
struct TrakBlockSums {
  std::vector<int> cuts;         // in: 0 = c_0 < c_1 < ... < c_B = M
  TrakEnsemble::BlockSums sums;  // out: B arrays T x N float32 and B vectors of N sums of Q_m
};

// The half ensembles of one algorithm for the significance of directions, from the sums over
// four consecutive blocks of checkpoints (block_cuts) that its full TRAK run kept: the three
// splits of the blocks into halves, each weighted by its own out-to-loss weights when
// `out_to_loss`. The block sums are moved out of `blocks`.
struct BlockHalves;  // core/diff/significance.h
BlockHalves trak_half_ensembles(TrakBlockSums& blocks, bool out_to_loss);

// The T x N TRAK scores of `algorithm`. `cache_dir` may be empty (no cache). With `blocks`
// (its `cuts` set), also the block sums above. Throws InputError for unreadable/mismatched
// checkpoints and bad data; core::Cancelled when `progress` is cancelled (finished checkpoints
// stay cached).
NdArray trak_scores(const Algorithm& algorithm, const TrakData& data, const TrakSettings& settings,
                    const std::string& cache_dir, Progress& progress, TrakReport* report = nullptr,
                    TrakBlockSums* blocks = nullptr);

// Whether TRAK can follow the model's gradients with these settings, before any work: loads
// `architecture` with `checkpoint` (either may be empty, as for TorchModel::load) and captures
// its graph. Throws the InputError TRAK would throw later (a parameter inside if/loop, an
// unsupported op, a frozen module, BatchNorm without running statistics, a --params pattern
// matching nothing), naming the model file, the parameter and the op.
void check_attributable(const std::string& architecture, const std::string& checkpoint,
                        const TrakSettings& settings);

// SHA-256 of the data arrays and labels (part of every cache key; computed once per run).
std::string trak_data_fingerprint(const TrakData& data);

}  // namespace modeldiff::core
