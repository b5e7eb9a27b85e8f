// Image dataset loaders and preprocessing, against files from tests/fixtures/gen_images.py,
// PNG/JPEG files written here with OpenCV, and the real Fashion-MNIST files when installed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/skip.h"
#include "common/temp_dir.h"
#include "core/base/error.h"
#include "core/base/ndarray.h"
#include "core/data/image_dataset.h"
#include "core/data/preprocessing.h"
#include "test_paths.h"

using namespace modeldiff::core;
using modeldiff::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string fx(const std::string& name) {
  return modeldiff::test::test_fixture("images/" + name);
}

// Mirrors pixel() in gen_images.py.
int pixel(std::int64_t i, std::int64_t y, std::int64_t x, std::int64_t c) {
  return static_cast<int>((i * 31 + y * 7 + x * 3 + c * 60) % 256);
}

// Mirrors float_images() in gen_images.py.
float float_pixel(std::int64_t i, std::int64_t c, std::int64_t y, std::int64_t x) {
  return static_cast<float>((i - 2) * 0.5 + c * 0.25 + y * 0.125 + x * 0.0625);
}

std::uint8_t at_hwc(const ImageDataset& d, std::int64_t i, std::int64_t y, std::int64_t x,
                    std::int64_t c) {
  const auto& s = d.images.shape();
  return d.images.data_as<std::uint8_t>()[((i * s[1] + y) * s[2] + x) * s[3] + c];
}

float at_chw(const NdArray& a, std::int64_t i, std::int64_t c, std::int64_t y, std::int64_t x) {
  const auto& s = a.shape();
  return a.data_as<float>()[((i * s[1] + c) * s[2] + y) * s[3] + x];
}

// Runs `f`, expecting an InputError whose message contains every one of `parts`.
template <typename F>
std::string expect_input_error(F f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const InputError& e) {
    const std::string what = e.what();
    for (const auto& part : parts)
      EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' not in: " << what;
    return what;
  }
  ADD_FAILURE() << "no InputError thrown";
  return {};
}

// An N x H x W x C uint8 dataset whose pixels are pixel(i, y, x, c).
ImageDataset pattern_dataset(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c) {
  ImageDataset d;
  d.source = "pattern";
  d.images = NdArray::allocate(DType::kUInt8, {n, h, w, c});
  auto* p = d.images.mutable_data_as<std::uint8_t>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x)
        for (std::int64_t ch = 0; ch < c; ++ch)
          p[((i * h + y) * w + x) * c + ch] = static_cast<std::uint8_t>(pixel(i, y, x, ch));
  for (std::int64_t i = 0; i < n; ++i) d.labels.push_back(i % 10);
  return d;
}

const char kFashionDir[] = "/usr/share/datasets/fashion-mnist";

}  // namespace

// --- .npy -------------------------------------------------------------------------------------

TEST(ImageDatasetNpy, GrayscaleNxHxWBecomesOneChannelLast) {
  const ImageDataset d = load_npy_dataset(fx("u8_nhw.npy"), fx("labels_12.npy"));
  EXPECT_EQ(d.source, fx("u8_nhw.npy"));
  EXPECT_TRUE(d.channels_last);
  EXPECT_EQ(d.images.dtype(), DType::kUInt8);
  EXPECT_EQ(d.images.shape(), (std::vector<std::int64_t>{12, 5, 7, 1}));
  EXPECT_EQ(d.size(), 12);
  EXPECT_EQ(d.height(), 5);
  EXPECT_EQ(d.width(), 7);
  EXPECT_EQ(d.channels(), 1);
  for (std::int64_t i = 0; i < 12; ++i)
    for (std::int64_t y = 0; y < 5; ++y)
      for (std::int64_t x = 0; x < 7; ++x) ASSERT_EQ(at_hwc(d, i, y, x, 0), pixel(i, y, x, 0));
  ASSERT_EQ(d.labels.size(), 12u);
  for (std::int64_t i = 0; i < 12; ++i) EXPECT_EQ(d.labels[std::size_t(i)], i % 3);
  EXPECT_TRUE(d.class_names.empty());
  EXPECT_EQ(d.class_name(2), "2");
}

TEST(ImageDatasetNpy, LabelsFromATextFile) {
  const ImageDataset d = load_npy_dataset(fx("u8_nhw.npy"), fx("labels_12.txt"));
  for (std::int64_t i = 0; i < 12; ++i) EXPECT_EQ(d.labels[std::size_t(i)], i % 3);
}

TEST(ImageDatasetNpy, ColourChannelsLast) {
  const ImageDataset d = load_npy_dataset(fx("u8_nhwc3.npy"), fx("labels_6.npy"));
  EXPECT_TRUE(d.channels_last);
  EXPECT_EQ(d.images.shape(), (std::vector<std::int64_t>{6, 4, 5, 3}));
  EXPECT_EQ(d.channels(), 3);
  for (std::int64_t i = 0; i < 6; ++i)
    for (std::int64_t y = 0; y < 4; ++y)
      for (std::int64_t x = 0; x < 5; ++x)
        for (std::int64_t c = 0; c < 3; ++c) ASSERT_EQ(at_hwc(d, i, y, x, c), pixel(i, y, x, c));
  EXPECT_EQ(d.labels, (std::vector<std::int64_t>{0, 1, 0, 1, 0, 1}));

  const ImageDataset one = load_npy_dataset(fx("u8_nhwc1.npy"), fx("labels_4.npy"));
  EXPECT_EQ(one.images.shape(), (std::vector<std::int64_t>{4, 4, 5, 1}));
  EXPECT_EQ(one.labels, (std::vector<std::int64_t>{0, 1, 2, 3}));
}

