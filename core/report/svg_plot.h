// Small, dependency-free SVG plots for the HTML report: scatter plots (with an optional y = x
// line) and histograms (with an optional vertical marker), as standalone SVG documents.
//
// The output is meant to be looked at in a browser and pasted into a paper as it is: white
// background, sans-serif text of 12-14 px, axis ticks at round numbers ("loose" labelling: each
// axis is widened to the nearest tick outside the data, as Heckbert's "Nice numbers for graph
// labels", Graphics Gems 1990, describes), every text XML-escaped. Sizes are in CSS pixels and
// chosen by the caller.
//
// Coordinates: the SVG's origin is the top-left corner, y grows downwards. PlotFrame says where
// a data value lands, so that callers and tests need not repeat the layout arithmetic.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modeldiff::core {

// `text` with &, <, >, " and ' replaced by entities: safe in XML (and HTML) text and in
// attribute values quoted with either quote.
std::string xml_escape(std::string_view text);

// Round tick values covering [lo, hi] (lo <= hi, both finite): about `target` ticks, a step of
// 1, 2 or 5 times a power of ten, the first tick <= lo and the last >= hi. [0, 0.0173] gives
// 0, 0.005, ..., 0.02; [3, 97] gives 0, 20, ..., 100. lo == hi gives a small range around it.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Ticks of a log10 axis covering [lo, hi] (0 < lo <= hi): the powers of ten from the one at or
// below lo to the one at or above hi (widened to at least one decade).
std::vector<double> log_ticks(double lo, double hi);

// A tick label: with as many decimals as `step` needs (0.005 -> "0.015", 20 -> "40"), in
// scientific notation ("1.5e-05") for steps below 1e-4 or values of 1e6 and more; never "-0".
std::string format_tick(double value, double step);

struct PlotAxis {
  std::string label;          // drawn below (x) or beside (y) the axis; empty: none
  bool log = false;           // log10 scale; values <= 0 are left out of the plot
  std::optional<double> min;  // fixed range ends; unset: from the data, widened to round ticks
  std::optional<double> max;
};

struct ScatterSeries {
  std::string name;                 // legend entry; empty: not in the legend
  std::vector<double> x, y;         // equal lengths; pairs with a non-finite value are skipped
  std::string colour = "#1f77b4";   // any SVG colour
  double radius = 4.0;              // pixels
  std::vector<std::string> labels;  // empty, or one small label per point drawn beside it
};

struct ScatterPlot {
  std::string title;  // empty: no title row
  PlotAxis x_axis, y_axis;
  std::vector<ScatterSeries> series;
  bool identity_line = false;  // draw y = x across the plot area (dashed grey, in the legend)
  std::string identity_label = "y = x";
  // Both axes get the same range (the union of both): with equal width and height of the plot
  // area this makes y = x the diagonal. Both axes must then share `log`.
  bool same_range = false;
  int width = 480, height = 400;  // of the whole SVG, pixels
};

struct Histogram {
  std::string title;
  std::string x_label, y_label = "count";
  std::vector<double> edges;   // bins + 1 increasing bin edges
  std::vector<double> counts;  // bins, >= 0
  std::string colour = "#4c72b0";
  std::optional<double> marker;  // a vertical line at this x value (e.g. the median)
  std::string marker_label;      // drawn beside the marker line's top
  int width = 480, height = 320;
};

// The plot area and the mapping from data values to SVG pixels that render_scatter_svg() and
// render_histogram_svg() use.
struct PlotFrame {
  double left = 0, top = 0, right = 0,
         bottom = 0;  // plot area, pixels (left < right, top < bottom)
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;  // axis ranges, data units
  bool x_log = false, y_log = false;
  std::vector<double> x_ticks, y_ticks;  // in data units, within the ranges
  double legend_top = 0;                 // top edge of the legend rows (when there is a legend)

  double x_pixel(double x) const;
  double y_pixel(double y) const;
};

// Equal-width bin counts of `values` over [lo, hi] (lo < hi, bins >= 1): values outside the
// range or not finite are not counted; hi falls into the last bin. Returns the counts; the
// edges are lo + i * (hi - lo) / bins.
std::vector<double> histogram_counts(const std::vector<double>& values, double lo, double hi,
                                     int bins);

// Layout of a scatter plot (asserts equal x/y lengths, sizes >= 120 px).
PlotFrame scatter_frame(const ScatterPlot& plot);
// The scatter plot as a standalone SVG document.
std::string render_scatter_svg(const ScatterPlot& plot);

// Layout of a histogram (asserts edges.size() == counts.size() + 1 >= 2, sizes >= 120 px).
PlotFrame histogram_frame(const Histogram& histogram);
// The histogram as a standalone SVG document.
std::string render_histogram_svg(const Histogram& histogram);

}  // namespace modeldiff::core
