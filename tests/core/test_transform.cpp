// Image transformations for counterfactual tests: pixel-exact on small images.
#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "core/base/error.h"
#include "core/data/transform.h"

using namespace modeldiff::core;

namespace {

// n images of h x w x c uint8, pixel value (10 * i + y * w + x + ch) % 200.
ImageDataset images(int n, int h, int w, int c) {
  ImageDataset d;
  d.source = "test";
  d.images = NdArray::allocate(DType::kUInt8, {n, h, w, c});
  auto* p = d.images.mutable_data_as<std::uint8_t>();
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int ch = 0; ch < c; ++ch)
          p[((i * h + y) * w + x) * c + ch] =
              static_cast<std::uint8_t>((10 * i + y * w + x + ch) % 200);
  for (int i = 0; i < n; ++i) d.labels.push_back(i % 3);
  return d;
}

std::uint8_t px(const ImageDataset& d, int i, int y, int x, int ch = 0) {
  const int h = d.height(), w = d.width(), c = d.channels();
  return d.images.data_as<std::uint8_t>()[((i * h + y) * w + x) * c + ch];
}

}  // namespace

TEST(Transform, PatchIsStampedExactly) {
  const ImageDataset d = images(2, 6, 5, 1);
  const ImageDataset t = apply_transform(d, parse_transform("patch:x=1,y=2,w=3,h=2,value=250"));
  ASSERT_EQ(t.size(), 2);
  for (int i = 0; i < 2; ++i)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 5; ++x) {
        const bool in = x >= 1 && x < 4 && y >= 2 && y < 4;
        EXPECT_EQ(px(t, i, y, x), in ? 250 : px(d, i, y, x)) << i << " " << y << " " << x;
      }
  EXPECT_EQ(t.labels, d.labels);
  // Checkerboard and colour.
  const ImageDataset rgb = images(1, 4, 4, 3);
  const ImageDataset c =
      apply_transform(rgb, parse_transform("patch:x=0,y=0,size=2,r=255,g=0,b=10,pattern=checker"));
  EXPECT_EQ(px(c, 0, 0, 0, 0), 255);
  EXPECT_EQ(px(c, 0, 0, 0, 2), 10);
  EXPECT_EQ(px(c, 0, 0, 1, 0), 0);  // flipped: 255 - 255
  EXPECT_EQ(px(c, 0, 0, 1, 1), 255);
  EXPECT_EQ(px(c, 0, 2, 2, 0), px(rgb, 0, 2, 2, 0));
}

TEST(Transform, TintGrayscaleAndIdentityAtStrengthZero) {
  const ImageDataset d = images(1, 3, 3, 3);
  const ImageDataset t = apply_transform(d, parse_transform("tint:r=200,g=100,b=0,alpha=0.5"));
  for (int ch = 0; ch < 3; ++ch) {
    const double target[3] = {200, 100, 0};
    EXPECT_EQ(px(t, 0, 1, 1, ch), std::lround(0.5 * px(d, 0, 1, 1, ch) + 0.5 * target[ch]));
  }
  const ImageDataset g = apply_transform(d, parse_transform("grayscale:alpha=1"));
  const double lum =
      0.299 * px(d, 0, 2, 1, 0) + 0.587 * px(d, 0, 2, 1, 1) + 0.114 * px(d, 0, 2, 1, 2);
  for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(px(g, 0, 2, 1, ch), std::lround(lum));
  for (const char* spec : {"tint:r=9,alpha=0", "blur:sigma=0", "noise:sigma=0", "rotate:degrees=0",
                           "crop_resize:aspect=1", "patch:x=0,y=0,size=0", "brightness:delta=0",
                           "autocontrast:alpha=0", "flip:alpha=0", "shift:dx=0,dy=0"}) {
    const ImageDataset same = apply_transform(d, parse_transform(spec));
    EXPECT_EQ(std::memcmp(same.images.data(), d.images.data(), d.images.nbytes()), 0) << spec;
  }
}

