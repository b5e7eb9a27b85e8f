#include "core/io/hdf5_dataset.h"

#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

#include "core/base/child_process.h"
#include "core/base/error.h"
#include "core/io/hdf5_lock.h"

namespace modeldiff::core {
namespace {

// Owns an HDF5 identifier and closes it with the matching H5*close function.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& other) noexcept : id_(std::exchange(other.id_, -1)), close_(other.close_) {}
  Hid& operator=(Hid&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, -1);
      close_ = other.close_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_ != nullptr) close_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Switches off HDF5's printing of its error stack to stderr (for this thread) while alive:
// failures become InputErrors; the previous handler is restored for other HDF5 users.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

herr_t collect_error(unsigned, const H5E_error2_t* err, void* out) noexcept {
  try {
    if (err->desc != nullptr && err->desc[0] != '\0')
      static_cast<std::vector<std::string>*>(out)->push_back(err->desc);
  } catch (...) {
    return -1;
  }
  return 0;
}

// HDF5's innermost (most specific) message about the last failure, e.g. "file signature not
// found" or "truncated file: eof = 11073, ..."; the outer ones only repeat what we were doing.
std::string hdf5_detail() {
  std::vector<std::string> descs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &descs);
  return descs.empty() ? "no details from the HDF5 library" : descs.back();
}

// External links name other files; a file handed to us must not make us open those.
herr_t refuse_external_link(const char*, const char*, const char*, const char*, unsigned*, hid_t,
                            void*) {
  return -1;
}

std::size_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return std::numeric_limits<std::size_t>::max();
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page);
}

Hid open_file(const std::string& name, hid_t fapl) {
  // Close the file's objects with it even when an error path leaves one open.
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  Hid file(H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose);
  if (!file.valid()) {
    const std::string detail = hdf5_detail();
    if (detail.find("signature") != std::string::npos) {
      throw InputError(name, "not an HDF5 file (no HDF5 signature found)");
    }
    throw InputError(name, "cannot open HDF5 file: " + detail);
  }
  return file;
}

Hid open_path(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw InputError(path, std::string("cannot open file: ") + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw InputError(path, "not a regular file");
  if (st.st_size == 0) throw InputError(path, "empty file; expected an HDF5 file");
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.valid()) throw InputError(path, "cannot set up HDF5 file access: " + hdf5_detail());
  // Lock as h5py does, but do not fail on file systems without locks (NFS and the like).
  H5Pset_file_locking(fapl.get(), 1, 1);
  return open_file(path, fapl.get());
}

Hid open_image(const std::string& name, const void* data, std::size_t size) {
  if (size == 0) throw InputError(name, "empty file; expected an HDF5 file");
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // The core (in-memory) driver with no backing store; HDF5 copies the image.
  if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), 64 * 1024, 0) < 0 ||
      H5Pset_file_image(fapl.get(), const_cast<void*>(data), size) < 0) {
    throw InputError(name, "cannot set up HDF5 file image: " + hdf5_detail());
  }
  return open_file(name, fapl.get());
}

Hid link_access() {
  Hid lapl(H5Pcreate(H5P_LINK_ACCESS), H5Pclose);
  if (lapl.valid()) H5Pset_elink_cb(lapl.get(), refuse_external_link, nullptr);
  return lapl;
}

struct ListContext {
  std::vector<std::string> names;
  bool failed = false;
};

