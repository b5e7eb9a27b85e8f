#include "core/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/base/error.h"

namespace modeldiff::core {

namespace {

constexpr double kTitleFont = 14, kLabelFont = 13, kTickFont = 12, kLegendFont = 12;
constexpr double kPointLabelFont = 10;
constexpr double kTickLength = 5;
constexpr const char* kFontFamily =
    "Helvetica, Arial, 'DejaVu Sans', 'Liberation Sans', sans-serif";
constexpr const char* kTextColour = "#222222";
constexpr const char* kAxisColour = "#666666";
constexpr const char* kGridColour = "#e6e6e6";

// Pixel coordinates with two decimals: exact enough, and short.
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// A rough width of `text` in a sans-serif font of `size` px: wide enough for digits and most
// letters, which is what margins and legend spacing need.
double text_width(const std::string& text, double size) {
  return 0.6 * size * static_cast<double>(text.size());
}

// x = mantissa * 10^exponent with mantissa in {1, 2, 5, 10}; "nice" numbers per Heckbert.
// `text` escaped for SVG and the font size to draw it at so that it fits `available` pixels:
// shrunk down to `min_size`, then cut at a character boundary and ended with an ellipsis.
struct FittedText {
  std::string content;
  double size;
  double width;  // estimated
};

FittedText fit_text(const std::string& text, double size, double min_size, double available) {
  const double w = text_width(text, size);
  if (w <= available || text.empty()) return {xml_escape(text), size, w};
  const double shrunk = std::max(min_size, size * available / w);
  if (text_width(text, shrunk) <= available)
    return {xml_escape(text), shrunk, text_width(text, shrunk)};
  std::string cut = text;
  while (!cut.empty() && text_width(cut, shrunk) + 0.6 * shrunk > available) {
    unsigned char last;
    do {  // one whole UTF-8 character: continuation bytes, then the lead byte
      last = static_cast<unsigned char>(cut.back());
      cut.pop_back();
    } while (!cut.empty() && (last & 0xC0) == 0x80);
  }
  return {xml_escape(cut) + "&#8230;", shrunk, text_width(cut, shrunk) + 0.6 * shrunk};
}

struct NiceNumber {
  double mantissa;
  int exponent;
  double value() const { return scaled(mantissa); }
  // k * mantissa * 10^exponent, computed so that small multiples of round steps print exactly
  // (3 * 0.005 is 0.015, not 0.015000000000000001).
  double scaled(double k) const {
    return exponent >= 0 ? k * std::pow(10.0, exponent) : k / std::pow(10.0, -exponent);
  }
};

NiceNumber nice_number(double x, bool round) {
  const int e = static_cast<int>(std::floor(std::log10(x)));
  const double f = x / std::pow(10.0, e);
  double m;
  if (round)
    m = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else
    // With a little slack: a range of 0.55 - 0.45 = 0.10000000000000003 is a range of 0.1.
    m = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10;
  if (m == 10) return {1, e + 1};
  return {m, e};
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

bool usable(double v, bool log) {
  return std::isfinite(v) && (!log || v > 0);
}

struct AxisScale {
  double min = 0, max = 1;
  std::vector<double> ticks;        // labelled
  std::vector<double> minor;        // unlabelled (log axes)
  std::vector<std::string> labels;  // SVG text content (escaped), one per tick
  bool log = false;
};

std::string log_tick_label(double v) {
  const int k = static_cast<int>(std::lround(std::log10(v)));
  if (k >= -3 && k <= 4) return format_tick(v, std::pow(10.0, std::min(k, 0)));
  return "10<tspan dy=\"-6\" font-size=\"9\">" + std::to_string(k) + "</tspan>";
}

// Visible width of a tick label (a log label's superscript counts as two characters).
double label_width(const std::string& label) {
  const auto tspan = label.find("<tspan");
  if (tspan == std::string::npos) return text_width(label, kTickFont);
  return text_width("10", kTickFont) + text_width("-00", 9);
}

// The axis range and ticks for data in `data` with the user's fixed ends from `axis`.
AxisScale make_scale(Range data, const PlotAxis& axis, bool log) {
  AxisScale s;
  s.log = log;
  if (axis.min && usable(*axis.min, log)) data.add(*axis.min);
  if (axis.max && usable(*axis.max, log)) data.add(*axis.max);
  if (data.empty()) {
    data.add(log ? 1.0 : 0.0);
    data.add(log ? 10.0 : 1.0);
  }
  std::vector<double> ticks = log ? log_ticks(data.lo, data.hi) : nice_ticks(data.lo, data.hi);
  s.min = axis.min && usable(*axis.min, log) ? *axis.min : ticks.front();
  s.max = axis.max && usable(*axis.max, log) ? *axis.max : ticks.back();
  if (!(s.max > s.min)) {  // a fixed end on the wrong side of the data: widen around it
    ticks = log ? log_ticks(std::min(s.min, s.max), std::max(s.min, s.max) * 10)
                : nice_ticks(std::min(s.min, s.max), std::max(s.min, s.max) + 1);
    s.min = ticks.front();
    s.max = ticks.back();
  }
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  const double slack = log ? 1e-9 * s.max : 1e-9 * step;
  for (double t : ticks)
    if (t >= s.min - slack && t <= s.max + slack) {
      s.ticks.push_back(t);
      s.labels.push_back(log ? log_tick_label(t) : format_tick(t, step));
    }
  if (log && s.ticks.size() <= 7) {
    for (std::size_t i = 0; i + 1 < ticks.size(); ++i)
      for (int m = 2; m <= 9; ++m) {
        const double t = ticks[i] * m;
        if (t > s.min && t < s.max) s.minor.push_back(t);
      }
  }
  return s;
}

PlotFrame frame_from(const AxisScale& xs, const AxisScale& ys) {
  PlotFrame f;
  f.x_min = xs.min;
  f.x_max = xs.max;
  f.y_min = ys.min;
  f.y_max = ys.max;
  f.x_log = xs.log;
  f.y_log = ys.log;
  f.x_ticks = xs.ticks;
  f.y_ticks = ys.ticks;
  return f;
}

// Lays the plot area out inside width x height given the axis labels, title and legend rows.
void place_area(PlotFrame& f, const AxisScale& xs, const AxisScale& ys, bool title,
                const std::string& x_label, const std::string& y_label, int legend_rows, int width,
                int height) {
  double top = 8;
  if (title) top += kTitleFont + 10;
  f.legend_top = top;
  if (legend_rows > 0) top += legend_rows * 18.0 + 4;
  f.top = top + kTickFont / 2 + 2;  // room for the top y tick label
  double widest = 0;
  for (const auto& l : ys.labels) widest = std::max(widest, label_width(l));
  f.left = 10 + (y_label.empty() ? 0 : kLabelFont + 10) + widest + kTickLength + 4;
  const double last_x = xs.labels.empty() ? 0 : label_width(xs.labels.back());
  f.right = width - std::max(14.0, last_x / 2 + 6);
  f.bottom = height - (10 + kTickLength + 4 + kTickFont + (x_label.empty() ? 0 : kLabelFont + 10));
}

class SvgWriter {
 public:
  SvgWriter(int width, int height) {
    out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out_ += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
            "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) +
            " " + std::to_string(height) + "\" font-family=\"" + kFontFamily +
            "\" font-size=\"12\" fill=\"" + kTextColour + "\">\n";
    out_ += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(width) + "\" height=\"" +
            std::to_string(height) + "\" fill=\"#ffffff\"/>\n";
  }
  void raw(const std::string& s) { out_ += s; }
  // `content` is already escaped (it may hold a <tspan>).
  void text(double x, double y, const std::string& content, double size, const char* anchor,
            const std::string& extra = {}) {
    out_ += "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\" font-size=\"" + px(size) +
            "\" text-anchor=\"" + anchor + "\"" + (extra.empty() ? "" : " " + extra) + ">" +
            content + "</text>\n";
  }
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double w,
            const std::string& extra = {}) {
    out_ += "<line x1=\"" + px(x1) + "\" y1=\"" + px(y1) + "\" x2=\"" + px(x2) + "\" y2=\"" +
            px(y2) + "\" stroke=\"" + stroke + "\" stroke-width=\"" + px(w) + "\"" +
            (extra.empty() ? "" : " " + extra) + "/>\n";
  }
  std::string finish() {
    out_ += "</svg>\n";
    return std::move(out_);
  }

 private:
  std::string out_;
};

// Grid lines, frame, ticks, tick labels, axis labels and title around the plot area.
void draw_axes(SvgWriter& svg, const PlotFrame& f, const AxisScale& xs, const AxisScale& ys,
               const std::string& title, const std::string& x_label, const std::string& y_label,
               int width) {
  if (!title.empty()) {
    const FittedText t = fit_text(title, kTitleFont, 11, width - 16.0);
    svg.text(width / 2.0, 8 + kTitleFont, t.content, t.size, "middle", "font-weight=\"bold\"");
  }
  for (double t : xs.ticks) svg.line(f.x_pixel(t), f.top, f.x_pixel(t), f.bottom, kGridColour, 1);
  for (double t : ys.ticks) svg.line(f.left, f.y_pixel(t), f.right, f.y_pixel(t), kGridColour, 1);
  svg.raw("<rect x=\"" + px(f.left) + "\" y=\"" + px(f.top) + "\" width=\"" + px(f.right - f.left) +
          "\" height=\"" + px(f.bottom - f.top) + "\" fill=\"none\" stroke=\"" + kAxisColour +
          "\" stroke-width=\"1\"/>\n");
  for (std::size_t i = 0; i < xs.ticks.size(); ++i) {
    const double x = f.x_pixel(xs.ticks[i]);
    svg.line(x, f.bottom, x, f.bottom + kTickLength, kAxisColour, 1);
    svg.text(x, f.bottom + kTickLength + 3 + kTickFont, xs.labels[i], kTickFont, "middle");
  }
  for (double t : xs.minor)
    svg.line(f.x_pixel(t), f.bottom, f.x_pixel(t), f.bottom + kTickLength / 2, kAxisColour, 1);
  for (std::size_t i = 0; i < ys.ticks.size(); ++i) {
    const double y = f.y_pixel(ys.ticks[i]);
    svg.line(f.left - kTickLength, y, f.left, y, kAxisColour, 1);
    svg.text(f.left - kTickLength - 3, y + kTickFont * 0.35, ys.labels[i], kTickFont, "end");
  }
  for (double t : ys.minor)
    svg.line(f.left - kTickLength / 2, f.y_pixel(t), f.left, f.y_pixel(t), kAxisColour, 1);
  if (!x_label.empty()) {
    const FittedText t = fit_text(x_label, kLabelFont, 10, f.right - f.left + 20);
    svg.text((f.left + f.right) / 2, f.bottom + kTickLength + 3 + kTickFont + 6 + kLabelFont,
             t.content, t.size, "middle");
  }
  if (!y_label.empty()) {
    const FittedText t = fit_text(y_label, kLabelFont, 10, f.bottom - f.top + 20);
    const double x = 10 + kLabelFont * 0.8, y = (f.top + f.bottom) / 2;
    svg.raw("<text transform=\"translate(" + px(x) + "," + px(y) + ") rotate(-90)\" font-size=\"" +
            px(t.size) + "\" text-anchor=\"middle\">" + t.content + "</text>\n");
  }
}

struct LegendEntry {
  std::string name, colour;
  bool line = false;  // a dashed line swatch instead of a dot
};

constexpr double kSwatch = 16, kEntryGap = 18;

// An entry's name as drawn: never wider than a row.
FittedText legend_name(const LegendEntry& e, double available) {
  return fit_text(e.name, kLegendFont, 10, available - (kSwatch + 6 + kEntryGap));
}

double entry_width(const LegendEntry& e, double available) {
  return kSwatch + 6 + legend_name(e, available).width + kEntryGap;
}

// The number of rows the legend takes within `available` pixels.
int legend_rows(const std::vector<LegendEntry>& entries, double available) {
  if (entries.empty()) return 0;
  int rows = 1;
  double x = 0;
  for (const auto& e : entries) {
    const double w = entry_width(e, available);
    if (x > 0 && x + w > available) {
      ++rows;
      x = 0;
    }
    x += w;
  }
  return rows;
}

void draw_legend(SvgWriter& svg, const std::vector<LegendEntry>& entries, double left,
                 double available, double top) {
  double x = 0, y = top;
  for (const auto& e : entries) {
    const double w = entry_width(e, available);
    if (x > 0 && x + w > available) {
      x = 0;
      y += 18;
    }
    const double mid = y + 9;
    if (e.line)
      svg.line(left + x, mid, left + x + kSwatch, mid, e.colour, 1.5, "stroke-dasharray=\"4 3\"");
    else
      svg.raw("<circle cx=\"" + px(left + x + kSwatch / 2) + "\" cy=\"" + px(mid) +
              "\" r=\"4\" fill=\"" + xml_escape(e.colour) + "\"/>\n");
    const FittedText name = legend_name(e, available);
    svg.text(left + x + kSwatch + 6, mid + kLegendFont * 0.35, name.content, name.size, "start");
    x += w;
  }
}

std::vector<LegendEntry> scatter_legend(const ScatterPlot& plot) {
  std::vector<LegendEntry> entries;
  for (const auto& s : plot.series)
    if (!s.name.empty()) entries.push_back({s.name, s.colour, false});
  if (plot.identity_line && !plot.identity_label.empty())
    entries.push_back({plot.identity_label, "#888888", true});
  return entries;
}

void scales_of(const ScatterPlot& plot, AxisScale& xs, AxisScale& ys) {
  Range rx, ry;
  for (const auto& s : plot.series) {
    MD_ASSERT(s.x.size() == s.y.size());
    MD_ASSERT(s.labels.empty() || s.labels.size() == s.x.size());
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (usable(s.x[i], plot.x_axis.log) && usable(s.y[i], plot.y_axis.log)) {
        rx.add(s.x[i]);
        ry.add(s.y[i]);
      }
  }
  if (plot.same_range) {
    MD_ASSERT(plot.x_axis.log == plot.y_axis.log);
    Range both = rx;
    if (!ry.empty()) {
      both.add(ry.lo);
      both.add(ry.hi);
    }
    PlotAxis shared = plot.x_axis;
    if (!shared.min) shared.min = plot.y_axis.min;
    if (!shared.max) shared.max = plot.y_axis.max;
    xs = make_scale(both, shared, plot.x_axis.log);
    ys = make_scale(both, shared, plot.x_axis.log);
  } else {
    xs = make_scale(rx, plot.x_axis, plot.x_axis.log);
    ys = make_scale(ry, plot.y_axis, plot.y_axis.log);
  }
}

double legend_width(const ScatterPlot& plot, const PlotFrame& f) {
  return plot.width - f.left - 10;
}

PlotFrame scatter_frame_with(const ScatterPlot& plot, const AxisScale& xs, const AxisScale& ys) {
  MD_ASSERT(plot.width >= 120 && plot.height >= 120);
  PlotFrame f = frame_from(xs, ys);
  // The legend starts at the plot area's left edge, which does not depend on the legend.
  place_area(f, xs, ys, !plot.title.empty(), plot.x_axis.label, plot.y_axis.label, 0, plot.width,
             plot.height);
  const int rows = legend_rows(scatter_legend(plot), legend_width(plot, f));
  place_area(f, xs, ys, !plot.title.empty(), plot.x_axis.label, plot.y_axis.label, rows, plot.width,
             plot.height);
  if (plot.same_range) {  // a square plot area, so that y = x is the diagonal
    const double w = f.right - f.left, h = f.bottom - f.top;
    if (w > h)
      f.right = f.left + h;
    else
      f.top = f.bottom - w;
  }
  return f;
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0 at all.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += ' ';
        else
          out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  MD_ASSERT(std::isfinite(lo) && std::isfinite(hi) && lo <= hi);
  target = std::max(target, 2);
  if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi))) {
    const double half = lo == 0 ? 1.0 : 0.1 * std::abs(lo);
    lo -= half;
    hi += half;
  }
  const NiceNumber range = nice_number(hi - lo, false);
  const NiceNumber step = nice_number(range.value() / (target - 1), true);
  const double s = step.value();
  const double first = std::floor(lo / s + 1e-9), last = std::ceil(hi / s - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last; ++k) ticks.push_back(step.scaled(k * step.mantissa));
  if (ticks.size() == 1) ticks.push_back(step.scaled((last + 1) * step.mantissa));
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  MD_ASSERT(lo > 0 && lo <= hi && std::isfinite(hi));
  const int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (last <= first) last = first + 1;
  std::vector<double> ticks;
  for (int k = first; k <= last; ++k)
    ticks.push_back(k >= 0 ? std::pow(10.0, k) : 1.0 / std::pow(10.0, -k));
  return ticks;
}

