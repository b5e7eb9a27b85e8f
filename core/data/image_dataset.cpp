#include "core/data/image_dataset.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#if MODELDIFF_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif
#include <system_error>
#include <utility>

#include "core/base/error.h"
#include "core/data/preprocessing.h"
#include "core/io/array_file.h"
#include "core/io/idx.h"
#include "core/io/npy.h"

namespace modeldiff::core {

namespace {

namespace fs = std::filesystem;

// Larger sides are no training images, and OpenCV indexes rows and columns with int.
constexpr std::int64_t kMaxSide = 65535;

const char kSupportedArrays[] =
    "N x H x W uint8, N x H x W x C uint8 (C = 1 or 3) or N x C x H x W float (C = 1 or 3)";
const char kSupportedSources[] =
    "a folder with one sub-folder of images per class, an IDX file (plain or gzipped) or a .npy "
    "array";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_image_file_name(const fs::path& path) {
  static const char* const kExtensions[] = {".png", ".jpg", ".jpeg", ".bmp",  ".ppm", ".pgm",
                                            ".pbm", ".pnm", ".tif",  ".tiff", ".webp"};
  const std::string ext = lower(path.extension().string());
  return std::any_of(std::begin(kExtensions), std::end(kExtensions),
                     [&](const char* e) { return ext == e; });
}

[[maybe_unused]] bool is_hidden(const fs::path& path) {  // unused without OpenCV
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

// Wraps the array of a file as an ImageDataset's images, checking its layout.
ImageDataset images_from_array(const std::string& path, const NdArray& a) {
  ImageDataset d;
  d.source = path;
  const auto& s = a.shape();
  const bool u8 = a.dtype() == DType::kUInt8;
  const bool floating = dtype_is_floating(a.dtype());
  if (u8 && a.ndim() == 3) {
    d.images = a.reshaped({s[0], s[1], s[2], 1});
    d.channels_last = true;
  } else if (u8 && a.ndim() == 4 && (s[3] == 1 || s[3] == 3)) {
    d.images = a;
    d.channels_last = true;
  } else if (floating && a.ndim() == 4 && (s[1] == 1 || s[1] == 3)) {
    d.images = a.to_float32();
    d.channels_last = false;
  } else {
    throw InputError(path, "unsupported image array")
        .expected(kSupportedArrays)
        .found(dtype_name(a.dtype()) + " " + shape_to_string(s));
  }
  if (d.size() == 0) throw InputError(path, "holds no images").found(shape_to_string(s));
  if (d.height() == 0 || d.width() == 0 || d.images.dim(1) > kMaxSide ||
      d.images.dim(2) > kMaxSide || d.images.dim(3) > kMaxSide)
    throw InputError(path, "image size out of range")
        .expected("1 to " + std::to_string(kMaxSide) + " pixels per side")
        .found(shape_to_string(s));
  return d;
}

// Sets data.labels after checking them against the images; `labels_path` names the file.
void attach_labels(ImageDataset& data, const std::string& labels_path,
                   std::vector<std::int64_t> labels) {
  const auto n = static_cast<std::size_t>(data.size());
  if (labels.size() != n) {
    throw InputError(labels_path, "label count does not match the image count")
        .expected(std::to_string(n) + " labels, one per image in " + data.source)
        .found(std::to_string(labels.size()) + " labels");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] < 0)
      throw InputError(labels_path, "label of image " + std::to_string(i) + " is negative")
          .expected("class indices 0, 1, 2, ...")
          .found(std::to_string(labels[i]));
  }
  data.labels = std::move(labels);
}

#if MODELDIFF_HAVE_OPENCV
// An 8-bit, 1- or 3-channel (RGB) image as OpenCV decodes `path`; InputError when unreadable.
cv::Mat read_image_file(const std::string& path) {
  cv::Mat m;
  try {
    // ANYCOLOR: gray stays 1 channel, colour becomes 3 (alpha dropped); without ANYDEPTH
    // 16-bit images come back as 8 bits; EXIF orientation is applied as viewers do.
    m = cv::imread(path, cv::IMREAD_ANYCOLOR);
  } catch (const cv::Exception& e) {
    throw InputError(path, "cannot be decoded as an image").found(e.what());
  }
  if (m.empty())
    throw InputError(path, "cannot be read as an image")
        .expected("a readable PNG, JPEG, BMP, PPM/PGM, TIFF or WebP file");
  if (m.depth() != CV_8U) m.convertTo(m, CV_8U);
  if (m.channels() == 3) {
    cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  } else if (m.channels() == 4) {
    cv::cvtColor(m, m, cv::COLOR_BGRA2RGB);
  } else if (m.channels() != 1) {
    throw InputError(path, "unsupported channel count")
        .expected("1, 3 or 4")
        .found(std::to_string(m.channels()));
  }
  return m;
}
#endif

}  // namespace

