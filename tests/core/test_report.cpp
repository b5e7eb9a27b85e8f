// The SVG plot writer: round ticks, pixels where the frame says, well-formed XML.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/report/svg_plot.h"

using namespace modeldiff::core;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("modeldiff_report_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// A minimal well-formedness check for the XML (and the HTML) written here: every tag closed in
// order, attributes quoted, no bare '<' or '&' in text. In HTML mode void elements need no end
// tag and <style> content is raw text.
::testing::AssertionResult well_formed(const std::string& doc, bool html) {
  static const std::set<std::string> kVoid = {"meta", "img", "br", "link", "hr", "input"};
  std::vector<std::string> open;
  std::size_t i = 0;
  int roots = 0;
  auto fail = [&](const std::string& why) {
    return ::testing::AssertionFailure()
           << why << " at offset " << i << ": '" << doc.substr(i, 60) << "'";
  };
  while (i < doc.size()) {
    const char c = doc[i];
    if (c == '&') {
      const std::size_t semi = doc.find(';', i);
      if (semi == std::string::npos || semi - i > 10) return fail("bare '&'");
      const std::string entity = doc.substr(i + 1, semi - i - 1);
      static const std::regex kEntity("(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+|[a-z]+)");
      if (!std::regex_match(entity, kEntity)) return fail("bad entity");
      if (!html && !std::regex_match(entity, std::regex("(amp|lt|gt|quot|apos|#[0-9]+)")))
        return fail("entity unknown to XML");
      i = semi + 1;
      continue;
    }
    if (c == '>') return fail("bare '>'");
    if (c != '<') {
      ++i;
      continue;
    }
    if (doc.compare(i, 4, "<!--") == 0) {
      const std::size_t end = doc.find("-->", i);
      if (end == std::string::npos) return fail("unclosed comment");
      i = end + 3;
      continue;
    }
    if (doc.compare(i, 2, "<?") == 0 || doc.compare(i, 2, "<!") == 0) {
      const std::size_t end = doc.find('>', i);
      if (end == std::string::npos) return fail("unclosed declaration");
      i = end + 1;
      continue;
    }
    const bool closing = doc[i + 1] == '/';
    std::size_t j = i + (closing ? 2 : 1);
    const std::size_t name_start = j;
    while (j < doc.size() && (std::isalnum(static_cast<unsigned char>(doc[j])) || doc[j] == '-' ||
                              doc[j] == ':' || doc[j] == '_'))
      ++j;
    const std::string name = doc.substr(name_start, j - name_start);
    if (name.empty()) return fail("bare '<'");
    // Attributes: name="value" or name='value', values without '<'.
    bool self_closing = false;
    for (;;) {
      while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
      if (j >= doc.size()) return fail("unterminated tag");
      if (doc[j] == '>') break;
      if (doc.compare(j, 2, "/>") == 0) {
        self_closing = true;
        ++j;
        break;
      }
      if (closing) return fail("attributes in an end tag");
      const std::size_t eq = doc.find('=', j);
      if (eq == std::string::npos) return fail("attribute without value");
      for (std::size_t k = j; k < eq; ++k)
        if (!(std::isalnum(static_cast<unsigned char>(doc[k])) || doc[k] == '-' || doc[k] == ':'))
          return fail("bad attribute name");
      const char quote = doc[eq + 1];
      if (quote != '"' && quote != '\'') return fail("unquoted attribute");
      const std::size_t end = doc.find(quote, eq + 2);
      if (end == std::string::npos) return fail("unterminated attribute");
      if (doc.substr(eq + 2, end - eq - 2).find('<') != std::string::npos)
        return fail("'<' in attribute");
      j = end + 1;
    }
    i = j + 1;
    if (closing) {
      if (open.empty() || open.back() != name) return fail("unexpected </" + name + ">");
      open.pop_back();
    } else if (!self_closing && !(html && kVoid.count(name))) {
      if (open.empty()) ++roots;
      open.push_back(name);
      if (html && (name == "style" || name == "script")) {
        const std::size_t end = doc.find("</" + name + ">", i);
        if (end == std::string::npos) return fail("unclosed <" + name + ">");
        i = end;
      }
    } else if (open.empty()) {
      ++roots;
    }
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
  if (roots != 1) return ::testing::AssertionFailure() << roots << " root elements";
  return ::testing::AssertionSuccess();
}

// xmllint's verdict on `path` when xmllint is installed; success (skipped) otherwise.
::testing::AssertionResult xmllint_accepts(const std::string& path) {
  if (!fs::exists("/usr/bin/xmllint")) return ::testing::AssertionSuccess();
  const std::string command = "/usr/bin/xmllint --noout '" + path + "' 2>&1";
  const int rc = std::system(command.c_str());
  if (rc == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "xmllint rejects " << path << " (" << rc << ")";
}

struct Circle {
  double cx, cy, r;
};

std::vector<Circle> circles(const std::string& svg) {
  static const std::regex kCircle("<circle cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\" r=\"([-0-9.]+)\"");
  std::vector<Circle> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), kCircle);
       it != std::sregex_iterator(); ++it)
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2]), std::stod((*it)[3])});
  return out;
}

