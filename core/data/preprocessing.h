// From stored pixels to model input, the same way everywhere.
//
// Attribution scores are only meaningful when the model sees the images exactly as it did in
// training, so every consumer (featurizing, training, evaluation) turns an ImageDataset into
// model input through preprocess() with one Preprocessing, recorded with the results as
// describe() text. The arithmetic follows torchvision's ToTensor + Resize + Normalize:
//   uint8 x -> x / 255 (ToTensor divides; see Preprocessing::scale), resize, then
//   (x - mean[c]) / stddev[c] (Normalize subtracts, then divides),
// so a model trained with those transforms on the same pixels sees bit-identical inputs when
// no resize is involved.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/data/image_dataset.h"

namespace modeldiff::core {

struct Preprocessing {
  // Multiplies uint8 pixels; ignored for float32 images (already model input). When 1 / scale
  // is a whole number d (the default: 1 / 255), pixels are divided by d instead, which is what
  // torchvision computes and differs from x * (1.0f / 255) in the last bit for half the values.
  float scale = 1.0f / 255.0f;
  // Per channel (one value per image channel), applied after scaling and resizing; empty mean
  // = 0, empty stddev = 1.
  std::vector<float> mean, stddev;
  // Both > 0: resize every image to resize_height x resize_width; both 0: keep the size.
  int resize_height = 0, resize_width = 0;
};

bool operator==(const Preprocessing& a, const Preprocessing& b);
inline bool operator!=(const Preprocessing& a, const Preprocessing& b) {
  return !(a == b);
}

// Images [begin, end) of `data` as model input: float32 (end - begin) x C x H' x W' (channels
// first, RGB order for C = 3), H' x W' the resize target or the stored size. Input layouts:
// N x H x W x C uint8 (channels_last) or N x C x H x W float32. Resizing uses area averaging
// to shrink and bilinear interpolation to enlarge (resize_filter_for). Throws InputError when
// `p` does not fit the data (mean/stddev not one value per channel, stddev <= 0, non-finite
// values, scale <= 0, half a resize size); asserts 0 <= begin <= end <= data.size().
NdArray preprocess(const ImageDataset& data, const Preprocessing& p, std::int64_t begin,
                   std::int64_t end);

// Checks `p` against images with `channels` channels; the InputErrors preprocess() throws.
void validate(const Preprocessing& p, int channels);

// One line for provenance, in the syntax parse_preprocessing() reads back to an equal value:
// "scale=1/255,mean=0.5,std=0.25,resize=32x32" (per-channel lists as 0.485:0.456:0.406;
// floats printed with enough digits to round-trip; mean, std and resize only when set).
std::string describe(const Preprocessing& p);

// Reads describe()'s syntax: comma-separated key=value tokens, keys scale (a number or 1/d),
// mean and std (one number or a colon-separated list per channel), resize (HxW). Absent keys
// keep the defaults; "" gives the defaults. InputError names the bad token.
Preprocessing parse_preprocessing(const std::string& spec);

// Which interpolation resizing from_h x from_w to to_h x to_w uses, here and in
// load_image_folder: area averaging when neither side grows (no aliasing), bilinear otherwise.
enum class ResizeFilter { kArea, kLinear };
ResizeFilter resize_filter_for(int from_h, int from_w, int to_h, int to_w);

// Image `index` of `data` for showing to a person: H x W x C uint8 (C = 1 or 3, RGB), the
// stored size. uint8 images are copied as they are; float32 images (N x C x H x W) are
// min-max scaled per image to 0..255 (a constant image keeps its value clamped to [0, 1]
// times 255; NaN shows as 0). Throws InputError when index is out of range.
NdArray display_image(const ImageDataset& data, std::int64_t index);

}  // namespace modeldiff::core
