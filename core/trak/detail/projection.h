// Internal (LibTorch): seeded random projections of per-example gradients.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "core/trak/detail/graph_capture.h"
#include "core/trak/trak_settings.h"

namespace modeldiff::core::detail {

// A rows x cols matrix of +-1 (float32), the same for the same seed on every platform.
torch::Tensor rademacher(std::int64_t rows, std::int64_t cols, std::uint64_t seed);
// The first cols (<= rows) columns of a random orthogonal rows x rows matrix (Haar
// distributed), times sqrt(rows) so that E P P^T = cols I as for +-1 entries (float32). The same
// for the same seed on every platform up to the rounding of std::log, std::cos and std::sin.
torch::Tensor scaled_orthogonal(std::int64_t rows, std::int64_t cols, std::uint64_t seed);

// Mixes the user's seed with a checkpoint and layer index (splitmix64).
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b);

// The projection of one checkpoint: training and target gradients of that checkpoint must be
// projected by the same Projector (same seed and checkpoint index).
//
// Structured: one block per parameter with a matrix form (linear, conv, embedding weights and
// matmul operands; with its bias as a last column when the bias is only used with that
// weight), projected on both sides (P_out^T G P_in) from the op's factors, so that no
// per-example gradient of a big layer is formed. All other attributed parameters
// (normalisation, elementwise, unpaired biases) form one last block projected densely.
class Projector {
 public:
  Projector(const GraphGradients& graph, const TrakSettings& settings, int checkpoint);

  std::int64_t dim() const { return dim_; }
  std::int64_t num_params() const { return num_params_; }
  ProjectionKind kind() const { return kind_; }
  // The dense projection's p x k matrix (already scaled); undefined for the structured one.
  const torch::Tensor& dense_matrix() const { return dense_; }
  // Moves the projection matrices to `device` (that of the gradients project() will get).
  void to(const torch::Device& device);
  // B x dim features of a batch.
  torch::Tensor project(const GraphGradients& graph, const Captured& c) const;

  struct Block {                 // one matrix parameter, or the dense rest (rows = 1)
    int weight = -1, bias = -1;  // parameter indices (-1: the rest block / no bias)
    std::int64_t rows = 0, cols = 0;
    std::int64_t k1 = 0, k2 = 0;    // output and input side dimensions
    torch::Tensor p_out, p_in;      // rows x k1, cols x k2; undefined = identity
    torch::Tensor p_out_t, p_in_t;  // their transposes, contiguous (batched products)
    // Convolution weights: p_in's weight rows as filters, k2 x C_in x kh x kw.
    torch::Tensor conv_in;
    float scale = 1.0f;
  };
  const std::vector<Block>& blocks() const { return blocks_; }

 private:
  ProjectionKind kind_;
  std::int64_t dim_ = 0;
  std::int64_t num_params_ = 0;
  torch::Tensor dense_;  // p x k, already scaled by 1 / sqrt(p)
  std::vector<Block> blocks_;
  std::vector<int> block_of_;  // per parameter: its block (weight or paired bias), or -1
  std::vector<int> rest_;      // parameters of the rest block, in parameter order
  float structured_scale_ = 1.0f;
};

}  // namespace modeldiff::core::detail
