#include "dataset_image.h"

#include <algorithm>
#include <cstddef>
#include <new>

#include "core/base/error.h"
#include "core/data/preprocessing.h"

namespace modeldiff::ui {

QImage toQImage(const core::NdArray& pixels, const std::string& source) {
  if (pixels.dtype() != core::DType::kUInt8 || pixels.ndim() != 3)
    throw core::InputError(source, "cannot be shown as an image")
        .expected("H x W x C uint8 pixels")
        .found(core::shape_to_string(pixels.shape()) + " " + core::dtype_name(pixels.dtype()));
  const std::int64_t h = pixels.dim(0), w = pixels.dim(1), c = pixels.dim(2);
  if (c != 1 && c != 3)
    throw core::InputError(source, "cannot be shown as an image")
        .expected("1 (grey) or 3 (RGB) channels")
        .found(std::to_string(c) + " channels");
  // QImage sizes are int; a larger image is not one a dataset holds.
  constexpr std::int64_t kMaxSide = 1 << 15;
  if (h < 1 || w < 1 || h > kMaxSide || w > kMaxSide)
    throw core::InputError(source, "cannot be shown as an image")
        .expected("1 to " + std::to_string(kMaxSide) + " pixels a side")
        .found(std::to_string(h) + " x " + std::to_string(w));
  QImage image(static_cast<int>(w), static_cast<int>(h),
               c == 1 ? QImage::Format_Grayscale8 : QImage::Format_RGB888);
  if (image.isNull()) throw std::bad_alloc();
  const auto* src = pixels.data_as<std::uint8_t>();
  const auto row = static_cast<std::size_t>(w * c);  // bytes; scan lines may be padded
  for (int y = 0; y < image.height(); ++y)
    std::copy_n(src + static_cast<std::size_t>(y) * row, row, image.scanLine(y));
  return image;
}

QImage datasetImage(const core::ImageDataset& data, std::int64_t index) {
  return toQImage(core::display_image(data, index),
                  data.source + " (image " + std::to_string(index) + ")");
}

}  // namespace modeldiff::ui