TEST(ImageDatasetNpy, FloatChannelsFirstInEveryFloatWidth) {
  for (const std::string name : {"f32_nchw.npy", "f64_nchw.npy", "f16_nchw1.npy"}) {
    SCOPED_TRACE(name);
    const ImageDataset d = load_npy_dataset(fx(name), fx("labels_5.npy"));
    EXPECT_FALSE(d.channels_last);
    EXPECT_EQ(d.images.dtype(), DType::kFloat32);
    const std::int64_t c_count = name == "f16_nchw1.npy" ? 1 : 3;
    EXPECT_EQ(d.images.shape(), (std::vector<std::int64_t>{5, c_count, 4, 6}));
    EXPECT_EQ(d.channels(), c_count);
    EXPECT_EQ(d.height(), 4);
    EXPECT_EQ(d.width(), 6);
    for (std::int64_t i = 0; i < 5; ++i)
      for (std::int64_t c = 0; c < c_count; ++c)
        for (std::int64_t y = 0; y < 4; ++y)
          for (std::int64_t x = 0; x < 6; ++x)
            ASSERT_EQ(at_chw(d.images, i, c, y, x), float_pixel(i, c, y, x));
    EXPECT_EQ(d.labels, (std::vector<std::int64_t>{4, 3, 2, 1, 0}));
  }
}

TEST(ImageDatasetNpy, UnsupportedArraysSayWhatIsSupported) {
  const std::string supported = "N x H x W uint8, N x H x W x C uint8 (C = 1 or 3)";
  expect_input_error(
      [] { load_npy_dataset(fx("bad_u8_nhwc4.npy"), fx("labels_12.npy")); },
      {fx("bad_u8_nhwc4.npy"), "unsupported image array", supported, "found uint8 3 x 4 x 5 x 4"});
  expect_input_error([] { load_npy_dataset(fx("bad_i16_nhw.npy"), fx("labels_12.npy")); },
                     {fx("bad_i16_nhw.npy"), supported, "int16 3 x 4 x 5"});
  expect_input_error([] { load_npy_dataset(fx("bad_u8_2d.npy"), fx("labels_12.npy")); },
                     {fx("bad_u8_2d.npy"), supported, "uint8 3 x 20"});
  expect_input_error([] { load_npy_dataset(fx("bad_f32_nhwc.npy"), fx("labels_12.npy")); },
                     {fx("bad_f32_nhwc.npy"), "N x C x H x W float", "float32 3 x 8 x 4 x 3"});
  expect_input_error([] { load_npy_dataset(fx("bad_zero_width.npy"), fx("labels_12.npy")); },
                     {fx("bad_zero_width.npy"), "image size out of range"});
  expect_input_error([] { load_npy_dataset(fx("bad_truncated.npy"), fx("labels_12.npy")); },
                     {fx("bad_truncated.npy")});
}

TEST(ImageDatasetNpy, EmptyDatasetIsRefused) {
  expect_input_error([] { load_npy_dataset(fx("bad_empty.npy"), fx("labels_0.npy")); },
                     {fx("bad_empty.npy"), "holds no images", "0 x 5 x 7"});
}

TEST(ImageDatasetNpy, LabelCountMismatchNamesBothFilesAndCounts) {
  const std::string what =
      expect_input_error([] { load_npy_dataset(fx("u8_nhw.npy"), fx("labels_11.npy")); },
                         {fx("labels_11.npy"), fx("u8_nhw.npy"), "12 labels", "11 labels",
                          "label count does not match the image count"});
  EXPECT_EQ(what.find(fx("labels_11.npy")), 0u) << "the label file leads: " << what;
}

TEST(ImageDatasetNpy, BadLabelsAreRefused) {
  expect_input_error([] { load_npy_dataset(fx("u8_nhw.npy"), fx("labels_12_negative.npy")); },
                     {fx("labels_12_negative.npy"), "label of image 5 is negative", "found -1"});
  expect_input_error([] { load_npy_dataset(fx("u8_nhw.npy"), fx("labels_12_fractional.npy")); },
                     {fx("labels_12_fractional.npy"), "not a whole number"});
  expect_input_error([] { load_npy_dataset(fx("u8_nhw.npy"), fx("no_such_labels.npy")); },
                     {fx("no_such_labels.npy")});
}

// --- IDX --------------------------------------------------------------------------------------

