// The SVG plot writer (round ticks, pixels where the frame says, well-formed XML) and the HTML
// report (files it references exist, PNG sizes, escaping, errors), on synthetic ModelDiff
// results and tiny image datasets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/progress.h"
#include "core/data/image_dataset.h"
#include "core/data/image_grid.h"
#include "core/diff/model_diff.h"
#include "core/report/html_report.h"
#include "core/report/svg_plot.h"

using namespace modeldiff::core;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("modeldiff_report_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

bool all_of(const std::string& s, std::size_t from, int (*predicate)(int)) {
  if (from >= s.size()) return false;
  for (std::size_t i = from; i < s.size(); ++i)
    if (!predicate(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

// XML's predefined entities and decimal character references; in HTML also named ones.
bool known_entity(const std::string& name, bool html) {
  static const std::set<std::string> kXml = {"amp", "lt", "gt", "quot", "apos"};
  if (kXml.count(name) != 0) return true;
  if (name.size() > 1 && name[0] == '#') return all_of(name, 1, isdigit);
  return html && all_of(name, 0, islower);
}

// The value of attribute `name` of each element <tag ...> of `doc`, in document order; "" for
// an element without it. Enough for the documents written here (attributes in double quotes).
std::vector<std::string> attribute_values(const std::string& doc, const std::string& tag,
                                          const std::string& name) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + " ", key = " " + name + "=\"";
  for (std::size_t at = doc.find(open); at != std::string::npos; at = doc.find(open, at + 1)) {
    const std::string element = doc.substr(at, doc.find('>', at) - at);
    const std::size_t k = element.find(key);
    if (k == std::string::npos) {
      out.emplace_back();
      continue;
    }
    const std::size_t v = k + key.size();
    out.push_back(element.substr(v, element.find('"', v) - v));
  }
  return out;
}

std::vector<double> numbers(const std::vector<std::string>& values) {
  std::vector<double> out;
  for (const auto& v : values) out.push_back(v.empty() ? std::nan("") : std::stod(v));
  return out;
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
      if (!known_entity(entity, html)) return fail("unknown entity");
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

// xmllint's verdict on `path`. A missing xmllint is a failure, not a pass: install_deps.sh
// installs it (libxml2-utils), and the hand-written well_formed() above is no full XML parser.
::testing::AssertionResult xmllint_accepts(const std::string& path) {
  if (!fs::exists("/usr/bin/xmllint"))
    return ::testing::AssertionFailure()
           << "/usr/bin/xmllint is missing (packaging/install_deps.sh installs libxml2-utils); "
              "cannot check "
           << path;
  const std::string command = "/usr/bin/xmllint --noout '" + path + "' 2>&1";
  const int rc = std::system(command.c_str());
  if (rc == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "xmllint rejects " << path << " (" << rc << ")";
}

struct Circle {
  double cx, cy, r;
};

std::vector<Circle> circles(const std::string& svg) {
  const auto cx = numbers(attribute_values(svg, "circle", "cx"));
  const auto cy = numbers(attribute_values(svg, "circle", "cy"));
  const auto r = numbers(attribute_values(svg, "circle", "r"));
  std::vector<Circle> out;
  for (std::size_t i = 0; i < cx.size(); ++i) out.push_back({cx[i], cy[i], r[i]});
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
  EXPECT_EQ(html_escape("A<b>&"), "A&lt;b&gt;&amp;");
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

TEST(SvgPlot, LongTextShrinksThenIsCutAtACharacterBoundary) {
  ScatterPlot plot;
  plot.width = 240;
  plot.height = 200;
  std::string long_label;
  for (int i = 0; i < 60; ++i) long_label += "\xc3\xa9";  // "é": two bytes in UTF-8
  plot.x_axis.label = long_label;
  plot.y_axis.label = "short";
  ScatterSeries s;
  s.name = std::string(200, 'n');
  s.x = {1};
  s.y = {1};
  plot.series.push_back(s);
  const std::string svg = render_scatter_svg(plot);
  EXPECT_TRUE(well_formed(svg, false));
  // Both the axis label and the legend entry end in an ellipsis, and the cut label is still
  // whole characters.
  int cut_labels = 0;
  for (std::size_t end = svg.find("&#8230;</text>"); end != std::string::npos;
       end = svg.find("&#8230;</text>", end + 1)) {
    const std::size_t start = svg.rfind('>', end) + 1;
    const std::string kept = svg.substr(start, end - start);
    if (kept.empty() || kept[0] != '\xc3') continue;
    ++cut_labels;
    EXPECT_EQ(kept.size() % 2, 0u);
    for (std::size_t i = 0; i + 1 < kept.size(); i += 2) EXPECT_EQ(kept.substr(i, 2), "\xc3\xa9");
  }
  EXPECT_EQ(cut_labels, 1) << svg;
  EXPECT_NE(svg.find("nnnn&#8230;</text>"), std::string::npos);
  EXPECT_NE(svg.find("font-size=\"13.00\" text-anchor=\"middle\">short</text>"), std::string::npos);
  const std::string dir = temp_path("svg_long");
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir + "/long.svg") << svg;
  EXPECT_TRUE(xmllint_accepts(dir + "/long.svg"));  // also checks the UTF-8
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
  // The bars are the rectangles without a fill of their own (the background and the frame have).
  const auto fill = attribute_values(svg, "rect", "fill");
  const auto x = numbers(attribute_values(svg, "rect", "x")),
             y = numbers(attribute_values(svg, "rect", "y"));
  const auto width = numbers(attribute_values(svg, "rect", "width")),
             height = numbers(attribute_values(svg, "rect", "height"));
  std::vector<std::vector<double>> bars;
  for (std::size_t i = 0; i < fill.size(); ++i)
    if (fill[i].empty()) bars.push_back({x[i], y[i], width[i], height[i]});
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

namespace {

// N 8 x 8 gray images, each a different pattern (a bright square at a position given by the
// index, over a background level given by the label).
ImageDataset patterned_images(std::int64_t n, const std::string& source) {
  ImageDataset d;
  d.source = source;
  d.images = NdArray::allocate(DType::kUInt8, {n, 8, 8, 1});
  std::uint8_t* p = d.images.mutable_data_as<std::uint8_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t label = i % 3;
    d.labels.push_back(label);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const bool square = (y / 2 == (i / 4) % 4) && (x / 2 == i % 4);
        p[i * 64 + y * 8 + x] = static_cast<std::uint8_t>(square ? 255 : 40 + 60 * label);
      }
  }
  d.class_names = {"zero", "one & <two>", "two"};
  return d;
}

NdArray random_scores(std::int64_t t, std::int64_t n, unsigned seed, const NdArray* base) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  NdArray s = NdArray::allocate(DType::kFloat32, {t, n});
  float* p = s.mutable_data_as<float>();
  for (std::int64_t i = 0; i < t * n; ++i)
    p[i] = (base ? base->data_as<float>()[i] : 0.0f) + g(rng);
  return s;
}

struct Fixture {
  static constexpr std::int64_t kTrain = 40, kVal = 24;
  ImageDataset train = patterned_images(kTrain, "train-images");
  ImageDataset val = patterned_images(kVal, "val-images");
  DiffResult all, one_class;

  Fixture() {
    const NdArray a = random_scores(kVal, kTrain, 1, nullptr);
    const NdArray b = random_scores(kVal, kTrain, 2, &a);
    NullProgress progress;
    DiffOptions options;
    options.components = 3;
    options.top_k = 4;  // fewer than the report shows: it picks its own from the matrices
    all = run_model_diff({"A<b>&", "a.npy", a}, {"B", "b.npy", b}, options, progress);
    for (std::int64_t r = 1; r < kVal; r += 3) options.target_rows.push_back(r);
    options.components = 2;
    one_class = run_model_diff({"A<b>&", "a.npy", a}, {"B", "b.npy", b}, options, progress);
  }

  ReportInput input() const {
    ReportInput in;
    in.label_a = "A<b>&";
    in.label_b = "B";
    in.description = "A: trained <with> augmentation & more\nB: plain";
    in.train = &train;
    in.val = &val;
    in.comparisons = {{"all validation examples", &all}, {"class 1 (one & <two>)", &one_class}};
    in.images_per_grid = 6;
    in.facts = {{"TRAK projection", "k = 2048 <dense>"}, {"scores A", "/tmp/a&b.npy"}};
    return in;
  }
};

std::vector<std::string> img_sources(const std::string& html) {
  return attribute_values(html, "img", "src");
}

// Width and height from a PNG's IHDR chunk.
std::pair<std::uint32_t, std::uint32_t> png_size(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < 24 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 ||
      bytes.compare(12, 4, "IHDR") != 0)
    return {0, 0};
  auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(bytes[at + k]);
    return v;
  };
  return {be32(16), be32(20)};
}

class CancelAfter final : public Progress {
 public:
  explicit CancelAfter(int reports) : left_(reports) {}
  void report(double, std::string_view) override { --left_; }
  bool cancelled() const override { return left_ <= 0; }

 private:
  int left_;
};

}  // namespace

TEST(HtmlReport, WritesAPageWhoseImagesAndPlotsAllExist) {
  const Fixture fx;
  const std::string dir = temp_path("report");
  fs::remove_all(dir);
  const std::string index = write_html_report(dir, fx.input());
  EXPECT_EQ(index, dir + "/index.html");
  ASSERT_TRUE(fs::exists(index));
  const std::string html = read_file(index);
  EXPECT_TRUE(well_formed(html, true));

  // Titles, labels, description and facts appear escaped, never raw.
  EXPECT_NE(html.find("all validation examples"), std::string::npos);
  EXPECT_NE(html.find("class 1 (one &amp; &lt;two&gt;)"), std::string::npos);
  EXPECT_NE(html.find("A&lt;b&gt;&amp; minus B"), std::string::npos);
  EXPECT_NE(html.find("trained &lt;with&gt; augmentation &amp; more\nB: plain"), std::string::npos);
  EXPECT_NE(html.find("k = 2048 &lt;dense&gt;"), std::string::npos);
  EXPECT_EQ(html.find("A<b>"), std::string::npos);
  EXPECT_EQ(html.find("<two>"), std::string::npos);
  // Offline: no network references.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Every direction of both sets of both comparisons has an anchor the contents link to.
  for (const std::string slug : {"all-validation-examples", "class-1-one-two"})
    for (const std::string set : {"a_minus_b", "b_minus_a"}) {
      EXPECT_NE(html.find("href=\"#" + slug + "-" + set + "\""), std::string::npos);
      const int components = slug == "all-validation-examples" ? 3 : 2;
      for (int c = 0; c < components; ++c)
        EXPECT_NE(html.find("id=\"" + slug + "-" + set + "-" + std::to_string(c) + "\""),
                  std::string::npos);
    }

  const std::vector<std::string> sources = img_sources(html);
  // Per comparison 2 plots; per direction 3 grids: (3 + 3) * 3 + (2 + 2) * 3 = 30 grids.
  EXPECT_EQ(sources.size(), 2u * 2u + 30u);
  std::set<std::string> referenced;
  for (const auto& src : sources) {
    EXPECT_EQ(src.find('/'), std::string::npos) << src;  // all beside index.html
    EXPECT_TRUE(fs::exists(dir + "/" + src)) << src;
    referenced.insert(src);
  }
  EXPECT_EQ(referenced.size(), sources.size()) << "a file name is used twice";
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "index.html" || referenced.count(name)) << "stray file " << name;
  }
  for (const std::string name :
       {"all-validation-examples_variance.svg", "all-validation-examples_cosine.svg",
        "all-validation-examples_a_minus_b_dir0_top_train.png",
        "all-validation-examples_b_minus_a_dir2_bottom_train.png",
        "class-1-one-two_a_minus_b_dir1_top_val.png"})
    EXPECT_TRUE(referenced.count(name)) << name;

  // Grids: 6 images in one row of 96-pixel cells with caption strips, as the grid layout says.
  GridStyle style;
  style.columns = 6;
  style.cell = 96;
  const GridLayout layout = image_grid_layout(6, true, style);
  // The second comparison has 8 validation rows: its top_val grids hold 6 images too.
  for (const auto& src : referenced) {
    if (src.size() > 4 && src.compare(src.size() - 4, 4, ".png") == 0) {
      const auto [w, h] = png_size(dir + "/" + src);
      EXPECT_EQ(w, static_cast<std::uint32_t>(layout.width)) << src;
      EXPECT_EQ(h, static_cast<std::uint32_t>(layout.height)) << src;
      EXPECT_NE(html.find("src=\"" + src + "\" width=\"" + std::to_string(layout.width) +
                          "\" height=\"" + std::to_string(layout.height) + "\""),
                std::string::npos)
          << src;
    } else {
      const std::string svg = read_file(dir + "/" + src);
      EXPECT_TRUE(well_formed(svg, false)) << src;
      EXPECT_TRUE(xmllint_accepts(dir + "/" + src));
    }
  }
  // The variance plot shows every direction of both sets, labelled with the user's names.
  const std::string variance = read_file(dir + "/all-validation-examples_variance.svg");
  EXPECT_NE(variance.find("variance of A&lt;b&gt;&amp;&#39;s attributions"), std::string::npos);
  EXPECT_EQ(circles(variance).size(), 3u + 3u + 2u);  // 6 points + 2 legend dots
  fs::remove_all(dir);
}