std::string format_tick(double value, double step) {
  step = std::abs(step);
  if (!(step > 0) || !std::isfinite(step)) step = std::abs(value) > 0 ? std::abs(value) : 1;
  if (std::abs(value) < 1e-9 * step) return "0";
  char buf[64];
  if (step < 1e-4 || std::abs(value) >= 1e6) {
    const int digits = std::max(0, static_cast<int>(std::floor(std::log10(std::abs(value)) + 1e-9) -
                                                    std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*e", std::min(digits, 15), value);
  } else {
    const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  }
  return buf;
}

double PlotFrame::x_pixel(double x) const {
  const double t =
      x_log ? (std::log10(x) - std::log10(x_min)) / (std::log10(x_max) - std::log10(x_min))
            : (x - x_min) / (x_max - x_min);
  return left + t * (right - left);
}

double PlotFrame::y_pixel(double y) const {
  const double t =
      y_log ? (std::log10(y) - std::log10(y_min)) / (std::log10(y_max) - std::log10(y_min))
            : (y - y_min) / (y_max - y_min);
  return bottom - t * (bottom - top);
}

std::vector<double> histogram_counts(const std::vector<double>& values, double lo, double hi,
                                     int bins) {
  MD_ASSERT(bins >= 1 && lo < hi);
  std::vector<double> counts(static_cast<std::size_t>(bins), 0.0);
  for (double v : values) {
    if (!std::isfinite(v) || v < lo || v > hi) continue;
    const auto b = static_cast<int>(std::floor((v - lo) / (hi - lo) * bins));
    counts[static_cast<std::size_t>(std::clamp(b, 0, bins - 1))] += 1;
  }
  return counts;
}

PlotFrame scatter_frame(const ScatterPlot& plot) {
  AxisScale xs, ys;
  scales_of(plot, xs, ys);
  return scatter_frame_with(plot, xs, ys);
}

std::string render_scatter_svg(const ScatterPlot& plot) {
  AxisScale xs, ys;
  scales_of(plot, xs, ys);
  const PlotFrame f = scatter_frame_with(plot, xs, ys);
  SvgWriter svg(plot.width, plot.height);
  draw_axes(svg, f, xs, ys, plot.title, plot.x_axis.label, plot.y_axis.label, plot.width);
  svg.raw("<clipPath id=\"plot-area\"><rect x=\"" + px(f.left) + "\" y=\"" + px(f.top) +
          "\" width=\"" + px(f.right - f.left) + "\" height=\"" + px(f.bottom - f.top) +
          "\"/></clipPath>\n");
  svg.raw("<g clip-path=\"url(#plot-area)\">\n");
  if (plot.identity_line) {
    // y = x as a polyline, so that it is right on mixed linear/log axes too.
    const double lo = std::max(f.x_min, f.y_min), hi = std::min(f.x_max, f.y_max);
    if (lo < hi) {
      const bool curved = f.x_log != f.y_log;
      const int steps = curved ? 64 : 1;
      std::string points;
      for (int i = 0; i <= steps; ++i) {
        const double t = static_cast<double>(i) / steps;
        const double v = f.x_log || f.y_log ? lo * std::pow(hi / lo, t) : lo + t * (hi - lo);
        if (i > 0) points += ' ';
        points += px(f.x_pixel(v)) + "," + px(f.y_pixel(v));
      }
      svg.raw("<polyline points=\"" + points +
              "\" fill=\"none\" stroke=\"#888888\" stroke-width=\"1.5\" "
              "stroke-dasharray=\"4 3\"/>\n");
    }
  }
  for (const auto& s : plot.series) {
    const std::string colour = xml_escape(s.colour);
    svg.raw("<g fill=\"" + colour + "\" fill-opacity=\"0.85\" stroke=\"#ffffff\" " +
            "stroke-width=\"0.75\">\n");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], f.x_log) || !usable(s.y[i], f.y_log)) continue;
      svg.raw("<circle cx=\"" + px(f.x_pixel(s.x[i])) + "\" cy=\"" + px(f.y_pixel(s.y[i])) +
              "\" r=\"" + px(s.radius) + "\"/>\n");
    }
    svg.raw("</g>\n");
    if (!s.labels.empty()) {
      svg.raw("<g font-size=\"" + px(kPointLabelFont) + "\" fill=\"#444444\">\n");
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!usable(s.x[i], f.x_log) || !usable(s.y[i], f.y_log) || s.labels[i].empty()) continue;
        svg.raw("<text x=\"" + px(f.x_pixel(s.x[i]) + s.radius + 2) + "\" y=\"" +
                px(f.y_pixel(s.y[i]) - s.radius) + "\">" + xml_escape(s.labels[i]) + "</text>\n");
      }
      svg.raw("</g>\n");
    }
  }
  svg.raw("</g>\n");
  const auto legend = scatter_legend(plot);
  if (!legend.empty()) draw_legend(svg, legend, f.left, legend_width(plot, f), f.legend_top);
  return svg.finish();
}

