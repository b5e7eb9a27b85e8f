// Internal (LibTorch): seeded random projections of per-example gradients.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "core/trak/detail/sequential.h"
#include "core/trak/trak_settings.h"

namespace modeldiff::core::detail {

// A rows x cols matrix of +-1 (float32), the same for the same seed on every platform.
torch::Tensor rademacher(std::int64_t rows, std::int64_t cols, std::uint64_t seed);

// Mixes the user's seed with a checkpoint and layer index (splitmix64).
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b);

// The projection of one checkpoint: training and target gradients of that checkpoint must be
// projected by the same Projector (same seed and checkpoint index).
class Projector {
 public:
  Projector(const std::vector<Layer>& layers, const TrakSettings& settings, int checkpoint);

  std::int64_t dim() const { return dim_; }
  std::int64_t num_params() const { return num_params_; }
  ProjectionKind kind() const { return kind_; }
  // The dense projection's p x k matrix (already scaled); undefined for the structured one.
  const torch::Tensor& dense_matrix() const { return dense_; }
  // Moves the projection matrices to `device` (that of the gradients project() will get).
  void to(const torch::Device& device);
  // B x dim features of a batch.
  torch::Tensor project(const std::vector<Layer>& layers, const MarginGradients& g) const;

  struct Block {                  // one trainable layer (structured projection)
    std::int64_t k1 = 0, k2 = 0;  // output and input side dimensions
    torch::Tensor p_out, p_in;    // rows x k1, cols x k2; undefined = identity
    float scale = 1.0f;
  };
  const std::vector<Block>& blocks() const { return blocks_; }

 private:
  ProjectionKind kind_;
  std::int64_t dim_ = 0;
  std::int64_t num_params_ = 0;
  torch::Tensor dense_;  // p x k, already scaled by 1 / sqrt(p)
  std::vector<Block> blocks_;
  float structured_scale_ = 1.0f;
};

}  // namespace modeldiff::core::detail
