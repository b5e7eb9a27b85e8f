// Image grids: layout arithmetic, pixels where the layout says, captions and title drawn, and
// the PNG file decoding to the rendered image.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/data/image_dataset.h"
#include "core/data/image_grid.h"

using namespace modeldiff::core;
namespace fs = std::filesystem;

namespace {

// Four 28 x 28 gray images: 0 white, 1 black, 2 a 2 x 2 checkerboard of 14-pixel squares
// (white top-left), 3 mid gray.
ImageDataset test_images() {
  ImageDataset d;
  d.source = "grid-test";
  d.images = NdArray::allocate(DType::kUInt8, {4, 28, 28, 1});
  std::uint8_t* p = d.images.mutable_data_as<std::uint8_t>();
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) {
      p[0 * 784 + y * 28 + x] = 255;
      p[1 * 784 + y * 28 + x] = 0;
      p[2 * 784 + y * 28 + x] = ((y < 14) == (x < 14)) ? 255 : 0;
      p[3 * 784 + y * 28 + x] = 128;
    }
  }
  d.labels = {0, 1, 2, 3};
  d.class_names = {"white", "black", "checker", "gray"};
  return d;
}

struct Rgb {
  int r, g, b;
};

Rgb at(const NdArray& img, int y, int x) {
  const std::uint8_t* p = img.data_as<std::uint8_t>() + (y * img.dim(1) + x) * 3;
  return {p[0], p[1], p[2]};
}

bool is(const NdArray& img, int y, int x, int v) {
  const Rgb c = at(img, y, x);
  return c.r == v && c.g == v && c.b == v;
}

// Every pixel of the rectangle [x, x + w) x [y, y + h) equals v in all channels.
::testing::AssertionResult all_equal(const NdArray& img, int x, int y, int w, int h, int v) {
  for (int yy = y; yy < y + h; ++yy)
    for (int xx = x; xx < x + w; ++xx)
      if (!is(img, yy, xx, v)) {
        const Rgb c = at(img, yy, xx);
        return ::testing::AssertionFailure() << "pixel (" << yy << ", " << xx << ") is (" << c.r
                                             << ", " << c.g << ", " << c.b << "), not " << v;
      }
  return ::testing::AssertionSuccess();
}

// The darkest value (min over channels) in a rectangle.
int darkest(const NdArray& img, int x, int y, int w, int h) {
  int m = 255;
  for (int yy = y; yy < y + h; ++yy)
    for (int xx = x; xx < x + w; ++xx) {
      const Rgb c = at(img, yy, xx);
      m = std::min({m, c.r, c.g, c.b});
    }
  return m;
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("modeldiff_grid_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

}  // namespace

TEST(ImageGrid, LayoutArithmetic) {
  GridStyle style;  // 10 columns, 96-pixel cells
  const GridLayout g = image_grid_layout(23, true, style);
  EXPECT_EQ(g.columns, 10);
  EXPECT_EQ(g.rows, 3);
  EXPECT_EQ(g.width, 960);
  EXPECT_GT(g.caption_height, 0);
  EXPECT_EQ(g.title_height, 0);
  EXPECT_EQ(g.height, 3 * (96 + g.caption_height));
  EXPECT_EQ(g.cell_x(13), 3 * 96);
  EXPECT_EQ(g.cell_y(13), 96 + g.caption_height);
  EXPECT_EQ(g.caption_y(13), 2 * 96 + g.caption_height);

  style.title = "Top 23";
  const GridLayout t = image_grid_layout(23, true, style);
  EXPECT_GT(t.title_height, 0);
  EXPECT_EQ(t.height, t.title_height + 3 * (96 + t.caption_height));
  EXPECT_EQ(t.cell_y(0), t.title_height);

  const GridLayout bare = image_grid_layout(10, false, GridStyle{});
  EXPECT_EQ(bare.caption_height, 0);
  EXPECT_EQ(bare.height, 96);
}

TEST(ImageGrid, LayoutErrors) {
  GridStyle style;
  EXPECT_THROW(image_grid_layout(0, true, style), InputError);
  style.columns = 0;
  EXPECT_THROW(image_grid_layout(3, true, style), InputError);
  style.columns = 10;
  style.cell = 8;
  EXPECT_THROW(image_grid_layout(3, true, style), InputError);
  style.cell = 96;
  try {
    image_grid_layout(70000, true, style);
    FAIL() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("70000 images"), std::string::npos) << e.what();
  }
}

