#include "core/data/image_grid.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/data/preprocessing.h"

namespace modeldiff::core {

namespace {

constexpr int kMaxGridSide = 32767;  // what PNG viewers and QImage handle comfortably
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
// Below this Hershey text is unreadable; longer text is wrapped or cut instead.
constexpr double kMinTextScale = 0.3;
const cv::Scalar kBackground(255, 255, 255);
const cv::Scalar kFrame(200, 200, 200);
const cv::Scalar kCaptionColour(40, 40, 40);
const cv::Scalar kTitleColour(20, 20, 20);

// Line height (ascent + descent) of kFont at scale 1, thickness 1.
double unit_line_height() {
  int baseline = 0;
  const cv::Size size = cv::getTextSize("Ag", kFont, 1.0, 1, &baseline);
  return size.height + baseline;
}

// The largest scale at which `lines`, stacked, fit in width x height (with a little air).
double fitting_scale(const std::vector<std::string>& lines, int width, int height) {
  double scale = 0.85 * height / (unit_line_height() * static_cast<double>(lines.size()));
  for (const auto& line : lines) {
    int baseline = 0;
    const int w = cv::getTextSize(line, kFont, 1.0, 1, &baseline).width;
    if (w > 0) scale = std::min(scale, (width - 4.0) / w);
  }
  return scale;
}

// Draws `text` centred in the box [x, x + width) x [y, y + height): on one line as large as
// fits (at most max_scale); when that is below min_scale, on two lines split at the space that
// allows the largest text (if `two_lines`); when even that is too small, on one line at
// min_scale cut with "..".
void draw_text_centred(cv::Mat& canvas, const std::string& text, int x, int y, int width,
                       int height, double max_scale, double min_scale, bool two_lines,
                       const cv::Scalar& colour) {
  if (text.empty() || width <= 4 || height <= 4) return;
  std::vector<std::string> lines = {text};
  double scale = std::min(max_scale, fitting_scale(lines, width, height));
  if (scale < min_scale && two_lines) {
    double best = 0;
    std::vector<std::string> best_lines;
    for (std::size_t k = text.find(' '); k != std::string::npos; k = text.find(' ', k + 1)) {
      std::vector<std::string> split = {text.substr(0, k), text.substr(k + 1)};
      const double s = fitting_scale(split, width, height);
      if (s > best) best = s, best_lines = std::move(split);
    }
    if (best >= min_scale) {
      lines = best_lines;
      scale = std::min(max_scale, best);
    }
  }
  if (scale < min_scale) {
    scale = std::min(min_scale, 0.85 * height / unit_line_height());
    std::string cut = text;
    int baseline = 0;
    while (cut.size() > 1 &&
           cv::getTextSize(cut + "..", kFont, scale, 1, &baseline).width > width - 4)
      cut.pop_back();
    lines = {cut + ".."};
  }
  int baseline = 0;
  const cv::Size ag = cv::getTextSize("Ag", kFont, scale, 1, &baseline);
  const int pitch = ag.height + baseline;
  int top = y + (height - pitch * static_cast<int>(lines.size())) / 2;
  for (const auto& line : lines) {
    const int w = cv::getTextSize(line, kFont, scale, 1, &baseline).width;
    cv::putText(canvas, line, cv::Point(x + (width - w) / 2, top + ag.height), kFont, scale, colour,
                1, cv::LINE_AA);
    top += pitch;
  }
}

}  // namespace

GridLayout image_grid_layout(std::size_t count, bool with_captions, const GridStyle& style) {
  if (style.columns < 1 || style.columns > 256)
    throw InputError("", "image grid columns out of range")
        .expected("1 to 256")
        .found(std::to_string(style.columns));
  if (style.cell < 16 || style.cell > 1024)
    throw InputError("", "image grid cell size out of range")
        .expected("16 to 1024 pixels")
        .found(std::to_string(style.cell));
  if (count == 0) throw InputError("", "no images to show in the grid");
  GridLayout g;
  g.columns = style.columns;
  g.cell = style.cell;
  g.margin = std::max(2, style.cell / 24);
  g.caption_height = with_captions ? std::max(20, style.cell / 4) : 0;  // two small lines
  g.title_height = style.title.empty() ? 0 : std::max(24, style.cell / 3);
  const std::size_t rows =
      (count + static_cast<std::size_t>(g.columns) - 1) / static_cast<std::size_t>(g.columns);
  const std::size_t height = static_cast<std::size_t>(g.title_height) +
                             rows * static_cast<std::size_t>(g.cell + g.caption_height);
  g.width = g.columns * g.cell;
  if (height > static_cast<std::size_t>(kMaxGridSide) || g.width > kMaxGridSide)
    throw InputError("", "image grid too large for one picture")
        .expected("at most " + std::to_string(kMaxGridSide) + " x " + std::to_string(kMaxGridSide) +
                  " pixels; show fewer images or smaller cells")
        .found(std::to_string(count) + " images in " + std::to_string(rows) + " rows, " +
               std::to_string(height) + " x " + std::to_string(g.width) + " pixels");
  g.rows = static_cast<int>(rows);
  g.height = static_cast<int>(height);
  return g;
}

NdArray render_image_grid(const ImageDataset& data, const std::vector<std::int64_t>& indices,
                          const std::vector<std::string>& captions, const GridStyle& style) {
  MD_ASSERT(captions.empty() || captions.size() == indices.size());
  const GridLayout g = image_grid_layout(indices.size(), !captions.empty(), style);
  NdArray out = NdArray::allocate(DType::kUInt8, {g.height, g.width, 3});
  cv::Mat canvas(g.height, g.width, CV_8UC3, out.mutable_data());
  canvas.setTo(kBackground);

  if (!style.title.empty())
    draw_text_centred(canvas, style.title, 0, 0, g.width, g.title_height, 1.0, kMinTextScale, false,
                      kTitleColour);

  const int room = g.cell - 2 * g.margin;             // largest image side a cell holds
  const double caption_scale = 0.45 * g.cell / 96.0;  // short captions stay small text
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const NdArray pixels = display_image(data, indices[i]);  // H x W x C uint8
    const int h = static_cast<int>(pixels.dim(0)), w = static_cast<int>(pixels.dim(1));
    const int c = static_cast<int>(pixels.dim(2));
    cv::Mat image(h, w, CV_8UC(c), const_cast<std::byte*>(pixels.data()));
    if (c == 1) {
      cv::Mat rgb;
      cv::cvtColor(image, rgb, cv::COLOR_GRAY2RGB);
      image = rgb;
    }
    const double fit = std::min(static_cast<double>(room) / h, static_cast<double>(room) / w);
    const int th = std::clamp(static_cast<int>(std::lround(h * fit)), 1, room);
    const int tw = std::clamp(static_cast<int>(std::lround(w * fit)), 1, room);
    cv::Mat scaled;
    if (th == h && tw == w)
      scaled = image;
    else
      cv::resize(image, scaled, cv::Size(tw, th), 0, 0,
                 fit >= 1.0 ? cv::INTER_NEAREST : cv::INTER_AREA);
    const int k = static_cast<int>(i);
    const int x = g.cell_x(k) + (g.cell - tw) / 2;
    const int y = g.cell_y(k) + (g.cell - th) / 2;
    cv::rectangle(canvas, cv::Rect(x - 1, y - 1, tw + 2, th + 2), kFrame, 1);
    scaled.copyTo(canvas(cv::Rect(x, y, tw, th)));
    if (!captions.empty())
      draw_text_centred(canvas, captions[i], g.cell_x(k), g.caption_y(k), g.cell, g.caption_height,
                        caption_scale, kMinTextScale, true, kCaptionColour);
  }
  MD_ASSERT(canvas.data == reinterpret_cast<unsigned char*>(out.mutable_data()));
  return out;
}

void write_image_grid_png(const std::string& path, const ImageDataset& data,
                          const std::vector<std::int64_t>& indices,
                          const std::vector<std::string>& captions, const GridStyle& style) {
  NdArray rgb = render_image_grid(data, indices, captions, style);
  cv::Mat canvas(static_cast<int>(rgb.dim(0)), static_cast<int>(rgb.dim(1)), CV_8UC3,
                 rgb.mutable_data());
  cv::Mat bgr;
  cv::cvtColor(canvas, bgr, cv::COLOR_RGB2BGR);
  std::vector<unsigned char> png;
  bool ok = false;
  try {
    ok = cv::imencode(".png", bgr, png);
  } catch (const cv::Exception& e) {
    throw InputError(path, "cannot encode the grid as PNG").found(e.what());
  }
  if (!ok) throw InputError(path, "cannot encode the grid as PNG");
  write_file_atomically(path, {{png.data(), png.size()}});
}

}  // namespace modeldiff::core
