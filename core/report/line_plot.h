// A small line plot with error bars as a PNG (OpenCV drawing): the counterfactual effect of a
// transformation against its strength, one series per algorithm.
#pragma once

#include <string>
#include <vector>

namespace modeldiff::core {

struct PlotSeries {
  std::string name;
  unsigned char r = 0, g = 0, b = 0;
  std::vector<double> x, y, low, high;  // low/high: error bar ends (empty: none)
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
  int width = 800, height = 500;
};

// Writes the plot to `path` (PNG) atomically; a horizontal line marks y = 0. Throws InputError
// naming the file when it cannot be written or a series' vectors differ in length.
void write_line_plot_png(const std::string& path, const LinePlot& plot);

}  // namespace modeldiff::core