TEST(HtmlReport, GridImagesAreTheRightExamples) {
  // The top training grid shows the training images with the largest loadings on direction 0,
  // in that order: decode the PNG and compare every tile's pixels with its source image.
  const Fixture fx;
  ReportInput in = fx.input();
  in.comparisons.resize(1);
  in.images_per_grid = 12;  // more than the 4 the result stores; two rows of 10 columns
  const std::string dir = temp_path("report_rows");
  fs::remove_all(dir);
  write_html_report(dir, in);
  GridStyle style;
  style.columns = 10;
  style.cell = 96;
  const GridLayout layout = image_grid_layout(12, true, style);
  const std::string png = dir + "/all-validation-examples_a_minus_b_dir0_top_train.png";
  const auto [w, h] = png_size(png);
  EXPECT_EQ(w, static_cast<std::uint32_t>(layout.width));
  EXPECT_EQ(h, static_cast<std::uint32_t>(layout.height));
  EXPECT_EQ(layout.rows, 2);
  // The stored top-4 list is a prefix of what the report picks (same ordering rule).
  const DirectionSet& d = fx.all.a_minus_b;
  const auto picked = top_k_indices(d.directions.data(), Fixture::kTrain, 12, true);
  ASSERT_EQ(picked.size(), 12u);
  for (std::size_t i = 0; i < d.top_train[0].size(); ++i) EXPECT_EQ(picked[i], d.top_train[0][i]);

  // Tile i: the 8 x 8 gray image picked[i] enlarged 11 times by nearest neighbour to the 88
  // pixels that fit inside the cell's margin, centred in the cell, framed by a grey line
  // (image_grid.h). The patterned images all differ, so a wrong or misplaced image shows.
  const cv::Mat bgr = cv::imread(png, cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty()) << png;
  ASSERT_EQ(bgr.cols, layout.width);
  ASSERT_EQ(bgr.rows, layout.height);
  constexpr int kSide = 8, kZoom = 11;
  ASSERT_EQ(layout.cell - 2 * layout.margin, kSide * kZoom);
  const int offset = (layout.cell - kSide * kZoom) / 2;
  const auto* source = fx.train.images.data_as<std::uint8_t>();
  for (int i = 0; i < 12; ++i) {
    SCOPED_TRACE("tile " + std::to_string(i) + ", training image " + std::to_string(picked[i]));
    const int x0 = layout.cell_x(i) + offset, y0 = layout.cell_y(i) + offset;
    int wrong = 0;
    for (int yy = 0; yy < kSide * kZoom; ++yy)
      for (int xx = 0; xx < kSide * kZoom; ++xx) {
        const int want = source[picked[static_cast<std::size_t>(i)] * kSide * kSide +
                                (yy / kZoom) * kSide + xx / kZoom];
        const cv::Vec3b got = bgr.at<cv::Vec3b>(y0 + yy, x0 + xx);
        if (got[0] != want || got[1] != want || got[2] != want) {
          if (wrong++ == 0)
            ADD_FAILURE() << "pixel (" << yy << ", " << xx << ") of the tile is (" << int(got[2])
                          << ", " << int(got[1]) << ", " << int(got[0]) << "), not gray " << want;
        }
      }
    EXPECT_EQ(wrong, 0) << "of " << kSide * kZoom * kSide * kZoom << " pixels";
    for (const auto& [yy, xx] : {std::pair{y0 - 1, x0 - 1}, std::pair{y0 + kSide * kZoom, x0 + 5},
                                 std::pair{y0 + 7, x0 + kSide * kZoom}})
      EXPECT_EQ(bgr.at<cv::Vec3b>(yy, xx), cv::Vec3b(200, 200, 200))
          << "frame at " << yy << ", " << xx;
  }
  fs::remove_all(dir);
}

