// Transformations on inputs that once crashed or were undefined: pastes outside the image,
// image files of every channel count and depth, negative or fractional seeds and positions,
// datasets with other channel counts. Every case either gives exact pixels or an InputError
// naming the key; none may write outside the image (the ASan build runs these too).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/data/transform.h"

using namespace modeldiff::core;

namespace {

ImageDataset flat(int n, int h, int w, int c, std::uint8_t value) {
  ImageDataset d;
  d.source = "flat";
  d.images = NdArray::allocate(DType::kUInt8, {n, h, w, c});
  auto* p = d.images.mutable_data_as<std::uint8_t>();
  for (std::int64_t i = 0; i < d.images.numel(); ++i) p[i] = value;
  d.labels.assign(static_cast<std::size_t>(n), 0);
  return d;
}

std::uint8_t px(const ImageDataset& d, int i, int y, int x, int ch = 0) {
  const int h = d.height(), w = d.width(), c = d.channels();
  return d.images.data_as<std::uint8_t>()[((i * h + y) * w + x) * c + ch];
}

std::string error_of(const std::string& spec, const ImageDataset& d) {
  try {
    apply_transform(d, parse_transform(spec));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string write(const std::string& name, const cv::Mat& m) {
  const std::string path = testing::TempDir() + "/safety_" + name;
  EXPECT_TRUE(cv::imwrite(path, m)) << path;
  return path;
}

// A 1-row 8-bit grey + alpha PNG, written byte by byte (stored deflate block, CRC-32, Adler-32).
void write_grey_alpha_png(const std::string& path,
                          const std::vector<std::pair<std::uint8_t, std::uint8_t>>& row) {
  const auto crc32 = [](const std::string& bytes) {
    std::uint32_t c = 0xffffffffu;
    for (unsigned char b : bytes) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
  };
  const auto be32 = [](std::uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  const auto chunk = [&](const std::string& type, const std::string& data) {
    return be32(static_cast<std::uint32_t>(data.size())) + type + data + be32(crc32(type + data));
  };
  std::string raw(1, '\0');  // filter type 0
  for (const auto& [grey, alpha] : row) {
    raw += static_cast<char>(grey);
    raw += static_cast<char>(alpha);
  }
  std::uint32_t a = 1, b = 0;
  for (unsigned char v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  const auto len = static_cast<std::uint16_t>(raw.size());
  std::string z = "\x78\x01\x01";
  z += {static_cast<char>(len & 0xff), static_cast<char>(len >> 8), static_cast<char>(~len & 0xff),
        static_cast<char>((~len >> 8) & 0xff)};
  z += raw + be32((b << 16) | a);
  const std::string ihdr = be32(static_cast<std::uint32_t>(row.size())) + be32(1) +
                           std::string{8, 4, 0, 0, 0};  // depth 8, grey + alpha
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) +
                          chunk("IDAT", z) + chunk("IEND", "");
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  std::fwrite(png.data(), 1, png.size(), f);
  std::fclose(f);
}

}  // namespace

TEST(TransformSafety, PasteIsClippedOnEverySide) {
  const std::string dot = write("dot3.pgm", cv::Mat(3, 3, CV_8UC1, cv::Scalar(200)));
  const ImageDataset d = flat(1, 5, 6, 1, 10);
  // Up and left: only the pasted image's bottom-right pixel lands, at (0, 0).
  const ImageDataset tl = apply_transform(d, parse_transform("paste:image=" + dot + ",x=-2,y=-2"));
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x) EXPECT_EQ(px(tl, 0, y, x), (y == 0 && x == 0) ? 200 : 10) << y << x;
  // Down and right: the top-left 1 x 2 of it, at row 4, columns 4 and 5.
  const ImageDataset br = apply_transform(d, parse_transform("paste:image=" + dot + ",x=4,y=4"));
  int changed = 0;
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x) changed += px(br, 0, y, x) == 200;
  EXPECT_EQ(changed, 2);
  EXPECT_EQ(px(br, 0, 4, 4), 200);
  EXPECT_EQ(px(br, 0, 4, 5), 200);
  // Wholly outside: the image is unchanged.
  const ImageDataset out =
      apply_transform(d, parse_transform("paste:image=" + dot + ",x=-50,y=90"));
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x) EXPECT_EQ(px(out, 0, y, x), 10);
}