int ImageDataset::height() const {
  if (images.ndim() != 4) return 0;
  return static_cast<int>(channels_last ? images.dim(1) : images.dim(2));
}

int ImageDataset::width() const {
  if (images.ndim() != 4) return 0;
  return static_cast<int>(channels_last ? images.dim(2) : images.dim(3));
}

int ImageDataset::channels() const {
  if (images.ndim() != 4) return 0;
  return static_cast<int>(channels_last ? images.dim(3) : images.dim(1));
}

std::string ImageDataset::class_name(std::int64_t label) const {
  if (label >= 0 && static_cast<std::size_t>(label) < class_names.size())
    return class_names[static_cast<std::size_t>(label)];
  return std::to_string(label);
}

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

ImageDataset load_idx_dataset(const std::string& images, const std::string& labels) {
  ImageDataset data = images_from_array(images, read_idx(images));
  attach_labels(data, labels, load_integer_vector(labels));
  return data;
}

ImageDataset load_npy_dataset(const std::string& images, const std::string& labels) {
  ImageDataset data = images_from_array(images, read_npy(images));
  attach_labels(data, labels, load_integer_vector(labels));
  return data;
}

#if MODELDIFF_HAVE_OPENCV
ImageDataset load_image_folder(const std::string& root, int height, int width, Progress* progress) {
  NullProgress no_progress;
  Progress& report = progress != nullptr ? *progress : no_progress;
  if (height < 0 || width < 0 || (height == 0) != (width == 0) || height > kMaxSide ||
      width > kMaxSide)
    throw InputError(root, "invalid image size to resize to")
        .expected("both height and width between 1 and " + std::to_string(kMaxSide) +
                  ", or both 0 to keep the files' size")
        .found(std::to_string(height) + " x " + std::to_string(width));

  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError(root, "is not a folder");

  // Classes: the non-hidden sub-folders, sorted, as torchvision's ImageFolder orders them.
  std::vector<fs::path> class_dirs;
  std::size_t loose_images = 0;
  try {
    for (const auto& entry : fs::directory_iterator(root)) {
      if (is_hidden(entry.path())) continue;
      if (entry.is_directory())
        class_dirs.push_back(entry.path());
      else if (is_image_file_name(entry.path()))
        ++loose_images;
    }
  } catch (const fs::filesystem_error& e) {
    throw InputError(root, "cannot list the folder").found(e.code().message());
  }
  if (class_dirs.empty()) {
    throw InputError(root, "holds no class sub-folders")
        .expected("one sub-folder of images per class (" + root + "/<class>/<image>)")
        .found(loose_images > 0 ? std::to_string(loose_images) + " images directly in the folder"
                                : "no sub-folders");
  }
  std::sort(class_dirs.begin(), class_dirs.end());

  ImageDataset data;
  data.source = root;
  std::vector<std::pair<std::string, std::int64_t>> files;  // path, label
  for (std::size_t c = 0; c < class_dirs.size(); ++c) {
    std::vector<std::string> in_class;
    try {
      for (const auto& entry : fs::directory_iterator(class_dirs[c])) {
        if (!is_hidden(entry.path()) && !entry.is_directory() && is_image_file_name(entry.path()))
          in_class.push_back(entry.path().string());
      }
    } catch (const fs::filesystem_error& e) {
      throw InputError(class_dirs[c].string(), "cannot list the folder").found(e.code().message());
    }
    if (in_class.empty()) {
      throw InputError(class_dirs[c].string(), "class folder holds no images")
          .expected("png, jpg, jpeg, bmp, ppm, pgm, pbm, pnm, tif, tiff or webp files");
    }
    std::sort(in_class.begin(), in_class.end());
    for (auto& f : in_class) files.emplace_back(std::move(f), static_cast<std::int64_t>(c));
    data.class_names.push_back(class_dirs[c].filename().string());
  }

  // Decode everything first: whether the result is gray or RGB depends on every file.
  std::vector<cv::Mat> decoded;
  decoded.reserve(files.size());
  const bool resize = height > 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    report.throw_if_cancelled();
    report.report(static_cast<double>(i) / static_cast<double>(files.size()), "reading images");
    const std::string& path = files[i].first;
    cv::Mat m = read_image_file(path);
    if (resize) {
      if (m.rows != height || m.cols != width) {
        const int filter = resize_filter_for(m.rows, m.cols, height, width) == ResizeFilter::kArea
                               ? cv::INTER_AREA
                               : cv::INTER_LINEAR;
        cv::Mat resized;
        cv::resize(m, resized, cv::Size(width, height), 0, 0, filter);
        m = resized;
      }
    } else if (!decoded.empty() && (m.rows != decoded[0].rows || m.cols != decoded[0].cols)) {
      throw InputError(path, "image size differs from the first image's, " + files[0].first)
          .expected(std::to_string(decoded[0].rows) + " x " + std::to_string(decoded[0].cols) +
                    " (height x width) like every image, or a size to resize them all to")
          .found(std::to_string(m.rows) + " x " + std::to_string(m.cols));
    } else if (m.rows > kMaxSide || m.cols > kMaxSide) {
      throw InputError(path, "image too large")
          .expected("at most " + std::to_string(kMaxSide) + " pixels per side")
          .found(std::to_string(m.rows) + " x " + std::to_string(m.cols));
    }
    decoded.push_back(std::move(m));
  }

  const bool all_gray = std::all_of(decoded.begin(), decoded.end(),
                                    [](const cv::Mat& m) { return m.channels() == 1; });
  const int c = all_gray ? 1 : 3;
  const int h = decoded[0].rows, w = decoded[0].cols;
  data.images =
      NdArray::allocate(DType::kUInt8, {static_cast<std::int64_t>(decoded.size()), h, w, c});
  data.channels_last = true;
  const std::size_t image_bytes = static_cast<std::size_t>(h) * static_cast<std::size_t>(w) * c;
  std::uint8_t* out = data.images.mutable_data_as<std::uint8_t>();
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    // A Mat header over the output bytes: OpenCV writes in place since size and type match.
    cv::Mat dst(h, w, CV_8UC(c), out + i * image_bytes);
    if (decoded[i].channels() == c)
      decoded[i].copyTo(dst);
    else
      cv::cvtColor(decoded[i], dst, cv::COLOR_GRAY2RGB);
    MD_ASSERT(dst.data == out + i * image_bytes);
    decoded[i].release();
    data.labels.push_back(files[i].second);
  }
  report.report(1.0, "reading images");
  return data;
}
#else
ImageDataset load_image_folder(const std::string& root, int, int, Progress*) {
  throw InputError(root,
                   "an image folder, but this build of modeldiff cannot decode image files (it "
                   "has no OpenCV)")
      .expected("the images as .npy (N x H x W [x C] uint8) or IDX with a label file");
}
#endif