TEST(Transform, BrightnessScalesAndAutocontrastUndoesIt) {
  ImageDataset d = images(2, 4, 4, 1);
  auto* p = d.images.mutable_data_as<std::uint8_t>();
  for (int i = 0; i < 32; ++i) p[i] = static_cast<std::uint8_t>(20 + 7 * i);  // 20 .. 237
  const ImageDataset dark = apply_transform(d, parse_transform("brightness:delta=-0.5"));
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(dark.images.data_as<std::uint8_t>()[i], std::lround(0.5 * p[i])) << i;
  const ImageDataset bright = apply_transform(d, parse_transform("brightness:delta=1"));
  EXPECT_EQ(bright.images.data_as<std::uint8_t>()[31], 255);  // 2 x 237, clipped
  // Each image stretched to 0 .. 255 on its own: image 0 spans 20 .. 125, image 1 132 .. 237.
  const ImageDataset a = apply_transform(d, parse_transform("autocontrast"));
  const ImageDataset b = apply_transform(dark, parse_transform("autocontrast"));
  for (int i = 0; i < 32; ++i) {
    const double lo = i < 16 ? 20 : 132;
    EXPECT_EQ(a.images.data_as<std::uint8_t>()[i], std::lround((p[i] - lo) * 255.0 / 105)) << i;
    // A darkened image comes back to within the rounding of the darkening.
    EXPECT_NEAR(b.images.data_as<std::uint8_t>()[i], a.images.data_as<std::uint8_t>()[i], 3) << i;
  }
  EXPECT_THROW(parse_transform("brightness:delta=-2"), InputError);
}

TEST(Transform, FlipMirrorsAndShiftMovesWithZerosComingIn) {
  const ImageDataset d = images(2, 4, 5, 3);
  const ImageDataset h = apply_transform(d, parse_transform("flip"));
  const ImageDataset v = apply_transform(d, parse_transform("flip:axis=vertical"));
  const ImageDataset half = apply_transform(d, parse_transform("flip:alpha=0.5"));
  for (int i = 0; i < 2; ++i)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          EXPECT_EQ(px(h, i, y, x, ch), px(d, i, y, 4 - x, ch));
          EXPECT_EQ(px(v, i, y, x, ch), px(d, i, 3 - y, x, ch));
          EXPECT_EQ(px(half, i, y, x, ch),
                    std::lround(0.5 * px(d, i, y, x, ch) + 0.5 * px(d, i, y, 4 - x, ch)));
        }
  // Twice is the identity.
  const ImageDataset back = apply_transform(h, parse_transform("flip"));
  EXPECT_EQ(std::memcmp(back.images.data(), d.images.data(), d.images.nbytes()), 0);
  for (const auto& [dx, dy] : std::vector<std::pair<int, int>>{{2, 0}, {-1, 3}, {0, -2}, {9, 0}}) {
    const std::string spec = "shift:dx=" + std::to_string(dx) + ",dy=" + std::to_string(dy);
    const ImageDataset s = apply_transform(d, parse_transform(spec));
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) {
        const int sy = y - dy, sx = x - dx;  // where the pixel came from
        const bool inside = sy >= 0 && sy < 4 && sx >= 0 && sx < 5;
        EXPECT_EQ(px(s, 1, y, x, 2), inside ? px(d, 1, sy, sx, 2) : 0) << spec << " " << y << x;
      }
  }
  EXPECT_DOUBLE_EQ(strength_of(parse_transform("shift:dx=-3")), -3);
  EXPECT_EQ(with_strength(parse_transform("shift:dx=1,dy=2"), 4).text, "shift:dx=4,dy=2");
  EXPECT_THROW(parse_transform("flip:axis=diagonal"), InputError);
  EXPECT_THROW(parse_transform("shift:dx=1.5"), InputError);
  EXPECT_THROW(parse_transform("flip:alpha=2"), InputError);
}

TEST(Transform, NoiseIsSeededPerImageAndRotationIsExact) {
  const ImageDataset d = images(3, 8, 8, 1);
  const Transform n = parse_transform("noise:sigma=20,seed=3");
  const ImageDataset a = apply_transform(d, n), b = apply_transform(d, n);
  EXPECT_EQ(std::memcmp(a.images.data(), b.images.data(), a.images.nbytes()), 0);
  const ImageDataset other = apply_transform(d, parse_transform("noise:sigma=20,seed=4"));
  EXPECT_NE(std::memcmp(a.images.data(), other.images.data(), a.images.nbytes()), 0);
  // Image 2 alone gets the same noise as image 2 of the whole set.
  const ImageDataset two = apply_transform(d, n, {2});
  EXPECT_EQ(std::memcmp(two.images.data(), a.images.data() + 2 * 64, 64), 0);
  // 180 degrees about the centre maps (y, x) to (7 - y, 7 - x).
  const ImageDataset r = apply_transform(d, parse_transform("rotate:degrees=180"));
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) EXPECT_EQ(px(r, 1, y, x), px(d, 1, 7 - y, 7 - x));
}