// IDX files carry no class names, and a path naming Fashion-MNIST does not give them any (a
// project names its classes).
TEST(ImageDatasetIdx, GzippedFashionMnistLayoutHasNoClassNames) {
  const ImageDataset d = load_idx_dataset(fx("fashion-mnist/t10k-images-idx3-ubyte.gz"),
                                          fx("fashion-mnist/t10k-labels-idx1-ubyte.gz"));
  EXPECT_EQ(d.images.shape(), (std::vector<std::int64_t>{20, 28, 28, 1}));
  EXPECT_TRUE(d.channels_last);
  for (std::int64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(d.labels[std::size_t(i)], i % 10);
    for (std::int64_t y = 0; y < 28; y += 9)
      for (std::int64_t x = 0; x < 28; x += 5) ASSERT_EQ(at_hwc(d, i, y, x, 0), pixel(i, y, x, 0));
  }
  EXPECT_TRUE(d.class_names.empty());
  EXPECT_EQ(d.class_name(7), "7");
}

TEST(ImageDatasetIdx, FashionMnistClassNames) {
  const auto names = fashion_mnist_class_names();
  EXPECT_EQ(names, (std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}));
}

TEST(ImageDatasetIdx, LabelsBeyondTenKeepNumericClasses) {
  const ImageDataset d = load_idx_dataset(fx("fashion-mnist/t10k-images-idx3-ubyte.gz"),
                                          fx("fashion-mnist/labels-12-classes.idx"));
  EXPECT_TRUE(d.class_names.empty());
  EXPECT_EQ(d.labels[11], 11);
}

TEST(ImageDatasetIdx, PlainFilesOutsideAFashionMnistFolderHaveNoNames) {
  const ImageDataset d = load_idx_dataset(fx("idx/images.idx"), fx("idx/labels.idx"));
  EXPECT_EQ(d.size(), 20);
  EXPECT_TRUE(d.class_names.empty());
}

TEST(ImageDatasetIdx, ErrorsNameTheFile) {
  expect_input_error([] { load_idx_dataset(fx("idx/images.idx"), fx("idx/labels_19.idx")); },
                     {fx("idx/labels_19.idx"), fx("idx/images.idx"), "20 labels", "19 labels"});
  expect_input_error([] { load_idx_dataset(fx("idx/bad_truncated.idx"), fx("idx/labels.idx")); },
                     {fx("idx/bad_truncated.idx")});
  expect_input_error(
      [] { load_idx_dataset(fx("idx/bad_i4_images.idx"), fx("idx/labels.idx")); },
      {fx("idx/bad_i4_images.idx"), "unsupported image array", "int32 20 x 28 x 28"});
}

TEST(ImageDatasetIdx, RealFashionMnist) {
  const std::string images = std::string(kFashionDir) + "/t10k-images-idx3-ubyte.gz";
  const std::string labels = std::string(kFashionDir) + "/t10k-labels-idx1-ubyte.gz";
  MODELDIFF_SKIP_IF_MISSING(!fs::exists(images) || !fs::exists(labels),
                            "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  const ImageDataset d = load_dataset(images, labels);
  EXPECT_EQ(d.images.shape(), (std::vector<std::int64_t>{10000, 28, 28, 1}));
  EXPECT_TRUE(d.class_names.empty());  // named by the project, not by the path
  std::vector<int> per_class(10, 0);
  for (auto l : d.labels) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, 10);
    ++per_class[std::size_t(l)];
  }
  for (int count : per_class) EXPECT_EQ(count, 1000);  // the test set is balanced
  // The first test image is an ankle boot (label 9), as every Fashion-MNIST tutorial shows.
  EXPECT_EQ(d.labels[0], 9);
  EXPECT_EQ(fashion_mnist_class_names()[9], "Ankle boot");

  const NdArray x = preprocess(d, Preprocessing{}, 0, 500);
  ASSERT_EQ(x.shape(), (std::vector<std::int64_t>{500, 1, 28, 28}));
  const std::uint8_t* raw = d.images.data_as<std::uint8_t>();
  for (std::int64_t k = 0; k < x.numel(); ++k)
    ASSERT_EQ(x.data_as<float>()[k], static_cast<float>(raw[k]) / 255.0f) << "element " << k;

  Preprocessing norm;
  norm.mean = {0.2860f};
  norm.stddev = {0.3530f};
  const NdArray z = preprocess(d, norm, 9500, 10000);
  for (std::int64_t k = 0; k < z.numel(); ++k) {
    const float expected = (static_cast<float>(raw[9500 * 784 + k]) / 255.0f - 0.2860f) / 0.3530f;
    ASSERT_EQ(z.data_as<float>()[k], expected) << "element " << k;
  }
}

// --- image folders ----------------------------------------------------------------------------

TEST(ImageDatasetFolder, GrayFolderKeepsOneChannelAndSortsClassesAndFiles) {
  const ImageDataset d = load_image_folder(fx("folder_gray"));
  EXPECT_EQ(d.source, fx("folder_gray"));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"bag", "coat", "shirt"}));
  EXPECT_EQ(d.images.shape(), (std::vector<std::int64_t>{5, 6, 8, 1}));
  EXPECT_TRUE(d.channels_last);
  EXPECT_EQ(d.labels, (std::vector<std::int64_t>{0, 0, 1, 2, 2}));
  // bag/1.pgm = gray[0], bag/2.pgm = gray[1], coat/x.PGM = gray[2], shirt/a = 3, shirt/b = 4.
  for (std::int64_t i = 0; i < 5; ++i)
    for (std::int64_t y = 0; y < 6; ++y)
      for (std::int64_t x = 0; x < 8; ++x) ASSERT_EQ(at_hwc(d, i, y, x, 0), pixel(i, y, x, 0));
}

