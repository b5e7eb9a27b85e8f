// A dataset image as a QImage, for every place the GUI shows one (thumbnails, the example
// inspector, the transformation panel's preview): one conversion of core::display_image()'s
// H x W x C uint8 pixels.
#pragma once

#include <QImage>
#include <cstdint>
#include <string>

#include "core/base/ndarray.h"
#include "core/data/image_dataset.h"

namespace modeldiff::ui {

// `pixels`: H x W x C uint8, row-major, C = 1 (grey) or 3 (RGB), as core::display_image()
// returns them. A deep copy as Format_Grayscale8 (C = 1) or Format_RGB888 (C = 3). Any other
// shape or type: core::InputError naming `source` (where the image came from).
QImage toQImage(const core::NdArray& pixels, const std::string& source);

// Image `index` of `data`, as display_image() shows it (float images min-max scaled). Throws
// core::InputError for an index out of range or an image that is not grey or RGB.
QImage datasetImage(const core::ImageDataset& data, std::int64_t index);

}  // namespace modeldiff::ui
