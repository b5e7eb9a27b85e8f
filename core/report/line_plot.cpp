#include "core/report/line_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/base/atomic_file.h"
#include "core/base/error.h"

namespace modeldiff::core {
namespace {

std::string tick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

void write_line_plot_png(const std::string& path, const LinePlot& plot) {
  double x0 = 1e300, x1 = -1e300, y0 = 0, y1 = 0;  // y range always includes 0
  for (const auto& s : plot.series) {
    if (s.y.size() != s.x.size() ||
        (!s.low.empty() && (s.low.size() != s.x.size() || s.high.size() != s.x.size())))
      throw InputError(path, "plot series of different lengths").key(s.name);
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min({y0, s.y[i], s.low.empty() ? s.y[i] : s.low[i]});
      y1 = std::max({y1, s.y[i], s.high.empty() ? s.y[i] : s.high[i]});
    }
  }
  if (x0 > x1) x0 = 0, x1 = 1;
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12) y1 = y0 + 1;
  const double pad = 0.08 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  const int w = plot.width, h = plot.height, left = 80, right = 170, top = 64, bottom = 60;
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  const auto px = [&](double x) {
    return left + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (w - left - right)));
  };
  const auto py = [&](double y) {
    return top + static_cast<int>(std::lround((y1 - y) / (y1 - y0) * (h - top - bottom)));
  };
  const cv::Scalar black(0, 0, 0), grey(200, 200, 200);
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  cv::rectangle(img, {left, top}, {w - right, h - bottom}, black, 1);
  for (int t = 0; t <= 4; ++t) {  // ticks
    const double xv = x0 + (x1 - x0) * t / 4, yv = y0 + (y1 - y0) * t / 4;
    cv::line(img, {px(xv), h - bottom}, {px(xv), h - bottom + 5}, black);
    cv::putText(img, tick(xv), {px(xv) - 15, h - bottom + 22}, font, 0.45, black, 1, cv::LINE_AA);
    cv::line(img, {left - 5, py(yv)}, {left, py(yv)}, black);
    cv::putText(img, tick(yv), {8, py(yv) + 5}, font, 0.45, black, 1, cv::LINE_AA);
  }
  cv::line(img, {left, py(0)}, {w - right, py(0)}, grey, 1);
  cv::putText(img, plot.title, {8, 24}, font, 0.6, black, 1, cv::LINE_AA);
  cv::putText(img, plot.x_label, {left + (w - left - right) / 2 - 40, h - 15}, font, 0.5, black, 1,
              cv::LINE_AA);
  cv::putText(img, plot.y_label, {8, top - 12}, font, 0.5, black, 1, cv::LINE_AA);
  int legend_y = top + 10;
  for (const auto& s : plot.series) {
    const cv::Scalar colour(s.b, s.g, s.r);  // OpenCV draws BGR
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      const cv::Point p(px(s.x[i]), py(s.y[i]));
      if (i > 0) cv::line(img, {px(s.x[i - 1]), py(s.y[i - 1])}, p, colour, 2, cv::LINE_AA);
      cv::circle(img, p, 4, colour, cv::FILLED, cv::LINE_AA);
      if (!s.low.empty()) {
        cv::line(img, {p.x, py(s.low[i])}, {p.x, py(s.high[i])}, colour, 1, cv::LINE_AA);
        for (double e : {s.low[i], s.high[i]})
          cv::line(img, {p.x - 5, py(e)}, {p.x + 5, py(e)}, colour, 1, cv::LINE_AA);
      }
    }
    cv::line(img, {w - right + 12, legend_y}, {w - right + 36, legend_y}, colour, 2, cv::LINE_AA);
    cv::putText(img, s.name.substr(0, 18), {w - right + 42, legend_y + 5}, font, 0.45, black, 1,
                cv::LINE_AA);
    legend_y += 22;
  }
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", img, png)) throw InputError(path, "cannot encode the plot as PNG");
  write_file_atomically(path, {{png.data(), png.size()}});
}

}  // namespace modeldiff::core
