// libFuzzer target for image transformations: a transformation text (parse_transform), its
// strength swept (with_strength), applied to small images of fuzzed size, grey or colour.
// Paste and texture steps may name the image files this target writes at start-up into its
// working folder (grey, grey + alpha, colour, colour + alpha, 16-bit, 1 x 1 and larger than
// the images); a text naming any other path is skipped, so that a run only reads those.
// Only InputError may escape; anything else (a cv::Exception, a crash, an ASan report) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/data/image_dataset.h"
#include "core/data/transform.h"

using namespace modeldiff::core;

namespace {

void write_images() {
  const auto dir = std::filesystem::temp_directory_path() / "modeldiff_fuzz_transform";
  std::filesystem::create_directories(dir);
  std::filesystem::current_path(dir);
  cv::Mat grey(5, 7, CV_8UC1), grey_alpha(6, 3, CV_8UC2), bgr(4, 4, CV_8UC3), bgra(9, 2, CV_8UC4),
      deep(3, 5, CV_16UC3), dot(1, 1, CV_8UC1), big(40, 33, CV_8UC3);
  cv::randu(grey, 0, 256);
  cv::randu(grey_alpha, 0, 256);
  cv::randu(bgr, 0, 256);
  cv::randu(bgra, 0, 256);
  cv::randu(deep, 0, 65536);
  dot.setTo(200);
  cv::randu(big, 0, 256);
  cv::imwrite("g.png", grey);
  cv::imwrite("ga.png", grey_alpha);
  cv::imwrite("c.png", bgr);
  cv::imwrite("ca.png", bgra);
  cv::imwrite("d.png", deep);
  cv::imwrite("p.pgm", dot);
  cv::imwrite("b.png", big);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  write_images();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const int h = 1 + data[0] % 13, w = 1 + data[1] % 13;
  const int c = (data[2] & 1) ? 3 : 1;
  const int n = 1 + (data[2] >> 1) % 3;
  const double strength = static_cast<std::int8_t>(data[3]) / 4.0;
  const std::string text(reinterpret_cast<const char*>(data + 4), size - 4);
  if (text.find('/') != std::string::npos || text.find('\\') != std::string::npos) return 0;

  ImageDataset images;
  images.source = "fuzz";
  images.images = NdArray::allocate(DType::kUInt8, {n, h, w, c});
  std::uint8_t* px = images.images.mutable_data_as<std::uint8_t>();
  for (std::int64_t i = 0; i < images.images.numel(); ++i)
    px[i] = static_cast<std::uint8_t>(i * 37 + data[i % size]);
  images.labels.assign(static_cast<std::size_t>(n), 0);
  try {
    const Transform t = parse_transform(text);
    (void)strength_of(t);
    const ImageDataset out = apply_transform(images, t);
    if (out.size() != n || out.height() != h || out.width() != w || out.channels() != c)
      std::abort();
    const ImageDataset swept = apply_transform(images, with_strength(t, strength), {n - 1, 0});
    if (swept.size() != 2) std::abort();
  } catch (const InputError&) {
  }
  return 0;
}
