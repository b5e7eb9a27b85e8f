// Internal (includes LibTorch): the pieces of the trainer that tests check on their own.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <random>

#include "core/data/image_dataset.h"

namespace modeldiff::core::detail {

// PyTorch's default initialisation (reset_parameters), drawn from our own seeded streams so
// that a seed gives the same weights with every LibTorch version and platform:
// Conv*/ConvTranspose*/Linear weight and bias ~ U(-b, b), b = 1 / sqrt(fan_in), fan_in =
// weight.size(1) * kernel elements (kaiming_uniform_ with a = sqrt(5)); BatchNorm*, LayerNorm,
// GroupNorm weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0. Other
// modules' parameters are left alone. Works on the module's device.
void initialise_parameters(torch::jit::Module& module, std::uint64_t seed);

// In place, for every image of `batch` in order (both stored layouts: N x H x W x C uint8 or
// N x C x H x W float32): torchvision's RandomCrop(size, padding=2) with zero fill, then
// RandomHorizontalFlip(0.5), i.e. out(y, x) = in(y + dy, (flip ? W - 1 - x : x) + dx), 0 outside
// the image, dy and dx uniform in [-2, 2] and flip with probability 1/2, drawn from `rng`.
void random_crop_flip(ImageDataset& batch, std::mt19937_64& rng);

}  // namespace modeldiff::core::detail
