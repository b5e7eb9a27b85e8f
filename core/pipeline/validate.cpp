#include "core/pipeline/validate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <sstream>

#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/base/percent.h"
#include "core/base/statistics.h"
#include "core/diff/model_diff.h"
#include "core/diff/rotation.h"
#include "core/io/npy.h"

namespace modeldiff::core {

namespace {

using Clock = std::chrono::steady_clock;
using ordered_json = nlohmann::ordered_json;

// The same square patch as the demo's: 3 x 3 white, one pixel from the top-left corner.
constexpr const char* kPatch = "patch:x=1,y=1,size=3,value=255";
constexpr const char* kPatchHidden = "patch:x=1,y=1,size=3,value=0";

// One planted case on top of the demo's data and recipe (seeded subsets, B's seeds 1000+).
Project base_project(const std::string& architecture, bool resnet, const std::string& fashion,
                     const std::string& output, bool quick) {
  Project p = demo_project(architecture, fashion, output, quick);
  p.source = "built-in validation case";
  p.train.subset = quick ? 600 : (resnet ? 3000 : 5000);
  p.val.subset = quick ? 200 : 1000;
  for (AlgorithmSpec* a : {&p.a, &p.b}) {
    a->models = quick ? 4 : 6;  // four is the least the significance of directions needs
    a->train.epochs = quick ? 1 : 4;
    a->hide_patch = false;
  }
  p.plant = PlantSpec{};
  p.plant.enabled = true;
  p.plant.train_fraction = 0.3;
  p.plant.val_fraction = 0.1;
  p.trak.proj_dim = quick ? 128 : (resnet ? 1024 : 2048);
  p.components = 5;
  p.class_components = 3;
  p.per_class = true;
  return p;
}

ValidationCase planted_case(const std::string& name, const std::string& feature,
                            const std::string& difference, bool resnet, const Project& p) {
  return ValidationCase{name, feature, difference, resnet ? "ResNet-9" : "CNN", false, p};
}

// Share of planted images among each list of top training examples, for the first lists.
std::vector<double> planted_shares(const std::vector<std::vector<std::int64_t>>& tops,
                                   const std::set<std::int64_t>& planted) {
  std::vector<double> out;
  for (std::size_t d = 0; d < tops.size() && d < kValidationDirections; ++d) {
    std::int64_t hit = 0;
    for (const std::int64_t j : tops[d]) hit += planted.count(j) ? 1 : 0;
    out.push_back(tops[d].empty() ? 0.0 : static_cast<double>(hit) / tops[d].size());
  }
  return out;
}

std::vector<std::vector<std::int64_t>> top_of_rows(const RowMatrixF& directions) {
  std::vector<std::vector<std::int64_t>> tops;
  for (Eigen::Index k = 0; k < directions.rows(); ++k) {
    const Eigen::VectorXf row = directions.row(k).transpose();
    tops.push_back(top_k_indices(row.data(), row.size(), kValidationTopK, true));
  }
  return tops;
}

double best(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
}

// The variant that runs use by default (Project::rotation).
bool is_default_variant(const std::string& variant) {
  return variant == (Project{}.rotation == Rotation::kVarimax ? "varimax" : "residual PCA");
}

std::string shares_text(const std::vector<double>& v) {
  std::string s;
  for (const double x : v) s += (s.empty() ? "" : " / ") + format_percent(x);
  return s.empty() ? "n/a" : s;
}

ordered_json case_json(const CaseResult& r) {
  ordered_json j;
  j["name"] = r.name;
  j["model"] = r.model;
  j["feature"] = r.feature;
  j["difference"] = r.difference;
  j["null"] = r.null;
  j["planted_train"] = r.planted_train;
  j["num_train"] = r.num_train;
  j["chance"] = r.chance;
  for (const VariantShares& v : r.variants)
    j["variants"][v.variant] = {{"all", v.all},
                                {"in_class", v.in_class},
                                {"found", v.found()},
                                {"found_in_class", v.found_in_class()}};
  j["above_floor_a_minus_b"] = r.above_floor_a_minus_b;
  j["above_floor_b_minus_a"] = r.above_floor_b_minus_a;
  j["directions"] = r.directions;
  j["above_floor_all_rows"] = r.above_floor_all;
  j["significance"] = r.significance;
  const auto num = [](double x) { return std::isfinite(x) ? ordered_json(x) : ordered_json(); };
  j["accuracy"] = {num(r.accuracy_a), num(r.accuracy_b)};
  j["shift"] = {num(r.shift_seeing), num(r.shift_hidden)};
  j["seconds"] = r.seconds;
  return j;
}

void write_text(const std::string& path, const std::string& text) {
  write_file_atomically(path, {{text.data(), text.size()}});
}

}  // namespace

bool VariantShares::found() const {
  return best(all) >= kFoundShare;
}

bool VariantShares::found_in_class() const {
  return best(in_class) >= kFoundShare;
}

const std::vector<std::string>& validation_variants() {
  static const std::vector<std::string> v = {"residual PCA", "raw rows", "varimax", "per class"};
  return v;
}

std::vector<ValidationCase> validation_cases(const std::string& cnn, const std::string& resnet,
                                             const std::string& fashion, const std::string& output,
                                             bool quick) {
  const auto dir = [&](const std::string& name) { return output + "/" + name; };
  std::vector<ValidationCase> cases;

  // 1. A patch that B's data pipeline blanks (the demo's known difference, smaller).
  for (const bool use_resnet : {false, true}) {
    const std::string name = use_resnet ? "patch-resnet" : "patch-cnn";
    Project p = base_project(use_resnet ? resnet : cnn, use_resnet, fashion, dir(name), quick);
    p.name = "validation: white patch on shirts (A) vs its region blanked (B)";
    p.plant.target_class = 6;
    p.plant.transform = kPatch;
    p.a.label = "sees the patch";
    p.b.label = "patch blanked";
    p.b.view = kPatchHidden;
    cases.push_back(
        planted_case(name, "3x3 white patch, 30% of Shirt", "B blanks the region", use_resnet, p));
  }
  // Features that B's view of the images removes, each planted in another class.
  struct Removed {
    const char *name, *title, *feature, *difference, *label_a, *label_b;
    std::int64_t target_class;
    const char *transform, *view;
  };
  const Removed removed[] = {
      // 2. A texture: a 6 x 6 black-and-white checkerboard in the bottom-right corner.
      {"texture-cnn", "checkerboard texture on T-shirts (A) vs its region blanked (B)",
       "6x6 checkerboard, 30% of T-shirt/top", "B blanks the region", "sees the texture",
       "texture blanked", 0, "patch:x=20,y=20,size=6,value=0,pattern=checker",
       "patch:x=20,y=20,size=6,value=0"},
      // 3. A global brightness change that B's per-image normalisation undoes.
      {"brightness-cnn", "darkened coats (A) vs per-image contrast stretch (B)",
       "half brightness, 30% of Coat", "B stretches each image to 0..255", "sees brightness",
       "autocontrast", 4, "brightness:delta=-0.5", "autocontrast:alpha=1"},
      // 4. A feature at the border that B's preprocessing (a 2-pixel border crop) removes.
      {"border-cnn", "a bar at the top border of pullovers (A) vs border cropped (B)",
       "8x2 white bar at the top edge, 30% of Pullover",
       "B's preprocessing blanks a 2-pixel border", "full image", "border cropped", 2,
       "patch:x=10,y=0,w=8,h=2,value=255",
       "patch:x=0,y=0,w=28,h=2,value=0;patch:x=0,y=26,w=28,h=2,value=0;"
       "patch:x=0,y=0,w=2,h=28,value=0;patch:x=26,y=0,w=2,h=28,value=0"},
  };
  for (const Removed& r : removed) {
    Project p = base_project(cnn, false, fashion, dir(r.name), quick);
    p.name = std::string("validation: ") + r.title;
    p.plant.target_class = r.target_class;
    p.plant.transform = r.transform;
    p.a.label = r.label_a;
    p.b.label = r.label_b;
    p.b.view = r.view;
    cases.push_back(planted_case(r.name, r.feature, r.difference, false, p));
  }
  // 5. A feature A learns only through augmentation: the patch sits top-left in training and
  // top-right in validation; only flips show A the mirrored position.
  {
    Project p = base_project(resnet, true, fashion, dir("augmentation-resnet"), quick);
    p.name = "validation: patch mirrored at test time, flips (A) vs none (B)";
    p.plant.target_class = 6;
    p.plant.transform = kPatch;
    p.plant.val_transform = "patch:x=24,y=1,size=3,value=255";
    p.a.label = "crop + flip";
    p.b.label = "no augmentation";
    p.a.train.augment = true;
    cases.push_back(planted_case("augmentation-resnet",
                                 "3x3 patch top-left on 30% of Shirt, top-right at test time",
                                 "A trains with crop + flip, B without", true, p));
  }
  // Nulls: the same algorithm twice (B's seeds 1000+), the patch in both algorithms' data.
  for (const bool augment : {false, true}) {
    const std::string name = augment ? "null-cnn-augmented" : "null-cnn";
    Project p = base_project(cnn, false, fashion, dir(name), quick);
    p.name = std::string("validation null: the same CNN recipe") +
             (augment ? " with crop + flip" : "") + " twice, other seeds";
    p.plant.target_class = 6;
    p.plant.transform = kPatch;
    p.a.label = "seeds 0+";
    p.b.label = "seeds 1000+";
    p.a.train.augment = p.b.train.augment = augment;
    ValidationCase c{name,
                     "3x3 patch on 30% of Shirt, seen by both",
                     augment ? "none (both crop + flip)" : "none",
                     "CNN",
                     true,
                     p};
    cases.push_back(c);
  }
  return cases;
}

CaseResult evaluate_case(const ValidationCase& c, const RunOutcome& run, Progress& progress) {
  const Project& p = c.project;
  CaseResult r;
  r.name = c.name;
  r.feature = c.feature;
  r.difference = c.difference;
  r.model = c.model;
  r.null = c.null;
  const ProjectData pd = load_project_data(p);
  const std::set<std::int64_t> planted(pd.planted_train.begin(), pd.planted_train.end());
  r.planted_train = static_cast<std::int64_t>(planted.size());
  r.num_train = pd.train.size();
  r.chance = r.num_train > 0 ? static_cast<double>(r.planted_train) / r.num_train : 0.0;

  const ScoreInput a{p.a.label, run.output + "/scores/A.npy",
                     read_npy(run.output + "/scores/A.npy")};
  const ScoreInput b{p.b.label, run.output + "/scores/B.npy",
                     read_npy(run.output + "/scores/B.npy")};
  std::vector<std::int64_t> class_rows;
  std::map<std::int64_t, std::vector<std::int64_t>> rows_of;
  for (std::size_t i = 0; i < pd.val.labels.size(); ++i)
    rows_of[pd.val.labels[i]].push_back(static_cast<std::int64_t>(i));
  class_rows = rows_of[p.plant.target_class];

  DiffOptions unit;
  unit.components = p.components;
  unit.top_k = kValidationTopK;
  DiffOptions unit_class = unit;
  unit_class.components = p.class_components;
  unit_class.target_rows = class_rows;
  DiffOptions raw = unit, raw_class = unit_class;
  raw.normalize_rows = raw_class.normalize_rows = false;

  NullProgress quiet;
  progress.report(0.0, "residual PCA, unit rows");
  const DiffResult u_all = run_model_diff(a, b, unit, quiet);
  const DiffResult u_cls = run_model_diff(a, b, unit_class, quiet);
  progress.report(0.2, "residual PCA, raw rows");
  const DiffResult r_all = run_model_diff(a, b, raw, quiet);
  const DiffResult r_cls = run_model_diff(a, b, raw_class, quiet);
  VariantShares v_unit{"residual PCA", planted_shares(u_all.a_minus_b.top_train, planted),
                       planted_shares(u_cls.a_minus_b.top_train, planted)};
  VariantShares v_raw{"raw rows", planted_shares(r_all.a_minus_b.top_train, planted),
                      planted_shares(r_cls.a_minus_b.top_train, planted)};
  const auto rotated = [&](const DirectionSet& s) {
    return top_of_rows(varimax(s.directions, s.explained_variance).directions);
  };
  VariantShares v_varimax{"varimax", planted_shares(rotated(u_all.a_minus_b), planted),
                          planted_shares(rotated(u_cls.a_minus_b), planted)};

  // Per class, ranked: every class's directions in one list by explained variance.
  progress.report(0.4, "per-class analyses");
  struct Ranked {
    double variance;
    std::vector<std::int64_t> top;
  };
  std::vector<Ranked> ranked;
  for (const auto& [cls, rows] : rows_of) {
    if (static_cast<int>(rows.size()) <= p.class_components) continue;
    DiffOptions o = unit_class;
    o.target_rows = rows;
    const DiffResult d = run_model_diff(a, b, o, quiet);
    for (Eigen::Index k = 0; k < d.a_minus_b.explained_variance.size(); ++k)
      ranked.push_back(
          {d.a_minus_b.explained_variance(k), d.a_minus_b.top_train[static_cast<std::size_t>(k)]});
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const Ranked& x, const Ranked& y) { return x.variance > y.variance; });
  std::vector<std::vector<std::int64_t>> pooled;
  for (const Ranked& x : ranked) pooled.push_back(x.top);
  VariantShares v_class{"per class", planted_shares(pooled, planted), {}};
  r.variants = {v_unit, v_raw, v_varimax, v_class};

