// Internal (LibTorch): TRAK features of one checkpoint, batch by batch.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <memory>
#include <mutex>
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
//
// On the CPU, run() splits the examples into batches shared by as many workers as LibTorch has
// intra-op threads (at::get_num_threads()), each running its batches on one thread with its own
// copy of the captured graph, while LibTorch and the BLAS are set to one thread (restored
// after). The model's small ops (a convolution of 16 channels on 32 images) do not scale over
// intra-op threads, and the BLAS pool's idle threads spin between them; independent batches
// scale with the cores. The features do not depend on the number of workers.
//
// Images (4-D inputs) go through the model in channels-last memory format: LibTorch's CPU
// max-pooling is 8x faster there than in NCHW on the demo CNN (it was most of the forward
// pass), oneDNN's convolutions no slower; the values are the same up to rounding. A model that
// cannot take it (a view() of an activation) is found on the first batch and gets NCHW inputs.
class CheckpointFeaturizer {
 public:
  // `selection`: the attributed parameters (default: every trainable one).
  CheckpointFeaturizer(torch::jit::Module model, std::string name, const TrakSettings& settings,
                       int checkpoint, const ParamSelection& selection = {});
  ~CheckpointFeaturizer();
  // inputs: N x ... float32 (model input), labels: N int64, both on the CPU.
  Features run(const torch::Tensor& inputs, const torch::Tensor& labels, Progress& progress);

  const Projector& projector() const { return projector_; }
  const GraphGradients& graph() const { return graph_; }
  // Parameters left out of the attribution (not trainable, or not used by forward).
  const std::vector<std::string>& frozen_parameters() const { return frozen_; }

 private:
  // The features of examples [begin, begin + size) into `out`, with `graph` (one capture at a
  // time per graph). `out.logits` is written under `logits_mutex` (allocated by the first).
  void featurize_batch(const GraphGradients& graph, const torch::Tensor& inputs,
                       const torch::Tensor& labels, std::int64_t begin, std::int64_t size,
                       Features& out, std::mutex& logits_mutex) const;

  enum class Layout { kUntried, kChannelsLast, kAsGiven };

  torch::jit::Module model_;
  std::string name_;
  TrakSettings settings_;
  ParamSelection selection_;
  GraphGradients graph_;
  std::vector<std::unique_ptr<GraphGradients>> worker_graphs_;  // workers 1, 2, ... (CPU)
  std::vector<std::string> frozen_;
  Projector projector_;
  torch::Device device_{torch::kCPU};
  Layout layout_ = Layout::kUntried;  // of 4-D inputs on the CPU
};

}  // namespace modeldiff::core::detail
