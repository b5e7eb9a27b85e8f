// Planting a patch into some images of one class, and hiding the region from every image:
// checked pixel by pixel against a copy of the untouched images.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "core/base/error.h"
#include "core/data/planted_feature.h"

using namespace modeldiff::core;

namespace {

// n images of h x w x c with every pixel distinct from 0 and 255 (so a stamp or a blank always
// shows), labels i % classes.
ImageDataset make_data(std::int64_t n, int h, int w, int c, int classes) {
  ImageDataset d;
  d.source = "synthetic";
  d.images = NdArray::allocate(DType::kUInt8, {n, h, w, c});
  auto* p = d.images.mutable_data_as<std::uint8_t>();
  for (std::int64_t k = 0; k < d.images.numel(); ++k) p[k] = static_cast<std::uint8_t>(1 + k % 250);
  for (std::int64_t i = 0; i < n; ++i) d.labels.push_back(i % classes);
  return d;
}

std::uint8_t at(const ImageDataset& d, std::int64_t i, int y, int x, int c) {
  const auto& s = d.images.shape();
  return d.images.data_as<std::uint8_t>()[((i * s[1] + y) * s[2] + x) * s[3] + c];
}

bool in_patch(const PlantedPatch& p, int y, int x) {
  return y >= p.y && y < p.y + p.size && x >= p.x && x < p.x + p.size;
}

// Every pixel of `after` equals `before`, except inside the patch of the images in `changed`,
// where it equals `value`.
void expect_pixels(const ImageDataset& before, const ImageDataset& after, const PlantedPatch& p,
                   const std::set<std::int64_t>& changed, std::uint8_t value) {
  ASSERT_EQ(before.images.shape(), after.images.shape());
  for (std::int64_t i = 0; i < before.size(); ++i)
    for (int y = 0; y < before.height(); ++y)
      for (int x = 0; x < before.width(); ++x)
        for (int c = 0; c < before.channels(); ++c) {
          const bool stamped = changed.count(i) > 0 && in_patch(p, y, x);
          ASSERT_EQ(at(after, i, y, x, c), stamped ? value : at(before, i, y, x, c))
              << "image " << i << " y " << y << " x " << x << " c " << c;
        }
}

}  // namespace

TEST(PlantPatch, StampsTheChosenFractionOfOneClassOnly) {
  const ImageDataset original = make_data(100, 8, 9, 3, 4);  // 25 images per class
  ImageDataset data = make_data(100, 8, 9, 3, 4);
  const PlantedPatch patch{3, 5, 2, 200};  // size 3 at x = 5, y = 2: touches columns 5..7
  const std::vector<std::int64_t> stamped = plant_patch(data, patch, 2, 0.4, 7);

  ASSERT_EQ(stamped.size(), 10u);  // round(0.4 * 25)
  EXPECT_TRUE(std::is_sorted(stamped.begin(), stamped.end()));
  const std::set<std::int64_t> unique(stamped.begin(), stamped.end());
  EXPECT_EQ(unique.size(), stamped.size());
  for (const std::int64_t i : stamped) EXPECT_EQ(data.labels[static_cast<std::size_t>(i)], 2);
  expect_pixels(original, data, patch, unique, 200);
  EXPECT_EQ(data.labels, original.labels);
}

TEST(PlantPatch, SeededAndDifferentForAnotherSeed) {
  ImageDataset a = make_data(200, 4, 4, 1, 2), b = make_data(200, 4, 4, 1, 2),
               c = make_data(200, 4, 4, 1, 2);
  const PlantedPatch patch{2, 1, 1, 255};
  const auto first = plant_patch(a, patch, 1, 0.3, 11);
  EXPECT_EQ(first, plant_patch(b, patch, 1, 0.3, 11));
  EXPECT_NE(first, plant_patch(c, patch, 1, 0.3, 12));
  EXPECT_EQ(first.size(), 30u);
}

