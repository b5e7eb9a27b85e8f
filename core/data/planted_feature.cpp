#include "core/data/planted_feature.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "core/base/error.h"

namespace modeldiff::core {

namespace {

// Checks the layout and the patch bounds; the InputErrors of both public functions.
void check(const ImageDataset& data, const PlantedPatch& patch) {
  if (!data.channels_last || data.images.dtype() != DType::kUInt8 || data.images.ndim() != 4) {
    throw InputError(data.source, "a patch can only be planted in stored uint8 pixels")
        .expected("N x H x W x C uint8 images")
        .found(dtype_name(data.images.dtype()) + " " + shape_to_string(data.images.shape()) +
               (data.channels_last ? "" : " (channels first: already model input)"));
  }
  const int h = data.height(), w = data.width();
  if (patch.size < 1 || patch.x < 0 || patch.y < 0 || patch.x > w - patch.size ||
      patch.y > h - patch.size) {
    throw InputError(data.source, "the patch does not fit inside the images")
        .expected("size >= 1 and the square inside " + std::to_string(h) + " x " +
                  std::to_string(w) + " pixels")
        .found("size " + std::to_string(patch.size) + " at x = " + std::to_string(patch.x) +
               ", y = " + std::to_string(patch.y));
  }
}

// Fills the patch of image `i` with `value` in every channel.
void fill(std::uint8_t* images, int h, int w, int c, std::int64_t i, const PlantedPatch& patch,
          std::uint8_t value) {
  const auto row_bytes = static_cast<std::size_t>(w) * static_cast<std::size_t>(c);
  std::uint8_t* image =
      images + static_cast<std::size_t>(i) * static_cast<std::size_t>(h) * row_bytes;
  for (int r = patch.y; r < patch.y + patch.size; ++r) {
    std::uint8_t* p = image + static_cast<std::size_t>(r) * row_bytes +
                      static_cast<std::size_t>(patch.x) * static_cast<std::size_t>(c);
    std::memset(p, value, static_cast<std::size_t>(patch.size) * static_cast<std::size_t>(c));
  }
}

// The images as an owned, writable array (the loaded one may borrow a memory map).
std::uint8_t* writable_pixels(ImageDataset& data) {
  NdArray copy = NdArray::allocate(DType::kUInt8, data.images.shape());
  if (copy.nbytes() > 0) std::memcpy(copy.mutable_data(), data.images.data(), copy.nbytes());
  data.images = std::move(copy);
  return data.images.mutable_data_as<std::uint8_t>();
}

// Uniform in [0, n), n > 0, from the raw engine output (std distributions differ between
// standard libraries; this keeps the chosen images the same everywhere).
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) {
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
  std::uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

}  // namespace

std::vector<std::int64_t> choose_planted(const ImageDataset& data, std::int64_t target_class,
                                         double fraction, std::uint64_t seed) {
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    throw InputError("", "the fraction of images to stamp must be between 0 and 1")
        .found(std::to_string(fraction));
  }
  std::vector<std::int64_t> candidates;
  for (std::size_t i = 0; i < data.labels.size(); ++i)
    if (data.labels[i] == target_class) candidates.push_back(static_cast<std::int64_t>(i));
  if (candidates.empty()) {
    throw InputError(data.source, "no image has the class to plant the patch in")
        .expected("a label present in the data")
        .found(std::to_string(target_class));
  }

  // The first `count` entries of a seeded partial Fisher-Yates shuffle.
  const auto k = candidates.size();
  const auto count = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(k)));
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(uniform_below(rng, k - i));
    std::swap(candidates[i], candidates[j]);
  }
  candidates.resize(count);
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

std::vector<std::int64_t> plant_patch(ImageDataset& data, const PlantedPatch& patch,
                                      std::int64_t target_class, double fraction,
                                      std::uint64_t seed) {
  check(data, patch);
  const std::vector<std::int64_t> candidates = choose_planted(data, target_class, fraction, seed);
  if (!candidates.empty()) {
    std::uint8_t* pixels = writable_pixels(data);
    for (const std::int64_t i : candidates)
      fill(pixels, data.height(), data.width(), data.channels(), i, patch, patch.value);
  }
  return candidates;
}

void hide_patch_region(ImageDataset& data, const PlantedPatch& patch) {
  check(data, patch);
  if (data.size() == 0) return;
  std::uint8_t* pixels = writable_pixels(data);
  for (std::int64_t i = 0; i < data.size(); ++i)
    fill(pixels, data.height(), data.width(), data.channels(), i, patch, 0);
}

}  // namespace modeldiff::core