namespace {

void histogram_scales(const Histogram& h, AxisScale& xs, AxisScale& ys) {
  MD_ASSERT(h.edges.size() >= 2 && h.edges.size() == h.counts.size() + 1);
  Range rx, ry;
  rx.add(h.edges.front());
  rx.add(h.edges.back());
  if (h.marker && std::isfinite(*h.marker)) rx.add(*h.marker);
  ry.add(0);
  bool integral = true;
  for (double c : h.counts) {
    MD_ASSERT(c >= 0);
    ry.add(c);
    integral = integral && c == std::floor(c);
  }
  xs = make_scale(rx, PlotAxis{}, false);
  if (ry.hi <= 0) ry.hi = 1;
  ys = make_scale(ry, PlotAxis{}, false);
  if (integral && ys.ticks.size() > 1 && ys.ticks[1] - ys.ticks[0] < 1) {
    // Whole counts below 5: a tick per count, none at 0.5.
    ys.min = 0;
    ys.max = std::max(1.0, std::ceil(ry.hi));
    ys.ticks.clear();
    ys.labels.clear();
    for (double t = 0; t <= ys.max; ++t) {
      ys.ticks.push_back(t);
      ys.labels.push_back(format_tick(t, 1));
    }
  }
}

}  // namespace

PlotFrame histogram_frame(const Histogram& h) {
  MD_ASSERT(h.width >= 120 && h.height >= 120);
  AxisScale xs, ys;
  histogram_scales(h, xs, ys);
  PlotFrame f = frame_from(xs, ys);
  place_area(f, xs, ys, !h.title.empty(), h.x_label, h.y_label, 0, h.width, h.height);
  return f;
}

