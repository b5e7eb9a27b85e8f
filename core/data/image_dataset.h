// Labelled image datasets: the training examples whose attributions the tool compares.
//
// Images arrive as IDX files (MNIST, Fashion-MNIST), .npy arrays (what a user's numpy or torch
// script dumps) or a folder of image files with one sub-folder per class (torchvision's
// ImageFolder layout). Every loader returns the same ImageDataset: the raw pixels exactly as
// stored (for display and for preprocessing into model input, see preprocessing.h), one label
// per image, and class names where known. Loading checks everything a later step relies on
// (sizes agree, labels are non-negative and name a class) and says what is wrong in an
// InputError naming the file.
//
// OpenCV decodes the image files, but stays inside the .cpp files: this header, like every
// core/data header, exposes NdArray and std types only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/base/progress.h"

namespace modeldiff::core {

struct ImageDataset {
  std::string source;  // where the images came from (file or folder), for messages
  // The raw pixels, in one of two layouts:
  //   channels_last:  N x H x W x C uint8 (C = 1 or 3; RGB order for C = 3), as files store
  //                   them; grayscale N x H x W files get C = 1.
  //   !channels_last: N x C x H x W float32 (C = 1 or 3), when the file held floats (already
  //                   model input, e.g. normalised tensors saved from Python).
  NdArray images;
  bool channels_last = true;
  std::vector<std::int64_t> labels;      // N, each >= 0 (and < class_names.size() if named)
  std::vector<std::string> class_names;  // class_names[label]; empty when unknown

  std::int64_t size() const { return images.ndim() == 4 ? images.dim(0) : 0; }
  int height() const;
  int width() const;
  int channels() const;
  // class_names[label], or the label as a number when the classes are unnamed.
  std::string class_name(std::int64_t label) const;
};

// The ten Fashion-MNIST classes, in label order (0 = "T-shirt/top" ... 9 = "Ankle boot"): what
// the built-in demo project names its classes.
std::vector<std::string> fashion_mnist_class_names();

// IDX images (N x H x W uint8, plain or gzipped, as MNIST and Fashion-MNIST ship) and an IDX
// (or any integer-vector) label file. The result is N x H x W x 1 uint8, channels_last, with
// no class names (IDX files carry none; a project names them, see project.h).
ImageDataset load_idx_dataset(const std::string& images, const std::string& labels);

// A .npy image array and a label file of any format load_integer_vector() reads. Supported:
//   N x H x W uint8            -> N x H x W x 1 uint8, channels_last
//   N x H x W x C uint8, C 1|3 -> as is, channels_last (C = 3 is taken as RGB)
//   N x C x H x W float, C 1|3 -> N x C x H x W float32, channels first (float16/64 converted)
// Anything else is refused with an InputError listing these.
ImageDataset load_npy_dataset(const std::string& images, const std::string& labels);

// One sub-folder of `root` per class: class_names are the sub-folders' names sorted (byte
// order), label = index into them, and images are taken in sorted file-name order within each
// class. Files with an image extension (png, jpg, jpeg, bmp, ppm, pgm, pbm, pnm, tif, tiff,
// webp; any case) are read; other files and hidden entries are skipped, as torchvision's
// ImageFolder does. Images are converted to RGB, or kept grayscale when every image is
// grayscale; 16-bit images are reduced to 8 bits and alpha is dropped. Result: N x H x W x C
// uint8, channels_last.
// With height and width > 0 every image is resized to height x width (area averaging when
// shrinking, bilinear when enlarging: resize_filter_for() in preprocessing.h); with both 0
// every image must have the first image's size, else an InputError names the first file of
// another size. Reports progress per file and honours cancellation (throws Cancelled).
ImageDataset load_image_folder(const std::string& root, int height = 0, int width = 0,
                               Progress* progress = nullptr);

// Dispatches on what `images` is: a directory -> load_image_folder (its labels come from the
// sub-folders, so `labels` must be empty); an IDX file (plain or gzipped, recognised by its
// magic bytes) -> load_idx_dataset; a .npy file -> load_npy_dataset. The result has that
// loader's layout (N x H x W x C uint8, or N x C x H x W float32 from a float .npy).
ImageDataset load_dataset(const std::string& images, const std::string& labels,
                          Progress* progress = nullptr);

// The images at `indices` (in that order, repeats allowed), with their labels: K x H x W x C
// uint8 or K x C x H x W float32 (K = indices.size()), the layout of `data`, with its source
// and class names. Throws InputError naming the first index out of range.
ImageDataset subset(const ImageDataset& data, const std::vector<std::int64_t>& indices);

}  // namespace modeldiff::core