// Reads only the object header's type: opening each dataset would decode (and expose us to)
// far more of a possibly corrupt file, and is slower on files with many datasets.
bool is_dataset(hid_t group, const char* name) {
#if H5_VERSION_GE(1, 12, 0)
  H5O_info2_t info;
  if (H5Oget_info_by_name3(group, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return false;
#else
  H5O_info_t info;
  if (H5Oget_info_by_name2(group, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return false;
#endif
  return info.type == H5O_TYPE_DATASET;
}

herr_t collect_dataset(hid_t group, const char* name, const H5L_info_t* info, void* out) noexcept {
  auto* ctx = static_cast<ListContext*>(out);
  // Hard links only: soft links would list a dataset twice, external ones leave the file.
  if (info->type != H5L_TYPE_HARD || !is_dataset(group, name)) return 0;
  try {
    ctx->names.emplace_back(name);
  } catch (...) {
    ctx->failed = true;
    return -1;
  }
  return 0;
}

std::vector<std::string> list_datasets(const std::string& name, hid_t file) {
  ListContext ctx;
  // Native order, sorted below: for any other order HDF5 1.10 first copies a group's links into
  // a table sized by the link count stored in the file, and frees garbage (or overruns the
  // table) when a corrupt file's count disagrees with its links (found by fuzzing; see
  // tests/fuzz/known_hdf5_crashes/).
  if (H5Lvisit(file, H5_INDEX_NAME, H5_ITER_NATIVE, collect_dataset, &ctx) < 0) {
    if (ctx.failed) throw std::bad_alloc();
    throw InputError(name, "cannot list the HDF5 file's datasets: " + hdf5_detail());
  }
  std::sort(ctx.names.begin(), ctx.names.end());
  return std::move(ctx.names);
}

[[noreturn]] void throw_missing(const std::string& name, hid_t file, const std::string& dataset) {
  InputError error(name, "no such dataset");
  error.key(dataset);
  try {
    const std::vector<std::string> names = list_datasets(name, file);
    if (names.empty()) {
      error.found("the file holds no datasets");
    } else {
      constexpr std::size_t kShown = 20;
      std::string list;
      for (std::size_t i = 0; i < names.size() && i < kShown; ++i)
        list += (i > 0 ? ", " : "") + names[i];
      if (names.size() > kShown) list += " and " + std::to_string(names.size() - kShown) + " more";
      error.expected("one of the file's datasets: " + list);
    }
  } catch (const InputError&) {
    error.found("the file's datasets could not be listed");
  }
  throw error;
}

// Opens the object at `dataset`, refusing anything that is not a dataset.
Hid open_dataset(const std::string& name, hid_t file, const std::string& dataset) {
  std::string path = dataset;
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (path.empty()) throw InputError(name, "no dataset name given").key(dataset);
  const Hid lapl = link_access();
  // Check each prefix: H5Oopen on a path whose group is missing fails with no clear cause.
  for (std::size_t end = path.find('/');; end = path.find('/', end + 1)) {
    const std::string prefix = path.substr(0, end);
    const bool self =
        prefix == "." || (prefix.size() >= 2 && prefix.compare(prefix.size() - 2, 2, "/.") == 0);
    if (!prefix.empty() && prefix.back() != '/' && !self &&
        H5Lexists(file, prefix.c_str(), lapl.get()) <= 0) {
      throw_missing(name, file, dataset);
    }
    if (end == std::string::npos) break;
  }
  Hid obj(H5Oopen(file, path.c_str(), lapl.get()), H5Oclose);
  if (!obj.valid()) throw_missing(name, file, dataset);  // e.g. a dangling or external link
  const H5I_type_t type = H5Iget_type(obj.get());
  if (type != H5I_DATASET) {
    throw InputError(name,
                     type == H5I_GROUP ? "this is a group, not a dataset" : "this is not a dataset")
        .key(dataset);
  }
  return obj;
}

// How the file's element type is read into memory.
struct MemType {
  DType dtype;
  Hid type;                // memory type handed to H5Dread
  bool check_u64 = false;  // read as uint64; every value must fit int64
};

// A 2-byte IEEE-style float type (native order) as h5py builds it for float16 and others do
// for bfloat16: sign at bit 15, then `esize` exponent bits, then `msize` mantissa bits.
Hid make_float2(std::size_t esize, std::size_t msize, std::size_t ebias) {
  Hid t(H5Tcopy(H5T_NATIVE_FLOAT), H5Tclose);
  if (!t.valid() || H5Tset_fields(t.get(), 15, msize, esize, 0, msize) < 0 ||
      H5Tset_size(t.get(), 2) < 0 || H5Tset_ebias(t.get(), ebias) < 0) {
    return Hid();
  }
  return t;
}

Hid copy_type(hid_t native) {
  return Hid(H5Tcopy(native), H5Tclose);
}

MemType memory_type(const std::string& name, const std::string& dataset, hid_t file_type) {
  auto refuse = [&](const std::string& what) {
    return InputError(name, what + " datasets are not supported")
        .key(dataset)
        .expected("a float16/32/64, integer or bool dataset");
  };
  const std::size_t size = H5Tget_size(file_type);
  switch (H5Tget_class(file_type)) {
    case H5T_FLOAT: {
      if (size == 2) {
        std::size_t spos, epos, esize, mpos, msize;
        H5Tget_fields(file_type, &spos, &epos, &esize, &mpos, &msize);
        if (esize == 8 && msize == 7) return {DType::kBFloat16, make_float2(8, 7, 127)};
        return {DType::kFloat16, make_float2(5, 10, 15)};
      }
      if (size == 4) return {DType::kFloat32, copy_type(H5T_NATIVE_FLOAT)};
      if (size == 8) return {DType::kFloat64, copy_type(H5T_NATIVE_DOUBLE)};
      throw refuse(std::to_string(size * 8) + "-bit floating-point");
    }
    case H5T_INTEGER: {
      const bool is_signed = H5Tget_sign(file_type) == H5T_SGN_2;
      if (is_signed) {
        if (size == 1) return {DType::kInt8, copy_type(H5T_NATIVE_INT8)};
        if (size == 2) return {DType::kInt16, copy_type(H5T_NATIVE_INT16)};
        if (size == 4) return {DType::kInt32, copy_type(H5T_NATIVE_INT32)};
        if (size == 8) return {DType::kInt64, copy_type(H5T_NATIVE_INT64)};
      } else {
        // HDF5 widens uint16 -> int32 and uint32 -> int64 exactly.
        if (size == 1) return {DType::kUInt8, copy_type(H5T_NATIVE_UINT8)};
        if (size == 2) return {DType::kInt32, copy_type(H5T_NATIVE_INT32)};
        if (size == 4) return {DType::kInt64, copy_type(H5T_NATIVE_INT64)};
        if (size == 8) return {DType::kInt64, copy_type(H5T_NATIVE_UINT64), true};
      }
      throw refuse(std::to_string(size * 8) + "-bit integer");
    }
    case H5T_ENUM: {
      // h5py writes numpy bools as an int8 enum {FALSE = 0, TRUE = 1}.
      if (size == 1 && H5Tget_nmembers(file_type) == 2) {
        bool names_match = true;
        for (unsigned i = 0; i < 2; ++i) {
          char* member = H5Tget_member_name(file_type, i);
          names_match = names_match && member != nullptr &&
                        std::strcmp(member, i == 0 ? "FALSE" : "TRUE") == 0;
          if (member != nullptr) H5free_memory(member);
        }
        if (names_match) {
          Hid t(H5Tget_native_type(file_type, H5T_DIR_ASCEND), H5Tclose);
          if (t.valid() && H5Tget_size(t.get()) == 1) return {DType::kBool, std::move(t)};
        }
      }
      throw refuse("enum (other than h5py's bool)");
    }
    case H5T_STRING:
      throw refuse("string");
    case H5T_COMPOUND:
      throw refuse("compound (e.g. complex-number)");
    case H5T_TIME:
      throw refuse("time");
    case H5T_BITFIELD:
      throw refuse("bitfield");
    case H5T_OPAQUE:
      throw refuse("opaque");
    case H5T_REFERENCE:
      throw refuse("reference");
    case H5T_VLEN:
      throw refuse("variable-length");
    case H5T_ARRAY:
      throw refuse("array-typed");
    default:
      break;
  }
  throw InputError(name, "cannot read the dataset's element type: " + hdf5_detail()).key(dataset);
}

NdArray read_dataset(const std::string& name, hid_t file, const std::string& dataset,
                     std::size_t max_bytes) {
  const Hid dset = open_dataset(name, file, dataset);
  const Hid file_type(H5Dget_type(dset.get()), H5Tclose);
  const Hid space(H5Dget_space(dset.get()), H5Sclose);
  if (!file_type.valid() || !space.valid()) {
    throw InputError(name, "corrupt dataset header: " + hdf5_detail()).key(dataset);
  }
  MemType mem = memory_type(name, dataset, file_type.get());
  if (!mem.type.valid()) {
    throw InputError(name, "cannot build the memory type: " + hdf5_detail()).key(dataset);
  }

  std::vector<std::int64_t> shape;
  switch (H5Sget_simple_extent_type(space.get())) {
    case H5S_SCALAR:
      break;
    case H5S_SIMPLE: {
      const int rank = H5Sget_simple_extent_ndims(space.get());
      if (rank < 0 || rank > H5S_MAX_RANK) {
        throw InputError(name, "corrupt dataspace: " + hdf5_detail()).key(dataset);
      }
      std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
      if (H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
        throw InputError(name, "corrupt dataspace: " + hdf5_detail()).key(dataset);
      }
      for (hsize_t d : dims) {
        if (d > static_cast<hsize_t>(std::numeric_limits<std::int64_t>::max())) {
          throw InputError(name, "dataset dimension out of range")
              .key(dataset)
              .found(std::to_string(d));
        }
        shape.push_back(static_cast<std::int64_t>(d));
      }
      break;
    }
    case H5S_NULL:
      throw InputError(name, "dataset holds no data (null dataspace)").key(dataset);
    default:
      throw InputError(name, "corrupt dataspace: " + hdf5_detail()).key(dataset);
  }

  const std::size_t limit = max_bytes != 0 ? max_bytes : physical_memory();
  const std::size_t elem = dtype_size(mem.dtype);
  const std::int64_t numel = checked_numel(shape);
  if (numel < 0 || static_cast<std::uint64_t>(numel) > limit / elem) {
    throw InputError(name, "dataset too large to load")
        .key(dataset)
        .expected("at most " + std::to_string(limit) + " bytes")
        .found(shape_to_string(shape) + " " + dtype_name(mem.dtype));
  }
  // A chunk is decompressed whole; refuse chunk sizes no memory budget allows either.
  const Hid dcpl(H5Dget_create_plist(dset.get()), H5Pclose);
  if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    hsize_t chunk[H5S_MAX_RANK];
    const int crank = H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, chunk);
    std::uint64_t chunk_bytes = H5Tget_size(file_type.get());
    for (int i = 0; i < crank; ++i) {
      chunk_bytes =
          chunk[i] != 0 && chunk_bytes > limit / chunk[i] ? limit + 1 : chunk_bytes * chunk[i];
    }
    if (crank < 0 || chunk_bytes > limit) {
      throw InputError(name, "dataset chunks too large to load")
          .key(dataset)
          .expected("at most " + std::to_string(limit) + " bytes per chunk");
    }
  }

  NdArray out = NdArray::allocate(mem.dtype, shape);
  if (numel > 0 &&
      H5Dread(dset.get(), mem.type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.mutable_data()) < 0) {
    throw InputError(name, "cannot read dataset: " + hdf5_detail()).key(dataset);
  }
  if (mem.check_u64) {
    const auto* v = out.data_as<std::int64_t>();
    for (std::int64_t i = 0; i < numel; ++i) {
      if (v[i] < 0) {  // the uint64 was above INT64_MAX
        throw InputError(name, "uint64 value too large for int64")
            .key(dataset)
            .expected("values up to 9223372036854775807")
            .found(std::to_string(static_cast<std::uint64_t>(v[i])) + " at element " +
                   std::to_string(i));
      }
    }
  }
  return out;
}

// Runs `body` holding the HDF5 lock, turning an allocation failure into an InputError naming
// the file.
template <typename F>
auto guarded(const std::string& name, F&& body) {
  const std::lock_guard<std::mutex> lock(hdf5_library_mutex());
  const QuietHdf5Errors quiet;
  try {
    return body();
  } catch (const std::bad_alloc&) {
    throw InputError(name, "not enough memory to read the HDF5 file");
  }
}

}  // namespace

std::mutex& hdf5_library_mutex() {
  static std::mutex m;
  return m;
}

namespace {

// A damaged file can crash libhdf5 itself (tests/fuzz/known_hdf5_crashes): files are read in a
// child process, and a child that dies is reported as a corrupt file.
[[noreturn]] void corrupt_file(const std::string& path, const ChildProcessFailed& e) {
  throw InputError(path, "corrupt HDF5 file: the HDF5 library failed reading it")
      .expected("an HDF5 file as h5py or HDF5 write it")
      .found(std::string("a reader that ") + e.what());
}

}  // namespace

NdArray read_hdf5_dataset(const std::string& path, const std::string& dataset,
                          std::size_t max_bytes) {
  NdArray result;
  const auto child = [&](ChildWriter& out) {
    const NdArray a = guarded(path, [&] {
      const Hid file = open_path(path);
      return read_dataset(path, file.get(), dataset, max_bytes);
    });
    out.write_u64(static_cast<std::uint64_t>(a.dtype()));
    out.write_u64(static_cast<std::uint64_t>(a.ndim()));
    for (std::int64_t d : a.shape()) out.write_u64(static_cast<std::uint64_t>(d));
    out.write(a.data(), a.nbytes());
  };
  const auto parent = [&](ChildReader& in) {
    const auto dtype = static_cast<DType>(in.read_u64());
    const std::uint64_t ndim = in.read_u64();
    if (ndim > H5S_MAX_RANK) throw ChildProcessFailed("sent a garbled result");
    std::vector<std::int64_t> shape;
    for (std::uint64_t i = 0; i < ndim; ++i)
      shape.push_back(static_cast<std::int64_t>(in.read_u64()));
    if (checked_numel(shape) < 0) throw ChildProcessFailed("sent a garbled result");
    result = NdArray::allocate(dtype, shape);
    in.read(result.mutable_data(), result.nbytes());
  };
  try {
    run_in_child_process(child, parent, &hdf5_library_mutex());
  } catch (const ChildProcessFailed& e) {
    corrupt_file(path, e);
  }
  return result;
}

std::vector<std::string> list_hdf5_datasets(const std::string& path) {
  std::vector<std::string> names;
  const auto child = [&](ChildWriter& out) {
    const auto list = guarded(path, [&] {
      const Hid file = open_path(path);
      return list_datasets(path, file.get());
    });
    out.write_u64(list.size());
    for (const auto& name : list) out.write_string(name);
  };
  const auto parent = [&](ChildReader& in) {
    const std::uint64_t n = in.read_u64();
    for (std::uint64_t i = 0; i < n; ++i) names.push_back(in.read_string(1 << 20));
  };
  try {
    run_in_child_process(child, parent, &hdf5_library_mutex());
  } catch (const ChildProcessFailed& e) {
    corrupt_file(path, e);
  }
  return names;
}

NdArray read_hdf5_dataset_from_image(const std::string& name, const void* data, std::size_t size,
                                     const std::string& dataset, std::size_t max_bytes) {
  return guarded(name, [&] {
    const Hid file = open_image(name, data, size);
    return read_dataset(name, file.get(), dataset, max_bytes);
  });
}

std::vector<std::string> list_hdf5_datasets_from_image(const std::string& name, const void* data,
                                                       std::size_t size) {
  return guarded(name, [&] {
    const Hid file = open_image(name, data, size);
    return list_datasets(name, file.get());
  });
}

}  // namespace modeldiff::core