TEST(HtmlReport, WithoutImagesListsIndicesInstead) {
  const Fixture fx;
  ReportInput in = fx.input();
  in.train = nullptr;
  in.val = nullptr;
  in.label_a.clear();  // taken from the results
  in.label_b.clear();
  const std::string dir = temp_path("report_noimages");
  fs::remove_all(dir);
  write_html_report(dir, in);
  const std::string html = read_file(dir + "/index.html");
  EXPECT_TRUE(well_formed(html, true));
  EXPECT_NE(html.find("A&lt;b&gt;&amp; minus B"), std::string::npos);
  const auto sources = img_sources(html);
  EXPECT_EQ(sources.size(), 4u);  // the plots only
  const std::int64_t top = fx.all.a_minus_b.top_train[0][0];
  EXPECT_NE(html.find("<p class=\"indices\">#" + std::to_string(top) + " ("), std::string::npos);
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_NE(entry.path().extension(), ".png") << entry.path();
  fs::remove_all(dir);
}

TEST(HtmlReport, RewritingReplacesTheEarlierReport) {
  const Fixture fx;
  const std::string dir = temp_path("report_again");
  fs::remove_all(dir);
  write_html_report(dir, fx.input());
  ReportInput in = fx.input();
  in.comparisons[0].title = "second run";
  write_html_report(dir, in);
  const std::string html = read_file(dir + "/index.html");
  EXPECT_NE(html.find("second run"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir + "/second-run_variance.svg"));
  // The first run's figures of the renamed comparison are gone; a user's own file stays.
  EXPECT_FALSE(fs::exists(dir + "/all-validation-examples_variance.svg"));
  EXPECT_FALSE(fs::exists(dir + "/all-validation-examples_a_minus_b_dir0_top_train.png"));
  EXPECT_TRUE(fs::exists(dir + "/class-1-one-two_a_minus_b_dir0_top_train.png"));
  std::ofstream(dir + "/notes.txt") << "mine";
  write_html_report(dir, fx.input());
  EXPECT_TRUE(fs::exists(dir + "/notes.txt"));
  EXPECT_FALSE(fs::exists(dir + "/second-run_variance.svg"));
  fs::remove_all(dir);
}

