// Reader for .safetensors files (Hugging Face): an 8-byte little-endian header length, a JSON
// header {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
// "__metadata__": {...}} and the raw little-endian tensor bytes, offsets relative to the end of
// the header.
//
// The arrays borrow their bytes from the memory-mapped file (zero copy) whenever the data is
// aligned for its dtype, as in every file the safetensors library writes; tensors at unaligned
// offsets are copied, so that data_as<T>() is always valid. Everything the header claims is
// checked:
// header length within the file, valid JSON, known dtypes (F16, BF16, F32, F64, I8, U8, I16,
// I32, I64, BOOL), offsets inside the data, sizes equal to numel * itemsize, no two tensors
// overlapping, no duplicate names.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/base/mapped_file.h"
#include "core/io/torch_archive.h"  // NamedArray

namespace modeldiff::core {

// Every tensor of the file, in the order of the JSON header, each C-contiguous (row-major) with
// the shape and dtype the header gives; "__metadata__" is skipped. Throws InputError naming
// the file (and the tensor) on any inconsistency.
std::vector<NamedArray> read_safetensors(const std::string& path);
std::vector<NamedArray> parse_safetensors(std::shared_ptr<const MappedFile> file);

// The header's "__metadata__" string map (empty when absent).
std::vector<std::pair<std::string, std::string>> read_safetensors_metadata(
    std::shared_ptr<const MappedFile> file);

}  // namespace modeldiff::core
