// The LibTorch side of TorchModel, for code inside core/trak only (it includes torch headers;
// never include it from a public header).
//
// `module` is the loaded TorchScript module in eval mode on `device`, with the checkpoint's
// weights. Its parameters keep requires_grad as the architecture saved it (true for a scripted
// nn.Module), so TRAK code can run forward + backward on it; TorchModel::logits itself runs
// under torch::NoGradGuard.
#pragma once

#include <string>

#include <torch/script.h>

namespace modeldiff::core::detail {

struct TorchModelImpl {
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  std::string architecture;  // path of the TorchScript architecture; "" for a full model file
  std::string checkpoint;    // path of the weights; "" when the architecture's own are used

  // The file that defines the model's code, for error messages.
  const std::string& model_file() const { return architecture.empty() ? checkpoint : architecture; }
};

}  // namespace modeldiff::core::detail