TEST(ImageDatasetFolder, MixedFolderBecomesRgb) {
  const ImageDataset d = load_image_folder(fx("folder_mixed"));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d.images.shape(), (std::vector<std::int64_t>{3, 6, 8, 3}));
  EXPECT_EQ(d.labels, (std::vector<std::int64_t>{0, 0, 1}));
  for (std::int64_t y = 0; y < 6; ++y) {
    for (std::int64_t x = 0; x < 8; ++x) {
      for (std::int64_t c = 0; c < 3; ++c) {
        ASSERT_EQ(at_hwc(d, 0, y, x, c), pixel(0, y, x, c));  // PPM kept in RGB order
        ASSERT_EQ(at_hwc(d, 1, y, x, c), pixel(1, y, x, 0));  // gray replicated
        ASSERT_EQ(at_hwc(d, 2, y, x, c), pixel(2, y, x, c));
      }
    }
  }
}

TEST(ImageDatasetFolder, SizesMustAgreeWithoutResize) {
  expect_input_error([] { load_image_folder(fx("folder_sizes")); },
                     {fx("folder_sizes/b/0.pgm"), "image size differs", "6 x 8", "7 x 8",
                      fx("folder_sizes/a/0.pgm")});
}

TEST(ImageDatasetFolder, ResizeMakesEverySizeFit) {
  const ImageDataset d = load_image_folder(fx("folder_sizes"), 12, 16);
  EXPECT_EQ(d.images.shape(), (std::vector<std::int64_t>{4, 12, 16, 1}));
  EXPECT_EQ(d.labels, (std::vector<std::int64_t>{0, 0, 1, 1}));
  // Enlarging is bilinear: the same as OpenCV's INTER_LINEAR on the file.
  cv::Mat first = cv::imread(fx("folder_sizes/a/0.pgm"), cv::IMREAD_GRAYSCALE);
  cv::Mat expected;
  cv::resize(first, expected, cv::Size(16, 12), 0, 0, cv::INTER_LINEAR);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 16; ++x) ASSERT_EQ(at_hwc(d, 0, y, x, 0), expected.at<std::uint8_t>(y, x));

  const ImageDataset small = load_image_folder(fx("folder_sizes"), 3, 4);
  cv::resize(first, expected, cv::Size(4, 3), 0, 0, cv::INTER_AREA);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      ASSERT_EQ(at_hwc(small, 0, y, x, 0), expected.at<std::uint8_t>(y, x));

  expect_input_error([] { load_image_folder(fx("folder_sizes"), 12, 0); },
                     {"invalid image size to resize to", "12 x 0"});
}

TEST(ImageDatasetFolder, UnreadableImagesAreNamed) {
  expect_input_error([] { load_image_folder(fx("folder_garbage")); },
                     {fx("folder_garbage/b/broken.png"), "cannot be read as an image"});
  expect_input_error([] { load_image_folder(fx("folder_corrupt")); },
                     {fx("folder_corrupt/a/1.pgm")});
}

TEST(ImageDatasetFolder, LayoutErrors) {
  expect_input_error([] { load_image_folder(fx("folder_empty_class")); },
                     {fx("folder_empty_class/b"), "class folder holds no images"});
  expect_input_error(
      [] { load_image_folder(fx("folder_loose")); },
      {fx("folder_loose"), "holds no class sub-folders", "2 images directly in the folder"});
  expect_input_error([] { load_image_folder(fx("folder_no_classes")); },
                     {"holds no class sub-folders"});
  expect_input_error([] { load_image_folder(fx("no_such_folder")); },
                     {fx("no_such_folder"), "is not a folder"});
}