  for (std::size_t i = 0; i < run.comparisons.size(); ++i) {
    const ComparisonOutcome& cmp = run.comparisons[i];
    r.above_floor_a_minus_b += static_cast<int>(cmp.above_floor_a_minus_b.size());
    r.above_floor_b_minus_a += static_cast<int>(cmp.above_floor_b_minus_a.size());
    r.directions += 2 * (i == 0 ? p.components : p.class_components);
  }
  if (!run.comparisons.empty())
    for (const int k : run.comparisons[0].above_floor_a_minus_b) r.above_floor_all.push_back(k + 1);
  r.significance = run.significance;
  r.accuracy_a = mean(run.a.val_accuracy);
  r.accuracy_b = mean(run.b.val_accuracy);
  r.shift_seeing = run.planted.shift_seeing;
  r.shift_hidden = run.planted.shift_hidden;
  progress.report(1.0, "evaluated");
  return r;
}

std::string validation_markdown(const std::vector<CaseResult>& cases, double seconds) {
  std::ostringstream md;
  md << "| case | model | planted feature | how A and B differ | planted (chance) | A−B dirs "
        "1 / 2 / 3 (default method): planted in top-"
     << kValidationTopK
     << ", all rows | the same within the class | A−B above the floor (all rows) | accuracy "
        "A / B |\n|---|---|---|---|---|---|---|---|---|\n";
  const auto default_of = [](const CaseResult& r) -> const VariantShares& {
    for (const VariantShares& v : r.variants)
      if (is_default_variant(v.variant)) return v;
    return r.variants.front();
  };
  for (const CaseResult& r : cases) {
    if (r.null) continue;
    const VariantShares& d = default_of(r);
    std::string floor;
    for (const int k : r.above_floor_all) floor += (floor.empty() ? "" : ", ") + std::to_string(k);
    md << "| " << r.name << " | " << r.model << " | " << r.feature << " | " << r.difference << " | "
       << r.planted_train << " (" << format_percent(r.chance) << ") | " << shares_text(d.all)
       << " | " << shares_text(d.in_class) << " | "
       << (r.significance.empty() ? (floor.empty() ? "none" : floor) : "n/a") << " | "
       << format_percent(r.accuracy_a) << " / " << format_percent(r.accuracy_b) << " |\n";
  }
  md << "\n| null case | model | what both algorithms are | directions above the floor "
        "(all comparisons) | best planted share, A−B dirs 1-3 |\n|---|---|---|---|---|\n";
  for (const CaseResult& r : cases) {
    if (!r.null) continue;
    md << "| " << r.name << " | " << r.model << " | " << r.difference << " | "
       << (r.significance.empty()
               ? std::to_string(r.above_floor_a_minus_b + r.above_floor_b_minus_a) + " of " +
                     std::to_string(r.directions)
               : "n/a: " + r.significance)
       << " | " << format_percent(r.variants.empty() ? 0.0 : best(default_of(r).all)) << " |\n";
  }
  int planted_cases = 0;
  for (const CaseResult& r : cases) planted_cases += r.null ? 0 : 1;
  md << "\n| variant | found over all rows | found within the class | mean best share, all "
        "rows | mean best share, within the class |\n|---|---|---|---|---|\n";
  for (std::size_t v = 0; v < validation_variants().size(); ++v) {
    int found = 0, found_class = 0;
    std::vector<double> all, in_class;
    for (const CaseResult& r : cases) {
      if (r.null || v >= r.variants.size()) continue;
      found += r.variants[v].found() ? 1 : 0;
      found_class += r.variants[v].found_in_class() ? 1 : 0;
      all.push_back(best(r.variants[v].all));
      if (!r.variants[v].in_class.empty()) in_class.push_back(best(r.variants[v].in_class));
    }
    const bool per_class = in_class.empty();
    md << "| " << validation_variants()[v]
       << (is_default_variant(validation_variants()[v]) ? " (default)" : "") << " | " << found
       << " of " << planted_cases << " | "
       << (per_class ? "(the per-class analyses)"
                     : std::to_string(found_class) + " of " + std::to_string(planted_cases))
       << " | " << format_percent(mean(all)) << " | "
       << (per_class ? "(the per-class analyses)" : format_percent(mean(in_class))) << " |\n";
  }
  md << "\nFound: one of A minus B's first " << kValidationDirections << " directions has at least "
     << format_percent(kFoundShare, 0) << " planted images among its top " << kValidationTopK
     << " training examples.\n";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f", seconds);
  md << "\n" << cases.size() << " cases in " << buf << " s.\n";
  return md.str();
}

