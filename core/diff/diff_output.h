// Writes a ModelDiff result: DIR/diff.h5 (every array) and DIR/summary.json (the small
// vectors and top indices, for people and scripts), both with provenance.
//
// diff.h5 layout, for GROUP in a_minus_b and b_minus_a (GROUP's attributes `first` and
// `second` name the user's algorithms):
//   GROUP/directions               C x N  float32, unit rows (training-set space)
//   GROUP/projections              T' x C float32, row i = target target_rows[i]
//   GROUP/variance_a, variance_b   C      float64, the user's A and B along each direction
//   GROUP/explained_variance       C      float64, of the residual (ddof = 1)
//   GROUP/explained_variance_ratio C      float64
//   GROUP/top_train, bottom_train  C x k  int64, by loading (largest / smallest first)
//   GROUP/top_target, bottom_target C x k int64, original target rows by projection
//   target_rows                    T'     int64, original row numbers analysed
//   cosine_ab                      T'     float32, cosine of A's and B's attribution rows
//   significance                   attributes computed ("yes"/"no"), reason (why not),
//                                  rule (kSignificanceRule), splits; when computed:
//   significance/half_checkpoints_a, _b  2 int64, checkpoints in each half
//   significance/GROUP/noise_floor, half_explained_variance, null_explained_variance, floor_ratio,
//     reproducibility, reproducibility_std, rank_stable, full_match   C float64
//   significance/GROUP/above_noise_floor C int64 (1 = above the noise floor)
// Root attributes: format, version, label_a, label_b, row_normalization, provenance (JSON).
// summary.json holds the same under "significance" (plus "verdict" strings per direction).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/output_directory.h"
#include "core/diff/model_diff.h"

namespace modeldiff::core {

struct InputProvenance {
  std::string path;
  std::string sha256;
  std::string format;
  std::string key;
  std::vector<std::int64_t> file_shape;  // as stored in the file
  bool transposed = false;               // whether it was transposed to T x N
};

struct DiffProvenance {
  InputProvenance a, b;
  std::string target_selection = "all targets";  // human-readable: which rows were analysed
  std::string command_line;
};

// The summary as a JSON document (pretty-printed).
std::string diff_summary_json(const DiffResult& result, const DiffOptions& options,
                              const DiffProvenance& provenance);

// Stages diff.h5 and summary.json in `out`; the caller commits.
void write_diff_output(OutputDirectory& out, const DiffResult& result, const DiffOptions& options,
                       const DiffProvenance& provenance);

}  // namespace modeldiff::core