TEST(ImageDatasetFolder, PngJpegAndSixteenBitFilesWrittenByOpenCv) {
  TempDir dir("image_folder");
  // A red/green/blue 4 x 6 picture, stored by OpenCV in BGR order.
  cv::Mat bgr(4, 6, CV_8UC3, cv::Scalar(0, 0, 0));
  for (int x = 0; x < 6; ++x) {
    bgr.at<cv::Vec3b>(0, x) = cv::Vec3b(0, 0, 255);  // red
    bgr.at<cv::Vec3b>(1, x) = cv::Vec3b(0, 255, 0);  // green
    bgr.at<cv::Vec3b>(2, x) = cv::Vec3b(255, 0, 0);  // blue
    bgr.at<cv::Vec3b>(3, x) = cv::Vec3b(10, 20, 30);
  }
  fs::create_directories(dir.file("colour"));
  fs::create_directories(dir.file("gray"));
  ASSERT_TRUE(cv::imwrite(dir.file("colour/rgb.png"), bgr));
  cv::Mat bgra;
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  bgra.setTo(cv::Scalar(0, 0, 0, 0), cv::Mat(4, 6, CV_8U, cv::Scalar(0)));
  ASSERT_TRUE(cv::imwrite(dir.file("colour/rgba.png"), bgra));
  cv::Mat flat(4, 6, CV_8UC3, cv::Scalar(128, 128, 128));
  ASSERT_TRUE(cv::imwrite(dir.file("colour/flat.jpg"), flat, {cv::IMWRITE_JPEG_QUALITY, 100}));
  cv::Mat gray16(4, 6, CV_16U, cv::Scalar(0x8000));
  ASSERT_TRUE(cv::imwrite(dir.file("gray/deep.png"), gray16));
  cv::Mat bmp(4, 6, CV_8U, cv::Scalar(77));
  ASSERT_TRUE(cv::imwrite(dir.file("gray/plain.BMP"), bmp));

  const ImageDataset d = load_image_folder(dir.path());
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"colour", "gray"}));
  ASSERT_EQ(d.images.shape(), (std::vector<std::int64_t>{5, 4, 6, 3}));
  EXPECT_EQ(d.labels, (std::vector<std::int64_t>{0, 0, 0, 1, 1}));
  // colour/: flat.jpg, rgb.png, rgba.png (sorted); RGB order in the dataset.
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(at_hwc(d, 0, 2, 3, c), 128, 2);
  for (std::int64_t i : {1, 2}) {
    EXPECT_EQ(at_hwc(d, i, 0, 0, 0), 255);
    EXPECT_EQ(at_hwc(d, i, 0, 0, 1), 0);
    EXPECT_EQ(at_hwc(d, i, 1, 5, 1), 255);
    EXPECT_EQ(at_hwc(d, i, 2, 2, 2), 255);
    EXPECT_EQ(at_hwc(d, i, 2, 2, 0), 0);
    EXPECT_EQ(at_hwc(d, i, 3, 1, 0), 30);
    EXPECT_EQ(at_hwc(d, i, 3, 1, 1), 20);
    EXPECT_EQ(at_hwc(d, i, 3, 1, 2), 10);
  }
  // gray/: deep.png (16-bit 0x8000 -> 8-bit 128), plain.BMP (77), replicated to RGB.
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(at_hwc(d, 3, 1, 1, c), 128);
    EXPECT_EQ(at_hwc(d, 4, 1, 1, c), 77);
  }
}

TEST(ImageDatasetFolder, ProgressAndCancel) {
  struct Recorder : Progress {
    std::vector<double> fractions;
    bool cancel = false;
    void report(double f, std::string_view) override { fractions.push_back(f); }
    bool cancelled() const override { return cancel; }
  } recorder;
  load_image_folder(fx("folder_gray"), 0, 0, &recorder);
  ASSERT_FALSE(recorder.fractions.empty());
  EXPECT_EQ(recorder.fractions.front(), 0.0);
  EXPECT_EQ(recorder.fractions.back(), 1.0);
  EXPECT_TRUE(std::is_sorted(recorder.fractions.begin(), recorder.fractions.end()));
  recorder.cancel = true;
  EXPECT_THROW(load_image_folder(fx("folder_gray"), 0, 0, &recorder), Cancelled);
}

// --- load_dataset -----------------------------------------------------------------------------

TEST(ImageDatasetDispatch, PicksTheLoaderFromThePath) {
  EXPECT_EQ(load_dataset(fx("u8_nhw.npy"), fx("labels_12.npy")).size(), 12);
  EXPECT_EQ(load_dataset(fx("fashion-mnist/t10k-images-idx3-ubyte.gz"),
                         fx("fashion-mnist/t10k-labels-idx1-ubyte.gz"))
                .size(),
            20);
  EXPECT_EQ(load_dataset(fx("idx/images.idx"), fx("idx/labels.idx")).size(), 20);
  EXPECT_EQ(load_dataset(fx("folder_gray"), "").class_names.size(), 3u);
}

TEST(ImageDatasetDispatch, Errors) {
  expect_input_error([] { load_dataset(fx("folder_gray"), fx("labels_12.npy")); },
                     {fx("folder_gray"), "image folder", fx("labels_12.npy")});
  expect_input_error([] { load_dataset(fx("u8_nhw.npy"), ""); },
                     {fx("u8_nhw.npy"), "needs a label file"});
  expect_input_error([] { load_dataset(fx("single.pgm"), fx("labels_12.npy")); },
                     {fx("single.pgm"), "single image file", "one sub-folder of images per class"});
  expect_input_error([] { load_dataset(fx("labels_12.txt"), fx("labels_12.npy")); },
                     {fx("labels_12.txt"), "holds no images", "text file"});
  expect_input_error([] { load_dataset(fx("no_such.npy"), fx("labels_12.npy")); },
                     {fx("no_such.npy"), "cannot open", "IDX file"});
}

// --- subset -----------------------------------------------------------------------------------

