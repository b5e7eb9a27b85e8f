#include <algorithm>
#include <cmath>
#include <random>

#include "core/base/error.h"
#include "core/trak/detail/projection.h"

namespace modeldiff::core::detail {

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (a + 1) + 0xbf58476d1ce4e5b9ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

torch::Tensor rademacher(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  torch::Tensor out = torch::empty({rows, cols}, torch::kFloat32);
  float* p = out.data_ptr<float>();
  std::mt19937_64 rng(seed);
  const std::int64_t n = rows * cols;
  for (std::int64_t i = 0; i < n; i += 64) {
    std::uint64_t bits = rng();
    const std::int64_t end = std::min<std::int64_t>(n, i + 64);
    for (std::int64_t j = i; j < end; ++j, bits >>= 1) p[j] = (bits & 1u) ? 1.0f : -1.0f;
  }
  return out;
}

namespace {

// A layer whose output side has at most this many rows (a classifier head, a narrow
// convolution) keeps rows - 1 dimensions of that side and spends the rest of its share on the
// input side: the output side is cheap to keep and projecting it hard loses the most
// information per dimension. Not all rows: the margin's gradient with respect to the logits
// sums to zero, so an exact classifier head would give every example's features the same
// k2 linear dependencies and make the kernel singular.
constexpr std::int64_t kExactOutputRows = 16;

std::vector<const Layer*> trainable(const std::vector<Layer>& layers) {
  std::vector<const Layer*> out;
  for (const auto& l : layers)
    if (l.kind != LayerKind::kPassThrough) out.push_back(&l);
  return out;
}

}  // namespace

Projector::Projector(const std::vector<Layer>& layers, const TrakSettings& settings, int checkpoint)
    : kind_(settings.projection) {
  const auto layers_t = trainable(layers);
  for (const Layer* l : layers_t) num_params_ += l->grad_rows() * l->grad_cols();
  if (settings.proj_dim < 1)
    throw InputError("", "projection dimension must be positive")
        .found(std::to_string(settings.proj_dim));
  const auto ck = static_cast<std::uint64_t>(checkpoint);
  if (kind_ == ProjectionKind::kDense) {
    dim_ = settings.proj_dim;
    dense_ = rademacher(num_params_, dim_, mix_seed(settings.seed, ck, 0)) /
             std::sqrt(static_cast<float>(num_params_));
    return;
  }
  // Water-filling: layers whose whole gradient fits their share are kept exactly; the rest of
  // the dimensions are shared in proportion to the layers' sizes.
  const std::size_t n = layers_t.size();
  std::vector<std::int64_t> size(n), target(n, -1);
  for (std::size_t i = 0; i < n; ++i) size[i] = layers_t[i]->grad_rows() * layers_t[i]->grad_cols();
  double remaining = settings.proj_dim;
  for (bool changed = true; changed;) {
    changed = false;
    double pending = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (target[i] < 0) pending += static_cast<double>(size[i]);
    for (std::size_t i = 0; i < n && pending > 0; ++i)
      if (target[i] < 0 && static_cast<double>(size[i]) <= remaining * size[i] / pending) {
        target[i] = size[i];
        remaining -= static_cast<double>(size[i]);
        changed = true;
      }
  }
  double pending = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (target[i] < 0) pending += static_cast<double>(size[i]);
  for (std::size_t i = 0; i < n; ++i)
    if (target[i] < 0)
      target[i] =
          std::max<std::int64_t>(1, static_cast<std::int64_t>(remaining * size[i] / pending));

  blocks_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t rows = layers_t[i]->grad_rows(), cols = layers_t[i]->grad_cols();
    Block& b = blocks_[i];
    if (target[i] >= size[i]) {
      b.k1 = rows;
      b.k2 = cols;
    } else {
      // Split the layer's dimensions between the output and input sides in proportion to
      // their sizes (k1 / k2 ~ rows / cols).
      const double t = static_cast<double>(target[i]);
      b.k1 = rows <= kExactOutputRows && rows >= 2 && target[i] >= rows
                 ? rows - 1
                 : std::clamp<std::int64_t>(std::llround(std::sqrt(t * rows / cols)), 1, rows);
      b.k2 = std::clamp<std::int64_t>(target[i] / b.k1, 1, cols);
    }
    float scale = 1.0f;
    if (b.k1 < rows) {
      b.p_out = rademacher(rows, b.k1, mix_seed(settings.seed, ck, 2 * i + 1));
      scale /= std::sqrt(static_cast<float>(b.k1));
    }
    if (b.k2 < cols) {
      b.p_in = rademacher(cols, b.k2, mix_seed(settings.seed, ck, 2 * i + 2));
      scale /= std::sqrt(static_cast<float>(b.k2));
    }
    b.scale = scale;
    dim_ += b.k1 * b.k2;
  }
  // Same overall scale as the dense projection: E ||phi||^2 = (k / p) ||g||^2.
  structured_scale_ = std::sqrt(static_cast<float>(dim_) / static_cast<float>(num_params_));
}

void Projector::to(const torch::Device& device) {
  if (dense_.defined()) dense_ = dense_.to(device);
  for (Block& b : blocks_) {
    if (b.p_out.defined()) b.p_out = b.p_out.to(device);
    if (b.p_in.defined()) b.p_in = b.p_in.to(device);
  }
}

torch::Tensor Projector::project(const std::vector<Layer>& layers, const MarginGradients& g) const {
  if (kind_ == ProjectionKind::kDense) return flat_gradients(layers, g).mm(dense_);
  std::vector<torch::Tensor> parts;
  std::size_t k = 0;
  for (const auto& layer : layers) {
    if (layer.kind == LayerKind::kPassThrough) continue;
    const Block& b = blocks_[k];
    const CapturedLayer& captured = g.layers[k++];
    const std::int64_t batch = captured.output_grad.size(0);
    const std::int64_t rows = layer.grad_rows(), cols = layer.grad_cols();
    torch::Tensor block;  // B x k1 x k2
    if (layer.kind == LayerKind::kLinear) {
      // A rank-one gradient: project delta and [a, 1] separately, then take the outer product.
      torch::Tensor d = bias_gradient(layer, captured);  // B x rows (= delta)
      torch::Tensor a = captured.input.reshape({batch, -1});
      if (layer.bias.defined()) a = torch::cat({a, torch::ones({batch, 1}, a.options())}, 1);
      if (b.p_out.defined()) d = d.mm(b.p_out);
      if (b.p_in.defined()) a = a.mm(b.p_in);
      block = d.unsqueeze(2) * a.unsqueeze(1);
    } else {
      // P_out^T G P_in per example, both sides as GEMMs over the whole batch, in the cheaper
      // order.
      torch::Tensor grad = layer_gradient(layer, captured);  // B x rows x cols
      const auto right = [&](const torch::Tensor& x) {
        return b.p_in.defined()
                   ? x.reshape({-1, x.size(2)}).mm(b.p_in).view({batch, x.size(1), b.k2})
                   : x;
      };
      const auto left = [&](const torch::Tensor& x) {
        return b.p_out.defined() ? torch::matmul(b.p_out.t(), x) : x;
      };
      const double in_first = static_cast<double>(rows) * cols * b.k2 + b.k1 * rows * b.k2;
      const double out_first = static_cast<double>(b.k1) * rows * cols + b.k1 * cols * b.k2;
      block = in_first <= out_first ? left(right(grad)) : right(left(grad));
    }
    parts.push_back(block.reshape({batch, -1}) * (b.scale * structured_scale_));
  }
  return torch::cat(parts, 1);
}

}  // namespace modeldiff::core::detail
