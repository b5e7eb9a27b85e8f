// A fixture .npy file (tests/fixtures/gen_*.py) as a LibTorch tensor: int64 arrays as kLong,
// every other dtype as float32. For the LibTorch tests only (it needs torch's headers).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/io/npy.h"
#include "core/test_paths.h"

namespace modeldiff::test {

inline torch::Tensor load_tensor(const std::string& name) {
  const core::NdArray a = core::read_npy(test_fixture(name));
  std::vector<std::int64_t> shape = a.shape();
  if (a.dtype() == core::DType::kInt64)
    return torch::from_blob(const_cast<std::byte*>(a.data()), shape, torch::kLong).clone();
  const core::NdArray f = a.to_float32();
  return torch::from_blob(const_cast<std::byte*>(f.data()), shape, torch::kFloat32).clone();
}

}  // namespace modeldiff::test