TEST(ImageDatasetSubset, CopiesImagesAndLabelsInOrder) {
  const ImageDataset d = load_npy_dataset(fx("u8_nhwc3.npy"), fx("labels_6.npy"));
  const ImageDataset s = subset(d, {5, 0, 5});
  EXPECT_EQ(s.images.shape(), (std::vector<std::int64_t>{3, 4, 5, 3}));
  EXPECT_EQ(s.labels, (std::vector<std::int64_t>{1, 0, 1}));
  EXPECT_EQ(s.source, d.source);
  for (std::int64_t y = 0; y < 4; ++y)
    for (std::int64_t x = 0; x < 5; ++x)
      for (std::int64_t c = 0; c < 3; ++c) {
        ASSERT_EQ(at_hwc(s, 0, y, x, c), pixel(5, y, x, c));
        ASSERT_EQ(at_hwc(s, 1, y, x, c), pixel(0, y, x, c));
        ASSERT_EQ(at_hwc(s, 2, y, x, c), pixel(5, y, x, c));
      }

  const ImageDataset f = load_npy_dataset(fx("f32_nchw.npy"), fx("labels_5.npy"));
  const ImageDataset g = subset(f, {3});
  EXPECT_FALSE(g.channels_last);
  EXPECT_EQ(at_chw(g.images, 0, 2, 3, 5), float_pixel(3, 2, 3, 5));
  EXPECT_EQ(subset(f, {}).size(), 0);

  expect_input_error(
      [&] {
        subset(d, {0, 6});
      },
      {fx("u8_nhwc3.npy"), "index 1", "out of range", "0 to 5", "found 6"});
  expect_input_error([&] { subset(d, {-1}); }, {"found -1"});
}

// --- preprocessing ----------------------------------------------------------------------------

TEST(Preprocessing, Uint8IsDividedBy255Exactly) {
  const ImageDataset d = pattern_dataset(40, 28, 28, 1);  // every uint8 value appears
  const NdArray x = preprocess(d, Preprocessing{}, 0, 40);
  ASSERT_EQ(x.dtype(), DType::kFloat32);
  ASSERT_EQ(x.shape(), (std::vector<std::int64_t>{40, 1, 28, 28}));
  int differs_from_multiplying = 0;
  for (std::int64_t i = 0; i < 40; ++i)
    for (std::int64_t y = 0; y < 28; ++y)
      for (std::int64_t x0 = 0; x0 < 28; ++x0) {
        const float v = static_cast<float>(pixel(i, y, x0, 0));
        ASSERT_EQ(at_chw(x, i, 0, y, x0), v / 255.0f);
        differs_from_multiplying += v / 255.0f != v * (1.0f / 255.0f);
      }
  // Why the division matters: multiplying by the rounded reciprocal is off in the last bit.
  EXPECT_GT(differs_from_multiplying, 0);
}

TEST(Preprocessing, RangeSelectsImages) {
  const ImageDataset d = pattern_dataset(10, 3, 4, 1);
  const NdArray x = preprocess(d, Preprocessing{}, 7, 9);
  ASSERT_EQ(x.shape(), (std::vector<std::int64_t>{2, 1, 3, 4}));
  EXPECT_EQ(at_chw(x, 1, 0, 2, 3), static_cast<float>(pixel(8, 2, 3, 0)) / 255.0f);
  EXPECT_EQ(preprocess(d, Preprocessing{}, 4, 4).shape(), (std::vector<std::int64_t>{0, 1, 3, 4}));
}

TEST(Preprocessing, PerChannelNormalisationIsExactAndChannelsMoveFirst) {
  const ImageDataset d = load_npy_dataset(fx("u8_nhwc3.npy"), fx("labels_6.npy"));
  Preprocessing p;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.stddev = {0.229f, 0.224f, 0.225f};
  const NdArray x = preprocess(d, p, 1, 6);
  ASSERT_EQ(x.shape(), (std::vector<std::int64_t>{5, 3, 4, 5}));
  for (std::int64_t i = 1; i < 6; ++i)
    for (std::int64_t c = 0; c < 3; ++c)
      for (std::int64_t y = 0; y < 4; ++y)
        for (std::int64_t x0 = 0; x0 < 5; ++x0) {
          const float v = static_cast<float>(pixel(i, y, x0, c)) / 255.0f;
          ASSERT_EQ(at_chw(x, i - 1, c, y, x0),
                    (v - p.mean[std::size_t(c)]) / p.stddev[std::size_t(c)]);
        }
}

TEST(Preprocessing, CustomScaleMultiplies) {
  const ImageDataset d = pattern_dataset(2, 3, 3, 1);
  Preprocessing p;
  p.scale = 0.0123f;
  const NdArray x = preprocess(d, p, 0, 2);
  EXPECT_EQ(at_chw(x, 1, 0, 2, 1), static_cast<float>(pixel(1, 2, 1, 0)) * 0.0123f);
  p.scale = 1.0f / 127.0f;  // another whole divisor
  const NdArray z = preprocess(d, p, 0, 2);
  EXPECT_EQ(at_chw(z, 1, 0, 2, 1), static_cast<float>(pixel(1, 2, 1, 0)) / 127.0f);
}