void expect_ticks(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-12 * std::max(1.0, std::abs(want[i]))) << i;
}

}  // namespace

TEST(SvgPlot, NiceTicksAreRoundAndCoverTheRange) {
  expect_ticks(nice_ticks(0, 0.0173), {0, 0.005, 0.01, 0.015, 0.02});
  expect_ticks(nice_ticks(3, 97), {0, 20, 40, 60, 80, 100});
  expect_ticks(nice_ticks(-0.31, 0.93), {-0.5, 0, 0.5, 1.0});
  expect_ticks(nice_ticks(0.5, 0.5), {0.44, 0.46, 0.48, 0.5, 0.52, 0.54, 0.56});
  expect_ticks(nice_ticks(0, 0), {-1, -0.5, 0, 0.5, 1});
  // Tick values print exactly (no 0.015000000000000001).
  EXPECT_EQ(nice_ticks(0, 0.0173)[3], 0.015);
  const auto big = nice_ticks(1234, 98765);
  EXPECT_LE(big.front(), 1234);
  EXPECT_GE(big.back(), 98765);
  EXPECT_GE(big.size(), 4u);
  EXPECT_LE(big.size(), 8u);

  expect_ticks(log_ticks(0.003, 42), {0.001, 0.01, 0.1, 1, 10, 100});
  expect_ticks(log_ticks(3, 7), {1, 10});
  expect_ticks(log_ticks(10, 10), {10, 100});
}

TEST(SvgPlot, TickLabelsHaveTheDigitsTheStepNeeds) {
  EXPECT_EQ(format_tick(0.015, 0.005), "0.015");
  EXPECT_EQ(format_tick(0.01, 0.005), "0.010");
  EXPECT_EQ(format_tick(40, 20), "40");
  EXPECT_EQ(format_tick(-0.2, 0.2), "-0.2");
  EXPECT_EQ(format_tick(1e-17, 0.2), "0");  // never "-0" or "0.0"
  EXPECT_EQ(format_tick(-1e-17, 0.2), "0");
  EXPECT_EQ(format_tick(1.5e-5, 5e-6), "1.5e-05");
  EXPECT_EQ(format_tick(2e6, 1e6), "2e+06");
  EXPECT_EQ(format_tick(2.5e6, 5e5), "2.5e+06");
}

TEST(SvgPlot, XmlEscapeCoversMarkupAndQuotes) {
  EXPECT_EQ(xml_escape("A<b>&\"'"), "A&lt;b&gt;&amp;&quot;&#39;");
  EXPECT_EQ(xml_escape("plain text 1.5"), "plain text 1.5");
  EXPECT_EQ(xml_escape(std::string("a\x01z", 3)), "a z");  // not allowed in XML 1.0
}

