// One entry point for "an array in a file", whatever the file's format.
//
// Score matrices, labels and row lists reach the tool as .npy files, torch.save archives
// (.pt/.pth, often a dict with a `weight` entry), safetensors, HDF5 datasets, IDX files or a
// `traker` save_dir. The format is recognised from the file's magic bytes (the extension only
// breaks ties), so a misnamed file still loads and a wrong file gets a clear error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/ndarray.h"

namespace modeldiff::core {

enum class FileFormat { kNpy, kTorch, kSafetensors, kHdf5, kIdx, kTrakerSaveDir, kText };

std::string format_name(FileFormat format);

// Throws InputError when the path is missing or is no supported format.
FileFormat detect_format(const std::string& path);

struct ArrayEntry {
  std::string key;  // name inside the container; "" for single-array formats
  DType dtype;
  std::vector<std::int64_t> shape;
};

// Every array of a file with its key, dtype and shape (for `modeldiff inspect` and for error
// messages that list the choices).
std::vector<ArrayEntry> list_arrays(const std::string& path);

// One array of a file. For containers (torch, safetensors, HDF5, traker experiments) `key`
// selects the entry; without a key the file must hold exactly one array, or one named
// "weight" (how `modeldiff` stores datamodel weights). A traker save_dir yields its scores as
// T x N (already transposed from traker's N x T). Throws InputError listing the keys present.
NdArray load_array(const std::string& path, const std::string& key = "");

enum class Transpose { kAuto, kYes, kNo };

// Sizes known from elsewhere (datasets, label files); -1 = unknown.
struct ScoreShapeHint {
  std::int64_t num_targets = -1;
  std::int64_t num_train = -1;
  std::string source;  // where the sizes come from, for messages ("299 labels in labels.npy")
};

// A score matrix as T x N float32 (row = target example, column = training example).
// kAuto transposes a 2-D matrix only when the hint makes it unambiguous (the stored
// orientation does not fit the known T or N but the transposed one does); a matrix that fits
// neither way is refused with a message naming where the sizes came from. When both fit (a
// square matrix), the stored orientation is kept: T x N is the documented convention, and
// --transpose yes overrides it. kYes / kNo force the orientation and check it against the hint.
NdArray load_score_matrix(const std::string& path, const std::string& key, Transpose transpose,
                          const ScoreShapeHint& hint = {});

// Throws InputError naming `path` (and `key`) at the first NaN or Inf of a T x N float32
// score matrix: "NaN at row r, column c (as T x N)".
void require_finite_scores(const NdArray& scores, const std::string& path,
                           const std::string& key = "");

// Integers (labels or row indices) from a 1-D array file (or N x 1 / 1 x N) or a text file
// of whitespace/comma separated integers. Floating values must be whole numbers.
std::vector<std::int64_t> load_integer_vector(const std::string& path, const std::string& key = "");

}  // namespace modeldiff::core
