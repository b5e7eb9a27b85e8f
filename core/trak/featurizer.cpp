#include "core/trak/detail/featurizer.h"

#include <algorithm>

#include "core/base/error.h"

namespace modeldiff::core::detail {
namespace {

constexpr std::int64_t kDenseCaptureBatch = 32;

}  // namespace

CheckpointFeaturizer::CheckpointFeaturizer(torch::jit::Module model, std::string name,
                                           const TrakSettings& settings, int checkpoint,
                                           const ParamSelection& selection)
    : model_(std::move(model)),
      name_(std::move(name)),
      settings_(settings),
      graph_(model_, name_, selection),
      frozen_(graph_.left_out()),
      projector_(graph_, settings_, checkpoint) {
  for (const auto& p : model_.parameters()) {
    device_ = p.device();
    break;
  }
  if (!device_.is_cpu()) projector_.to(device_);
}

Features CheckpointFeaturizer::run(const torch::Tensor& inputs, const torch::Tensor& labels,
                                   Progress& progress) {
  const std::int64_t n = inputs.size(0);
  if (labels.dim() != 1 || labels.size(0) != n)
    throw InputError(name_, "labels do not match the inputs")
        .expected(std::to_string(n) + " labels")
        .found(std::to_string(labels.numel()));
  Features out;
  out.features = torch::empty({n, projector_.dim()}, torch::kFloat32);
  out.out_to_loss = torch::empty({n}, torch::kFloat32);
  const std::int64_t batch = std::max(1, settings_.batch_size);
  const bool dense = projector_.kind() == ProjectionKind::kDense;
  // The dense projection multiplies whole batches of flat gradients (a large GEMM runs at the
  // machine's peak), but the forward and backward passes run faster in small sub-batches whose
  // activations stay in cache.
  const std::int64_t capture = dense ? std::min(batch, kDenseCaptureBatch) : batch;
  torch::Tensor flat;
  for (std::int64_t begin = 0; begin < n; begin += batch) {
    const std::int64_t size = std::min(batch, n - begin);
    if (dense)
      flat = torch::empty({size, projector_.num_params()},
                          torch::TensorOptions().dtype(torch::kFloat32).device(device_));
    for (std::int64_t sub = 0; sub < size; sub += capture) {
      progress.throw_if_cancelled();
      const std::int64_t count = std::min(capture, size - sub);
      const torch::Tensor x = inputs.narrow(0, begin + sub, count).to(device_);
      const torch::Tensor y = labels.narrow(0, begin + sub, count).to(device_, torch::kLong);
      const Captured g = graph_.capture(x, y);
      torch::NoGradGuard no_grad;
      if (dense)
        flat.narrow(0, sub, count).copy_(graph_.flat(g));
      else
        out.features.narrow(0, begin + sub, count).copy_(projector_.project(graph_, g));
      const torch::Tensor p = torch::softmax(g.logits, 1).gather(1, y.unsqueeze(1)).squeeze(1);
      out.out_to_loss.narrow(0, begin + sub, count).copy_(1.0f - p);
      if (!out.logits.defined()) out.logits = torch::empty({n, g.logits.size(1)}, torch::kFloat32);
      out.logits.narrow(0, begin + sub, count).copy_(g.logits);
    }
    if (dense) {
      torch::NoGradGuard no_grad;
      torch::Tensor target = out.features.narrow(0, begin, size);
      if (device_.is_cpu())
        torch::mm_out(target, flat, projector_.dense_matrix());
      else
        target.copy_(flat.mm(projector_.dense_matrix()));
    }
    progress.report(static_cast<double>(begin + size) / static_cast<double>(n),
                    "featurizing " + std::to_string(begin + size) + "/" + std::to_string(n));
  }
  return out;
}

}  // namespace modeldiff::core::detail