ImageDataset load_dataset(const std::string& images, const std::string& labels,
                          Progress* progress) {
  std::error_code ec;
  if (fs::is_directory(images, ec)) {
    if (!labels.empty())
      throw InputError(images,
                       "is an image folder, whose labels are its sub-folders; a label file does "
                       "not apply")
          .found(labels);
    return load_image_folder(images, 0, 0, progress);
  }
  if (is_image_file_name(images))
    throw InputError(images, "is a single image file").expected(kSupportedSources);
  FileFormat format;
  try {
    format = detect_format(images);
  } catch (const InputError& e) {
    throw InputError(images, e.problem()).expected(kSupportedSources);
  }
  if (format != FileFormat::kIdx && format != FileFormat::kNpy)
    throw InputError(images, "holds no images")
        .expected(kSupportedSources)
        .found(format_name(format) + " file");
  if (labels.empty())
    throw InputError(images, "needs a label file")
        .expected("an integer label per image (IDX, .npy or text file)");
  return format == FileFormat::kIdx ? load_idx_dataset(images, labels)
                                    : load_npy_dataset(images, labels);
}

ImageDataset subset(const ImageDataset& data, const std::vector<std::int64_t>& indices) {
  const std::int64_t n = data.size();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= n)
      throw InputError(data.source, "image index out of range")
          .key("index " + std::to_string(i))
          .expected("0 to " + std::to_string(n - 1))
          .found(std::to_string(indices[i]));
  }
  ImageDataset out;
  out.source = data.source;
  out.channels_last = data.channels_last;
  out.class_names = data.class_names;
  std::vector<std::int64_t> shape = data.images.shape();
  if (shape.empty()) return out;
  shape[0] = static_cast<std::int64_t>(indices.size());
  out.images = NdArray::allocate(data.images.dtype(), shape);
  const std::size_t image_bytes = n > 0 ? data.images.nbytes() / static_cast<std::size_t>(n) : 0;
  std::byte* dst = out.images.mutable_data();
  out.labels.reserve(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const auto k = static_cast<std::size_t>(indices[i]);
    if (image_bytes > 0)
      std::memcpy(dst + i * image_bytes, data.images.data() + k * image_bytes, image_bytes);
    out.labels.push_back(data.labels.at(k));
  }
  return out;
}

}  // namespace modeldiff::core
