// A small HDF5 writer for result files: groups, numeric datasets in C order, string
// attributes. Handles are closed by RAII; errors throw InputError naming the file and the
// dataset. (Reading is in hdf5_dataset.h.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace modeldiff::core {

class Hdf5Writer {
 public:
  // Creates (truncates) the file.
  explicit Hdf5Writer(std::string path);
  ~Hdf5Writer();
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  void create_group(const std::string& name);
  // Row-major data of the given shape ({} for a scalar). Large datasets are chunked and
  // compressed with gzip level 4.
  void write(const std::string& name, const float* data, const std::vector<std::int64_t>& shape);
  void write(const std::string& name, const double* data, const std::vector<std::int64_t>& shape);
  void write(const std::string& name, const std::int64_t* data,
             const std::vector<std::int64_t>& shape);
  // A variable-length UTF-8 string attribute on a group or dataset ("/" for the file).
  void set_attribute(const std::string& object, const std::string& attribute,
                     const std::string& value);
  // Flushes and closes; throws when the data could not be written.
  void close();

 private:
  void write_raw(const std::string& name, std::int64_t mem_type, std::int64_t file_type,
                 const void* data, const std::vector<std::int64_t>& shape);
  std::string path_;
  std::int64_t file_ = -1;
};

}  // namespace modeldiff::core
