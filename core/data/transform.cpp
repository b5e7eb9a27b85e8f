#include "core/data/transform.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>
#include <sstream>

#include "core/base/error.h"

namespace modeldiff::core {
namespace {

struct KindSpec {
  const char* kind;
  std::vector<const char*> keys;
  const char* strength;  // the key a sweep varies
};

const std::vector<KindSpec>& kinds() {
  static const std::vector<KindSpec> k = {
      {"patch", {"x", "y", "w", "h", "size", "value", "r", "g", "b", "pattern"}, "size"},
      {"paste", {"image", "x", "y", "scale"}, "scale"},
      {"texture", {"image", "delta", "seed"}, "delta"},
      {"tint", {"r", "g", "b", "alpha"}, "alpha"},
      {"grayscale", {"alpha"}, "alpha"},
      {"blur", {"sigma"}, "sigma"},
      {"noise", {"sigma", "seed"}, "sigma"},
      {"rotate", {"degrees"}, "degrees"},
      {"crop_resize", {"aspect"}, "aspect"},
      {"brightness", {"delta"}, "delta"},
      {"autocontrast", {"alpha"}, "alpha"},
      {"flip", {"alpha", "axis"}, "alpha"},
      {"shift", {"dx", "dy"}, "dx"},
  };
  return k;
}

const KindSpec& spec_of(const std::string& kind, const std::string& text) {
  for (const auto& k : kinds())
    if (kind == k.kind) return k;
  std::string known;
  for (const auto& k : kinds()) known += std::string(known.empty() ? "" : ", ") + k.kind;
  throw InputError("", "unknown transformation step").key(text).expected(known).found(kind);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) out.push_back(trim(part));
  return out;
}

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

double number(const TransformStep& s, const char* key, double fallback) {
  const auto it = s.args.find(key);
  if (it == s.args.end()) return fallback;
  try {
    std::size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used != it->second.size() || !std::isfinite(v)) throw std::invalid_argument("");
    return v;
  } catch (const std::exception&) {
    throw InputError("", "not a number")
        .key(s.kind + "." + key)
        .expected("a finite number")
        .found(it->second);
  }
}

std::string text_arg(const TransformStep& s, const char* key) {
  const auto it = s.args.find(key);
  return it == s.args.end() ? "" : it->second;
}

void check_range(const TransformStep& s, const char* key, double v, double lo, double hi) {
  if (v < lo || v > hi)
    throw InputError("", "value out of range")
        .key(s.kind + "." + key)
        .expected("[" + fmt(lo) + ", " + fmt(hi) + "]")
        .found(fmt(v));
}

// A whole number in [lo, hi] (pixel positions and sizes, seeds).
void check_integer(const TransformStep& s, const char* key, double fallback, double lo, double hi) {
  const double v = number(s, key, fallback);
  if (v != std::floor(v))
    throw InputError("", "not a whole number")
        .key(s.kind + "." + key)
        .expected("an integer in [" + fmt(lo) + ", " + fmt(hi) + "]")
        .found(fmt(v));
  check_range(s, key, v, lo, hi);
}

// Seeds are whole numbers that a double holds exactly (and that convert to uint64 defined).
constexpr double kMaxSeed = 9007199254740992.0;  // 2^53
// Positions and sizes: far beyond any image, small enough that sums of two stay in an int.
constexpr double kMaxPixels = 1e5;

std::string canonical(const std::vector<TransformStep>& steps) {
  std::string t;
  for (const auto& s : steps) {
    if (!t.empty()) t += ";";
    t += s.kind;
    char sep = ':';
    for (const auto& [k, v] : s.args) {
      t += sep + k + "=" + v;
      sep = ',';
    }
  }
  return t;
}