std::string render_histogram_svg(const Histogram& h) {
  AxisScale xs, ys;
  histogram_scales(h, xs, ys);
  const PlotFrame f = histogram_frame(h);
  SvgWriter svg(h.width, h.height);
  draw_axes(svg, f, xs, ys, h.title, h.x_label, h.y_label, h.width);
  svg.raw("<g fill=\"" + xml_escape(h.colour) + "\" stroke=\"#ffffff\" stroke-width=\"0.5\">\n");
  for (std::size_t i = 0; i < h.counts.size(); ++i) {
    if (h.counts[i] <= 0) continue;
    const double x0 = f.x_pixel(h.edges[i]), x1 = f.x_pixel(h.edges[i + 1]);
    const double y = f.y_pixel(h.counts[i]);
    svg.raw("<rect x=\"" + px(x0) + "\" y=\"" + px(y) + "\" width=\"" + px(x1 - x0) +
            "\" height=\"" + px(f.bottom - y) + "\"/>\n");
  }
  svg.raw("</g>\n");
  if (h.marker && std::isfinite(*h.marker)) {
    const double x = f.x_pixel(*h.marker);
    svg.line(x, f.top, x, f.bottom, "#c44e52", 2, "stroke-dasharray=\"5 3\"");
    if (!h.marker_label.empty()) {
      // Beside the line's top, on whichever side has room.
      const bool right_side = x + 6 + text_width(h.marker_label, kLegendFont) <= f.right;
      svg.text(right_side ? x + 5 : x - 5, f.top + kLegendFont + 3, xml_escape(h.marker_label),
               kLegendFont, right_side ? "start" : "end", "fill=\"#c44e52\"");
    }
  }
  return svg.finish();
}

}  // namespace modeldiff::core