TEST(Preprocessing, FloatInputIsUsedAsIs) {
  const ImageDataset d = load_npy_dataset(fx("f32_nchw.npy"), fx("labels_5.npy"));
  const NdArray x = preprocess(d, Preprocessing{}, 0, 5);
  ASSERT_EQ(x.shape(), d.images.shape());
  for (std::int64_t k = 0; k < x.numel(); ++k)
    ASSERT_EQ(x.data_as<float>()[k], d.images.data_as<float>()[k]);
  Preprocessing p;
  p.mean = {1, 2, 3};
  p.stddev = {2, 4, 8};
  const NdArray z = preprocess(d, p, 2, 3);
  EXPECT_EQ(at_chw(z, 0, 2, 1, 1), (float_pixel(2, 2, 1, 1) - 3.0f) / 8.0f);
}

TEST(Preprocessing, ResizeMatchesOpenCvOnTheScaledPlane) {
  const ImageDataset d = pattern_dataset(3, 28, 28, 3);
  for (const auto& [oh, ow, filter] :
       std::vector<std::tuple<int, int, int>>{{14, 14, cv::INTER_AREA},
                                              {20, 10, cv::INTER_AREA},
                                              {32, 32, cv::INTER_LINEAR},
                                              {56, 14, cv::INTER_LINEAR}}) {
    SCOPED_TRACE(std::to_string(oh) + "x" + std::to_string(ow));
    Preprocessing p;
    p.resize_height = oh;
    p.resize_width = ow;
    p.mean = {0.5f, 0.25f, 0.125f};
    p.stddev = {0.5f, 0.5f, 2.0f};
    const NdArray x = preprocess(d, p, 1, 3);
    ASSERT_EQ(x.shape(), (std::vector<std::int64_t>{2, 3, oh, ow}));
    for (int i = 1; i < 3; ++i) {
      for (int c = 0; c < 3; ++c) {
        cv::Mat plane(28, 28, CV_32F);
        for (int y = 0; y < 28; ++y)
          for (int x0 = 0; x0 < 28; ++x0)
            plane.at<float>(y, x0) = static_cast<float>(pixel(i, y, x0, c)) / 255.0f;
        cv::Mat resized;
        cv::resize(plane, resized, cv::Size(ow, oh), 0, 0, filter);
        for (int y = 0; y < oh; ++y)
          for (int x0 = 0; x0 < ow; ++x0)
            ASSERT_EQ(
                at_chw(x, i - 1, c, y, x0),
                (resized.at<float>(y, x0) - p.mean[std::size_t(c)]) / p.stddev[std::size_t(c)]);
      }
    }
  }
  // Halving averages 2 x 2 blocks.
  Preprocessing half;
  half.resize_height = half.resize_width = 14;
  const NdArray h = preprocess(d, half, 0, 1);
  const float block =
      (pixel(0, 4, 6, 1) + pixel(0, 4, 7, 1) + pixel(0, 5, 6, 1) + pixel(0, 5, 7, 1)) / 4.0f /
      255.0f;
  EXPECT_NEAR(at_chw(h, 0, 1, 2, 3), block, 1e-6);
}

TEST(Preprocessing, ResizeOfFloatImages) {
  const ImageDataset d = load_npy_dataset(fx("f32_nchw.npy"), fx("labels_5.npy"));
  Preprocessing p;
  p.resize_height = 2;
  p.resize_width = 3;
  const NdArray x = preprocess(d, p, 0, 5);
  ASSERT_EQ(x.shape(), (std::vector<std::int64_t>{5, 3, 2, 3}));
  // Area averaging of a linear ramp is the ramp at the block centres.
  const float expected = (float_pixel(4, 1, 2, 2) + float_pixel(4, 1, 2, 3) +
                          float_pixel(4, 1, 3, 2) + float_pixel(4, 1, 3, 3)) /
                         4.0f;
  EXPECT_NEAR(at_chw(x, 4, 1, 1, 1), expected, 1e-6);
}

TEST(Preprocessing, ValidationErrors) {
  const ImageDataset d = pattern_dataset(2, 4, 4, 3);
  Preprocessing p;
  p.mean = {0.5f};
  expect_input_error([&] { preprocess(d, p, 0, 2); },
                     {"mean needs one value per image channel", "expected 3 values", "found 1"});
  p.mean = {0.5f, 0.5f, 0.5f};
  p.stddev = {0.5f, 0.0f, 0.5f};
  expect_input_error([&] { preprocess(d, p, 0, 2); }, {"std must be positive"});
  p.stddev = {0.5f, 0.5f};
  expect_input_error([&] { preprocess(d, p, 0, 2); }, {"std needs one value per image channel"});
  p = Preprocessing{};
  p.scale = 0;
  expect_input_error([&] { preprocess(d, p, 0, 2); }, {"scale must be a positive number"});
  p = Preprocessing{};
  p.resize_height = 8;
  expect_input_error([&] { preprocess(d, p, 0, 2); }, {"invalid preprocessing resize", "8x0"});
  p = Preprocessing{};
  p.mean = {NAN, 0, 0};
  expect_input_error([&] { preprocess(d, p, 0, 2); }, {"mean must be finite"});
}

