#include "core/base/ndarray.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "core/base/error.h"

namespace modeldiff::core {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kBool:
    case DType::kUInt8:
    case DType::kInt8:
      return 1;
    case DType::kInt16:
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kInt32:
    case DType::kFloat32:
      return 4;
    case DType::kInt64:
    case DType::kFloat64:
      return 8;
  }
  MD_ASSERT(false);
  return 0;
}

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kBool:
      return "bool";
    case DType::kUInt8:
      return "uint8";
    case DType::kInt8:
      return "int8";
    case DType::kInt16:
      return "int16";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
  }
  MD_ASSERT(false);
  return {};
}

bool dtype_is_floating(DType dtype) {
  return dtype == DType::kFloat16 || dtype == DType::kBFloat16 || dtype == DType::kFloat32 ||
         dtype == DType::kFloat64;
}

std::string shape_to_string(const std::vector<std::int64_t>& shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += " x ";
    s += std::to_string(shape[i]);
  }
  return s;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

std::uint16_t float_to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or nan
    return static_cast<std::uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
  }
  if (absx >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow
  if (absx < 0x38800000u) {  // subnormal half (or zero): round to nearest even
    float a;
    std::memcpy(&a, &absx, 4);
    const float scaled = a * 16777216.0f;  // 2^24
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(scaled)));
  }
  std::uint32_t mant = absx & 0x7fffffu;
  std::uint32_t exp = (absx >> 23) - 112u;
  std::uint32_t half = (exp << 10) | (mant >> 13);
  const std::uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<std::uint16_t>(sign | half);
}

float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

std::int64_t checked_numel(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

NdArray::NdArray(DType dtype, std::vector<std::int64_t> shape, std::shared_ptr<const void> owner,
                 const std::byte* data)
    : dtype_(dtype), shape_(std::move(shape)), owner_(std::move(owner)), data_(data) {
  MD_ASSERT(checked_numel(shape_) >= 0);
}

NdArray NdArray::allocate(DType dtype, std::vector<std::int64_t> shape) {
  const std::int64_t n = checked_numel(shape);
  MD_ASSERT(n >= 0);
  const std::size_t bytes = static_cast<std::size_t>(n) * dtype_size(dtype);
  // std::byte buffer aligned for any element type.
  auto buffer = std::shared_ptr<std::byte[]>(new std::byte[bytes > 0 ? bytes : 1]());
  NdArray a(dtype, std::move(shape), buffer, buffer.get());
  a.writable_ = true;
  return a;
}

std::int64_t NdArray::numel() const {
  return checked_numel(shape_);
}

std::byte* NdArray::mutable_data() {
  MD_ASSERT(writable_);
  return const_cast<std::byte*>(data_);
}

NdArray NdArray::to_float32() const {
  if (dtype_ == DType::kFloat32) return *this;
  NdArray out = allocate(DType::kFloat32, shape_);
  float* dst = out.mutable_data_as<float>();
  const std::int64_t n = numel();
  auto convert = [&](auto load) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = load(i);
  };
  // Elements may be unaligned in a file mapping (e.g. safetensors offsets), so load via memcpy.
  auto at = [this](std::int64_t i, auto tag) {
    decltype(tag) v;
    std::memcpy(&v, data_ + static_cast<std::size_t>(i) * sizeof(v), sizeof(v));
    return v;
  };
  switch (dtype_) {
    case DType::kBool:
    case DType::kUInt8:
      convert([&](std::int64_t i) { return float(at(i, std::uint8_t{})); });
      break;
    case DType::kInt8:
      convert([&](std::int64_t i) { return float(at(i, std::int8_t{})); });
      break;
    case DType::kInt16:
      convert([&](std::int64_t i) { return float(at(i, std::int16_t{})); });
      break;
    case DType::kInt32:
      convert([&](std::int64_t i) { return float(at(i, std::int32_t{})); });
      break;
    case DType::kInt64:
      convert([&](std::int64_t i) { return float(at(i, std::int64_t{})); });
      break;
    case DType::kFloat16:
      convert([&](std::int64_t i) { return half_to_float(at(i, std::uint16_t{})); });
      break;
    case DType::kBFloat16:
      convert([&](std::int64_t i) { return bfloat16_to_float(at(i, std::uint16_t{})); });
      break;
    case DType::kFloat64:
      convert([&](std::int64_t i) { return float(at(i, double{})); });
      break;
    case DType::kFloat32:
      break;
  }
  return out;
}

NdArray NdArray::reshaped(std::vector<std::int64_t> shape) const {
  MD_ASSERT(checked_numel(shape) == numel());
  NdArray a = *this;
  a.shape_ = std::move(shape);
  return a;
}

NdArray NdArray::transposed2d() const {
  MD_ASSERT(ndim() == 2);
  const std::int64_t rows = shape_[0], cols = shape_[1];
  NdArray out = allocate(dtype_, {cols, rows});
  const std::size_t es = dtype_size(dtype_);
  std::byte* dst = out.mutable_data();
  // Blocked to stay cache-friendly on large score matrices.
  constexpr std::int64_t kBlock = 64;
  for (std::int64_t r0 = 0; r0 < rows; r0 += kBlock)
    for (std::int64_t c0 = 0; c0 < cols; c0 += kBlock)
      for (std::int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r)
        for (std::int64_t c = c0; c < std::min(cols, c0 + kBlock); ++c)
          std::memcpy(dst + static_cast<std::size_t>(c * rows + r) * es,
                      data_ + static_cast<std::size_t>(r * cols + c) * es, es);
  return out;
}

}  // namespace modeldiff::core