ValidationOutcome run_validation(const std::vector<ValidationCase>& cases,
                                 const std::string& output, Progress& progress,
                                 const std::function<void(const std::string&)>& log) {
  if (cases.empty()) throw InputError(output, "no validation cases to run");
  const auto t0 = Clock::now();
  std::filesystem::create_directories(output);
  ValidationOutcome out;
  out.json_path = output + "/validation.json";
  out.markdown_path = output + "/validation.md";
  const double n = static_cast<double>(cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const ValidationCase& c = cases[i];
    const auto c0 = Clock::now();
    if (log)
      log("case " + std::to_string(i + 1) + " of " + std::to_string(cases.size()) + ": " + c.name);
    SubProgress run_part(progress, i / n, (i + 0.9) / n, c.name);
    const RunOutcome run = run_project(c.project, run_part, log);
    SubProgress eval_part(progress, (i + 0.9) / n, (i + 1) / n, c.name);
    CaseResult r = evaluate_case(c, run, eval_part);
    r.seconds = std::chrono::duration<double>(Clock::now() - c0).count();
    if (log)
      log(c.name + ": A minus B directions 1-3 (residual PCA), planted in the top-" +
          std::to_string(kValidationTopK) + ": " + shares_text(r.variants.front().all) +
          " (chance " + format_percent(r.chance) + ")");
    out.cases.push_back(std::move(r));
    out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    ordered_json j;
    j["seconds"] = out.seconds;
    j["top_k"] = kValidationTopK;
    j["found_share"] = kFoundShare;
    j["variants"] = validation_variants();
    for (const CaseResult& done : out.cases) j["cases"].push_back(case_json(done));
    out.markdown = validation_markdown(out.cases, out.seconds);
    write_text(out.json_path, j.dump(2) + "\n");
    write_text(out.markdown_path, out.markdown);
  }
  return out;
}

}  // namespace modeldiff::core
