// NumPy .npy files: reader (format versions 1.0, 2.0, 3.0) and writer (version 1.0).
//
// traker stores every score and feature matrix as a .npy file (named *.mmap), so this reader
// sits under most importers. Arrays come back exactly as numpy.load shows them: same shape,
// C order (row-major), native byte order. A little-endian C-order file (what numpy writes on
// x86 and ARM) is not copied: the NdArray borrows the file mapping.
//
// dtypes: '|b1' '|u1' '|i1' '<i2' '<i4' '<i8' '<f2' '<f4' '<f8' in either byte order. NdArray
// has no wide unsigned types, so '<u2' and '<u4' widen losslessly to int32 and int64, and '<u8'
// becomes int64 when every value fits (refused otherwise). Complex, string, datetime,
// structured and object ('|O') dtypes are refused with an InputError naming the descr.
//
// Trailing bytes after the data are tolerated, as numpy.load (and np.load(mmap_mode=...))
// tolerates them; a file shorter than the header says is an error.
#pragma once

#include <memory>
#include <string>

#include "core/base/mapped_file.h"
#include "core/base/ndarray.h"

namespace modeldiff::core {

// Reads the .npy file at `path`. Returns the array with the shape stored in the file
// (e.g. traker's scores: N x T, row = training example), C-contiguous. Throws InputError
// naming `path` on anything that is not a well-formed .npy file of a supported dtype.
NdArray read_npy(const std::string& path);

// As read_npy, on bytes already mapped or in memory; errors name file->path(). The result
// may borrow from `file` (it keeps `file` alive).
NdArray parse_npy(std::shared_ptr<const MappedFile> file);

// Writes `array` (any shape, C order as NdArray always is) as a version 1.0 .npy file laid out
// byte for byte as numpy.save would write it: same header text, padded so that the data starts
// on a 64-byte boundary. The write is atomic: the bytes go to `path` + ".tmp-XXXXXX" first,
// which is renamed over `path` only when complete. Throws InputError naming `path` when the file
// cannot be written (the temporary file is removed) or when the array has no NumPy equivalent
// (bfloat16, more than 32 dims).
void write_npy(const std::string& path, const NdArray& array);

}  // namespace modeldiff::core
