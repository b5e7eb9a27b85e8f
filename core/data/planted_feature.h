// A planted feature: a small square patch stamped into some training images of one class.
//
// ModelDiff's demo needs a difference between two algorithms whose answer is known. Algorithm
// A trains on data where a fraction of one class carries a bright patch (a spurious feature
// its models can learn); algorithm B trains on the same data with the patch region blanked in
// every image, so it cannot use the feature. The distinguishing direction ModelDiff finds for
// A should then single out the stamped examples, whose indices plant_patch() returns.
#pragma once

#include <cstdint>
#include <vector>

#include "core/data/image_dataset.h"

namespace modeldiff::core {

struct PlantedPatch {
  int size = 3;              // side in pixels
  int x = 0, y = 0;          // top-left corner, in pixels (x = column, y = row)
  std::uint8_t value = 255;  // written to every channel of every pixel of the patch
};

// Stamps `patch` into round(fraction * K) images of `target_class` (K = the number of images
// with that label), chosen at random from `seed` (the same images for the same seed and data
// on every platform). Returns the indices of the stamped images, ascending.
// `data` must be N x H x W x C uint8 (channels_last); the patch must lie inside the image.
// Throws InputError when the layout is not uint8 channels_last, the patch leaves the image or
// has size < 1, fraction is not in [0, 1], or no image has label target_class.
// The images are copied before stamping when `data` borrows them (a memory-mapped file).
std::vector<std::int64_t> plant_patch(ImageDataset& data, const PlantedPatch& patch,
                                      std::int64_t target_class, double fraction,
                                      std::uint64_t seed);

// The images plant_patch() would stamp: round(fraction * K) of the K images with label
// `target_class`, the first entries of a partial Fisher-Yates shuffle seeded by `seed`,
// ascending (the same on every platform). For features other than a square patch (any
// transformation, core/data/transform.h), applied by the caller. InputError when fraction is not
// in [0, 1] or no image has label target_class.
std::vector<std::int64_t> choose_planted(const ImageDataset& data, std::int64_t target_class,
                                         double fraction, std::uint64_t seed);

// Sets the patch region to 0 in every channel of EVERY image: the data as an algorithm that
// cannot see the planted feature gets it. Same layout and bounds requirements (InputError).
void hide_patch_region(ImageDataset& data, const PlantedPatch& patch);

}  // namespace modeldiff::core
