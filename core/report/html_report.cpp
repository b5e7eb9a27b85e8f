#include "core/report/html_report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/base/error.h"
#include "core/base/percent.h"
#include "core/data/image_grid.h"
#include "core/report/svg_plot.h"

namespace modeldiff::core {

namespace {

constexpr int kGridColumns = 10;
constexpr int kGridCell = 96;
constexpr int kVariancePlotSide = 440;
constexpr int kHistogramWidth = 500, kHistogramHeight = 340;
constexpr const char* kColourAMinusB = "#1f77b4";
constexpr const char* kColourBMinusA = "#ff7f0e";

// Inline so that the page is one self-contained file (no network, no second request).
constexpr const char* kStyle = R"CSS(
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, "DejaVu Sans", sans-serif;
  color: #222; background: #fff; max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px;
  font-size: 15px; line-height: 1.45; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 21px; margin: 44px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
h3 { font-size: 17px; margin: 30px 0 8px; }
h4 { font-size: 15px; margin: 26px 0 4px; }
a { color: #1f5fa8; text-decoration: none; }
a:hover { text-decoration: underline; }
.description { white-space: pre-wrap; color: #444; margin: 6px 0 16px; }
.meta, .stats { color: #444; font-size: 14px; margin: 4px 0 10px; }
.warning { color: #9a4d00; }
.finding { border-left: 4px solid #3b6ea5; background: #f3f7fb; padding: 4px 12px; margin: 8px 0; }
nav.toc { background: #f7f7f8; border: 1px solid #e3e3e6; border-radius: 6px;
  padding: 8px 16px; font-size: 14px; }
nav.toc h2 { font-size: 15px; margin: 4px 0; border: none; padding: 0; }
nav.toc ol { margin: 4px 0; padding-left: 22px; }
nav.toc .sets { color: #666; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 12px; border-bottom: 1px solid #eee; text-align: right; }
th { font-weight: 600; border-bottom: 1px solid #ccc; }
th:first-child, td:first-child { text-align: left; }
table.facts td { text-align: left; vertical-align: top; word-break: break-word; }
table.facts td:first-child { color: #555; white-space: nowrap; }
.plots { display: flex; flex-wrap: wrap; gap: 12px 28px; align-items: flex-start; }
/* A plot's caption as wide as the plot: a table whose caption follows the image's width. */
.plots figure { display: table; }
.plots figcaption { display: table-caption; caption-side: bottom; }
figure { margin: 8px 0 14px; }
figcaption { font-size: 13px; color: #555; max-width: 560px; }
figure.grid figcaption { margin-bottom: 3px; max-width: none; }
img { max-width: 100%; height: auto; }
figure.grid img { display: block; border: 1px solid #eee; }
.indices { font-size: 13px; color: #444; font-variant-numeric: tabular-nums; }
footer { margin-top: 48px; font-size: 12px; color: #888; }
@media print { nav.toc { display: none; } section.comparison { break-before: page; } }
)CSS";

std::string format_number(double v, const char* spec = "%.3g") {
  if (!std::isfinite(v)) return std::isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

// Values shown side by side (a grid's captions) with the same number of decimals: three
// significant digits of the largest magnitude; "%.3g" each for tiny or huge values.
std::vector<std::string> format_values(const std::vector<double>& values) {
  double largest = 0;
  for (double v : values)
    if (std::isfinite(v)) largest = std::max(largest, std::abs(v));
  std::vector<std::string> out;
  const bool fixed = largest >= 1e-4 && largest < 1e5;
  const int decimals =
      fixed ? std::max(0, 2 - static_cast<int>(std::floor(std::log10(largest)))) : 0;
  for (double v : values) {
    if (!fixed || !std::isfinite(v)) {
      out.push_back(format_number(v));
      continue;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    out.push_back(buf);
  }
  return out;
}

std::string percent(double ratio) {
  return format_percent(ratio, 1, "&ndash;");
}

// var_first / var_second as "5.2x"; "-" when the second is zero.
std::string variance_ratio(double a, double b) {
  if (!(b > 0)) return "&ndash;";
  return format_number(a / b, "%.3g") + "&times;";
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f) f.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (f) f.close();
  if (!f) throw InputError(path, std::string("cannot write file: ") + std::strerror(errno));
}

// One direction's entries for a grid: dataset indices, their captions' values.
struct Picked {
  std::vector<std::int64_t> indices;
  std::vector<double> values;
};

Picked top_train(const DirectionSet& set, int c, int k, bool largest) {
  Picked p;
  const auto n = static_cast<std::int64_t>(set.directions.cols());
  const float* row = set.directions.data() + static_cast<std::ptrdiff_t>(c) * n;
  p.indices = top_k_indices(row, n, k, largest);
  for (std::int64_t i : p.indices) p.values.push_back(row[i]);
  return p;
}

// Validation examples with the largest projections on component c, as original row numbers.
Picked top_val(const DirectionSet& set, const DiffResult& result, int c, int k) {
  Picked p;
  const Eigen::VectorXf column = set.projections.col(c);
  const auto positions =
      top_k_indices(column.data(), static_cast<std::int64_t>(column.size()), k, true);
  for (std::int64_t pos : positions) {
    p.indices.push_back(result.target_rows[static_cast<std::size_t>(pos)]);
    p.values.push_back(column(pos));
  }
  return p;
}

// Title -> unique file-name stem (also the section's id, so never the provenance table's).
class Slugs {
 public:
  Slugs() : used_({"provenance"}) {}
  std::string take(const std::string& title) {
    const std::string base = report_slug(title);
    std::string slug = base;
    for (int n = 2; used_.count(slug) != 0; ++n) slug = base + "-" + std::to_string(n);
    used_.insert(slug);
    return slug;
  }

 private:
  std::set<std::string> used_;
};

struct SetInfo {
  const DirectionSet* set;
  std::string key;    // "a_minus_b" / "b_minus_a": file names
  std::string first;  // user labels
  std::string second;
};

class ReportWriter {
 public:
  ReportWriter(OutputDirectory& out, const ReportInput& input, Progress* progress)
      : out_(out), in_(input), progress_(progress) {
    label_a_ = input.label_a.empty() ? input.comparisons.front().result->label_a : input.label_a;
    label_b_ = input.label_b.empty() ? input.comparisons.front().result->label_b : input.label_b;
    for (const auto& c : input.comparisons) {
      const DiffResult& r = *c.result;
      total_grids_ +=
          3 * static_cast<int>(r.a_minus_b.directions.rows() + r.b_minus_a.directions.rows());
    }
  }

  void write() {
    std::vector<std::string> slugs;
    Slugs names;
    for (const auto& c : in_.comparisons) slugs.push_back(names.take(c.title));

    html_ = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    html_ += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    const std::string title = "ModelDiff: " + label_a_ + " vs " + label_b_;
    html_ += "<title>" + html_escape(title) + "</title>\n<style>" + kStyle + "</style>\n";
    html_ += "</head>\n<body>\n<header>\n<h1>" + html_escape(title) + "</h1>\n";
    if (!in_.description.empty())
      html_ += "<p class=\"description\">" + html_escape(in_.description) + "</p>\n";
    html_ += "</header>\n";
    write_toc(slugs);
    for (std::size_t i = 0; i < in_.comparisons.size(); ++i)
      write_comparison(in_.comparisons[i], slugs[i]);
    if (!in_.facts.empty()) {
      html_ += "<section id=\"provenance\">\n<h2>Provenance</h2>\n<table class=\"facts\">\n";
      for (const auto& [key, value] : in_.facts)
        html_ += "<tr><td>" + html_escape(key) + "</td><td>" + html_escape(value) + "</td></tr>\n";
      html_ += "</table>\n</section>\n";
    }
    html_ += std::string("<footer>Written by ModelDiff Studio ") + MODELDIFF_VERSION +
             ". Method: Shah, Park, Ilyas and Madry, &ldquo;ModelDiff: A Framework for "
             "Comparing Learning Algorithms&rdquo;, ICML 2023.</footer>\n";
    html_ += "</body>\n</html>\n";
    stage_text("index.html", html_);
    if (progress_) progress_->report(1.0, "report written");
  }

  const std::vector<std::string>& files() const { return files_; }

 private:
  std::vector<SetInfo> sets_of(const DiffResult& r) const {
    return {{&r.a_minus_b, "a_minus_b", label_a_, label_b_},
            {&r.b_minus_a, "b_minus_a", label_b_, label_a_}};
  }

  static std::string set_title(const SetInfo& s) {
    return html_escape(s.first) + " minus " + html_escape(s.second);
  }

  void write_toc(const std::vector<std::string>& slugs) {
    html_ += "<nav class=\"toc\">\n<h2>Contents</h2>\n<ol>\n";
    for (std::size_t i = 0; i < in_.comparisons.size(); ++i) {
      const auto& s = slugs[i];
      html_ += "<li><a href=\"#" + s + "\">" + html_escape(in_.comparisons[i].title) +
               "</a> <span class=\"sets\">(";
      bool first = true;
      for (const auto& set : sets_of(*in_.comparisons[i].result)) {
        if (!first) html_ += " &middot; ";
        first = false;
        html_ += "<a href=\"#" + s + "-" + set.key + "\">" + set_title(set) + "</a>";
      }
      html_ += ")</span></li>\n";
    }
    if (!in_.facts.empty()) html_ += "<li><a href=\"#provenance\">Provenance</a></li>\n";
    html_ += "</ol>\n</nav>\n";
  }

  void write_comparison(const ReportComparison& c, const std::string& slug) {
    const DiffResult& r = *c.result;
    html_ += "<section class=\"comparison\" id=\"" + slug + "\">\n<h2>" + html_escape(c.title) +
             "</h2>\n";
    html_ += "<p class=\"meta\">" + std::to_string(r.target_rows.size()) +
             " validation examples, " + std::to_string(r.num_train) + " training examples; " +
             (r.normalized_rows ? "attribution rows scaled to unit length before the residual"
                                : "raw attribution rows (not normalised)") +
             "; " + std::to_string(r.a_minus_b.directions.rows()) + " directions per set.</p>\n";
    html_ += "<div class=\"plots\">\n";
    write_variance_plot(r, slug);
    write_cosine_histogram(r, slug);
    html_ += "</div>\n";
    for (const auto& set : sets_of(r)) write_set(r, set, slug);
    html_ += "</section>\n";
  }

  void write_variance_plot(const DiffResult& r, const std::string& slug) {
    ScatterPlot plot;
    plot.title = "Variance along each direction";
    plot.x_axis.label = "variance of " + label_a_ + "'s attributions";
    plot.y_axis.label = "variance of " + label_b_ + "'s attributions";
    plot.identity_line = true;
    plot.same_range = true;
    plot.width = plot.height = kVariancePlotSide;
    const std::vector<SetInfo> sets = sets_of(r);
    const char* const colours[] = {kColourAMinusB, kColourBMinusA};
    for (std::size_t k = 0; k < sets.size(); ++k) {
      const SetInfo& set = sets[k];
      ScatterSeries s;
      s.name = set.first + " minus " + set.second;
      s.colour = colours[k];
      for (Eigen::Index i = 0; i < set.set->variance_a.size(); ++i) {
        s.x.push_back(set.set->variance_a(i));
        s.y.push_back(set.set->variance_b(i));
        s.labels.push_back(std::to_string(i));
      }
      plot.series.push_back(std::move(s));
    }
    const std::string file = slug + "_variance.svg";
    stage_text(file, render_scatter_svg(plot));
    html_ += "<figure><img src=\"" + file + "\" width=\"" + std::to_string(kVariancePlotSide) +
             "\" height=\"" + std::to_string(kVariancePlotSide) +
             "\" alt=\"scatter plot of the variances of both algorithms along each direction\">"
             "<figcaption>Variance of " +
             html_escape(label_a_) + "'s and " + html_escape(label_b_) +
             "'s (row-normalised) attributions along each distinguishing direction, numbered as "
             "below. Directions of " +
             html_escape(label_a_) + " minus " + html_escape(label_b_) +
             " should lie below the diagonal, those of " + html_escape(label_b_) + " minus " +
             html_escape(label_a_) + " above it.</figcaption></figure>\n";
  }

  void write_cosine_histogram(const DiffResult& r, const std::string& slug) {
    std::vector<double> values;
    for (Eigen::Index i = 0; i < r.cosine_ab.size(); ++i)
      if (std::isfinite(r.cosine_ab(i))) values.push_back(r.cosine_ab(i));
    if (values.empty()) return;
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    // Bins aligned with the axis ticks: a whole number of bins per tick step, 15 to 60 in all.
    const std::vector<double> ticks = nice_ticks(sorted.front(), sorted.back());
    const double lo = ticks.front(), hi = ticks.back();
    const int steps = static_cast<int>(ticks.size()) - 1;
    int bins = steps;
    for (int per_step : {10, 5, 4, 2, 1})
      if (steps * per_step <= 60) {
        bins = steps * per_step;
        break;
      }
    Histogram h;
    h.title = "Similarity of the two algorithms' attributions";
    h.x_label = "cosine similarity of the attributions";
    h.y_label = "validation examples";
    h.counts = histogram_counts(values, lo, hi, bins);
    for (int i = 0; i <= bins; ++i) h.edges.push_back(lo + (hi - lo) * i / bins);
    h.marker = median;
    h.marker_label = "median " + format_number(median, "%.3f");
    h.width = kHistogramWidth;
    h.height = kHistogramHeight;
    const std::string file = slug + "_cosine.svg";
    stage_text(file, render_histogram_svg(h));
    html_ += "<figure><img src=\"" + file + "\" width=\"" + std::to_string(kHistogramWidth) +
             "\" height=\"" + std::to_string(kHistogramHeight) +
             "\" alt=\"histogram of the cosine similarity of the attributions\">"
             "<figcaption>Cosine similarity between " +
             html_escape(label_a_) + "'s and " + html_escape(label_b_) +
             "'s attributions of each of the " + std::to_string(n) +
             " validation examples (median " + format_number(median, "%.3f") +
             "). Low values: the two algorithms rely on different training examples."
             "</figcaption></figure>\n";
  }

  void write_set(const DiffResult& r, const SetInfo& set, const std::string& slug) {
    const DirectionSet& d = *set.set;
    const std::string id = slug + "-" + set.key;
    const int components = static_cast<int>(d.directions.rows());
    html_ += "<section id=\"" + id + "\">\n<h3>" + set_title(set) + "</h3>\n";
    html_ += "<p class=\"meta\">Directions in training-set space along which " +
             html_escape(set.first) + "'s attributions vary but " + html_escape(set.second) +
             "'s do not (principal components of the residual of " + html_escape(set.first) +
             " after removing what " + html_escape(set.second) +
             " explains). PCA solver: " + html_escape(d.solver) + ".";
    if (!d.converged)
      html_ += " <span class=\"warning\">The solver did not converge in " +
               std::to_string(d.iterations) +
               " iterations; treat the later directions with care.</span>";
    html_ += "</p>\n";
    const Significance& sig = r.significance;
    const DirectionSignificance& ds = set.key == "a_minus_b" ? sig.a_minus_b : sig.b_minus_a;
    if (sig.computed)
      html_ += "<p class=\"meta\">Significance from half ensembles of " +
               std::to_string(sig.checkpoints_a[0]) + "+" + std::to_string(sig.checkpoints_a[1]) +
               " and " + std::to_string(sig.checkpoints_b[0]) + "+" +
               std::to_string(sig.checkpoints_b[1]) + " checkpoints, " +
               std::to_string(sig.splits) + " split" + (sig.splits == 1 ? "" : "s") +
               ". Rule: " + html_escape(kSignificanceRule) + ".</p>\n";
    else
      html_ +=
          "<p class=\"meta\">Significance of the directions " + html_escape(sig.reason) + ".</p>\n";
    html_ +=
        "<table class=\"summary\">\n<tr><th>direction</th><th>explained variance</th>"
        "<th>share of residual</th><th>var " +
        html_escape(label_a_) + "</th><th>var " + html_escape(label_b_) + "</th><th>var " +
        html_escape(set.first) + " / var " + html_escape(set.second) + "</th>" +
        (sig.computed
             ? "<th>half-ensemble explained variance</th><th>noise floor</th><th>&times; floor</th>"
               "<th>reproduced |cos|</th><th>rank stable</th><th>verdict</th>"
             : "") +
        "</tr>\n";
    for (int c = 0; c < components; ++c) {
      const double va = d.variance_a(c), vb = d.variance_b(c);
      const double first = set.key == "a_minus_b" ? va : vb;
      const double second = set.key == "a_minus_b" ? vb : va;
      html_ += "<tr><td><a href=\"#" + id + "-" + std::to_string(c) + "\">" + std::to_string(c) +
               "</a></td><td>" + format_number(d.explained_variance(c)) + "</td><td>" +
               percent(d.explained_variance_ratio(c)) + "</td><td>" + format_number(va) +
               "</td><td>" + format_number(vb) + "</td><td>" + variance_ratio(first, second) +
               "</td>";
      if (sig.computed)
        html_ += "<td>" + format_number(ds.half_explained_variance(c)) + "</td><td>" +
                 format_number(ds.noise_floor(c)) + "</td><td>" + format_number(ds.floor_ratio(c)) +
                 "</td><td>" + format_number(ds.reproducibility(c)) + " &plusmn; " +
                 format_number(ds.reproducibility_std(c)) + "</td><td>" +
                 percent(ds.rank_stable(c)) + "</td><td>" +
                 significance_verdict(ds.above_floor[static_cast<std::size_t>(c)]) + "</td>";
      html_ += "</tr>\n";
    }
    html_ += "</table>\n";
    for (int c = 0; c < components; ++c) write_direction(r, set, slug, c);
    html_ += "</section>\n";
  }

  void write_direction(const DiffResult& r, const SetInfo& set, const std::string& slug, int c) {
    const DirectionSet& d = *set.set;
    const std::string id = slug + "-" + set.key + "-" + std::to_string(c);
    html_ += "<article class=\"direction\" id=\"" + id + "\">\n<h4>" + set_title(set) +
             ", direction " + std::to_string(c) + "</h4>\n";
    html_ += "<p class=\"stats\">Explained variance " + format_number(d.explained_variance(c)) +
             " (" + percent(d.explained_variance_ratio(c)) + " of the residual's); variance of " +
             html_escape(label_a_) + " " + format_number(d.variance_a(c)) + ", of " +
             html_escape(label_b_) + " " + format_number(d.variance_b(c)) + ".";
    const Significance& sig = r.significance;
    if (sig.computed) {
      const DirectionSignificance& ds = set.key == "a_minus_b" ? sig.a_minus_b : sig.b_minus_a;
      html_ += " <strong>" +
               std::string(significance_verdict(ds.above_floor[static_cast<std::size_t>(c)])) +
               "</strong>: half-ensemble explained variance " +
               format_number(ds.half_explained_variance(c)) + ", " +
               format_number(ds.floor_ratio(c)) + " times the noise floor " +
               format_number(ds.noise_floor(c)) + "; reproduced between half pairs with |cos| " +
               format_number(ds.reproducibility(c)) + ".";
    }
    html_ += "</p>\n";
    write_findings(r, set, c);
    const std::string stem = slug + "_" + set.key + "_dir" + std::to_string(c);
    const int k_train = static_cast<int>(std::min<std::int64_t>(in_.images_per_grid, r.num_train));
    const int k_val = static_cast<int>(std::min<std::int64_t>(
        in_.images_per_grid, static_cast<std::int64_t>(r.target_rows.size())));
    grid(in_.train, top_train(d, c, k_train, true), stem + "_top_train.png",
         "Training images with the largest loadings (most specific to " + set.first + ")");
    grid(in_.train, top_train(d, c, k_train, false), stem + "_bottom_train.png",
         "Training images with the smallest (most negative) loadings");
    grid(in_.val, top_val(d, r, c, k_val), stem + "_top_val.png",
         "Validation images with the largest projections on this direction");
    html_ += "</article>\n";
  }

  // The findings recorded for direction c of `set` in the comparison of `r`.
  void write_findings(const DiffResult& r, const SetInfo& set, int c) {
    for (const ReportFinding& f : in_.findings) {
      if (f.comparison >= in_.comparisons.size() || in_.comparisons[f.comparison].result != &r ||
          f.set != set.key || f.component != c)
        continue;
      html_ += "<div class=\"finding\"><p><strong>Finding";
      if (!f.verdict.empty()) html_ += " (" + html_escape(f.verdict) + ")";
      html_ += ":</strong> " + html_escape(f.hypothesis) + "</p><p class=\"meta\">Transformation " +
               html_escape(f.transform);
      if (!f.target_class.empty()) html_ += ", target class " + html_escape(f.target_class);
      html_ += "; effect on P(target), " + html_escape(label_a_) + " minus " +
               html_escape(label_b_) + ": ";
      html_ += std::isfinite(f.effect)
                   ? format_number(f.effect) + (std::isfinite(f.ci_low)
                                                    ? " (95% interval " + format_number(f.ci_low) +
                                                          " to " + format_number(f.ci_high) + ")"
                                                    : "")
                   : "not measured";
      html_ += ".</p>";
      if (!f.measured.empty()) {
        html_ += "<p class=\"meta\">This run: " + html_escape(f.measured);
        if (f.reproduces == true) html_ += " The recorded effect reproduces (inside its interval).";
        if (f.reproduces == false)
          html_ +=
              " <strong>The recorded effect does not reproduce</strong> (outside its interval).";
        html_ += "</p>";
      }
      html_ += "</div>\n";
    }
  }

  // An image grid figure, or the indices and values as text when there are no images.
  void grid(const ImageDataset* data, const Picked& picked, const std::string& file,
            const std::string& caption) {
    if (progress_) {
      progress_->throw_if_cancelled();
      progress_->report(total_grids_ > 0 ? static_cast<double>(done_grids_) / total_grids_ : 0.0,
                        "report: " + file);
    }
    ++done_grids_;
    html_ += "<figure class=\"grid\"><figcaption>" + html_escape(caption) + "</figcaption>";
    const std::vector<std::string> values = format_values(picked.values);
    if (data == nullptr || picked.indices.empty()) {
      html_ += "<p class=\"indices\">";
      for (std::size_t i = 0; i < picked.indices.size(); ++i)
        html_ += (i ? ", #" : "#") + std::to_string(picked.indices[i]) + " (" + values[i] + ")";
      html_ += "</p></figure>\n";
      return;
    }
    std::vector<std::string> captions;
    for (std::size_t i = 0; i < picked.indices.size(); ++i) {
      const std::int64_t index = picked.indices[i];
      captions.push_back("#" + std::to_string(index) + " " +
                         data->class_name(data->labels[static_cast<std::size_t>(index)]) + " " +
                         values[i]);
    }
    GridStyle style;
    style.columns = std::min(kGridColumns, static_cast<int>(picked.indices.size()));
    style.cell = kGridCell;
    const GridLayout layout = image_grid_layout(picked.indices.size(), true, style);
    write_image_grid_png(out_.staging_path(file), *data, picked.indices, captions, style);
    files_.push_back(file);
    html_ += "<img src=\"" + file + "\" width=\"" + std::to_string(layout.width) + "\" height=\"" +
             std::to_string(layout.height) + "\" loading=\"lazy\" alt=\"" + html_escape(caption) +
             "\"></figure>\n";
  }

  void stage_text(const std::string& file, const std::string& text) {
    write_text_file(out_.staging_path(file), text);
    files_.push_back(file);
  }

  OutputDirectory& out_;
  const ReportInput& in_;
  Progress* progress_;
  std::string label_a_, label_b_;
  std::string html_;
  int total_grids_ = 0, done_grids_ = 0;
  std::vector<std::string> files_;
};

void check_dataset(const ImageDataset* data, std::int64_t expected, const char* what,
                   const std::string& title) {
  if (data == nullptr) return;
  if (data->size() != expected)
    throw InputError(data->source, std::string("number of ") + what +
                                       " images differs from the attribution scores")
        .key(title)
        .expected(std::to_string(expected))
        .found(std::to_string(data->size()));
  if (data->labels.size() != static_cast<std::size_t>(data->size()))
    throw InputError(data->source,
                     std::string("number of ") + what + " labels differs from the number of images")
        .expected(std::to_string(data->size()))
        .found(std::to_string(data->labels.size()));
}

void check_input(const ReportInput& input) {
  if (input.comparisons.empty()) throw InputError("", "the report has no comparisons to show");
  if (input.images_per_grid < 1 || input.images_per_grid > 100)
    throw InputError("", "images per grid out of range")
        .expected("1 to 100")
        .found(std::to_string(input.images_per_grid));
  for (const auto& c : input.comparisons) {
    MD_ASSERT(c.result != nullptr);
    const DiffResult& r = *c.result;
    MD_ASSERT(static_cast<Eigen::Index>(r.target_rows.size()) == r.cosine_ab.size());
    for (const DirectionSet* d : {&r.a_minus_b, &r.b_minus_a}) {
      MD_ASSERT(d->directions.cols() == r.num_train);
      MD_ASSERT(d->projections.rows() == static_cast<Eigen::Index>(r.target_rows.size()));
      MD_ASSERT(d->projections.cols() == d->directions.rows());
      MD_ASSERT(d->variance_a.size() == d->directions.rows());
      MD_ASSERT(d->variance_b.size() == d->directions.rows());
    }
    check_dataset(input.train, r.num_train, "training", c.title);
    check_dataset(input.val, r.num_targets, "validation", c.title);
  }
}

// Figures an earlier report left in `dir` that the new one does not reference (a comparison or
// direction fewer): only names the report writes, so that a user's own files stay.
void remove_stale_figures(const std::string& dir, const std::vector<std::string>& current) {
  namespace fs = std::filesystem;
  static const char* const kSuffixes[] = {"_variance.svg", "_cosine.svg", "_top_train.png",
                                          "_bottom_train.png", "_top_val.png"};
  const std::set<std::string> keep(current.begin(), current.end());
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (keep.count(name) != 0 || !entry.is_regular_file(ec)) continue;
    for (const char* suffix : kSuffixes) {
      const std::size_t n = std::strlen(suffix);
      if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0) {
        fs::remove(entry.path(), ec);
        break;
      }
    }
  }
}

}  // namespace

std::string html_escape(std::string_view text) {
  return xml_escape(text);
}

std::string report_slug(std::string_view title) {
  std::string slug;
  bool dash = false;
  for (char ch : title) {
    const auto u = static_cast<unsigned char>(ch);
    if ((u >= 'a' && u <= 'z') || (u >= '0' && u <= '9')) {
      if (dash && !slug.empty()) slug += '-';
      dash = false;
      slug += ch;
    } else if (u >= 'A' && u <= 'Z') {
      if (dash && !slug.empty()) slug += '-';
      dash = false;
      slug += static_cast<char>(u - 'A' + 'a');
    } else {
      dash = true;
    }
    if (slug.size() >= 48) break;
  }
  if (slug.size() > 48) slug.resize(48);
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "comparison" : slug;
}

void write_html_report(OutputDirectory& out, const ReportInput& input, Progress* progress) {
  check_input(input);
  ReportWriter(out, input, progress).write();
}

std::string write_html_report(const std::string& dir, const ReportInput& input,
                              Progress* progress) {
  check_input(input);  // before creating anything
  OutputDirectory out(dir);
  ReportWriter writer(out, input, progress);
  writer.write();
  out.commit();
  remove_stale_figures(out.dir(), writer.files());
  return out.dir() + "/index.html";
}

}  // namespace modeldiff::core