TEST(ImageGrid, PixelsLandWhereTheLayoutSays) {
  const ImageDataset d = test_images();
  GridStyle style;
  style.columns = 3;
  style.cell = 96;
  style.title = "Most specific to A";
  const std::vector<std::int64_t> indices = {1, 0, 2, 3};  // black, white, checker | gray
  const std::vector<std::string> captions = {"#1 black 0.5", "#0 white", "#2 checker", ""};
  const NdArray img = render_image_grid(d, indices, captions, style);
  const GridLayout g = image_grid_layout(indices.size(), true, style);

  ASSERT_EQ(img.dtype(), DType::kUInt8);
  ASSERT_EQ(img.shape(), (std::vector<std::int64_t>{g.height, g.width, 3}));
  EXPECT_EQ(g.width, 3 * 96);
  EXPECT_EQ(g.height, g.title_height + 2 * (96 + g.caption_height));

  // 28-pixel images fill the 96 - 2 * margin room, centred in their cells.
  const int side = 96 - 2 * g.margin;
  const int off = (96 - side) / 2;
  ASSERT_GT(off, 1);

  // Cell 0: black image; cell 1: white image; the frame around them light gray.
  EXPECT_TRUE(all_equal(img, g.cell_x(0) + off, g.cell_y(0) + off, side, side, 0));
  EXPECT_TRUE(all_equal(img, g.cell_x(1) + off, g.cell_y(1) + off, side, side, 255));
  const Rgb frame = at(img, g.cell_y(1) + off - 1, g.cell_x(1) + off + 10);
  EXPECT_LT(frame.r, 255);
  EXPECT_GT(frame.r, 128);
  // Outside the frame the cell is background.
  EXPECT_TRUE(all_equal(img, g.cell_x(1), g.cell_y(1), 96, off - 1, 255));

  // Cell 2: nearest-neighbour upscale keeps the checkerboard's squares sharp.
  const int half = side / 2;
  const int x2 = g.cell_x(2) + off, y2 = g.cell_y(2) + off;
  EXPECT_TRUE(all_equal(img, x2, y2, half, half, 255));
  EXPECT_TRUE(all_equal(img, x2 + half, y2, side - half, half, 0));
  EXPECT_TRUE(all_equal(img, x2, y2 + half, half, side - half, 0));
  EXPECT_TRUE(all_equal(img, x2 + half, y2 + half, side - half, side - half, 255));

  // Cell 3 (second row): gray; cells 4 and 5 are empty and white, captions included.
  EXPECT_TRUE(all_equal(img, g.cell_x(3) + off, g.cell_y(3) + off, side, side, 128));
  EXPECT_EQ(g.cell_y(3), g.title_height + 96 + g.caption_height);
  EXPECT_TRUE(all_equal(img, g.cell_x(4), g.cell_y(4), 2 * 96, 96 + g.caption_height, 255));

  // Captions: dark text on white under cells 0-2; the empty caption of cell 3 draws nothing.
  for (int i = 0; i < 3; ++i) {
    EXPECT_LT(darkest(img, g.cell_x(i), g.caption_y(i), 96, g.caption_height), 100) << i;
  }
  EXPECT_TRUE(all_equal(img, g.cell_x(3), g.caption_y(3), 96, g.caption_height, 255));
  // Title: dark text in the title row.
  EXPECT_LT(darkest(img, 0, 0, g.width, g.title_height), 100);
}

TEST(ImageGrid, NoTitleNoCaptions) {
  const ImageDataset d = test_images();
  GridStyle style;
  style.columns = 2;
  style.cell = 32;
  const NdArray img = render_image_grid(d, {0, 1}, {}, style);
  EXPECT_EQ(img.shape(), (std::vector<std::int64_t>{32, 64, 3}));
  const GridLayout g = image_grid_layout(2, false, style);
  EXPECT_EQ(g.title_height, 0);
  const int side = 32 - 2 * g.margin;
  EXPECT_TRUE(all_equal(img, 32 + g.margin, g.margin, side, side, 0));
}

TEST(ImageGrid, LongCaptionsStayInTheirCell) {
  const ImageDataset d = test_images();
  GridStyle style;
  style.columns = 3;
  const std::string long_caption(200, 'W');
  const NdArray img = render_image_grid(d, {0, 1, 2}, {"", long_caption, ""}, style);
  const GridLayout g = image_grid_layout(3, true, style);
  EXPECT_TRUE(all_equal(img, g.cell_x(0), g.caption_y(0), 96, g.caption_height, 255));
  EXPECT_TRUE(all_equal(img, g.cell_x(2), g.caption_y(2), 96, g.caption_height, 255));
  EXPECT_LT(darkest(img, g.cell_x(1), g.caption_y(1), 96, g.caption_height), 100);
}

