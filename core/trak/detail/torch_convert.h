// Copies between the project's NdArray (C-contiguous, row-major) and torch::Tensor.
// For code inside core/trak only (includes torch headers).
#pragma once

#include <torch/torch.h>

#include "core/base/ndarray.h"

namespace modeldiff::core::detail {

// The torch dtype of an NdArray dtype (every DType has one) and back. to_dtype throws
// InputError for torch dtypes NdArray cannot hold (complex, quantized).
torch::ScalarType to_scalar_type(DType dtype);
DType to_dtype(torch::ScalarType type);

// A new CPU tensor with the array's shape, dtype and values (a copy: the array may be a
// borrowed, unaligned view of a mapped file).
torch::Tensor to_tensor(const NdArray& array);

// A new owned NdArray with the tensor's shape, dtype and values; works for any device and
// any strides (copies to a contiguous CPU tensor first). Detaches from autograd.
NdArray to_ndarray(const torch::Tensor& tensor);

// The tensor's shape as a vector (for shape_to_string and comparisons).
std::vector<std::int64_t> shape_of(const torch::Tensor& tensor);

}  // namespace modeldiff::core::detail
