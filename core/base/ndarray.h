// NdArray: a typed, C-contiguous (row-major) n-dimensional array as read from a file.
//
// Every reader (NPY, torch.save archives, safetensors, HDF5, IDX) returns NdArray so that the
// code above the readers never cares which format a matrix came from. The bytes are either
// owned (a heap buffer) or borrowed from a memory-mapped file; `owner` keeps them alive.
// Element (i0, ..., i{d-1}) lives at data()[((i0 * s1 + i1) * s2 + i2) ...] (C order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace modeldiff::core {

enum class DType {
  kBool,
  kUInt8,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFloat16,
  kBFloat16,
  kFloat32,
  kFloat64
};

std::size_t dtype_size(DType dtype);
std::string dtype_name(DType dtype);  // "float32", "uint8", ...
bool dtype_is_floating(DType dtype);

// "300 x 40" style text for error messages.
std::string shape_to_string(const std::vector<std::int64_t>& shape);

// IEEE 754 half / bfloat16 conversions.
float half_to_float(std::uint16_t h);
std::uint16_t float_to_half(float f);
float bfloat16_to_float(std::uint16_t b);

class NdArray {
 public:
  NdArray() = default;
  // Borrowed bytes kept alive by `owner` (e.g. a memory map). `data` must hold
  // numel(shape) * dtype_size(dtype) bytes.
  NdArray(DType dtype, std::vector<std::int64_t> shape, std::shared_ptr<const void> owner,
          const std::byte* data);

  // A zero-filled owned array.
  static NdArray allocate(DType dtype, std::vector<std::int64_t> shape);

  DType dtype() const { return dtype_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  std::int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i)); }
  std::int64_t numel() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return numel() == 0; }

  const std::byte* data() const { return data_; }
  // Writable only for arrays made by allocate() (asserts otherwise).
  std::byte* mutable_data();

  template <typename T>
  const T* data_as() const {
    return reinterpret_cast<const T*>(data_);
  }
  template <typename T>
  T* mutable_data_as() {
    return reinterpret_cast<T*>(mutable_data());
  }

  // Element-wise conversion to float32 (a no-op sharing the same bytes when already float32).
  NdArray to_float32() const;
  // Same data viewed with another shape of equal numel.
  NdArray reshaped(std::vector<std::int64_t> shape) const;
  // The 2-D transpose (copies).
  NdArray transposed2d() const;

 private:
  DType dtype_ = DType::kFloat32;
  std::vector<std::int64_t> shape_;
  std::shared_ptr<const void> owner_;
  const std::byte* data_ = nullptr;
  bool writable_ = false;
};

// Multiplies dims with overflow checking; returns -1 on overflow or a negative dim.
std::int64_t checked_numel(const std::vector<std::int64_t>& shape);

}  // namespace modeldiff::core
