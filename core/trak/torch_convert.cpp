#include "core/trak/detail/torch_convert.h"

#include <cstring>

#include "core/base/error.h"

namespace modeldiff::core::detail {

torch::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::kBool:
      return torch::kBool;
    case DType::kUInt8:
      return torch::kUInt8;
    case DType::kInt8:
      return torch::kInt8;
    case DType::kInt16:
      return torch::kInt16;
    case DType::kInt32:
      return torch::kInt32;
    case DType::kInt64:
      return torch::kInt64;
    case DType::kFloat16:
      return torch::kFloat16;
    case DType::kBFloat16:
      return torch::kBFloat16;
    case DType::kFloat32:
      return torch::kFloat32;
    case DType::kFloat64:
      return torch::kFloat64;
  }
  MD_ASSERT(false);
  return torch::kFloat32;
}

DType to_dtype(torch::ScalarType type) {
  switch (type) {
    case torch::kBool:
      return DType::kBool;
    case torch::kUInt8:
      return DType::kUInt8;
    case torch::kInt8:
      return DType::kInt8;
    case torch::kInt16:
      return DType::kInt16;
    case torch::kInt32:
      return DType::kInt32;
    case torch::kInt64:
      return DType::kInt64;
    case torch::kFloat16:
      return DType::kFloat16;
    case torch::kBFloat16:
      return DType::kBFloat16;
    case torch::kFloat32:
      return DType::kFloat32;
    case torch::kFloat64:
      return DType::kFloat64;
    default:
      throw InputError("", "unsupported tensor dtype")
          .expected("bool, integer or floating point")
          .found(c10::toString(type));
  }
}

std::vector<std::int64_t> shape_of(const torch::Tensor& tensor) {
  return std::vector<std::int64_t>(tensor.sizes().begin(), tensor.sizes().end());
}

torch::Tensor to_tensor(const NdArray& array) {
  torch::Tensor t =
      torch::empty(array.shape(), torch::TensorOptions().dtype(to_scalar_type(array.dtype())));
  if (array.nbytes() > 0) std::memcpy(t.data_ptr(), array.data(), array.nbytes());
  return t;
}

NdArray to_ndarray(const torch::Tensor& tensor) {
  const torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  NdArray out = NdArray::allocate(to_dtype(cpu.scalar_type()), shape_of(cpu));
  if (out.nbytes() > 0) std::memcpy(out.mutable_data(), cpu.data_ptr(), out.nbytes());
  return out;
}

}  // namespace modeldiff::core::detail
