// Reading numeric datasets from HDF5 files (h5py's `f["scores"] = matrix` and the like).
//
// Element types: IEEE float16 (h5py stores it as a custom 2-byte float type), float32,
// float64, 8/16/32/64-bit integers, h5py's bool enum, in any byte order; HDF5 converts them
// to native order. Unsigned 16- and 32-bit integers widen to int32 and int64, uint64 becomes
// int64 when every value fits. Strings, compounds (e.g. complex), references and other enums
// are refused. External links are not followed.
//
// HDF5's own error printing is switched off while these functions run (and restored after);
// its most specific message is put into the InputError instead.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/base/ndarray.h"

namespace modeldiff::core {

// Reads dataset `dataset` ("scores", "group/weight" or "/group/weight") of the HDF5 file at
// `path`. Returns it with the dataset's own shape (e.g. a T x N score matrix stays T x N),
// C order. A scalar dataset gives a 0-D array. Throws InputError naming `path` when the file is
// not HDF5 or is corrupt, when the dataset does not exist (the message lists the file's
// datasets), when its type is not numeric, or when it would need more than `max_bytes` bytes
// of memory (0: the machine's physical memory).
NdArray read_hdf5_dataset(const std::string& path, const std::string& dataset,
                          std::size_t max_bytes = 0);

// Paths of every dataset in the file reachable through hard links, recursively, without a
// leading '/' ("scores", "group/weight"), sorted. Throws InputError.
std::vector<std::string> list_hdf5_datasets(const std::string& path);

// As read_hdf5_dataset and list_hdf5_datasets, on an HDF5 file image of `size` bytes in memory
// (copied; opened with HDF5's core driver). `name` appears in errors. For fuzzing and for
// files already in memory.
NdArray read_hdf5_dataset_from_image(const std::string& name, const void* data, std::size_t size,
                                     const std::string& dataset, std::size_t max_bytes = 0);
std::vector<std::string> list_hdf5_datasets_from_image(const std::string& name, const void* data,
                                                       std::size_t size);

}  // namespace modeldiff::core
