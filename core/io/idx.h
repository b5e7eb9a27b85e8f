// IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
// bytes 0-1 are zero, byte 2 the element type, byte 3 the number of dims, then one big-endian
// uint32 per dim, then the elements in C order, big-endian. Usually distributed gzipped
// (train-images-idx3-ubyte.gz), so both plain and gzip files are read.
//
// Element types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64;
// returned in native byte order. The header fixes the data size exactly; a file (or gzip
// stream) holding fewer or more bytes is refused, and the decompressed size is bounded by what
// the compressed bytes can possibly expand to, so a lying header cannot make us allocate more
// than the input could hold.
#pragma once

#include <cstddef>
#include <string>

#include "core/base/ndarray.h"

namespace modeldiff::core {

// Reads a plain or gzipped IDX file. The shape is the file's: images N x rows x cols (row =
// example), labels N. Throws InputError naming `path` on malformed input.
NdArray read_idx(const std::string& path);

// As read_idx, on `size` bytes at `data` (plain or gzipped); the result is a copy, and errors
// name `name`. For fuzzing and in-memory use.
NdArray parse_idx_bytes(const std::string& name, const std::byte* data, std::size_t size);

}  // namespace modeldiff::core
