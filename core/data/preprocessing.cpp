#include "core/data/preprocessing.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#if MODELDIFF_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include "core/base/error.h"

namespace modeldiff::core {

namespace {

constexpr int kMaxSide = 65535;

// d when scale is the float nearest 1 / d for a whole number d (1.0f / 255.0f -> 255), else 0.
float whole_divisor(float scale) {
  if (!std::isfinite(scale) || scale <= 0 || scale > 1) return 0;
  const double d = std::round(1.0 / static_cast<double>(scale));
  if (d < 1 || d > 16777216.0) return 0;
  return 1.0f / static_cast<float>(d) == scale ? static_cast<float>(d) : 0;
}

// The value of every uint8 pixel after scaling, computed as torchvision does.
std::array<float, 256> scaled_uint8_values(float scale) {
  std::array<float, 256> lut{};
  const float d = whole_divisor(scale);
  for (int v = 0; v < 256; ++v)
    lut[static_cast<std::size_t>(v)] =
        d > 0 ? static_cast<float>(v) / d : static_cast<float>(v) * scale;
  return lut;
}

// Shortest decimal text that reads back as the same float.
std::string float_text(float v) {
  char buf[64];
  for (int precision = 6; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return buf;
}

std::string list_text(const std::vector<float>& values) {
  std::string s;
  for (std::size_t i = 0; i < values.size(); ++i) s += (i ? ":" : "") + float_text(values[i]);
  return s;
}

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool parse_float(const std::string& text, float* out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  const float v = std::strtof(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool parse_side(const std::string& text, int* out) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }))
    return false;
  const int v = std::stoi(text);
  if (v < 1 || v > kMaxSide) return false;
  *out = v;
  return true;
}

InputError bad_token(const std::string& token, const std::string& problem) {
  return InputError("", "preprocessing token '" + token + "': " + problem);
}

void check_per_channel(const std::vector<float>& values, const char* name, int channels) {
  if (!values.empty() && values.size() != static_cast<std::size_t>(channels))
    throw InputError("",
                     std::string("preprocessing ") + name + " needs one value per image channel")
        .expected(std::to_string(channels) + (channels == 1 ? " value" : " values"))
        .found(std::to_string(values.size()) + " (" + list_text(values) + ")");
}

}  // namespace

bool operator==(const Preprocessing& a, const Preprocessing& b) {
  return a.scale == b.scale && a.mean == b.mean && a.stddev == b.stddev &&
         a.resize_height == b.resize_height && a.resize_width == b.resize_width;
}

ResizeFilter resize_filter_for(int from_h, int from_w, int to_h, int to_w) {
  return to_h <= from_h && to_w <= from_w ? ResizeFilter::kArea : ResizeFilter::kLinear;
}

void validate(const Preprocessing& p, int channels) {
  if (!std::isfinite(p.scale) || p.scale <= 0)
    throw InputError("", "preprocessing scale must be a positive number")
        .found(float_text(p.scale));
  check_per_channel(p.mean, "mean", channels);
  check_per_channel(p.stddev, "std", channels);
  for (float m : p.mean)
    if (!std::isfinite(m))
      throw InputError("", "preprocessing mean must be finite").found(list_text(p.mean));
  for (float s : p.stddev)
    if (!std::isfinite(s) || s <= 0)
      throw InputError("", "preprocessing std must be positive").found(list_text(p.stddev));
  const bool no_resize = p.resize_height == 0 && p.resize_width == 0;
  const bool valid_resize = p.resize_height >= 1 && p.resize_height <= kMaxSide &&
                            p.resize_width >= 1 && p.resize_width <= kMaxSide;
  if (!no_resize && !valid_resize)
    throw InputError("", "invalid preprocessing resize")
        .expected("both height and width between 1 and " + std::to_string(kMaxSide) + ", or both 0")
        .found(std::to_string(p.resize_height) + "x" + std::to_string(p.resize_width));
}