TEST(Transform, BlurMatchesTheGaussianAndCropResizeKeepsTheSize) {
  ImageDataset d = images(1, 9, 9, 1);
  auto* p = d.images.mutable_data_as<std::uint8_t>();
  std::fill(p, p + 81, 0);
  p[4 * 9 + 4] = 200;  // one bright pixel: the blur spreads it by the Gaussian's weights
  const ImageDataset b = apply_transform(d, parse_transform("blur:sigma=1"));
  const double g1 = std::exp(-0.5), norm = 1 + 2 * g1 + 2 * std::exp(-2.0) + 2 * std::exp(-4.5);
  EXPECT_NEAR(px(b, 0, 4, 4), 200 / (norm * norm), 1.0);
  EXPECT_NEAR(px(b, 0, 4, 5), 200 * g1 / (norm * norm), 1.0);
  const ImageDataset c =
      apply_transform(images(1, 8, 8, 1), parse_transform("crop_resize:aspect=2"));
  EXPECT_EQ(c.height(), 8);
  EXPECT_EQ(c.width(), 8);
}

TEST(Transform, CropResizeCropsTheCentreExactly) {
  // Wider (aspect 4 on 4 x 8): rows 1-2 are kept and stretched back to 4 rows; a pattern that
  // varies along columns only comes back unchanged (row 0's marker is cropped away).
  ImageDataset d = images(1, 4, 8, 1);
  auto* p = d.images.mutable_data_as<std::uint8_t>();
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x) p[y * 8 + x] = static_cast<std::uint8_t>(20 * x + (y == 0 ? 5 : 0));
  const ImageDataset wide = apply_transform(d, parse_transform("crop_resize:aspect=4"));
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x) EXPECT_EQ(px(wide, 0, y, x), 20 * x) << y << " " << x;
  // Narrower (aspect 0.5 on 8 x 8): columns 2-5 are kept; a pattern along rows only survives.
  ImageDataset t = images(1, 8, 8, 1);
  auto* q = t.images.mutable_data_as<std::uint8_t>();
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) q[y * 8 + x] = static_cast<std::uint8_t>(20 * y + (x < 2 ? 7 : 0));
  const ImageDataset tall = apply_transform(t, parse_transform("crop_resize:aspect=0.5"));
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) EXPECT_EQ(px(tall, 0, y, x), 20 * y) << y << " " << x;
}

TEST(Transform, TexturePasteAndStrength) {
  const std::string dir = testing::TempDir();
  cv::Mat tex(10, 10, CV_8UC1, cv::Scalar(100));
  ASSERT_TRUE(cv::imwrite(dir + "/tex.png", tex));
  const ImageDataset d = images(2, 4, 4, 1);
  const ImageDataset t =
      apply_transform(d, parse_transform("texture:image=" + dir + "/tex.png,delta=0.25"));
  EXPECT_EQ(px(t, 1, 2, 3), std::lround(0.75 * px(d, 1, 2, 3) + 25));
  cv::Mat logo(2, 2, CV_8UC4, cv::Scalar(50, 50, 50, 255));
  logo.at<cv::Vec4b>(1, 1)[3] = 0;  // transparent corner
  ASSERT_TRUE(cv::imwrite(dir + "/logo.png", logo));
  const ImageDataset p =
      apply_transform(d, parse_transform("paste:image=" + dir + "/logo.png,x=1,y=1"));
  EXPECT_EQ(px(p, 0, 1, 1), 50);
  EXPECT_EQ(px(p, 0, 2, 2), px(d, 0, 2, 2));  // alpha 0 keeps the image
  const Transform s = with_strength(parse_transform("patch:x=0,y=0,w=3,h=3"), 2);
  EXPECT_DOUBLE_EQ(strength_of(s), 2);
  EXPECT_EQ(parse_transform(s.text).text, s.text);
}

TEST(Transform, MistakesAreNamed) {
  const auto message = [](const std::string& spec) {
    try {
      parse_transform(spec);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("sparkle:x=1").find("unknown transformation step"), std::string::npos);
  EXPECT_NE(message("patch:q=1").find("patch.q"), std::string::npos);
  EXPECT_NE(message("patch:x=abc").find("patch.x"), std::string::npos);
  EXPECT_NE(message("tint:alpha=2").find("tint.alpha"), std::string::npos);
  EXPECT_NE(message("paste:image=/no/such.png").find("/no/such.png"), std::string::npos);
  EXPECT_NE(message("").find("empty"), std::string::npos);
  EXPECT_THROW(apply_transform(images(1, 4, 4, 1), parse_transform("patch:x=3,y=0,w=3,h=1")),
               InputError);
}
