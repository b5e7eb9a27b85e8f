// Internal (LibTorch): TRAK features of one checkpoint, batch by batch.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/base/progress.h"
#include "core/trak/detail/graph_capture.h"
#include "core/trak/detail/projection.h"
#include "core/trak/trak_settings.h"

namespace modeldiff::core::detail {

struct Features {
  torch::Tensor features;     // N x k float32: projected margin gradients
  torch::Tensor out_to_loss;  // N: 1 - softmax(logits)_y
  torch::Tensor logits;       // N x K
};

// Holds one checkpoint's captured graph and projection, so that its training and target
// examples are projected alike. Runs on the device of the model's parameters (inputs are moved
// there batch by batch); the features come back on the CPU.
class CheckpointFeaturizer {
 public:
  // `selection`: the attributed parameters (default: every trainable one).
  CheckpointFeaturizer(torch::jit::Module model, std::string name, const TrakSettings& settings,
                       int checkpoint, const ParamSelection& selection = {});
  // inputs: N x ... float32 (model input), labels: N int64, both on the CPU.
  Features run(const torch::Tensor& inputs, const torch::Tensor& labels, Progress& progress);

  const Projector& projector() const { return projector_; }
  const GraphGradients& graph() const { return graph_; }
  // Parameters left out of the attribution (not trainable, or not used by forward).
  const std::vector<std::string>& frozen_parameters() const { return frozen_; }

 private:
  torch::jit::Module model_;
  std::string name_;
  TrakSettings settings_;
  GraphGradients graph_;
  std::vector<std::string> frozen_;
  Projector projector_;
  torch::Device device_{torch::kCPU};
};

}  // namespace modeldiff::core::detail