TEST(HtmlReport, DuplicateTitlesGetDistinctFileNames) {
  EXPECT_EQ(report_slug("class 3 (Dress)"), "class-3-dress");
  EXPECT_EQ(report_slug("  All -- Validation!! "), "all-validation");
  EXPECT_EQ(report_slug("<>&"), "comparison");
  EXPECT_EQ(report_slug(std::string(100, 'x')).size(), 48u);
  const Fixture fx;
  ReportInput in = fx.input();
  in.comparisons[1].title = in.comparisons[0].title;
  in.comparisons.push_back({"Provenance", &fx.all});  // the facts table's id is taken
  const std::string dir = temp_path("report_dup");
  fs::remove_all(dir);
  write_html_report(dir, in);
  EXPECT_TRUE(fs::exists(dir + "/all-validation-examples_variance.svg"));
  EXPECT_TRUE(fs::exists(dir + "/all-validation-examples-2_variance.svg"));
  EXPECT_TRUE(fs::exists(dir + "/provenance-2_variance.svg"));
  const std::string html = read_file(dir + "/index.html");
  EXPECT_NE(html.find("id=\"provenance\""), std::string::npos);
  EXPECT_NE(html.find("id=\"provenance-2\""), std::string::npos);
  fs::remove_all(dir);
}