// Checks each step's values (everything but the image fitting, which apply checks).
void validate(const TransformStep& s) {
  if (s.kind == "patch") {
    for (const char* k : {"x", "y", "w", "h", "size"}) check_integer(s, k, 0, 0, kMaxPixels);
    for (const char* k : {"value", "r", "g", "b"}) check_range(s, k, number(s, k, 255), 0, 255);
    const std::string p = text_arg(s, "pattern");
    if (!p.empty() && p != "solid" && p != "checker")
      throw InputError("", "unknown patch pattern")
          .key("patch.pattern")
          .expected("solid or checker")
          .found(p);
  } else if (s.kind == "paste" || s.kind == "texture") {
    const std::string image = text_arg(s, "image");
    if (image.empty())
      throw InputError("", "missing image file").key(s.kind + ".image").expected("a path");
    std::error_code ec;  // a name too long or a folder not readable: not found either
    if (!std::filesystem::is_regular_file(image, ec))
      throw InputError(image, ec ? "cannot look up the image file: " + ec.message()
                                 : std::string("image file not found"))
          .key(s.kind + ".image");
    if (s.kind == "paste") {
      // Pastes are clipped to the image: any position is allowed, partly or wholly outside.
      for (const char* k : {"x", "y"}) check_integer(s, k, 0, -kMaxPixels, kMaxPixels);
      check_range(s, "scale", number(s, "scale", 1), 0, 100);
    }
    if (s.kind == "texture") {
      check_range(s, "delta", number(s, "delta", 0.3), 0, 1);
      check_integer(s, "seed", 0, 0, kMaxSeed);
    }
  } else if (s.kind == "tint") {
    for (const char* k : {"r", "g", "b"}) check_range(s, k, number(s, k, 0), 0, 255);
    check_range(s, "alpha", number(s, "alpha", 0.3), 0, 1);
  } else if (s.kind == "grayscale") {
    check_range(s, "alpha", number(s, "alpha", 1), 0, 1);
  } else if (s.kind == "blur" || s.kind == "noise") {
    check_range(s, "sigma", number(s, "sigma", 1), 0, 1e4);
    if (s.kind == "noise") check_integer(s, "seed", 0, 0, kMaxSeed);
  } else if (s.kind == "rotate") {
    check_range(s, "degrees", number(s, "degrees", 15), -360, 360);
  } else if (s.kind == "crop_resize") {
    check_range(s, "aspect", number(s, "aspect", 1), 0.01, 100);
  } else if (s.kind == "brightness") {
    check_range(s, "delta", number(s, "delta", 0), -1, 100);
  } else if (s.kind == "autocontrast") {
    check_range(s, "alpha", number(s, "alpha", 1), 0, 1);
  } else if (s.kind == "flip") {
    check_range(s, "alpha", number(s, "alpha", 1), 0, 1);
    const std::string axis = text_arg(s, "axis");
    if (!axis.empty() && axis != "horizontal" && axis != "vertical")
      throw InputError("", "unknown flip axis")
          .key("flip.axis")
          .expected("horizontal (a mirror image, left to right) or vertical")
          .found(axis);
  } else if (s.kind == "shift") {
    for (const char* k : {"dx", "dy"}) check_integer(s, k, 0, -kMaxPixels, kMaxPixels);
  }
}

