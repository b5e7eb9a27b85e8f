#include "core/io/hdf5_writer.h"

#include <hdf5.h>

#include <algorithm>
#include <mutex>

#include "core/base/error.h"
#include "core/io/hdf5_lock.h"

namespace modeldiff::core {
namespace {

// Closes an HDF5 identifier with the matching close function when it goes out of scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

}  // namespace

Hdf5Writer::Hdf5Writer(std::string path) : path_(std::move(path)) {
  const std::lock_guard<std::mutex> lock(hdf5_library_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become exceptions, not stderr noise
  file_ = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file_ < 0) throw InputError(path_, "cannot create HDF5 file");
}

Hdf5Writer::~Hdf5Writer() {
  const std::lock_guard<std::mutex> lock(hdf5_library_mutex());
  if (file_ >= 0) H5Fclose(static_cast<hid_t>(file_));
}

void Hdf5Writer::create_group(const std::string& name) {
  const std::lock_guard<std::mutex> lock(hdf5_library_mutex());
  Handle g(
      H5Gcreate2(static_cast<hid_t>(file_), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Gclose);
  if (!g.ok()) throw InputError(path_, "cannot create HDF5 group").key(name);
}

void Hdf5Writer::write_raw(const std::string& name, std::int64_t mem_type, std::int64_t file_type,
                           const void* data, const std::vector<std::int64_t>& shape) {
  const std::lock_guard<std::mutex> lock(hdf5_library_mutex());
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(shape.empty()
                   ? H5Screate(H5S_SCALAR)
                   : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
               H5Sclose);
  Handle props(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  hsize_t total = 1;
  for (hsize_t d : dims) total *= d;
  if (!shape.empty() && total >= (1u << 16)) {
    // Chunks of whole rows (about 1 MiB) keep row reads cheap for the GUI.
    std::vector<hsize_t> chunk = dims;
    for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
    hsize_t row_elems = 1;
    for (std::size_t i = 1; i < chunk.size(); ++i) row_elems *= chunk[i];
    chunk[0] = std::max<hsize_t>(
        1, std::min<hsize_t>(chunk[0], (hsize_t{1} << 18) / std::max<hsize_t>(row_elems, 1)));
    H5Pset_chunk(props.get(), static_cast<int>(chunk.size()), chunk.data());
    // Byte shuffling groups the floats' exponent bytes, which deflate's fastest level then
    // compresses better than level 4 does unshuffled, at a fraction of its time (both filters
    // are built into every HDF5 reader, h5py included).
    H5Pset_shuffle(props.get());
    H5Pset_deflate(props.get(), 1);
  }
  Handle set(H5Dcreate2(static_cast<hid_t>(file_), name.c_str(), static_cast<hid_t>(file_type),
                        space.get(), H5P_DEFAULT, props.get(), H5P_DEFAULT),
             H5Dclose);
  if (!set.ok()) throw InputError(path_, "cannot create HDF5 dataset").key(name);
  if (total > 0 &&
      H5Dwrite(set.get(), static_cast<hid_t>(mem_type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw InputError(path_, "cannot write HDF5 dataset").key(name);
}

void Hdf5Writer::write(const std::string& name, const float* data,
                       const std::vector<std::int64_t>& shape) {
  write_raw(name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, data, shape);
}

void Hdf5Writer::write(const std::string& name, const double* data,
                       const std::vector<std::int64_t>& shape) {
  write_raw(name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, data, shape);
}

void Hdf5Writer::write(const std::string& name, const std::int64_t* data,
                       const std::vector<std::int64_t>& shape) {
  write_raw(name, H5T_NATIVE_INT64, H5T_STD_I64LE, data, shape);
}

void Hdf5Writer::set_attribute(const std::string& object, const std::string& attribute,
                               const std::string& value) {
  const std::lock_guard<std::mutex> lock(hdf5_library_mutex());
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate_by_name(static_cast<hid_t>(file_), object.c_str(), attribute.c_str(),
                                type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  const char* text = value.c_str();
  if (!attr.ok() || H5Awrite(attr.get(), type.get(), &text) < 0)
    throw InputError(path_, "cannot write HDF5 attribute").key(object + "@" + attribute);
}

void Hdf5Writer::close() {
  const std::lock_guard<std::mutex> lock(hdf5_library_mutex());
  if (file_ < 0) return;
  const herr_t flushed = H5Fflush(static_cast<hid_t>(file_), H5F_SCOPE_GLOBAL);
  const herr_t closed = H5Fclose(static_cast<hid_t>(file_));
  file_ = -1;
  if (flushed < 0 || closed < 0) throw InputError(path_, "cannot finish writing HDF5 file");
}

}  // namespace modeldiff::core