TEST(HtmlReport, BadInputThrowsInputErrorAndWritesNothing) {
  const Fixture fx;
  const std::string base = temp_path("report_bad");
  fs::remove_all(base);
  fs::create_directories(base);

  // Unwritable location: the parent is a regular file.
  std::ofstream(base + "/file") << "x";
  EXPECT_THROW(write_html_report(base + "/file/report", fx.input()), InputError);
  EXPECT_THROW(write_html_report(base + "/missing/parent/report", fx.input()), InputError);

  const std::string dir = base + "/report";
  ReportInput in = fx.input();
  ImageDataset short_train = patterned_images(Fixture::kTrain - 1, "short-train");
  in.train = &short_train;
  try {
    write_html_report(dir, in);
    FAIL() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "short-train");
    EXPECT_NE(std::string(e.what()).find("40"), std::string::npos) << e.what();
  }
  in = fx.input();
  ImageDataset long_val = patterned_images(Fixture::kVal + 1, "long-val");
  in.val = &long_val;
  EXPECT_THROW(write_html_report(dir, in), InputError);
  in = fx.input();
  in.images_per_grid = 0;
  EXPECT_THROW(write_html_report(dir, in), InputError);
  in.images_per_grid = 101;
  EXPECT_THROW(write_html_report(dir, in), InputError);
  in = fx.input();
  in.comparisons.clear();
  EXPECT_THROW(write_html_report(dir, in), InputError);
  EXPECT_FALSE(fs::exists(dir));

  // Cancelled half-way: nothing reaches the target, no staging folder is left behind.
  CancelAfter cancel(5);
  EXPECT_THROW(write_html_report(dir, fx.input(), &cancel), Cancelled);
  EXPECT_FALSE(fs::exists(dir));
  std::size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(base)) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);  // just "file"
  fs::remove_all(base);
}