TEST(TransformSafety, PasteReadsEveryChannelCountAndDepth) {
  // Grey + alpha PNG (colour type 4, as GIMP or PIL's mode "LA" write it; OpenCV cannot):
  // the grey value where alpha is 255, the image where it is 0.
  const std::string ga = testing::TempDir() + "/safety_ga.png";
  write_grey_alpha_png(ga, {{90, 255}, {90, 0}});
  const ImageDataset g =
      apply_transform(flat(1, 2, 2, 1, 10), parse_transform("paste:image=" + ga));
  EXPECT_EQ(px(g, 0, 0, 0), 90);
  EXPECT_EQ(px(g, 0, 0, 1), 10);
  const ImageDataset rgb =
      apply_transform(flat(1, 2, 2, 3, 10), parse_transform("paste:image=" + ga));
  for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(px(rgb, 0, 0, 0, ch), 90);
  // 16-bit colour: reduced to 8 bits (65535 -> 255), BGR in the file, RGB in the image.
  cv::Mat deep(1, 1, CV_16UC3, cv::Scalar(0, 257 * 100, 65535));  // B, G, R
  const std::string dp = write("deep.png", deep);
  const ImageDataset c =
      apply_transform(flat(1, 2, 2, 3, 10), parse_transform("paste:image=" + dp));
  EXPECT_EQ(px(c, 0, 0, 0, 0), 255);
  EXPECT_EQ(px(c, 0, 0, 0, 1), 100);
  EXPECT_EQ(px(c, 0, 0, 0, 2), 0);
  // Colour + alpha onto grey, scaled down to nothing but one pixel.
  const std::string rgba = write("rgba.png", cv::Mat(4, 4, CV_8UC4, cv::Scalar(60, 60, 60, 255)));
  const ImageDataset s =
      apply_transform(flat(1, 3, 3, 1, 10), parse_transform("paste:image=" + rgba + ",scale=0.1"));
  EXPECT_EQ(px(s, 0, 0, 0), 60);
  EXPECT_EQ(px(s, 0, 1, 1), 10);
}

TEST(TransformSafety, ParametersAreCheckedForTypeAndRange) {
  const ImageDataset d = flat(1, 4, 4, 1, 0);
  const std::string dot = write("dot1.pgm", cv::Mat(1, 1, CV_8UC1, cv::Scalar(1)));
  const std::pair<const char*, const char*> cases[] = {
      {"noise:sigma=3,seed=-1", "noise.seed"},     // was an undefined conversion
      {"noise:sigma=3,seed=0.5", "noise.seed"},    // not a whole number
      {"noise:sigma=3,seed=1e300", "noise.seed"},  // beyond 2^53
      {"texture:image=IMG,seed=-7", "texture.seed"},
      {"patch:x=1.5,y=0,w=1,h=1", "patch.x"},
      {"patch:x=0,y=0,size=-1", "patch.size"},
      {"paste:image=IMG,x=0.25", "paste.x"},
      {"paste:image=IMG,y=1e9", "paste.y"},
      {"paste:image=IMG,scale=-1", "paste.scale"},
      {"blur:sigma=nan", "blur.sigma"},
      {"rotate:degrees=inf", "rotate.degrees"},
  };
  for (const auto& [spec_template, key] : cases) {
    std::string spec = spec_template;
    if (const auto at = spec.find("IMG"); at != std::string::npos) spec.replace(at, 3, dot);
    const std::string e = error_of(spec, d);
    EXPECT_NE(e.find(key), std::string::npos) << spec << " -> '" << e << "'";
  }
  // Large but valid seeds are fine and reproducible.
  const Transform n = parse_transform("noise:sigma=30,seed=9007199254740992");
  const ImageDataset a = apply_transform(flat(1, 4, 4, 1, 128), n);
  const ImageDataset b = apply_transform(flat(1, 4, 4, 1, 128), n);
  EXPECT_EQ(std::memcmp(a.images.data(), b.images.data(), a.images.nbytes()), 0);
}

TEST(TransformSafety, ImagesTheStepsCannotTakeAreRefused) {
  // 4-channel (e.g. RGBA .npy) and 2-channel datasets: no step knows their layout.
  for (int c : {2, 4}) {
    const std::string e = error_of("tint:r=1,alpha=0.5", flat(1, 3, 3, c, 0));
    EXPECT_NE(e.find("1 or 3 channels"), std::string::npos) << c << ": " << e;
  }
  // A paste that would need gigabytes after scaling is refused, not allocated.
  const std::string big = write("big.png", cv::Mat(1000, 1000, CV_8UC1, cv::Scalar(1)));
  EXPECT_NE(error_of("paste:image=" + big + ",scale=100", flat(1, 3, 3, 1, 0)).find("paste.scale"),
            std::string::npos);
  // A texture much smaller than the image, in both directions, covers it.
  const std::string tiny = write("tiny.png", cv::Mat(1, 3, CV_8UC1, cv::Scalar(200)));
  const ImageDataset t =
      apply_transform(flat(2, 7, 5, 1, 0), parse_transform("texture:image=" + tiny + ",delta=1"));
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 5; ++x) EXPECT_EQ(px(t, 1, y, x), 200);
  // A file that is not an image.
  const std::string junk = testing::TempDir() + "/safety_junk.png";
  FILE* f = std::fopen(junk.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("not a png", f);
  std::fclose(f);
  EXPECT_NE(error_of("paste:image=" + junk, flat(1, 3, 3, 1, 0)).find("cannot read the image"),
            std::string::npos);
}

TEST(TransformSafety, HugeBlurStaysBounded) {
  // sigma 1e4 on a 5 x 5 image: a near-uniform average of the reflected image (a kernel no
  // wider than twice the image, not 60001 taps).
  ImageDataset d = flat(1, 5, 5, 1, 0);
  d.images.mutable_data_as<std::uint8_t>()[12] = 250;  // centre
  const ImageDataset b = apply_transform(d, parse_transform("blur:sigma=10000"));
  int lo = 255, hi = 0;
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) {
      lo = std::min<int>(lo, px(b, 0, y, x));
      hi = std::max<int>(hi, px(b, 0, y, x));
    }
  EXPECT_GT(lo, 5);
  EXPECT_LT(hi, 30);
  EXPECT_LE(hi - lo, 8);
}