TEST(PlantPatch, WholeImagePatchAndFractionEdges) {
  const ImageDataset original = make_data(6, 3, 3, 1, 2);
  ImageDataset data = make_data(6, 3, 3, 1, 2);
  const PlantedPatch whole{3, 0, 0, 255};
  EXPECT_TRUE(plant_patch(data, whole, 0, 0.0, 0).empty());
  expect_pixels(original, data, whole, {}, 255);
  EXPECT_EQ(plant_patch(data, whole, 1, 1.0, 0), (std::vector<std::int64_t>{1, 3, 5}));
  expect_pixels(original, data, whole, {1, 3, 5}, 255);
}

TEST(PlantPatch, BorrowedImagesAreCopiedNotWritten) {
  ImageDataset owner = make_data(4, 2, 2, 1, 1);
  const std::vector<std::uint8_t> bytes(owner.images.data_as<std::uint8_t>(),
                                        owner.images.data_as<std::uint8_t>() + 16);
  ImageDataset data = owner;
  data.images = NdArray(DType::kUInt8, {4, 2, 2, 1}, nullptr, owner.images.data());
  const PlantedPatch patch{1, 1, 1, 255};
  EXPECT_EQ(plant_patch(data, patch, 0, 1.0, 0).size(), 4u);
  EXPECT_EQ(std::vector<std::uint8_t>(owner.images.data_as<std::uint8_t>(),
                                      owner.images.data_as<std::uint8_t>() + 16),
            bytes);
  expect_pixels(owner, data, patch, {0, 1, 2, 3}, 255);
}

TEST(PlantPatch, RefusesBadInput) {
  ImageDataset data = make_data(10, 6, 6, 1, 2);
  EXPECT_THROW(plant_patch(data, PlantedPatch{3, 4, 0, 255}, 0, 0.5, 0), InputError);  // x
  EXPECT_THROW(plant_patch(data, PlantedPatch{3, 0, 4, 255}, 0, 0.5, 0), InputError);  // y
  EXPECT_THROW(plant_patch(data, PlantedPatch{3, -1, 0, 255}, 0, 0.5, 0), InputError);
  EXPECT_THROW(plant_patch(data, PlantedPatch{0, 0, 0, 255}, 0, 0.5, 0), InputError);
  EXPECT_THROW(plant_patch(data, PlantedPatch{}, 0, 1.5, 0), InputError);
  EXPECT_THROW(plant_patch(data, PlantedPatch{}, 0, -0.1, 0), InputError);
  try {
    plant_patch(data, PlantedPatch{}, 7, 0.5, 0);
    FAIL() << "no image has label 7";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("7"), std::string::npos) << e.what();
  }
  ImageDataset floats;
  floats.source = "x.npy";
  floats.channels_last = false;
  floats.images = NdArray::allocate(DType::kFloat32, {2, 1, 6, 6});
  floats.labels = {0, 1};
  EXPECT_THROW(plant_patch(floats, PlantedPatch{}, 0, 1.0, 0), InputError);
  EXPECT_THROW(hide_patch_region(floats, PlantedPatch{}), InputError);
  EXPECT_THROW(hide_patch_region(data, PlantedPatch{7, 0, 0, 255}), InputError);
}

TEST(HidePatchRegion, BlanksTheRegionInEveryImage) {
  const ImageDataset original = make_data(12, 7, 5, 3, 3);
  ImageDataset data = make_data(12, 7, 5, 3, 3);
  const PlantedPatch patch{2, 3, 5, 255};  // bottom-right corner: rows 5..6, columns 3..4
  hide_patch_region(data, patch);
  std::set<std::int64_t> all;
  for (std::int64_t i = 0; i < 12; ++i) all.insert(i);
  expect_pixels(original, data, patch, all, 0);
}

TEST(HidePatchRegion, HidesWhatWasPlanted) {
  ImageDataset data = make_data(20, 6, 6, 1, 2);
  const PlantedPatch patch{3, 0, 0, 255};
  ASSERT_FALSE(plant_patch(data, patch, 0, 1.0, 3).empty());
  hide_patch_region(data, patch);
  for (std::int64_t i = 0; i < 20; ++i)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) EXPECT_EQ(at(data, i, y, x, 0), 0);
}
