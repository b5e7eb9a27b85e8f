#include "core/io/array_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <utility>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#if MODELDIFF_HAVE_HDF5
#include "core/io/hdf5_dataset.h"
#endif
#include "core/io/idx.h"
#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "core/io/torch_archive.h"
#include "core/io/traker_savedir.h"

namespace modeldiff::core {
namespace {

#if !MODELDIFF_HAVE_HDF5
// A build without libhdf5 (MODELDIFF_TORCH_ONLY) still recognises HDF5 files, to say so.
[[noreturn]] void no_hdf5(const std::string& path) {
  throw InputError(path, "an HDF5 file, but this build of modeldiff has no HDF5 support")
      .expected("the array as .npy, torch.save or safetensors");
}
std::vector<std::string> list_hdf5_datasets(const std::string& path) {
  no_hdf5(path);
}
NdArray read_hdf5_dataset(const std::string& path, const std::string&) {
  no_hdf5(path);
}
#endif

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string lower_extension(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

bool starts_with(const std::string& bytes, const char* magic, std::size_t n) {
  return bytes.size() >= n && std::memcmp(bytes.data(), magic, n) == 0;
}

std::string head_bytes(const std::string& path, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open file");
  std::string bytes(n, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

// safetensors: 8-byte little-endian header length, then a JSON object.
bool looks_like_safetensors(const std::string& head) {
  if (head.size() < 9) return false;
  std::uint64_t len = 0;
  for (int i = 7; i >= 0; --i)
    len = (len << 8) | static_cast<unsigned char>(head[static_cast<std::size_t>(i)]);
  return len > 1 && len < (std::uint64_t{1} << 32) && head[8] == '{';
}

// IDX: two zero bytes, a type code, a dimension count (gzip is recognised separately).
bool looks_like_idx(const std::string& head) {
  if (head.size() < 4 || head[0] != 0 || head[1] != 0) return false;
  const auto type = static_cast<unsigned char>(head[2]);
  const auto dims = static_cast<unsigned char>(head[3]);
  return (type == 0x08 || type == 0x09 || type == 0x0B || type == 0x0C || type == 0x0D ||
          type == 0x0E) &&
         dims >= 1 && dims <= 8;
}

std::string describe_entries(const std::vector<ArrayEntry>& entries) {
  std::string s;
  const std::size_t shown = std::min<std::size_t>(entries.size(), 12);
  for (std::size_t i = 0; i < shown; ++i) {
    if (i) s += ", ";
    s += "'" + entries[i].key + "' (" + shape_to_string(entries[i].shape) + ")";
  }
  if (entries.size() > shown) s += ", ... " + std::to_string(entries.size() - shown) + " more";
  return s.empty() ? "none" : s;
}

std::vector<ArrayEntry> entries_of(const std::vector<NamedArray>& arrays) {
  std::vector<ArrayEntry> out;
  for (const auto& a : arrays) out.push_back({a.name, a.array.dtype(), a.array.shape()});
  return out;
}

NdArray pick(const std::string& path, const std::vector<NamedArray>& arrays,
             const std::string& key) {
  if (!key.empty()) {
    for (const auto& a : arrays)
      if (a.name == key) return a.array;
    throw InputError(path, "no array named '" + key + "'")
        .expected("one of " + describe_entries(entries_of(arrays)));
  }
  if (arrays.size() == 1) return arrays.front().array;
  for (const auto& a : arrays)
    if (a.name == "weight") return a.array;
  throw InputError(
      path, arrays.empty() ? "holds no arrays" : "holds several arrays; choose one with --key")
      .found(describe_entries(entries_of(arrays)));
}

std::vector<std::int64_t> parse_text_integers(const std::string& path) {
  const std::string text = read_text_file(path);
  std::vector<std::int64_t> out;
  std::size_t i = 0, line = 1;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',') {
      ++i;
      continue;
    }
    if (c == '#') {  // comment to end of line
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    std::size_t j = i;
    if (text[j] == '-' || text[j] == '+') ++j;
    const std::size_t digits = j;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == digits || (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j])) &&
                        text[j] != ',' && text[j] != '#'))
      throw InputError(path, "line " + std::to_string(line) + " is not a list of integers")
          .found("'" + text.substr(i, std::min<std::size_t>(20, text.size() - i)) + "'");
    try {
      out.push_back(std::stoll(text.substr(i, j - i)));
    } catch (const std::out_of_range&) {
      throw InputError(path, "line " + std::to_string(line) + ": integer out of range");
    }
    i = j;
  }
  return out;
}

}  // namespace

std::string format_name(FileFormat format) {
  switch (format) {
    case FileFormat::kNpy:
      return "NPY";
    case FileFormat::kTorch:
      return "torch.save archive";
    case FileFormat::kSafetensors:
      return "safetensors";
    case FileFormat::kHdf5:
      return "HDF5";
    case FileFormat::kIdx:
      return "IDX";
    case FileFormat::kTrakerSaveDir:
      return "traker save_dir";
    case FileFormat::kText:
      return "text";
  }
  return "unknown";
}