TEST(ImageGrid, CaptionsTooLongForOneReadableLineWrapAtASpace) {
  const ImageDataset d = test_images();
  GridStyle style;
  style.columns = 2;
  const NdArray img = render_image_grid(d, {0, 1}, {"#1234 Ankle boot 0.031", "#5"}, style);
  const GridLayout g = image_grid_layout(2, true, style);
  const int half = g.caption_height / 2;
  // Two lines: text in the upper and in the lower half of the strip.
  EXPECT_LT(darkest(img, g.cell_x(0), g.caption_y(0), 96, half - 1), 100);
  EXPECT_LT(darkest(img, g.cell_x(0), g.caption_y(0) + half + 1, 96, half - 1), 100);
  // A short caption stays on one centred line: the strip's top and bottom rows stay white.
  EXPECT_TRUE(all_equal(img, g.cell_x(1), g.caption_y(1), 96, 2, 255));
  EXPECT_TRUE(all_equal(img, g.cell_x(1), g.caption_y(1) + g.caption_height - 2, 96, 2, 255));
}

TEST(ImageGrid, ColourAndFloatImages) {
  ImageDataset rgb;
  rgb.source = "rgb";
  rgb.images = NdArray::allocate(DType::kUInt8, {1, 10, 20, 3});  // wide: 2:1
  std::uint8_t* p = rgb.images.mutable_data_as<std::uint8_t>();
  for (int k = 0; k < 200; ++k) {
    p[k * 3] = 255;  // red
    p[k * 3 + 1] = 0;
    p[k * 3 + 2] = 0;
  }
  rgb.labels = {0};
  GridStyle style;
  style.columns = 1;
  const NdArray img = render_image_grid(rgb, {0}, {"red"}, style);
  const GridLayout g = image_grid_layout(1, true, style);
  // Aspect ratio kept: full width of the room, half its height, centred.
  const int room = 96 - 2 * g.margin;
  const int y0 = (96 - room / 2) / 2;
  const Rgb c = at(img, y0 + 2, g.margin + 2);
  EXPECT_EQ(c.r, 255);
  EXPECT_EQ(c.g, 0);
  EXPECT_EQ(c.b, 0);
  EXPECT_TRUE(is(img, 5, 48, 255));  // above the image: background

  ImageDataset f;
  f.source = "float";
  f.channels_last = false;
  f.images = NdArray::allocate(DType::kFloat32, {1, 1, 2, 2});
  float* q = f.images.mutable_data_as<float>();
  q[0] = -3;
  q[1] = 5;
  q[2] = 5;
  q[3] = -3;
  f.labels = {0};
  const NdArray h = render_image_grid(f, {0}, {}, style);
  EXPECT_TRUE(is(h, g.margin + 2, g.margin + 2, 0));
  EXPECT_TRUE(is(h, g.margin + 2, 96 - g.margin - 3, 255));
}

TEST(ImageGrid, IndexOutOfRange) {
  EXPECT_THROW(render_image_grid(test_images(), {0, 4}, {}, GridStyle{}), InputError);
}

TEST(ImageGrid, PngDecodesToTheRenderedImage) {
  const ImageDataset d = test_images();
  GridStyle style;
  style.columns = 4;
  style.cell = 64;
  style.title = "Grid";
  const std::vector<std::int64_t> indices = {2, 0, 3, 1, 2};
  const std::vector<std::string> captions = {"#2 checker 0.031", "a", "b", "c", "d"};
  const std::string dir = temp_path("png");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = dir + "/grid.png";
  fs::create_directories(dir);
  {
    std::FILE* old = std::fopen(path.c_str(), "w");  // an earlier file is replaced
    ASSERT_NE(old, nullptr);
    std::fputs("old", old);
    std::fclose(old);
  }
  write_image_grid_png(path, d, indices, captions, style);
  const NdArray rendered = render_image_grid(d, indices, captions, style);

  cv::Mat bgr = cv::imread(path, cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(bgr.empty());
  ASSERT_EQ(bgr.type(), CV_8UC3);
  ASSERT_EQ(bgr.rows, rendered.dim(0));
  ASSERT_EQ(bgr.cols, rendered.dim(1));
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  ASSERT_TRUE(rgb.isContinuous());
  EXPECT_EQ(std::memcmp(rgb.data, rendered.data(), rendered.nbytes()), 0);

  // Only the grid is left in the folder: the temporary file was renamed.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "grid.png");
  }
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);

  try {
    write_image_grid_png(dir + "/no/such/folder/grid.png", d, indices, captions, style);
    FAIL() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/no/such/folder/grid.png"), std::string::npos)
        << e.what();
  }
}