NdArray preprocess(const ImageDataset& data, const Preprocessing& p, std::int64_t begin,
                   std::int64_t end) {
  MD_ASSERT(0 <= begin && begin <= end && end <= data.size());
  const int c_count = data.channels(), h = data.height(), w = data.width();
  validate(p, c_count);
  const int oh = p.resize_height > 0 ? p.resize_height : h;
  const int ow = p.resize_width > 0 ? p.resize_width : w;
  const bool resize = oh != h || ow != w;
#if MODELDIFF_HAVE_OPENCV
  const int filter =
      resize_filter_for(h, w, oh, ow) == ResizeFilter::kArea ? cv::INTER_AREA : cv::INTER_LINEAR;
#else
  if (resize)
    throw InputError(data.source,
                     "resizing the images (resize= in the preprocessing) needs OpenCV, and this "
                     "build of modeldiff has none")
        .expected("images of the model's input size, without resize=")
        .found(std::to_string(h) + " x " + std::to_string(w) + " images, resize to " +
               std::to_string(oh) + " x " + std::to_string(ow));
#endif
  const bool normalise = !p.mean.empty() || !p.stddev.empty();
  const auto mean_of = [&](int c) { return p.mean.empty() ? 0.0f : p.mean[std::size_t(c)]; };
  const auto std_of = [&](int c) { return p.stddev.empty() ? 1.0f : p.stddev[std::size_t(c)]; };

  NdArray out = NdArray::allocate(DType::kFloat32, {end - begin, c_count, oh, ow});
  float* out_data = out.mutable_data_as<float>();
  const std::size_t in_plane = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
  const std::size_t out_plane = static_cast<std::size_t>(oh) * static_cast<std::size_t>(ow);

  // uint8 pixels go through a table per channel: scaling and, without a resize in between,
  // normalisation, with the same float operations as computing them pixel by pixel.
  std::vector<std::array<float, 256>> tables;
  if (data.channels_last) {
    const auto scaled = scaled_uint8_values(p.scale);
    for (int c = 0; c < c_count; ++c) {
      auto t = scaled;
      if (normalise && !resize)
        for (float& v : t) v = (v - mean_of(c)) / std_of(c);
      tables.push_back(t);
    }
  }

  std::vector<float> plane(resize ? in_plane : 0);
  for (std::int64_t i = begin; i < end; ++i) {
    for (int c = 0; c < c_count; ++c) {
      float* dst = out_data + (static_cast<std::size_t>(i - begin) * c_count + c) * out_plane;
      const float* src = nullptr;  // the H x W plane before resizing
      if (data.channels_last) {
        float* fill = resize ? plane.data() : dst;
        const auto& table = tables[static_cast<std::size_t>(c)];
        const std::uint8_t* pix = data.images.data_as<std::uint8_t>() +
                                  static_cast<std::size_t>(i) * in_plane * c_count + c;
        for (std::size_t k = 0; k < in_plane; ++k) fill[k] = table[pix[k * c_count]];
        src = fill;
      } else {
        src = data.images.data_as<float>() + (static_cast<std::size_t>(i) * c_count + c) * in_plane;
        if (!resize) std::memcpy(dst, src, in_plane * sizeof(float));
      }
#if MODELDIFF_HAVE_OPENCV
      if (resize) {
        const cv::Mat from(h, w, CV_32F, const_cast<float*>(src));
        cv::Mat to(oh, ow, CV_32F, dst);
        cv::resize(from, to, cv::Size(ow, oh), 0, 0, filter);
        MD_ASSERT(to.data == reinterpret_cast<unsigned char*>(dst));
      }
#endif
      if (normalise && (resize || !data.channels_last)) {
        const float m = mean_of(c), s = std_of(c);
        for (std::size_t k = 0; k < out_plane; ++k) dst[k] = (dst[k] - m) / s;
      }
    }
  }
  return out;
}

std::string describe(const Preprocessing& p) {
  const float d = whole_divisor(p.scale);
  std::string s = "scale=" + (d > 0 ? "1/" + float_text(d) : float_text(p.scale));
  if (!p.mean.empty()) s += ",mean=" + list_text(p.mean);
  if (!p.stddev.empty()) s += ",std=" + list_text(p.stddev);
  if (p.resize_height > 0 || p.resize_width > 0)
    s += ",resize=" + std::to_string(p.resize_height) + "x" + std::to_string(p.resize_width);
  return s;
}