TEST(Preprocessing, DescribeAndParseRoundTrip) {
  EXPECT_EQ(describe(Preprocessing{}), "scale=1/255");
  Preprocessing p;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.stddev = {0.229f, 0.224f, 0.225f};
  p.resize_height = 32;
  p.resize_width = 48;
  EXPECT_EQ(describe(p), "scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,resize=32x48");
  EXPECT_EQ(parse_preprocessing(describe(p)), p);
  p.scale = 0.00392f;
  p.mean = {1.0f / 3.0f};
  p.stddev = {0.1f};
  EXPECT_EQ(parse_preprocessing(describe(p)), p);
  EXPECT_EQ(parse_preprocessing(""), Preprocessing{});
  EXPECT_EQ(parse_preprocessing("scale=1/255"), Preprocessing{});

  const Preprocessing q = parse_preprocessing("scale=0.00392, mean=0.5,std=0.25,resize=32x32");
  EXPECT_EQ(q.scale, 0.00392f);
  EXPECT_EQ(q.mean, std::vector<float>{0.5f});
  EXPECT_EQ(q.stddev, std::vector<float>{0.25f});
  EXPECT_EQ(q.resize_height, 32);
  EXPECT_EQ(q.resize_width, 32);
  EXPECT_EQ(parse_preprocessing("stddev=2").stddev, std::vector<float>{2.0f});
}

TEST(Preprocessing, ParseErrorsNameTheBadToken) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"scale=abc", "'scale=abc'"},
      {"scale=1/0", "'scale=1/0'"},
      {"scale=-1", "'scale=-1'"},
      {"mean=0.5:x", "'mean=0.5:x'"},
      {"mean=", "'mean='"},
      {"std=0.5:0", "'std=0.5:0'"},
      {"resize=32", "'resize=32'"},
      {"resize=32x0", "'resize=32x0'"},
      {"resize=axb", "'resize=axb'"},
      {"resize=32x99999", "'resize=32x99999'"},
      {"colour=rgb", "unknown key 'colour'"},
      {"scale=1/255,,mean=0.5", "token ''"},
      {"mean", "'mean': not key=value"},
      {"mean=1,mean=2", "'mean' given twice"},
      {"mean=nan", "'mean=nan'"},
  };
  for (const auto& [spec, part] : cases) {
    SCOPED_TRACE(spec);
    expect_input_error([&] { parse_preprocessing(spec); }, {"preprocessing token", part});
  }
}

TEST(Preprocessing, ResizeFilterRule) {
  EXPECT_EQ(resize_filter_for(28, 28, 14, 14), ResizeFilter::kArea);
  EXPECT_EQ(resize_filter_for(28, 28, 28, 14), ResizeFilter::kArea);
  EXPECT_EQ(resize_filter_for(28, 28, 32, 32), ResizeFilter::kLinear);
  EXPECT_EQ(resize_filter_for(28, 28, 32, 14), ResizeFilter::kLinear);
}

TEST(Preprocessing, DisplayImage) {
  const ImageDataset u = load_npy_dataset(fx("u8_nhwc3.npy"), fx("labels_6.npy"));
  const NdArray a = display_image(u, 4);
  ASSERT_EQ(a.shape(), (std::vector<std::int64_t>{4, 5, 3}));
  EXPECT_EQ(a.dtype(), DType::kUInt8);
  EXPECT_EQ(a.data_as<std::uint8_t>()[(2 * 5 + 3) * 3 + 1], pixel(4, 2, 3, 1));

  // Float images: min-max scaled per image over all channels.
  const ImageDataset f = load_npy_dataset(fx("f32_nchw.npy"), fx("labels_5.npy"));
  const NdArray b = display_image(f, 1);
  ASSERT_EQ(b.shape(), (std::vector<std::int64_t>{4, 6, 3}));
  const float lo = float_pixel(1, 0, 0, 0), hi = float_pixel(1, 2, 3, 5);
  EXPECT_EQ(b.data_as<std::uint8_t>()[0], 0);                      // (0, 0), channel 0
  EXPECT_EQ(b.data_as<std::uint8_t>()[(3 * 6 + 5) * 3 + 2], 255);  // (3, 5), channel 2
  const float mid = float_pixel(1, 1, 2, 1);
  EXPECT_EQ(b.data_as<std::uint8_t>()[(2 * 6 + 1) * 3 + 1],
            std::lround((mid - lo) / (hi - lo) * 255.0f));

  ImageDataset constant;
  constant.source = "constant";
  constant.channels_last = false;
  constant.images = NdArray::allocate(DType::kFloat32, {1, 1, 2, 2});
  float* px = constant.images.mutable_data_as<float>();
  px[0] = px[1] = px[2] = 1.0f;
  px[3] = NAN;
  constant.labels = {0};
  const NdArray c = display_image(constant, 0);
  EXPECT_EQ(c.data_as<std::uint8_t>()[0], 255);
  EXPECT_EQ(c.data_as<std::uint8_t>()[3], 0);

  expect_input_error([&] { display_image(u, 6); }, {fx("u8_nhwc3.npy"), "0 to 5", "found 6"});
}
