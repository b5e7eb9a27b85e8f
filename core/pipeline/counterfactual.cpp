#include "core/pipeline/counterfactual.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/base/error.h"
#include "core/base/output_directory.h"
#include "core/base/statistics.h"
#include "core/report/line_plot.h"
#include "core/trak/torch_model.h"

namespace modeldiff::core {
namespace {

struct Evaluation {
  std::vector<double> p;        // P(target class) per image
  std::vector<double> margin;   // correct-class margin per image
  std::vector<bool> is_target;  // prediction == target class
};

Evaluation evaluate(const NdArray& logits, const std::vector<std::int64_t>& labels,
                    std::int64_t target, const std::string& model) {
  const std::int64_t n = logits.dim(0), k = logits.dim(1);
  if (target < 0 || target >= k)
    throw InputError(model, "the target class is not one of the model's outputs")
        .expected("0 to " + std::to_string(k - 1))
        .found(std::to_string(target));
  Evaluation e;
  const float* l = logits.data_as<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = l + i * k;
    const double mx = *std::max_element(row, row + k);
    double z = 0;
    for (std::int64_t j = 0; j < k; ++j) z += std::exp(row[j] - mx);
    e.p.push_back(std::exp(row[target] - mx) / z);
    const std::int64_t y = labels[static_cast<std::size_t>(i)];
    double others = 0;
    for (std::int64_t j = 0; j < k; ++j)
      if (j != y) others += std::exp(row[j] - mx);
    e.margin.push_back(y < k ? row[y] - mx - std::log(others) : 0.0);
    e.is_target.push_back(std::max_element(row, row + k) - row == target);
  }
  return e;
}

}  // namespace