TEST(SvgPlot, ScatterPointsLandWhereTheFrameSays) {
  ScatterPlot plot;
  plot.title = "Known points";
  plot.x_axis = {"x", false, 0.0, 10.0};
  plot.y_axis = {"y", false, 0.0, 4.0};
  plot.width = 400;
  plot.height = 300;
  ScatterSeries s;
  s.x = {0, 10, 5, 2.5};
  s.y = {0, 4, 1, 3};
  s.radius = 3;
  plot.series.push_back(s);
  const PlotFrame f = scatter_frame(plot);
  ASSERT_LT(f.left, f.right);
  ASSERT_LT(f.top, f.bottom);
  EXPECT_GE(f.left, 20);  // room for tick labels and the axis label
  EXPECT_LE(f.right, 400);
  EXPECT_LE(f.bottom, 300 - 20);
  EXPECT_DOUBLE_EQ(f.x_pixel(0), f.left);
  EXPECT_DOUBLE_EQ(f.x_pixel(10), f.right);
  EXPECT_DOUBLE_EQ(f.y_pixel(0), f.bottom);
  EXPECT_DOUBLE_EQ(f.y_pixel(4), f.top);

  const std::vector<Circle> got = circles(render_scatter_svg(plot));
  ASSERT_EQ(got.size(), 4u);  // no legend: the series has no name
  const double w = f.right - f.left, h = f.bottom - f.top;
  const double want[4][2] = {{f.left, f.bottom},
                             {f.right, f.top},
                             {f.left + 0.5 * w, f.bottom - 0.25 * h},
                             {f.left + 0.25 * w, f.bottom - 0.75 * h}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(got[i].cx, want[i][0], 0.006) << i;
    EXPECT_NEAR(got[i].cy, want[i][1], 0.006) << i;
    EXPECT_DOUBLE_EQ(got[i].r, 3.0);
  }
}

TEST(SvgPlot, LogAxesPlaceDecadesEvenly) {
  ScatterPlot plot;
  plot.x_axis.log = true;
  plot.y_axis.log = true;
  ScatterSeries s;
  s.x = {1, 10, 100, -5};  // the non-positive point is left out
  s.y = {0.01, 0.1, 1, 1};
  plot.series.push_back(s);
  const PlotFrame f = scatter_frame(plot);
  EXPECT_DOUBLE_EQ(f.x_min, 1);
  EXPECT_DOUBLE_EQ(f.x_max, 100);
  EXPECT_DOUBLE_EQ(f.y_min, 0.01);
  EXPECT_DOUBLE_EQ(f.y_max, 1);
  const std::vector<Circle> got = circles(render_scatter_svg(plot));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_NEAR(got[1].cx, 0.5 * (f.left + f.right), 0.006);
  EXPECT_NEAR(got[1].cy, 0.5 * (f.top + f.bottom), 0.006);
}

TEST(SvgPlot, SameRangeMakesASquareAreaWithTheDiagonal) {
  ScatterPlot plot;
  plot.same_range = true;
  plot.identity_line = true;
  plot.width = 500;
  plot.height = 400;
  ScatterSeries s;
  s.name = "A minus B";
  s.x = {0.001, 0.0173};
  s.y = {0.0004, 0.002};
  s.labels = {"0", "1"};
  plot.series.push_back(s);
  const PlotFrame f = scatter_frame(plot);
  EXPECT_NEAR(f.right - f.left, f.bottom - f.top, 1e-9);
  EXPECT_EQ(f.x_min, f.y_min);
  EXPECT_EQ(f.x_max, f.y_max);
  EXPECT_DOUBLE_EQ(f.x_max, 0.02);
  expect_ticks(f.x_ticks, {0, 0.005, 0.01, 0.015, 0.02});
  const std::string svg = render_scatter_svg(plot);
  // y = x from corner to corner of the plot area.
  std::ostringstream diag;
  diag.setf(std::ios::fixed);
  diag.precision(2);
  diag << "<polyline points=\"" << f.left << "," << f.bottom << " " << f.right << "," << f.top
       << "\"";
  EXPECT_NE(svg.find(diag.str()), std::string::npos) << svg;
  EXPECT_NE(svg.find(">y = x</text>"), std::string::npos);
  EXPECT_NE(svg.find(">A minus B</text>"), std::string::npos);
  EXPECT_TRUE(well_formed(svg, false));
}

