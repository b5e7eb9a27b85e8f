// libFuzzer target for image transformations: a transformation text (parse_transform), its
// strength swept (with_strength), applied to small images of fuzzed size, grey or colour.
// Paste and texture steps may name the image files this target writes at start-up into a
// folder of its own (grey, grey + alpha, colour, colour + alpha, 16-bit, 1 x 1 and larger than
// the images): every image= value is taken inside that folder, and a text with a path
// separator is skipped, so that a run only reads those.
// Only InputError may escape; anything else (a cv::Exception, a crash, an ASan report) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
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

// Where the image files are; every "image=" value of a fuzzed text is taken inside it.
std::string image_dir;

void write_images() {
  const auto dir = std::filesystem::temp_directory_path() / "modeldiff_fuzz_transform";
  std::filesystem::create_directories(dir);
  image_dir = dir.string() + "/";
  // The working folder stays as it is (libFuzzer's corpus paths are relative to it).
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  cv::Mat grey(5, 7, CV_8UC1), bgr(4, 4, CV_8UC3), bgra(9, 2, CV_8UC4), deep(3, 5, CV_16UC3),
      dot(1, 1, CV_8UC1), big(40, 33, CV_8UC3);
  cv::randu(grey, 0, 256);
  cv::randu(bgr, 0, 256);
  cv::randu(bgra, 0, 256);
  cv::randu(deep, 0, 65536);
  dot.setTo(200);
  cv::randu(big, 0, 256);
  cv::imwrite("g.png", grey);
  // A 3 x 2 grey + alpha PNG (colour type 4), which OpenCV cannot write.
  static const unsigned char kGreyAlphaPng[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
      0x44, 0x52, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x08, 0x04, 0x00, 0x00,
      0x00, 0x37, 0x7d, 0xae, 0x91, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78,
      0x9c, 0x63, 0xe0, 0xfa, 0x7f, 0x82, 0x21, 0xaa, 0x81, 0xe1, 0x97, 0x1c, 0xc3, 0x7f,
      0x5f, 0x5f, 0x00, 0x26, 0x9c, 0x05, 0x5d, 0x50, 0x85, 0x69, 0x8a, 0x00, 0x00, 0x00,
      0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  if (FILE* f = std::fopen("ga.png", "wb")) {
    std::fwrite(kGreyAlphaPng, 1, sizeof kGreyAlphaPng, f);
    std::fclose(f);
  }
  cv::imwrite("c.png", bgr);
  cv::imwrite("ca.png", bgra);
  cv::imwrite("d.png", deep);
  cv::imwrite("p.pgm", dot);
  cv::imwrite("b.png", big);
  std::filesystem::current_path(cwd);
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
  std::string text(reinterpret_cast<const char*>(data + 4), size - 4);
  if (text.find('/') != std::string::npos || text.find('\\') != std::string::npos) return 0;
  for (std::size_t at = text.find("image="); at != std::string::npos;
       at = text.find("image=", at + 6 + image_dir.size()))
    text.insert(at + 6, image_dir);

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
