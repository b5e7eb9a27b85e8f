// Image transformations that test a hypothesis ModelDiff suggests ("A relies on this patch,
// this colour, this texture; B does not"): applied to raw pixels, before preprocessing, so the
// models see transformed images exactly as they would see such images in the wild.
//
// A transformation is a chain of steps written as text, steps separated by ';':
//   patch:x=1,y=1,w=3,h=3,value=255          solid square (value, or r,g,b for colour images);
//                                            pattern=checker alternates value and 255 - value
//   paste:image=logo.png,x=0,y=0,scale=1     an image file pasted with its alpha channel
//   texture:image=fur.png,delta=0.3,seed=0   (1 - delta) * image + delta * a random crop of the
//                                            texture (seeded per image), resized if smaller
//   tint:r=255,g=0,b=0,alpha=0.3             (1 - alpha) * image + alpha * colour
//   grayscale:alpha=1                        blend with the image's luminance
//   blur:sigma=1                             Gaussian blur (OpenCV, kernel 2 * ceil(3 sigma) + 1)
//   noise:sigma=10,seed=0                    additive Gaussian noise, seeded per image
//   rotate:degrees=15                        about the centre, borders filled with 0
//   crop_resize:aspect=1.5                   centre crop to width / height = aspect, resized back
//   brightness:delta=-0.5                    every pixel times 1 + delta (clipped to 255)
//   autocontrast:alpha=1                     per-image stretch of the darkest value to 0 and the
//                                            brightest to 255 (a per-image normalisation), blended
//   flip:alpha=1,axis=horizontal             blend with the mirror image (axis=vertical: upside
//                                            down); alpha 1 is a random-flip augmentation's flip
//   shift:dx=2,dy=0                          content moved dx pixels right, dy down (negative:
//                                            left, up), 0 coming in: a random crop's shift
// Every step has one "strength" key that sweeps scale (patch: w and h together as "size";
// paste: scale; texture: delta; tint and grayscale: alpha; blur and noise: sigma; rotate:
// degrees; crop_resize: aspect, identity at 1; brightness: delta; autocontrast and flip: alpha;
// shift: dx).
// Strength 0 (aspect 1) is the identity: the
// control of a sweep. Results are rounded to uint8 and are the same on every run for the same
// seed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/data/image_dataset.h"

namespace modeldiff::core {

struct TransformStep {
  std::string kind;                         // "patch", "tint", ...
  std::map<std::string, std::string> args;  // as written, checked by parse_transform
};

struct Transform {
  std::vector<TransformStep> steps;
  std::string text;  // canonical text (parse(text) gives the same transform)
};

// Parses and checks the text (unknown step or key, a value that is not a number, a missing
// image file, values out of range): InputError naming the step and the key.
Transform parse_transform(const std::string& text);

// The same transform with the strength of its first step with a strength key set to `value`
// (the key a sweep varies; "size" for patch).
Transform with_strength(const Transform& t, double value);

// The strength of the first step (its value as written; patch: its w).
double strength_of(const Transform& t);

// Applies the transform to the images at `indices` of `data` (all images when empty) and
// returns them as a new dataset in the same order, with their labels. `data` must be uint8
// channels_last (N x H x W x C); InputError otherwise, or when a step does not fit the image
// (a patch outside it). Image index i of the result uses seed (step seed, indices[i]).
ImageDataset apply_transform(const ImageDataset& data, const Transform& t,
                             const std::vector<std::int64_t>& indices = {});

}  // namespace modeldiff::core