FileFormat detect_format(const std::string& path) {
  if (is_directory(path)) {
    struct stat st {};
    if (::stat((path + "/experiments.json").c_str(), &st) == 0) return FileFormat::kTrakerSaveDir;
    throw InputError(path, "is a directory but not a traker save_dir")
        .expected("experiments.json inside");
  }
  const std::string head = head_bytes(path, 16);
  if (head.empty()) throw InputError(path, "file is empty");
  if (starts_with(head, "\x93NUMPY", 6)) return FileFormat::kNpy;
  if (starts_with(head, "PK\x03\x04", 4)) return FileFormat::kTorch;
  if (starts_with(head, "\x89HDF\r\n\x1a\n", 8)) return FileFormat::kHdf5;
  if (starts_with(head, "\x1f\x8b", 2) || looks_like_idx(head)) return FileFormat::kIdx;
  if (looks_like_safetensors(head)) return FileFormat::kSafetensors;
  const std::string ext = lower_extension(path);
  // HDF5 files may carry a user block before the superblock; trust the extension there.
  if (ext == "h5" || ext == "hdf5" || ext == "hdf") return FileFormat::kHdf5;
  if (ext == "txt" || ext == "csv" || ext == "idx" || ext == "") {
    const bool printable = std::all_of(head.begin(), head.end(), [](char c) {
      return std::isprint(static_cast<unsigned char>(c)) ||
             std::isspace(static_cast<unsigned char>(c));
    });
    if (printable) return FileFormat::kText;
  }
  throw InputError(path, "unrecognised file format")
      .expected(
          "NPY, torch.save (.pt/.pth), safetensors, HDF5, IDX, a traker save_dir or a text "
          "list of integers");
}

std::vector<ArrayEntry> list_arrays(const std::string& path) {
  switch (detect_format(path)) {
    case FileFormat::kNpy: {
      const NdArray a = read_npy(path);
      return {{"", a.dtype(), a.shape()}};
    }
    case FileFormat::kIdx: {
      const NdArray a = read_idx(path);
      return {{"", a.dtype(), a.shape()}};
    }
    case FileFormat::kTorch:
      return entries_of(read_torch_file(path));
    case FileFormat::kSafetensors:
      return entries_of(read_safetensors(path));
    case FileFormat::kHdf5: {
      std::vector<ArrayEntry> out;
      for (const auto& name : list_hdf5_datasets(path)) {
        const NdArray a = read_hdf5_dataset(path, name);
        out.push_back({name, a.dtype(), a.shape()});
      }
      return out;
    }
    case FileFormat::kTrakerSaveDir: {
      const NdArray a = read_traker_scores(path);
      return {{"", a.dtype(), a.shape()}};
    }
    case FileFormat::kText: {
      const auto v = parse_text_integers(path);
      return {{"", DType::kInt64, {static_cast<std::int64_t>(v.size())}}};
    }
  }
  return {};
}

NdArray load_array(const std::string& path, const std::string& key) {
  const FileFormat format = detect_format(path);
  auto no_key = [&](const char* what) {
    if (!key.empty())
      throw InputError(path, std::string("a ") + what + " holds one array; --key does not apply")
          .key(key);
  };
  switch (format) {
    case FileFormat::kNpy:
      no_key("NPY file");
      return read_npy(path);
    case FileFormat::kIdx:
      no_key("IDX file");
      return read_idx(path);
    case FileFormat::kTorch:
      return pick(path, read_torch_file(path), key);
    case FileFormat::kSafetensors:
      return pick(path, read_safetensors(path), key);
    case FileFormat::kHdf5: {
      if (!key.empty()) return read_hdf5_dataset(path, key);
      const auto names = list_hdf5_datasets(path);
      if (names.size() == 1) return read_hdf5_dataset(path, names.front());
      if (std::find(names.begin(), names.end(), "weight") != names.end())
        return read_hdf5_dataset(path, "weight");
      std::string listed;
      for (std::size_t i = 0; i < names.size() && i < 12; ++i)
        listed += (i ? ", '" : "'") + names[i] + "'";
      throw InputError(path, names.empty() ? "holds no datasets"
                                           : "holds several datasets; choose one with --key")
          .found(listed.empty() ? "none" : listed);
    }
    case FileFormat::kTrakerSaveDir:
      return read_traker_scores(path, key);
    case FileFormat::kText: {
      no_key("text file");
      const auto v = parse_text_integers(path);
      NdArray a = NdArray::allocate(DType::kInt64, {static_cast<std::int64_t>(v.size())});
      std::copy(v.begin(), v.end(), a.mutable_data_as<std::int64_t>());
      return a;
    }
  }
  return {};
}