Preprocessing parse_preprocessing(const std::string& spec) {
  Preprocessing p;
  if (trim(spec).empty()) return p;
  std::vector<std::string> seen;
  std::size_t start = 0;
  while (start <= spec.size()) {
    const std::size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string token = trim(spec.substr(start, comma - start));
    start = comma + 1;
    const std::size_t eq = token.find('=');
    if (eq == std::string::npos)
      throw bad_token(token, "not key=value").expected("scale=, mean=, std= or resize=");
    std::string key = trim(token.substr(0, eq));
    if (key == "stddev") key = "std";
    const std::string value = trim(token.substr(eq + 1));
    if (std::find(seen.begin(), seen.end(), key) != seen.end())
      throw bad_token(token, "'" + key + "' given twice");
    seen.push_back(key);
    if (key == "scale") {
      float v = 0;
      const std::size_t slash = value.find('/');
      if (slash != std::string::npos) {
        float num = 0, den = 0;
        if (!parse_float(value.substr(0, slash), &num) ||
            !parse_float(value.substr(slash + 1), &den) || den == 0)
          throw bad_token(token, "not a number or fraction").expected("e.g. scale=1/255");
        // 1/255 must give the same float as the C++ literal 1.0f / 255.0f.
        v = num / den;
      } else if (!parse_float(value, &v)) {
        throw bad_token(token, "not a number").expected("e.g. scale=1/255 or scale=0.00392");
      }
      if (!(v > 0)) throw bad_token(token, "scale must be positive");
      p.scale = v;
    } else if (key == "mean" || key == "std") {
      std::vector<float> values;
      std::size_t from = 0;
      while (from <= value.size()) {
        const std::size_t colon = std::min(value.find(':', from), value.size());
        float v = 0;
        if (!parse_float(trim(value.substr(from, colon - from)), &v))
          throw bad_token(token, "not a number list")
              .expected("numbers, one per channel separated by ':', e.g. " + key +
                        "=0.485:0.456:0.406");
        values.push_back(v);
        from = colon + 1;
      }
      if (key == "mean") {
        p.mean = values;
      } else {
        for (float v : values)
          if (!(v > 0)) throw bad_token(token, "std must be positive");
        p.stddev = values;
      }
    } else if (key == "resize") {
      const std::size_t x = value.find_first_of("xX");
      if (x == std::string::npos || !parse_side(value.substr(0, x), &p.resize_height) ||
          !parse_side(value.substr(x + 1), &p.resize_width))
        throw bad_token(token, "not a size")
            .expected("HEIGHTxWIDTH with sides 1 to " + std::to_string(kMaxSide) +
                      ", e.g. resize=32x32");
    } else {
      throw bad_token(token, "unknown key '" + key + "'").expected("scale, mean, std or resize");
    }
  }
  return p;
}

NdArray display_image(const ImageDataset& data, std::int64_t index) {
  if (index < 0 || index >= data.size())
    throw InputError(data.source, "image index out of range")
        .expected("0 to " + std::to_string(data.size() - 1))
        .found(std::to_string(index));
  const int c_count = data.channels(), h = data.height(), w = data.width();
  NdArray out = NdArray::allocate(DType::kUInt8, {h, w, c_count});
  std::uint8_t* dst = out.mutable_data_as<std::uint8_t>();
  const std::size_t numel = static_cast<std::size_t>(out.numel());
  if (data.channels_last) {
    std::memcpy(dst, data.images.data_as<std::uint8_t>() + static_cast<std::size_t>(index) * numel,
                numel);
    return out;
  }
  const float* src = data.images.data_as<float>() + static_cast<std::size_t>(index) * numel;
  float lo = INFINITY, hi = -INFINITY;
  for (std::size_t k = 0; k < numel; ++k) {
    if (std::isfinite(src[k])) {
      lo = std::min(lo, src[k]);
      hi = std::max(hi, src[k]);
    }
  }
  const bool constant = !(hi > lo);
  const std::size_t plane = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
  for (int c = 0; c < c_count; ++c) {
    for (std::size_t k = 0; k < plane; ++k) {
      const float v = src[static_cast<std::size_t>(c) * plane + k];
      float unit = constant ? v : (v - lo) / (hi - lo);
      if (std::isnan(unit)) unit = 0;
      unit = std::clamp(unit, 0.0f, 1.0f);
      dst[k * static_cast<std::size_t>(c_count) + static_cast<std::size_t>(c)] =
          static_cast<std::uint8_t>(std::lround(unit * 255.0f));
    }
  }
  return out;
}

}  // namespace modeldiff::core