std::uint64_t seed_for(const TransformStep& s, std::int64_t index) {
  std::uint64_t z = static_cast<std::uint64_t>(number(s, "seed", 0)) * 0x9e3779b97f4a7c15ull +
                    static_cast<std::uint64_t>(index) + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

cv::Mat load_image(const std::string& path, int flags) {
  cv::Mat m;
  try {
    m = cv::imread(path, flags);
  } catch (const cv::Exception& e) {
    throw InputError(path, "cannot read the image").expected("a PNG, JPEG, ... file").found(e.err);
  }
  if (m.empty()) throw InputError(path, "cannot read the image").expected("a PNG, JPEG, ... file");
  return m;
}

// Larger pastes (after scaling) are refused rather than allocated.
constexpr double kMaxPastePixels = 1 << 26;

// Splits an image file as read (1 grey, 2 grey + alpha, 3 BGR or 4 BGRA channels; 8 or 16 bits
// or float) into `color`, 8-bit with `channels` channels (1 grey or 3 RGB), and `alpha`,
// 8-bit, or empty when the file has none.
void paste_layers(const cv::Mat& file_image, const std::string& path, int channels, cv::Mat& color,
                  cv::Mat& alpha) {
  cv::Mat src;
  switch (file_image.depth()) {
    case CV_8U:
      src = file_image;
      break;
    case CV_16U:
      file_image.convertTo(src, CV_8U, 1.0 / 257);
      break;
    case CV_32F:  // e.g. OpenEXR, in [0, 1]
      file_image.convertTo(src, CV_8U, 255);
      break;
    default:
      throw InputError(path, "unsupported pixel type for a paste")
          .key("paste.image")
          .expected("8- or 16-bit integer or 32-bit float pixels");
  }
  const int n = src.channels();
  if (n < 1 || n > 4)
    throw InputError(path, "unsupported number of channels for a paste")
        .key("paste.image")
        .expected("1 (grey), 2 (grey + alpha), 3 (colour) or 4 (colour + alpha)")
        .found(std::to_string(n));
  cv::Mat base = src;
  if (n == 2 || n == 4) {
    std::vector<cv::Mat> planes;
    cv::split(src, planes);
    alpha = planes.back();
    planes.pop_back();
    cv::merge(planes, base);
  }
  if (channels == 1 && base.channels() == 1)
    color = base;
  else if (channels == 1)
    cv::cvtColor(base, color, cv::COLOR_BGR2GRAY);
  else
    cv::cvtColor(base, color, base.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
}

// `img`: H x W x C uint8 (C = 1 or 3, RGB), modified in place.
void apply_step(const TransformStep& s, cv::Mat& img, std::int64_t index,
                const std::string& source) {
  const int h = img.rows, w = img.cols, c = img.channels();
  if (s.kind == "patch") {
    const int size = static_cast<int>(number(s, "size", 3));
    const int pw = static_cast<int>(number(s, "w", size)),
              ph = static_cast<int>(number(s, "h", size));
    const int x = static_cast<int>(number(s, "x", 0)), y = static_cast<int>(number(s, "y", 0));
    if (pw == 0 || ph == 0) return;
    if (x + pw > w || y + ph > h)
      throw InputError(source, "the patch does not fit the image")
          .key("patch")
          .expected("x + w <= " + std::to_string(w) + " and y + h <= " + std::to_string(h))
          .found("x=" + std::to_string(x) + ",y=" + std::to_string(y) + ",w=" + std::to_string(pw) +
                 ",h=" + std::to_string(ph));
    const double v = number(s, "value", 255);
    const double rgb[3] = {number(s, "r", v), number(s, "g", v), number(s, "b", v)};
    const bool checker = text_arg(s, "pattern") == "checker";
    for (int r = y; r < y + ph; ++r)
      for (int q = x; q < x + pw; ++q) {
        const bool flip = checker && ((r - y + q - x) % 2 == 1);
        for (int ch = 0; ch < c; ++ch) {
          const double value = c == 1 ? v : rgb[ch];
          img.ptr<std::uint8_t>(r)[q * c + ch] =
              static_cast<std::uint8_t>(std::lround(flip ? 255 - value : value));
        }
      }
  } else if (s.kind == "paste") {
    const double scale = number(s, "scale", 1);
    if (scale == 0) return;
    const std::string file = text_arg(s, "image");
    cv::Mat color, alpha;  // color: 8-bit with the image's channels; alpha: 8-bit or empty
    paste_layers(load_image(file, cv::IMREAD_UNCHANGED), file, c, color, alpha);
    if (scale != 1) {
      const double sw = std::round(color.cols * scale), sh = std::round(color.rows * scale);
      if (sw * sh > kMaxPastePixels)
        throw InputError(file, "the pasted image is too large at this scale")
            .key("paste.scale")
            .expected("at most " + fmt(kMaxPastePixels) + " pixels after scaling")
            .found(std::to_string(color.cols) + " x " + std::to_string(color.rows) + " at scale " +
                   fmt(scale));
      const cv::Size size(std::max(1, static_cast<int>(sw)), std::max(1, static_cast<int>(sh)));
      const int interpolation = scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR;
      cv::resize(color, color, size, 0, 0, interpolation);
      if (!alpha.empty()) cv::resize(alpha, alpha, size, 0, 0, interpolation);
    }
    const int x = static_cast<int>(number(s, "x", 0)), y = static_cast<int>(number(s, "y", 0));
    // The part of the pasted image that lands on the image (none when it lies outside).
    const int r0 = std::max(0, -y), r1 = std::min(color.rows, h - y);
    const int q0 = std::max(0, -x), q1 = std::min(color.cols, w - x);
    for (int r = r0; r < r1; ++r)
      for (int q = q0; q < q1; ++q) {
        const double a = alpha.empty() ? 1.0 : alpha.at<std::uint8_t>(r, q) / 255.0;
        for (int ch = 0; ch < c; ++ch) {
          std::uint8_t& dst = img.ptr<std::uint8_t>(y + r)[(x + q) * c + ch];
          dst = static_cast<std::uint8_t>(
              std::lround((1 - a) * dst + a * color.ptr<std::uint8_t>(r)[q * c + ch]));
        }
      }
  } else if (s.kind == "texture") {
    const double delta = number(s, "delta", 0.3);
    if (delta == 0) return;
    cv::Mat tex =
        load_image(text_arg(s, "image"), c == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
    if (c == 3) cv::cvtColor(tex, tex, cv::COLOR_BGR2RGB);
    if (tex.cols < w || tex.rows < h) {
      // Enlarged, keeping its aspect, until it covers the image (the size computed here, not
      // by OpenCV's rounding of a factor, so that it is never a pixel short).
      const double f =
          std::max(static_cast<double>(w) / tex.cols, static_cast<double>(h) / tex.rows);
      const cv::Size size(std::max(w, static_cast<int>(std::ceil(tex.cols * f))),
                          std::max(h, static_cast<int>(std::ceil(tex.rows * f))));
      cv::resize(tex, tex, size, 0, 0, cv::INTER_LINEAR);
    }
    std::mt19937_64 rng(seed_for(s, index));
    const int ox = static_cast<int>(rng() % static_cast<std::uint64_t>(tex.cols - w + 1));
    const int oy = static_cast<int>(rng() % static_cast<std::uint64_t>(tex.rows - h + 1));
    for (int r = 0; r < h; ++r)
      for (int q = 0; q < w * c; ++q) {
        std::uint8_t& dst = img.ptr<std::uint8_t>(r)[q];
        dst = static_cast<std::uint8_t>(
            std::lround((1 - delta) * dst + delta * tex.ptr<std::uint8_t>(oy + r)[ox * c + q]));
      }
  } else if (s.kind == "tint" || s.kind == "grayscale") {
    const double alpha = number(s, "alpha", s.kind == "tint" ? 0.3 : 1.0);
    for (int r = 0; r < h; ++r)
      for (int q = 0; q < w; ++q) {
        std::uint8_t* p = img.ptr<std::uint8_t>(r) + q * c;
        double target[3];
        if (s.kind == "tint") {
          const double v[3] = {number(s, "r", 0), number(s, "g", 0), number(s, "b", 0)};
          for (int ch = 0; ch < 3; ++ch) target[ch] = v[ch];
          if (c == 1) target[0] = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
        } else {
          const double lum = c == 1 ? p[0] : 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
          target[0] = target[1] = target[2] = lum;
        }
        for (int ch = 0; ch < c; ++ch)
          p[ch] = static_cast<std::uint8_t>(std::lround((1 - alpha) * p[ch] + alpha * target[ch]));
      }
  } else if (s.kind == "blur") {
    const double sigma = number(s, "sigma", 1);
    if (sigma == 0) return;
    // The kernel covers 3 sigma, but never more than twice the image: beyond that the blur is
    // the image's reflected mean either way, and a huge kernel only costs time.
    const int k = 2 * static_cast<int>(std::min(std::ceil(3 * sigma), 2.0 * std::max(h, w))) + 1;
    cv::GaussianBlur(img, img, cv::Size(k, k), sigma, sigma, cv::BORDER_REFLECT_101);
  } else if (s.kind == "noise") {
    const double sigma = number(s, "sigma", 1);
    if (sigma == 0) return;
    std::mt19937_64 rng(seed_for(s, index));
    for (int r = 0; r < h; ++r)
      for (int q = 0; q < w * c; ++q) {
        // Box-Muller from the raw engine: the same noise with every standard library.
        const double u1 = (static_cast<double>(rng() >> 11) + 0.5) / 9007199254740992.0;
        const double u2 = static_cast<double>(rng() >> 11) / 9007199254740992.0;
        const double z = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
        std::uint8_t& p = img.ptr<std::uint8_t>(r)[q];
        p = static_cast<std::uint8_t>(std::clamp<long>(std::lround(p + sigma * z), 0, 255));
      }
  } else if (s.kind == "rotate") {
    const double degrees = number(s, "degrees", 15);
    if (degrees == 0) return;
    const cv::Mat m =
        cv::getRotationMatrix2D(cv::Point2f((w - 1) / 2.0f, (h - 1) / 2.0f), degrees, 1.0);
    cv::Mat out;
    cv::warpAffine(img, out, m, img.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                   cv::Scalar::all(0));
    img = out;
  } else if (s.kind == "crop_resize") {
    const double aspect = number(s, "aspect", 1);
    if (aspect == 1) return;
    int cw = w, ch = h;
    if (aspect > static_cast<double>(w) / h)
      ch = std::max(1, static_cast<int>(std::lround(w / aspect)));
    else
      cw = std::max(1, static_cast<int>(std::lround(h * aspect)));
    const cv::Mat crop = img(cv::Rect((w - cw) / 2, (h - ch) / 2, cw, ch)).clone();
    cv::Mat out;
    cv::resize(crop, out, img.size(), 0, 0, cv::INTER_LINEAR);
    img = out;
  } else if (s.kind == "brightness") {
    const double factor = 1 + number(s, "delta", 0);
    for (int r = 0; r < h; ++r)
      for (int q = 0; q < w * c; ++q) {
        std::uint8_t& p = img.ptr<std::uint8_t>(r)[q];
        p = static_cast<std::uint8_t>(std::min(255L, std::lround(factor * p)));
      }
  } else if (s.kind == "autocontrast") {
    // The image's darkest value to 0 and its brightest to 255, one affine map for all
    // channels: what a per-image normalisation does, so a global brightness or contrast
    // change of the image leaves no trace (up to rounding). A flat image stays as it is.
    const double alpha = number(s, "alpha", 1);
    double lo = 255, hi = 0;
    for (int r = 0; r < h; ++r)
      for (int q = 0; q < w * c; ++q) {
        lo = std::min<double>(lo, img.ptr<std::uint8_t>(r)[q]);
        hi = std::max<double>(hi, img.ptr<std::uint8_t>(r)[q]);
      }
    if (alpha == 0 || hi <= lo) return;
    for (int r = 0; r < h; ++r)
      for (int q = 0; q < w * c; ++q) {
        std::uint8_t& p = img.ptr<std::uint8_t>(r)[q];
        const double stretched = (p - lo) * 255.0 / (hi - lo);
        p = static_cast<std::uint8_t>(std::lround((1 - alpha) * p + alpha * stretched));
      }
  } else if (s.kind == "flip") {
    // (1 - alpha) * image + alpha * its mirror image: alpha 1 is the flip a random-flip
    // augmentation applies, alpha 0.5 an image symmetric about the axis.
    const double alpha = number(s, "alpha", 1);
    if (alpha == 0) return;
    cv::Mat mirrored;
    cv::flip(img, mirrored, text_arg(s, "axis") == "vertical" ? 0 : 1);
    if (alpha == 1) {
      img = mirrored;
      return;
    }
    for (int r = 0; r < h; ++r)
      for (int q = 0; q < w * c; ++q) {
        std::uint8_t& p = img.ptr<std::uint8_t>(r)[q];
        p = static_cast<std::uint8_t>(
            std::lround((1 - alpha) * p + alpha * mirrored.ptr<std::uint8_t>(r)[q]));
      }
  } else if (s.kind == "shift") {
    // The content moves dx pixels right and dy down (negative: left, up); what comes in at the
    // borders is 0, as in a random crop of a zero-padded image.
    const int dx = static_cast<int>(number(s, "dx", 0)), dy = static_cast<int>(number(s, "dy", 0));
    if (dx == 0 && dy == 0) return;
    cv::Mat out = cv::Mat::zeros(img.size(), img.type());
    const int x0 = std::max(0, dx), y0 = std::max(0, dy);
    const int x1 = std::min(w, w + dx), y1 = std::min(h, h + dy);
    if (x1 > x0 && y1 > y0)
      img(cv::Rect(x0 - dx, y0 - dy, x1 - x0, y1 - y0))
          .copyTo(out(cv::Rect(x0, y0, x1 - x0, y1 - y0)));
    img = out;
  }
}

}  // namespace

Transform parse_transform(const std::string& text) {
  Transform t;
  for (const std::string& part : split(text, ';')) {
    if (part.empty()) continue;
    TransformStep s;
    const auto colon = part.find(':');
    s.kind = trim(part.substr(0, colon));
    const KindSpec& spec = spec_of(s.kind, part);
    if (colon != std::string::npos) {
      for (const std::string& kv : split(part.substr(colon + 1), ',')) {
        if (kv.empty()) continue;
        const auto eq = kv.find('=');
        if (eq == std::string::npos)
          throw InputError("", "expected key=value").key(s.kind).found(kv);
        const std::string key = trim(kv.substr(0, eq));
        if (std::find_if(spec.keys.begin(), spec.keys.end(),
                         [&](const char* k) { return key == k; }) == spec.keys.end()) {
          std::string keys;
          for (const char* k : spec.keys) keys += std::string(keys.empty() ? "" : ", ") + k;
          throw InputError("", "unknown key").key(s.kind + "." + key).expected(keys);
        }
        s.args[key] = trim(kv.substr(eq + 1));
      }
    }
    validate(s);
    t.steps.push_back(std::move(s));
  }
  if (t.steps.empty())
    throw InputError("", "empty transformation").expected("e.g. patch:x=1,y=1,w=3,h=3,value=255");
  t.text = canonical(t.steps);
  return t;
}

Transform with_strength(const Transform& t, double value) {
  Transform out = t;
  TransformStep& s = out.steps.front();
  const std::string key = spec_of(s.kind, s.kind).strength;
  if (s.kind == "patch") {
    s.args.erase("w");
    s.args.erase("h");
  }
  s.args[key] = fmt(value);
  validate(s);
  out.text = canonical(out.steps);
  return out;
}

double strength_of(const Transform& t) {
  const TransformStep& s = t.steps.front();
  const std::string key = spec_of(s.kind, s.kind).strength;
  if (s.kind == "patch") return number(s, "w", number(s, "size", 3));
  static const std::map<std::string, double> defaults = {
      {"paste", 1},      {"texture", 0.3},    {"tint", 0.3},  {"grayscale", 1},
      {"blur", 1},       {"noise", 1},        {"rotate", 15}, {"crop_resize", 1},
      {"brightness", 0}, {"autocontrast", 1}, {"flip", 1},    {"shift", 0}};
  return number(s, key.c_str(), defaults.at(s.kind));
}

ImageDataset apply_transform(const ImageDataset& data, const Transform& t,
                             const std::vector<std::int64_t>& indices) {
  if (!data.channels_last || data.images.dtype() != DType::kUInt8)
    throw InputError(data.source, "transformations work on stored uint8 pixels")
        .expected("N x H x W x C uint8 images (IDX, uint8 .npy, image folders)")
        .found("float32 images (already model input)");
  std::vector<std::int64_t> idx = indices;
  if (idx.empty())
    for (std::int64_t i = 0; i < data.size(); ++i) idx.push_back(i);
  const int h = data.height(), w = data.width(), c = data.channels();
  if (c != 1 && c != 3)
    throw InputError(data.source, "transformations work on grey or colour images")
        .expected("1 or 3 channels")
        .found(std::to_string(c) + " channels");
  if (h <= 0 || w <= 0)
    throw InputError(data.source, "transformations need images with pixels")
        .found(std::to_string(h) + " x " + std::to_string(w));
  ImageDataset out = subset(data, idx);
  const std::size_t bytes = static_cast<std::size_t>(h) * w * c;
  std::uint8_t* pixels = out.images.mutable_data_as<std::uint8_t>();
  for (std::size_t i = 0; i < idx.size(); ++i) {
    cv::Mat img(h, w, c == 1 ? CV_8UC1 : CV_8UC3, pixels + i * bytes);
    for (const auto& s : t.steps) {
      apply_step(s, img, idx[i], data.source);
      if (img.data != pixels + i * bytes) {  // a step that produced a new matrix
        std::memcpy(pixels + i * bytes, img.data, bytes);
        img = cv::Mat(h, w, c == 1 ? CV_8UC1 : CV_8UC3, pixels + i * bytes);
      }
    }
  }
  return out;
}

}  // namespace modeldiff::core