Interval bootstrap_interval(const std::vector<double>& values, const std::vector<double>& other,
                            std::uint64_t seed, int resamples) {
  Interval out;
  if (values.empty()) {  // nothing measured
    out.mean = out.low = out.high = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  out.mean = mean(values) - (other.empty() ? 0.0 : mean(other));
  std::mt19937_64 rng(seed);
  const auto draw = [&](const std::vector<double>& v) {
    double s = 0;
    for (std::size_t i = 0; i < v.size(); ++i) s += v[rng() % v.size()];
    return s / static_cast<double>(v.size());
  };
  std::vector<double> means(static_cast<std::size_t>(resamples));
  for (auto& m : means) m = draw(values) - (other.empty() ? 0.0 : draw(other));
  std::sort(means.begin(), means.end());
  const auto at = [&](double q) {
    const double pos = q * static_cast<double>(means.size() - 1);
    const auto i = static_cast<std::size_t>(pos);
    const double f = pos - static_cast<double>(i);
    return i + 1 < means.size() ? means[i] * (1 - f) + means[i + 1] * f : means[i];
  };
  out.low = at(0.025);
  out.high = at(0.975);
  return out;
}

CounterfactualResult run_counterfactual(const ModelSet& a, const ModelSet& b,
                                        const ImageDataset& images, const Preprocessing& prep,
                                        const Transform& transform,
                                        const std::vector<double>& strengths,
                                        std::int64_t target_class, std::uint64_t seed,
                                        Progress& progress) {
  if (images.size() == 0)
    throw InputError(images.source, "no images to transform")
        .expected("at least one image in the chosen subset");
  for (const ModelSet* m : {&a, &b})
    if (m->checkpoints.empty())
      throw InputError(m->architecture, "no checkpoints").key(m->label).expected("at least one");
  std::vector<double> levels = strengths;
  if (levels.empty()) levels.push_back(strength_of(transform));
  // The transformed image sets, as each algorithm sees them (its view applied last).
  std::vector<Transform> views(2);
  const ModelSet* sets[2] = {&a, &b};
  for (int s = 0; s < 2; ++s)
    if (!sets[s]->view.empty()) views[s] = parse_transform(sets[s]->view);
  const auto model_input = [&](const ImageDataset& d, int s) {
    const ImageDataset seen = views[s].steps.empty() ? d : apply_transform(d, views[s]);
    return preprocess(seen, prep, 0, seen.size());
  };
  std::vector<NdArray> original(2);
  std::vector<std::vector<NdArray>> inputs(2);
  for (int s = 0; s < 2; ++s) original[s] = model_input(images, s);
  for (double level : levels) {
    const ImageDataset t = apply_transform(images, with_strength(transform, level));
    for (int s = 0; s < 2; ++s) inputs[s].push_back(model_input(t, s));
  }
  CounterfactualResult result;
  result.target_class = target_class;
  result.transform = transform.text;
  // per algorithm, per strength: per-checkpoint delta_p, delta_margin, flip fraction
  std::vector<std::vector<std::vector<double>>> dp(2), dm(2), flips(2), shares(2);
  const std::size_t total = a.checkpoints.size() + b.checkpoints.size();
  std::size_t done = 0;
  for (int s = 0; s < 2; ++s) {
    dp[s].resize(levels.size());
    dm[s].resize(levels.size());
    flips[s].resize(levels.size());
    shares[s].resize(levels.size());
    for (const std::string& ckpt : sets[s]->checkpoints) {
      progress.throw_if_cancelled();
      progress.report(static_cast<double>(done) / static_cast<double>(total),
                      sets[s]->label + ": " + ckpt);
      const TorchModel model = TorchModel::load(sets[s]->architecture, ckpt, sets[s]->device);
      const Evaluation before =
          evaluate(model.logits(original[s]), images.labels, target_class, ckpt);
      for (std::size_t l = 0; l < levels.size(); ++l) {
        const Evaluation after =
            evaluate(model.logits(inputs[s][l]), images.labels, target_class, ckpt);
        double sp = 0, sm = 0, sf = 0, ss = 0;
        for (std::size_t i = 0; i < before.p.size(); ++i) {
          sp += after.p[i] - before.p[i];
          sm += after.margin[i] - before.margin[i];
          sf += (!before.is_target[i] && after.is_target[i]) ? 1 : 0;
          ss += (after.is_target[i] ? 1 : 0) - (before.is_target[i] ? 1 : 0);
        }
        const double n = static_cast<double>(before.p.size());
        dp[s][l].push_back(sp / n);
        dm[s][l].push_back(sm / n);
        flips[s][l].push_back(sf / n);
        shares[s][l].push_back(ss / n);
      }
      ++done;
    }
  }
  for (std::size_t l = 0; l < levels.size(); ++l) {
    for (int s = 0; s < 2; ++s) {
      EffectRow r;
      r.algorithm = s == 0 ? "A" : "B";
      r.label = sets[s]->label;
      r.strength = levels[l];
      const Interval iv = bootstrap_interval(dp[s][l], {}, seed + 2 * l + s);
      r.mean_delta_p = iv.mean;
      r.ci_low = iv.low;
      r.ci_high = iv.high;
      r.mean_delta_margin = mean(dm[s][l]);
      r.flip_fraction = mean(flips[s][l]);
      r.mean_share_change = mean(shares[s][l]);
      r.n_images = images.size();
      r.n_checkpoints = static_cast<int>(sets[s]->checkpoints.size());
      r.per_checkpoint_delta_p = dp[s][l];
      result.rows.push_back(r);
    }
    EffectRow d;
    d.algorithm = "A-B";
    d.label = a.label + " minus " + b.label;
    d.strength = levels[l];
    const Interval iv = bootstrap_interval(dp[0][l], dp[1][l], seed + 1000 + l);
    d.mean_delta_p = iv.mean;
    d.ci_low = iv.low;
    d.ci_high = iv.high;
    d.mean_delta_margin = mean(dm[0][l]) - mean(dm[1][l]);
    d.flip_fraction = mean(flips[0][l]) - mean(flips[1][l]);
    d.mean_share_change = mean(shares[0][l]) - mean(shares[1][l]);
    d.n_images = images.size();
    d.n_checkpoints = static_cast<int>(a.checkpoints.size() + b.checkpoints.size());
    result.rows.push_back(d);
  }
  progress.report(1.0, "done");
  return result;
}

void write_counterfactual(const std::string& dir, const CounterfactualResult& result) {
  std::filesystem::create_directories(dir);
  OutputDirectory out(dir);
  nlohmann::ordered_json j;
  j["target_class"] = result.target_class;
  j["transform"] = result.transform;
  j["results"] = nlohmann::ordered_json::array();
  j["a_minus_b"] = nlohmann::ordered_json::array();
  std::ostringstream csv;
  csv << "algorithm,label,strength,mean_delta_p,ci95_low,ci95_high,mean_delta_margin,"
         "flip_fraction,n_images,n_checkpoints\n";
  for (const EffectRow& r : result.rows) {
    nlohmann::ordered_json row = {
        {"algorithm", r.algorithm},         {"label", r.label},
        {"strength", r.strength},           {"mean_delta_p", r.mean_delta_p},
        {"ci95", {r.ci_low, r.ci_high}},    {"mean_delta_margin", r.mean_delta_margin},
        {"flip_fraction", r.flip_fraction}, {"n_images", r.n_images},
        {"n_checkpoints", r.n_checkpoints}};
    if (!r.per_checkpoint_delta_p.empty()) row["per_checkpoint_delta_p"] = r.per_checkpoint_delta_p;
    (r.algorithm == "A-B" ? j["a_minus_b"] : j["results"]).push_back(row);
    std::string label = r.label;
    std::replace(label.begin(), label.end(), ',', ' ');
    csv << r.algorithm << ',' << label << ',' << r.strength << ',' << r.mean_delta_p << ','
        << r.ci_low << ',' << r.ci_high << ',' << r.mean_delta_margin << ',' << r.flip_fraction
        << ',' << r.n_images << ',' << r.n_checkpoints << '\n';
  }
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"effects.json", j.dump(2)},
                                   {"effects.csv", csv.str()}}) {
    const std::string path = out.staging_path(name);
    std::ofstream f(path, std::ios::binary);
    f << text << (name == "effects.json" ? "\n" : "");
    if (!f) throw InputError(path, "cannot write");
  }
  LinePlot plot;
  plot.title = "Effect of " + result.transform.substr(0, 60);
  plot.x_label = "strength";
  plot.y_label = "change in P(class " + std::to_string(result.target_class) + ")";
  const unsigned char colours[3][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}};
  for (int s = 0; s < 2; ++s) {
    PlotSeries series;
    const char* alg = s == 0 ? "A" : "B";
    series.r = colours[s][0];
    series.g = colours[s][1];
    series.b = colours[s][2];
    for (const EffectRow& r : result.rows)
      if (r.algorithm == alg) {
        series.name = std::string(alg) + ": " + r.label;
        series.x.push_back(r.strength);
        series.y.push_back(r.mean_delta_p);
        series.low.push_back(r.ci_low);
        series.high.push_back(r.ci_high);
      }
    plot.series.push_back(series);
  }
  write_line_plot_png(out.staging_path("effects.png"), plot);
  out.commit();
}

}  // namespace modeldiff::core