NdArray load_score_matrix(const std::string& path, const std::string& key, Transpose transpose,
                          const ScoreShapeHint& hint) {
  NdArray a = load_array(path, key);
  if (a.ndim() != 2)
    throw InputError(path, "scores are not a matrix")
        .key(key)
        .expected("2 dimensions (T targets x N training examples)")
        .found(std::to_string(a.ndim()) + " (" + shape_to_string(a.shape()) + ")");
  if (!dtype_is_floating(a.dtype()))
    throw InputError(path, "scores are not floating point").key(key).found(dtype_name(a.dtype()));
  const std::int64_t rows = a.dim(0), cols = a.dim(1);
  auto fits = [&](std::int64_t r, std::int64_t c) {
    return (hint.num_targets < 0 || r == hint.num_targets) &&
           (hint.num_train < 0 || c == hint.num_train);
  };
  const std::string wanted = (hint.num_targets >= 0 ? std::to_string(hint.num_targets) : "T") +
                             " x " + (hint.num_train >= 0 ? std::to_string(hint.num_train) : "N") +
                             " (targets x training examples" +
                             (hint.source.empty() ? ")" : "; sizes from " + hint.source + ")");
  bool flip = false;
  if (transpose == Transpose::kYes) {
    flip = true;
  } else if (transpose == Transpose::kAuto && (hint.num_targets >= 0 || hint.num_train >= 0)) {
    const bool as_is = fits(rows, cols), flipped = fits(cols, rows);
    if (!as_is && !flipped)
      throw InputError(path, "score matrix does not match the data sizes either way")
          .key(key)
          .expected(wanted)
          .found(shape_to_string(a.shape()));
    flip = !as_is;
  }
  NdArray out = a.to_float32();
  if (flip) out = out.transposed2d();
  if (transpose != Transpose::kAuto && !fits(out.dim(0), out.dim(1)))
    throw InputError(path, "score matrix does not match the data sizes")
        .key(key)
        .expected(wanted)
        .found(shape_to_string(out.shape()) + (flip ? " after transposing" : ""));
  return out;
}

std::vector<std::int64_t> load_integer_vector(const std::string& path, const std::string& key) {
  if (detect_format(path) == FileFormat::kText) {
    if (!key.empty()) throw InputError(path, "a text file holds one list; --key does not apply");
    return parse_text_integers(path);
  }
  const NdArray a = load_array(path, key);
  const bool vector_like = a.ndim() == 1 || (a.ndim() == 2 && (a.dim(0) == 1 || a.dim(1) == 1));
  if (!vector_like)
    throw InputError(path, "expected a list of integers")
        .key(key)
        .found(shape_to_string(a.shape()));
  std::vector<std::int64_t> out(static_cast<std::size_t>(a.numel()));
  if (a.dtype() == DType::kInt64) {
    std::copy_n(a.data_as<std::int64_t>(), out.size(), out.begin());
    return out;
  }
  if (dtype_is_floating(a.dtype()) && a.dtype() != DType::kFloat64) {
    const NdArray g = a.to_float32();
    for (std::size_t i = 0; i < out.size(); ++i) {
      const float v = g.data_as<float>()[i];
      if (!std::isfinite(v) || v != std::floor(v))
        throw InputError(path, "entry " + std::to_string(i) + " is not a whole number").key(key);
      out[i] = static_cast<std::int64_t>(v);
    }
    return out;
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::byte* p = a.data() + i * dtype_size(a.dtype());
    switch (a.dtype()) {
      case DType::kBool:
      case DType::kUInt8:
        out[i] = static_cast<std::int64_t>(std::to_integer<std::uint8_t>(*p));
        break;
      case DType::kInt8:
        out[i] = static_cast<std::int8_t>(std::to_integer<std::uint8_t>(*p));
        break;
      case DType::kInt16: {
        std::int16_t v;
        std::memcpy(&v, p, 2);
        out[i] = v;
        break;
      }
      case DType::kInt32: {
        std::int32_t v;
        std::memcpy(&v, p, 4);
        out[i] = v;
        break;
      }
      case DType::kFloat64: {
        double v;
        std::memcpy(&v, p, 8);
        if (!std::isfinite(v) || v != std::floor(v))
          throw InputError(path, "entry " + std::to_string(i) + " is not a whole number").key(key);
        out[i] = static_cast<std::int64_t>(v);
        break;
      }
      default:
        MD_ASSERT(false);
    }
  }
  return out;
}

void require_finite_scores(const NdArray& scores, const std::string& path, const std::string& key) {
  const std::int64_t t = scores.dim(0), n = scores.dim(1);
  const float* v = scores.data_as<float>();
  for (std::int64_t r = 0; r < t; ++r)
    for (std::int64_t c = 0; c < n; ++c)
      if (!std::isfinite(v[r * n + c]))
        throw InputError(path, "the scores hold NaN or Inf")
            .key(key)
            .expected("finite scores")
            .found(std::string(std::isnan(v[r * n + c]) ? "NaN" : "Inf") + " at row " +
                   std::to_string(r) + ", column " + std::to_string(c) + " (as T x N)");
}

}  // namespace modeldiff::core
