// Importer for a `traker` save_dir (TRAKer(save_dir=...), traker 0.3): the scores a
// finalize_scores() call wrote.
//
// Layout: experiments.json {"<exp>": {"num_targets": T, "scores_path": "...",
// "scores_finalized": 1}}, metadata.json {"train set size": N, "JL dimension": k, ...} and
// scores/<exp>.mmap, a NumPy .npy file of shape N x T (row = training example), float16 by
// default. traker records scores_path as an absolute path on the machine that ran it; when that
// path does not exist here, <save_dir>/scores/<exp>.mmap is used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/ndarray.h"

namespace modeldiff::core {

// The scores of one experiment as a T x N float32 matrix (row = target example, column =
// training example), i.e. the transpose of the file. `experiment` may be empty when the
// save_dir holds exactly one. Throws InputError naming the offending file when a JSON file is
// missing or malformed, the experiment is unknown (the message lists the names) or not
// finalized, the score file is missing, or its shape disagrees with "train set size" (N) or
// "num_targets" (T).
NdArray read_traker_scores(const std::string& save_dir, const std::string& experiment = "");

// One entry of experiments.json.
struct TrakerExperiment {
  std::string name;
  std::int64_t num_targets = -1;  // -1 when the file does not say
  std::string scores_path;        // as written (may name another machine's path); may be empty
  bool finalized = true;          // false when "scores_finalized" is 0
};

// Parses the text of experiments.json; `file` names it in errors. Entries in file order.
std::vector<TrakerExperiment> parse_traker_experiments(const std::string& file,
                                                       const std::string& json_text);
// Parses the text of metadata.json and returns its "train set size" (N).
std::int64_t parse_traker_train_set_size(const std::string& file, const std::string& json_text);

}  // namespace modeldiff::core