TEST(SvgPlot, DocumentsAreWellFormedWithHostileText) {
  ScatterPlot plot;
  plot.title = "A<b>& \"quoted\" 'x'";
  plot.x_axis.label = "variance of A<b>&";
  plot.y_axis.label = "</svg>";
  plot.identity_line = true;
  ScatterSeries s;
  s.name = "<A> & <B>";
  s.colour = "red\"/><script>";  // escaped: the document stays well-formed
  s.x = {1, 2, std::nan("")};
  s.y = {3, 4, 5};
  s.labels = {"<0>", "&1", "2"};
  plot.series.push_back(s);
  Histogram h;
  h.title = "cosine <similarity> & more";
  h.edges = {0, 0.5, 1};
  h.counts = {3, 7};
  h.marker = 0.4;
  h.marker_label = "median <0.4>";

  const std::string dir = temp_path("svg");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::pair<std::string, std::string> docs[] = {{"scatter.svg", render_scatter_svg(plot)},
                                                      {"hist.svg", render_histogram_svg(h)}};
  for (const auto& [name, svg] : docs) {
    EXPECT_TRUE(well_formed(svg, false)) << name;
    EXPECT_EQ(svg.find("<script"), std::string::npos) << name;
    std::ofstream(dir + "/" + name) << svg;
    EXPECT_TRUE(xmllint_accepts(dir + "/" + name));
  }
  EXPECT_NE(docs[0].second.find("A&lt;b&gt;&amp; &quot;quoted&quot; &#39;x&#39;"),
            std::string::npos);
  EXPECT_NE(docs[1].second.find("median &lt;0.4&gt;"), std::string::npos);
  fs::remove_all(dir);
}

TEST(SvgPlot, HistogramBarsAndMarkerLandWhereTheFrameSays) {
  const std::vector<double> values = {0.05, 0.1, 0.3, 0.35, 0.4, 0.6, 1.0, -1.0, std::nan("")};
  const std::vector<double> counts = histogram_counts(values, 0, 1, 4);
  ASSERT_EQ(counts, (std::vector<double>{2, 3, 1, 1}));  // 1.0 in the last bin; -1, NaN out

  Histogram h;
  h.edges = {0, 0.25, 0.5, 0.75, 1};
  h.counts = counts;
  h.marker = 0.35;
  h.marker_label = "median 0.350";
  h.x_label = "cosine";
  const PlotFrame f = histogram_frame(h);
  EXPECT_DOUBLE_EQ(f.x_min, 0);
  EXPECT_DOUBLE_EQ(f.x_max, 1);
  EXPECT_DOUBLE_EQ(f.y_min, 0);
  // Whole counts up to 3: a tick per count, none at 0.5.
  expect_ticks(f.y_ticks, {0, 1, 2, 3});
  const std::string svg = render_histogram_svg(h);
  EXPECT_TRUE(well_formed(svg, false));
  static const std::regex kRect(
      "<rect x=\"([-0-9.]+)\" y=\"([-0-9.]+)\" width=\"([-0-9.]+)\" height=\"([-0-9.]+)\"/>");
  std::vector<std::vector<double>> bars;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), kRect); it != std::sregex_iterator();
       ++it)
    bars.push_back(
        {std::stod((*it)[1]), std::stod((*it)[2]), std::stod((*it)[3]), std::stod((*it)[4])});
  ASSERT_EQ(bars.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(bars[i][0], f.x_pixel(h.edges[i]), 0.006) << i;
    EXPECT_NEAR(bars[i][0] + bars[i][2], f.x_pixel(h.edges[i + 1]), 0.012) << i;
    EXPECT_NEAR(bars[i][1], f.y_pixel(counts[i]), 0.006) << i;
    EXPECT_NEAR(bars[i][1] + bars[i][3], f.bottom, 0.012) << i;
  }
  std::ostringstream marker;
  marker.setf(std::ios::fixed);
  marker.precision(2);
  marker << "<line x1=\"" << f.x_pixel(0.35) << "\" y1=\"" << f.top << "\" x2=\"" << f.x_pixel(0.35)
         << "\" y2=\"" << f.bottom << "\"";
  EXPECT_NE(svg.find(marker.str()), std::string::npos);
  EXPECT_NE(svg.find(">median 0.350</text>"), std::string::npos);
}
