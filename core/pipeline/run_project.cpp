#include "core/pipeline/run_project.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "core/attribution/score_quality.h"
#include "core/base/blas_check.h"
#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/base/output_directory.h"
#include "core/base/percent.h"
#include "core/base/sha256.h"
#include "core/base/statistics.h"
#include "core/base/threads.h"
#include "core/data/image_dataset.h"
#include "core/data/planted_feature.h"
#include "core/data/preprocessing.h"
#include "core/data/transform.h"
#include "core/diff/diff_output.h"
#include "core/diff/model_diff.h"
#include "core/diff/significance.h"
#include "core/io/array_file.h"
#include "core/io/npy.h"
#include "core/pipeline/counterfactual.h"
#include "core/report/html_report.h"
#include "core/trak/builtin_architecture.h"
#include "core/trak/torch_model.h"
#include "core/trak/trainer.h"
#include "core/trak/trak.h"

namespace modeldiff::core {
namespace {

using nlohmann::ordered_json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void write_text(OutputDirectory& out, const std::string& name, const std::string& text) {
  const std::string path = out.staging_path(name);
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) throw InputError(path, "cannot write");
}

// The content of a dataset as the models see it: every pixel and every label, so that a file
// rewritten in place, another subset or another planted patch all give another hash.
std::string content_sha256(const ImageDataset& d) {
  return sha256_bytes(shape_to_string(d.images.shape()) + "|" +
                      sha256_data(d.images.data(), d.images.nbytes()) + "|" +
                      sha256_data(d.labels.data(), d.labels.size() * sizeof(std::int64_t)));
}

// What decides the models an algorithm's recipe trains, by content (the architecture file's
// and the training data's hashes, never their paths): a run must not reuse models trained on
// other data. "sources" says where the data came from; it is not compared.
ordered_json recipe_of(const Project& p, const AlgorithmSpec& a, const std::string& arch_sha,
                       const ImageDataset& train_view) {
  ordered_json r;
  r["architecture_sha256"] = arch_sha;
  r["train_data_sha256"] = content_sha256(train_view);
  r["train_examples"] = train_view.size();
  r["preprocessing"] = describe(p.preprocessing);
  r["recipe"] = describe(a.train);
  // The checkpoint fine-tuned from, by content: another init (or pre-training) retrains.
  if (!a.train.init.empty()) r["init_sha256"] = sha256_path(a.train.init);
  r["hide_patch"] = a.hide_patch;
  // Only when set, so that the recipes of runs without them stay as they were.
  if (!a.view.empty()) r["view"] = a.view;
  if (p.plant.enabled && p.plant.is_transform())
    r["planted_feature"] = {{"class", p.plant.target_class},
                            {"fraction", p.plant.train_fraction},
                            {"transform", p.plant.transform},
                            {"seed", p.plant.seed}};
  else if (p.plant.enabled)
    r["planted_patch"] = {{"class", p.plant.target_class}, {"fraction", p.plant.train_fraction},
                          {"size", p.plant.patch.size},    {"x", p.plant.patch.x},
                          {"y", p.plant.patch.y},          {"value", p.plant.patch.value},
                          {"seed", p.plant.seed}};
  r["sources"] = {{"architecture", a.architecture},
                  {"train_images", p.train.images},
                  {"train_labels", p.train.labels},
                  {"subset", p.train.subset},
                  {"subset_seed", p.train.subset_seed}};
  if (!a.train.init.empty()) r["sources"]["init"] = a.train.init;
  return r;
}

// The compared keys whose values differ between an earlier recipe and this one ("" when
// none): why models are retrained.
std::string recipe_changes(const ordered_json& before, const ordered_json& now) {
  std::string changed;
  for (const auto& [key, value] : now.items()) {
    if (key == "sources" || (before.contains(key) && before[key] == value)) continue;
    changed += (changed.empty() ? "" : ", ") + key;
  }
  for (const auto& [key, value] : before.items())
    if (key != "sources" && !now.contains(key)) changed += (changed.empty() ? "" : ", ") + key;
  return changed;
}

struct View {
  ImageDataset train, val;
};

// Makes `dir` ready for the models of `recipe`: models of another recipe (or other data) are set
// aside in <dir>.previous (not deleted); the recipe is written. Returns why the models are
// trained, kept or replaced, for the log ("" for a new folder).
std::string prepare_model_folder(const std::string& dir, const ordered_json& recipe) {
  fs::create_directories(dir);
  const std::string recipe_path = dir + "/recipe.json";
  std::string why;  // for the log: why the models are trained, kept or replaced
  if (fs::exists(recipe_path)) {
    ordered_json before;
    try {
      before = ordered_json::parse(read_text_file(recipe_path));
    } catch (const ordered_json::exception&) {
      before = ordered_json::object();
    }
    const std::string changes = recipe_changes(before, recipe);
    if (!changes.empty()) {
      // The models there were trained on other data or with another recipe: set aside (not
      // deleted) and trained anew.
      const std::string aside = dir + ".previous";
      fs::remove_all(aside);
      fs::rename(dir, aside);
      fs::create_directories(dir);
      why = "retrained: " + changes + " changed since " + recipe_path +
            " (the earlier models are in " + aside + ")";
    } else {
      why = "same architecture, training data (sha256 " +
            recipe["train_data_sha256"].get<std::string>().substr(0, 12) + ") and recipe";
    }
  }
  {
    OutputDirectory rd(dir);
    write_text(rd, "recipe.json", recipe.dump(2) + "\n");
    rd.commit();
  }
  return why;
}

// "38.8%"; "not measured" for NaN (e.g. the accuracy of an algorithm given by its scores).
std::string percent(double v) {
  return format_percent(v, 1, "not measured");
}

ordered_json number(double v) {
  return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr);
}

// A precomputed score matrix as the run uses it: T x N float32 over the project's datasets
// (transposed when only N x T fits), every entry finite.
NdArray load_precomputed_scores(const AlgorithmSpec& spec, std::int64_t num_val,
                                std::int64_t num_train) {
  ScoreShapeHint hint;
  hint.num_targets = num_val;
  hint.num_train = num_train;
  hint.source = "the project's datasets: " + std::to_string(num_val) + " validation and " +
                std::to_string(num_train) + " training examples";
  NdArray m = load_score_matrix(spec.scores, spec.scores_key, Transpose::kAuto, hint);
  require_finite_scores(m, spec.scores, spec.scores_key);
  return m;
}

// Why the run has no significance of its directions ("" when it can): each algorithm needs
// checkpoints to split (significance.h), and the halves' out-to-loss weights are not known.
std::string run_significance_absence(const Project& p, const AlgorithmOutcome& a,
                                     const AlgorithmOutcome& b) {
  const AlgorithmSpec* specs[2] = {&p.a, &p.b};
  const AlgorithmOutcome* outcomes[2] = {&a, &b};
  for (int i = 0; i < 2; ++i) {
    if (specs[i]->precomputed())
      return "not computed: " + specs[i]->label +
             " is given by precomputed scores, which have no checkpoints to split into halves";
    const std::string why =
        significance_absence(specs[i]->label, static_cast<int>(outcomes[i]->checkpoints.size()));
    if (!why.empty()) return why;
  }
  return "";
}

}  // namespace

RunOutcome run_project(const Project& project_in, Progress& progress,
                       const std::function<void(const std::string&)>& log) {
  Project project = project_in;  // with built-in architectures written out (below)
  // Every path the run records (run.json, the report) is absolute: a run made with `-o out/x`
  // opens in the GUI, or is read by a script, from any working folder.
  if (!project.output.empty()) {
    fs::path output = fs::absolute(project.output).lexically_normal();
    if (!output.has_filename() && output.has_parent_path()) output = output.parent_path();
    project.output = output.string();
  }
  const auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  const auto start = Clock::now();
  set_compute_threads(project.threads);
  set_torch_threads(project.threads);
  RunOutcome out;
  out.output = project.output;
  fs::create_directories(project.output);
  { OutputDirectory check(project.output); }  // fails early on an unwritable location

  const bool training = project.a.trains() || project.b.trains();
  const int attributed = (project.a.precomputed() ? 0 : 1) + (project.b.precomputed() ? 0 : 1);
  // Fractions of the progress bar per step: training, then TRAK per attributed algorithm, take
  // most of it; loading a precomputed matrix is quick, and with no TRAK at all ModelDiff and the
  // report are the work.
  const double w_train = training ? 0.45 : 0.0;
  const double w_load = attributed == 2 ? 0.0 : attributed == 1 ? 0.05 : 0.2;  // per matrix
  const double w_trak =
      attributed == 0 ? 0.0 : (0.9 - w_train - w_load * (2 - attributed)) / attributed;
  const double w_diff = attributed == 0 ? 0.4 : 0.04;
  double at = 0.02;

  const BlasInfo blas = probe_blas();
  out.blas = describe(blas);
  say(out.blas);

  // 1. Data.
  progress.report(0.0, "loading data");
  ProjectData pd = load_project_data(project);
  ImageDataset& train = pd.train;
  ImageDataset& val = pd.val;
  out.num_train = train.size();
  out.num_val = val.size();
  const std::vector<std::int64_t>& planted_train = pd.planted_train;
  const std::vector<std::int64_t>& planted_val = pd.planted_val;
  say("data: " + std::to_string(out.num_train) + " training and " + std::to_string(out.num_val) +
      " validation images (" + train.source + ", " + val.source + ")" +
      (project.plant.enabled
           ? std::string(project.plant.is_transform() ? ", " + project.plant.transform
                                                      : std::string(", patch")) +
                 " planted in " + std::to_string(planted_train.size()) +
                 " training images of class " + train.class_name(project.plant.target_class) +
                 " and " + std::to_string(planted_val.size()) + " validation images"
           : ""));
  // The validation images as the models are evaluated on them (sampled, planted, before any
  // algorithm's view), so that `modeldiff counterfactual --images` repeats a run's experiments.
  {
    fs::create_directories(project.output + "/data");
    OutputDirectory dd(project.output + "/data");
    write_npy(dd.staging_path("val_images.npy"), val.images);
    NdArray labels = NdArray::allocate(DType::kInt64, {val.size()});
    std::copy(val.labels.begin(), val.labels.end(), labels.mutable_data_as<std::int64_t>());
    write_npy(dd.staging_path("val_labels.npy"), labels);
    dd.commit();
  }
  // Built-in architectures become TorchScript files in the run folder, shaped by the data.
  for (AlgorithmSpec* spec : {&project.a, &project.b}) {
    if (!is_builtin_architecture(spec->architecture)) continue;
    std::int64_t classes = static_cast<std::int64_t>(project.class_names.size());
    for (const std::int64_t label : train.labels) classes = std::max(classes, label + 1);
    for (const std::int64_t label : val.labels) classes = std::max(classes, label + 1);
    const BuiltinArchitecture arch =
        with_data_defaults(parse_builtin_architecture(spec->architecture),
                           static_cast<int>(train.channels()), static_cast<int>(classes));
    spec->architecture = write_builtin_architecture(arch, project.output + "/models");
    say("architecture of " + spec->label + ": " + describe(arch) + " (" + spec->architecture + ")");
  }
  const auto view_of = [&](const AlgorithmSpec& a) {
    View v{train, val};
    if (a.hide_patch) {
      hide_patch_region(v.train, project.plant.patch);
      hide_patch_region(v.val, project.plant.patch);
    }
    if (!a.view.empty()) {
      const Transform t = parse_transform(a.view);
      v.train = apply_transform(v.train, t);
      v.val = apply_transform(v.val, t);
    }
    return v;
  };
  // Each algorithm's view of the data, made once: training and TRAK use the same images.
  const View views[2] = {view_of(project.a), view_of(project.b)};

  // Models TRAK cannot follow are refused now, not after their training.
  for (const AlgorithmSpec* spec : {&project.a, &project.b}) {
    if (spec->precomputed()) continue;
    progress.report(at, "checking the model of " + spec->label);
    check_attributable(spec->architecture,
                       spec->trains() || spec->checkpoints.empty() ? "" : spec->checkpoints.front(),
                       project.trak);
  }

  // 2. Models: train the algorithms that have a recipe.
  const std::string models_dir = project.output + "/models";
  const std::string letters[2] = {"A", "B"};
  const AlgorithmSpec* specs[2] = {&project.a, &project.b};
  AlgorithmOutcome* outcomes[2] = {&out.a, &out.b};
  const int trainers = (project.a.trains() ? 1 : 0) + (project.b.trains() ? 1 : 0);
  for (int i = 0; i < 2; ++i) {
    const AlgorithmSpec& spec = *specs[i];
    AlgorithmOutcome& o = *outcomes[i];
    o.label = spec.label;
    if (!spec.trains()) {
      o.checkpoints = spec.checkpoints;
      continue;
    }
    const auto t0 = Clock::now();
    const std::string dir = models_dir + "/" + letters[i];
    fs::create_directories(dir);
    const View& v = views[i];
    double train_at = at;  // where this algorithm's share of the progress bar begins
    if (spec.pretrain.enabled) {
      // One model pre-trained on its own data, kept by content like the others; the
      // algorithm's models start from it.
      AlgorithmSpec pre = spec;
      pre.train = spec.pretrain.train;
      pre.train.init.clear();
      ImageDataset pre_data = load_dataset_spec(spec.pretrain.data, "pre-training");
      if (spec.hide_patch) hide_patch_region(pre_data, project.plant.patch);
      if (!spec.view.empty()) pre_data = apply_transform(pre_data, parse_transform(spec.view));
      const std::string pre_dir = models_dir + "/" + letters[i] + "-pretrain";
      const std::string pre_why = prepare_model_folder(
          pre_dir, recipe_of(project, pre, sha256_path(spec.architecture), pre_data));
      TrainSettings pts = pre.train;
      pts.threads = project.threads;
      SubProgress sub(progress, at, at + 0.3 * w_train / trainers, "pre-training " + spec.label);
      const auto pre_results = train_ensemble(spec.architecture, pre_data, &v.val,
                                              project.preprocessing, pts, 1, pre_dir, "model", sub);
      train_at = at + 0.3 * w_train / trainers;
      (i == 0 ? project.a : project.b).train.init = ensemble_checkpoint_path(pre_dir, "model", 0);
      std::ostringstream line;
      line.precision(3);
      line << "pre-trained " << spec.label << " on " << pre_data.size() << " images ("
           << pre_data.source
           << "): " << (pre_results.front().reused ? "kept from an earlier run" : "trained")
           << ", validation accuracy " << percent(pre_results.front().val_accuracy) << ", "
           << describe(pts) << (pre_why.empty() ? "" : "; " + pre_why);
      say(line.str());
    }
    const ordered_json recipe = recipe_of(project, spec, sha256_path(spec.architecture), v.train);
    const std::string why = prepare_model_folder(dir, recipe);
    TrainSettings ts = spec.train;
    ts.threads = project.threads;
    SubProgress sub(progress, train_at, at + w_train / trainers, "training " + spec.label);
    const auto results = train_ensemble(spec.architecture, v.train, &v.val, project.preprocessing,
                                        ts, spec.models, dir, "model", sub);
    at += w_train / trainers;
    for (int m = 0; m < spec.models; ++m) {
      o.checkpoints.push_back(ensemble_checkpoint_path(dir, "model", m));
      (results[static_cast<std::size_t>(m)].reused ? o.reused : o.trained) += 1;
    }
    o.train_seconds = since(t0);
    std::ostringstream line;
    line << "trained " << spec.label << ": " << o.trained << " models (" << o.reused
         << " kept from an earlier run) in " << static_cast<int>(o.train_seconds) << " s, "
         << describe(ts) << (why.empty() ? "" : "; " + why);
    say(line.str());
  }

  // 3. TRAK scores of both algorithms over all validation examples (or the precomputed ones).
  fs::create_directories(project.output + "/scores");
  NdArray scores[2];
  // Half ensembles for the significance of every direction (significance.h): three splits.
  const std::string no_significance = run_significance_absence(project, out.a, out.b);
  std::vector<HalfSplit> splits(3);
  for (int i = 0; i < 2; ++i) {
    const AlgorithmSpec& spec = *specs[i];
    AlgorithmOutcome& o = *outcomes[i];
    const auto t0 = Clock::now();
    const View& v = views[i];
    o.scores = project.output + "/scores/" + letters[i] + ".npy";
    if (spec.precomputed()) {
      progress.report(at, "loading the scores of " + spec.label);
      scores[i] = load_precomputed_scores(spec, val.size(), train.size());
      at += w_load;
    } else {
      TrakData data;
      data.train_inputs = preprocess(v.train, project.preprocessing, 0, v.train.size());
      data.train_labels = v.train.labels;
      data.target_inputs = preprocess(v.val, project.preprocessing, 0, v.val.size());
      data.target_labels = v.val.labels;
      TrakReport report;
      const Algorithm algorithm{spec.label, spec.architecture, o.checkpoints};
      TrakBlockSums blocks;
      if (no_significance.empty()) {
        const std::array<int, 5> cuts = block_cuts(static_cast<int>(o.checkpoints.size()));
        blocks.cuts.assign(cuts.begin(), cuts.end());
      }
      SubProgress sub(progress, at, at + w_trak, "TRAK " + spec.label);
      scores[i] = trak_scores(algorithm, data, project.trak, project.output + "/cache", sub,
                              &report, no_significance.empty() ? &blocks : nullptr);
      if (no_significance.empty()) {
        const auto t_half = Clock::now();
        const BlockHalves bh = trak_half_ensembles(blocks, project.trak.out_to_loss);
        for (int sp = 0; sp < 3; ++sp) {
          HalfSplit& hs = splits[static_cast<std::size_t>(sp)];
          for (int h = 0; h < 2; ++h) {
            (i == 0 ? hs.a : hs.b)[h] = bh.halves[sp][h];
            (i == 0 ? hs.checkpoints_a : hs.checkpoints_b)[h] = bh.sizes[sp][h];
            (i == 0 ? hs.source_a : hs.source_b)[h] = spec.label + " half " +
                                                      std::to_string(h + 1) + " of split " +
                                                      std::to_string(sp + 1);
          }
        }
        out.significance_seconds += since(t_half);
      }
      at += w_trak;
      for (const auto& c : report.checkpoints) {
        o.val_accuracy.push_back(c.target_accuracy);
        o.cached += c.from_cache ? 1 : 0;
        o.kernel_dropped += c.kernel_dropped;
      }
      o.trak_seconds = since(t0);
      o.attributed = report.attributed;
    }
    // Either way: the run's copy of the scores and how well they rank by label.
    write_npy(o.scores, scores[i]);
    o.same_label_rate = same_label_rate(scores[i], v.train.labels, v.val.labels, kSameLabelTopK);
    const std::string same_label = "top-" + std::to_string(kSameLabelTopK) + " same-label rate ";
    std::ostringstream line;
    line.precision(3);
    if (spec.precomputed()) {
      line << "scores " << spec.label << ": loaded " << spec.scores
           << (spec.scores_key.empty() ? "" : " [" + spec.scores_key + "]") << " ("
           << scores[i].dim(0) << " x " << scores[i].dim(1) << "); " << same_label
           << percent(o.same_label_rate);
    } else {
      line << "TRAK " << spec.label << ": " << o.checkpoints.size() << " checkpoints (" << o.cached
           << " from the cache) in " << static_cast<int>(o.trak_seconds)
           << " s; mean validation accuracy " << percent(mean(o.val_accuracy)) << "; " << same_label
           << percent(o.same_label_rate);
      if (!o.attributed.empty()) line << "; " << o.attributed;
      if (o.kernel_dropped > 0)
        line << "; " << o.kernel_dropped
             << " kernel directions without training signal left out (pseudo-inverse)";
    }
    say(line.str());
  }

  // 4. ModelDiff both ways: all validation examples, then each class.
  progress.report(at, "ModelDiff");
  const ScoreInput in_a{project.a.label, out.a.scores, scores[0]};
  const ScoreInput in_b{project.b.label, out.b.scores, scores[1]};
  struct Comparison {
    std::string title;
    DiffOptions options;
    DiffResult result;
    std::int64_t cls = -1;
  };
  std::vector<Comparison> comparisons;
  {
    Comparison all;
    all.title = "all validation examples";
    all.options.components = project.components;
    comparisons.push_back(std::move(all));
  }
  if (project.per_class) {
    std::set<std::int64_t> classes(val.labels.begin(), val.labels.end());
    for (std::int64_t c : classes) {
      Comparison cmp;
      cmp.cls = c;
      cmp.title = "class " + std::to_string(c) +
                  (val.class_names.empty() ? "" : " (" + val.class_name(c) + ")");
      for (std::int64_t r = 0; r < val.size(); ++r)
        if (val.labels[static_cast<std::size_t>(r)] == c) cmp.options.target_rows.push_back(r);
      const auto rows = static_cast<int>(cmp.options.target_rows.size());
      if (rows < 3) continue;  // too few examples of this class for a PCA
      cmp.options.components = std::min(project.class_components, rows - 1);
      comparisons.push_back(std::move(cmp));
    }
  }
  fs::create_directories(project.output + "/diff");
  for (std::size_t c = 0; c < comparisons.size(); ++c) {
    Comparison& cmp = comparisons[c];
    cmp.options.normalize_rows = project.normalize_rows;
    cmp.options.rotation = project.rotation;
    cmp.options.top_k = project.top_k;
    const double from = at + w_diff * c / comparisons.size();
    const double to = at + w_diff * (c + 1) / comparisons.size();
    const double mid = no_significance.empty() ? (from + to) / 2 : to;
    SubProgress sub(progress, from, mid, "ModelDiff " + cmp.title);
    cmp.result = run_model_diff(in_a, in_b, cmp.options, sub);
    if (no_significance.empty()) {
      const auto t_sig = Clock::now();
      SubProgress sig(progress, mid, to, "significance " + cmp.title);
      cmp.result.significance = compute_significance(cmp.result, splits, cmp.options, sig);
      out.significance_seconds += since(t_sig);
    } else {
      cmp.result.significance.reason = no_significance;
    }
    const std::string slug = cmp.cls < 0 ? "all" : report_slug(cmp.title);
    OutputDirectory dir(project.output + "/diff/" + slug);
    DiffProvenance prov;
    for (int i = 0; i < 2; ++i) {
      InputProvenance& ip = i == 0 ? prov.a : prov.b;
      ip.path = outcomes[i]->scores;
      ip.sha256 = sha256_path(ip.path);
      ip.format = "npy";
      ip.file_shape = scores[i].shape();
    }
    prov.target_selection = cmp.cls < 0 ? "all targets" : "validation examples of " + cmp.title;
    prov.command_line = "modeldiff run " + project.source;
    write_diff_output(dir, cmp.result, cmp.options, prov);
    dir.commit();
    ComparisonOutcome co;
    co.title = cmp.title;
    co.folder = "diff/" + slug;
    co.targets = static_cast<std::int64_t>(cmp.result.target_rows.size());
    const Significance& sg = cmp.result.significance;
    if (sg.computed)
      for (int k = 0; k < 2; ++k) {
        const std::vector<bool>& above =
            k == 0 ? sg.a_minus_b.above_floor : sg.b_minus_a.above_floor;
        for (std::size_t d = 0; d < above.size(); ++d)
          if (above[d])
            (k == 0 ? co.above_floor_a_minus_b : co.above_floor_b_minus_a)
                .push_back(static_cast<int>(d));
      }
    out.comparisons.push_back(std::move(co));
  }
  at += w_diff;
  say("ModelDiff: " + std::to_string(comparisons.size()) +
      " comparisons (all validation examples and each class), both directions");
  out.significance = no_significance;
  {
    std::ostringstream line;
    line << "directions over all validation examples:\n"
         << format_direction_table(comparisons[0].result);
    if (no_significance.empty())
      line << "significance (half ensembles, " << static_cast<int>(out.significance_seconds)
           << " s): " << kSignificanceRule;
    say(line.str());
  }

  // The models of both algorithms as `modeldiff counterfactual` takes them: an algorithm that
  // hides the patch sees every image through its blanked region, then through its own view.
  // run_counterfactual compares two model sets; when one algorithm has no models (precomputed
  // scores), the other stands in for it and only the tested algorithm's numbers are kept.
  const PlantedPatch& pp = project.plant.patch;
  const std::string patch_region = "patch:x=" + std::to_string(pp.x) +
                                   ",y=" + std::to_string(pp.y) +
                                   ",size=" + std::to_string(pp.size) + ",value=";
  const bool has_models[2] = {!outcomes[0]->checkpoints.empty(), !outcomes[1]->checkpoints.empty()};
  const auto model_sets = [&] {
    std::vector<ModelSet> sets(2);
    for (int i = 0; i < 2; ++i) {
      const AlgorithmSpec& spec = *specs[i];
      std::string view = spec.hide_patch ? patch_region + "0" : "";
      if (!spec.view.empty()) view += (view.empty() ? "" : ";") + spec.view;
      sets[i] = ModelSet{spec.label, spec.architecture, outcomes[i]->checkpoints, spec.train.device,
                         view};
    }
    for (int i = 0; i < 2; ++i)
      if (!has_models[i]) sets[i] = sets[1 - i];
    return sets;
  };

  // 5. The planted patch: does the difference show where it should?
  // The algorithm that sees it: the one whose view keeps the feature, or, when both views do,
  // the one that augments (it learns the feature where the validation images carry it).
  const auto removes = [](const AlgorithmSpec& s) { return s.hide_patch || !s.view.empty(); };
  const bool views_differ = removes(project.a) != removes(project.b);
  if (project.plant.enabled &&
      (views_differ || project.a.train.augment != project.b.train.augment)) {
    PlantedCheck& pc = out.planted;
    pc.enabled = true;
    pc.patched_train = static_cast<std::int64_t>(planted_train.size());
    pc.patched_val = static_cast<std::int64_t>(planted_val.size());
    pc.base_rate = static_cast<double>(planted_train.size()) / static_cast<double>(train.size());
    const bool a_sees = views_differ ? removes(project.b) : project.a.train.augment;
    pc.direction_set = a_sees ? "A minus B" : "B minus A";
    const std::set<std::int64_t> patched(planted_train.begin(), planted_train.end());
    const auto precisions = [&](const DiffResult& r) {
      const DirectionSet& ds = a_sees ? r.a_minus_b : r.b_minus_a;
      std::vector<double> p;
      for (const auto& top : ds.top_train) {
        std::int64_t hit = 0;
        for (auto j : top) hit += patched.count(j) ? 1 : 0;
        p.push_back(top.empty() ? 0.0 : static_cast<double>(hit) / top.size());
      }
      return p;
    };
    pc.precision = precisions(comparisons[0].result);
    for (const auto& cmp : comparisons)
      if (cmp.cls == project.plant.target_class) pc.class_precision = precisions(cmp.result);

    // The counterfactual: stamp the patch on the validation images of the other classes.
    progress.report(at, "testing the patch on validation images");
    std::vector<std::int64_t> others;
    for (std::int64_t r = 0; r < val.size(); ++r)
      if (val.labels[static_cast<std::size_t>(r)] != project.plant.target_class)
        others.push_back(r);
    // Only algorithms with checkpoints can be tested: one given by precomputed scores has
    // no models, and its shift stays NaN ("not measured").
    if (!others.empty() && (has_models[0] || has_models[1])) {
      // The same experiment as `modeldiff counterfactual`: the patch as a transformation, and
      // the algorithm that hides it seeing every image through its blanked region.
      const PlantSpec& ps = project.plant;
      const std::string stamped = !ps.is_transform() ? patch_region + std::to_string(ps.patch.value)
                                  : ps.val_transform.empty() ? ps.transform
                                                             : ps.val_transform;
      std::vector<ModelSet> sets = model_sets();
      SubProgress sub(progress, at, at, "testing the patch");
      const CounterfactualResult cf =
          run_counterfactual(sets[0], sets[1], subset(val, others), project.preprocessing,
                             parse_transform(stamped), {}, project.plant.target_class, 0, sub);
      for (const EffectRow& row : cf.rows) {
        if (row.algorithm != "A" && row.algorithm != "B") continue;
        const int i = row.algorithm == "A" ? 0 : 1;
        if (has_models[i])
          ((i == 0) == a_sees ? pc.shift_seeing : pc.shift_hidden) = row.mean_share_change;
      }
    }
    std::ostringstream line;
    line.precision(3);
    line << "planted patch: " << pc.direction_set << " direction 1 top-" << project.top_k
         << " training examples " << 100 * (pc.precision.empty() ? 0 : pc.precision[0])
         << "% patched (chance " << 100 * pc.base_rate
         << "%); stamping the patch moves other-class predictions to "
         << train.class_name(project.plant.target_class) << ": " << percent(pc.shift_seeing)
         << " for the algorithm that sees it, " << percent(pc.shift_hidden)
         << " for the one that does not";
    say(line.str());
  }

  // 6. The project's findings, re-measured on this run's models.
  for (std::size_t k = 0; k < project.findings.size(); ++k) {
    const Finding& f = project.findings[k];
    FindingOutcome fo;
    fo.index = k;
    for (std::size_t c = 0; c < comparisons.size(); ++c)
      if (out.comparisons[c].folder == "diff/" + f.comparison) fo.comparison = static_cast<int>(c);
    const Comparison* cmp =
        fo.comparison < 0 ? nullptr : &comparisons[static_cast<std::size_t>(fo.comparison)];
    const DirectionRef dir = *parse_direction(f.direction);  // checked when the project loaded
    const DirectionSet* set = cmp == nullptr  ? nullptr
                              : dir.a_minus_b ? &cmp->result.a_minus_b
                                              : &cmp->result.b_minus_a;
    const int component =
        set == nullptr ? -1 : resolve_direction(dir, set->top_target, val.labels, f.direction_k);
    fo.component = component;
    if (f.transform.empty() || f.target_class < 0)
      fo.skipped = "names no transform and target class";
    else if (!has_models[0] && !has_models[1])
      fo.skipped = "neither algorithm has models (precomputed scores)";
    else if (cmp == nullptr)
      fo.skipped = "no comparison " + f.comparison + " in this run";
    else if (f.direction_k > 0 && component < 0)
      fo.skipped = "no direction " + f.direction + " in comparison " + f.comparison +
                   (dir.of_class < 0 ? ""
                                     : " (none of its directions has mostly " +
                                           val.class_name(dir.of_class) + " among its top " +
                                           std::to_string(f.direction_k) + " validation images)");
    if (fo.skipped.empty()) {
      // The comparison's validation examples, or the direction's direction_k with the largest
      // projections, ranked as the result's top_target is (so that `modeldiff counterfactual
      // --direction-k` picks the same images), then the class condition.
      std::vector<std::int64_t> chosen = cmp->result.target_rows;
      if (f.direction_k > 0) {
        const Eigen::VectorXf column = set->projections.col(component);
        std::vector<std::int64_t> order =
            top_k_indices(column.data(), column.size(), f.direction_k, true);
        for (std::int64_t& r : order) r = chosen[static_cast<std::size_t>(r)];
        chosen = order;
      }
      std::vector<std::int64_t> kept;
      for (const std::int64_t r : chosen) {
        const std::int64_t y = val.labels[static_cast<std::size_t>(r)];
        if ((f.only_class < 0 || y == f.only_class) &&
            (f.exclude_class < 0 || y != f.exclude_class))
          kept.push_back(r);
      }
      if (kept.empty()) fo.skipped = "no validation image is left after its image selection";
      if (fo.skipped.empty()) {
        try {
          progress.report(at, "re-measuring finding " + std::to_string(k + 1));
          SubProgress sub(progress, at, at, "finding " + std::to_string(k + 1));
          const std::vector<ModelSet> sets = model_sets();
          const CounterfactualResult cf =
              run_counterfactual(sets[0], sets[1], subset(val, kept), project.preprocessing,
                                 parse_transform(f.transform), {}, f.target_class, 0, sub);
          fo.images = static_cast<std::int64_t>(kept.size());
          fo.checkpoints_a = has_models[0] ? static_cast<int>(sets[0].checkpoints.size()) : 0;
          fo.checkpoints_b = has_models[1] ? static_cast<int>(sets[1].checkpoints.size()) : 0;
          for (const EffectRow& row : cf.rows) {
            if (row.algorithm == "A" && has_models[0]) fo.a = row.mean_delta_p;
            if (row.algorithm == "B" && has_models[1]) fo.b = row.mean_delta_p;
            if (row.algorithm == "A-B" && has_models[0] && has_models[1]) {
              fo.effect = row.mean_delta_p;
              fo.ci_low = row.ci_low;
              fo.ci_high = row.ci_high;
            }
          }
          if (std::isfinite(f.ci_low) && std::isfinite(fo.effect))
            fo.reproduces = fo.effect >= f.ci_low && fo.effect <= f.ci_high;
        } catch (const InputError& e) {
          // A finding that does not fit these images is reported, not fatal: everything above
          // is computed and written.
          fo.images = 0;
          fo.skipped = e.what();
        }
      }
    }
    std::ostringstream line;
    line.precision(3);
    line << "finding " << k + 1 << " (" << f.comparison << ", " << f.direction << ", "
         << f.transform << "): ";
    if (!fo.skipped.empty()) {
      line << "not measured: " << fo.skipped;
    } else {
      line << std::showpos << "A minus B change in P(" << val.class_name(f.target_class) << ") "
           << fo.effect << " [" << fo.ci_low << ", " << fo.ci_high << "] on " << std::noshowpos
           << fo.images << " images";
      if (fo.reproduces.has_value())
        line << std::showpos << "; recorded " << f.effect << " [" << f.ci_low << ", " << f.ci_high
             << "]: " << (*fo.reproduces ? "reproduces" : "does NOT reproduce");
    }
    say(line.str());
    out.findings.push_back(fo);
  }

  // 7. The report.
  {
    ReportInput ri;
    ri.label_a = project.a.label;
    ri.label_b = project.b.label;
    std::ostringstream d;
    d << project.name << "\n"
      << out.num_train << " training and " << out.num_val << " validation images; "
      << describe(project.preprocessing) << "\n";
    for (int i = 0; i < 2; ++i) {
      const AlgorithmSpec& s = *specs[i];
      d << letters[i] << " = " << s.label << ": ";
      if (s.precomputed())
        d << "precomputed scores from " << s.scores
          << (s.scores_key.empty() ? "" : " [" + s.scores_key + "]") << "\n";
      else
        d << outcomes[i]->checkpoints.size() << " checkpoints of "
          << (s.architecture.empty() ? "full models" : s.architecture)
          << (s.trains() ? ", trained here: " + describe(s.train) : "")
          << (s.hide_patch ? ", sees the patch region blanked" : "")
          << (s.view.empty() ? "" : ", sees every image through " + s.view) << "\n";
    }
    if (attributed > 0)
      d << "TRAK: " << describe(project.trak);
    else
      d << "TRAK: not run (both algorithms are given by precomputed scores)";
    ri.description = d.str();
    ri.train = &train;
    ri.val = &val;
    for (const auto& cmp : comparisons) ri.comparisons.push_back({cmp.title, &cmp.result});
    ri.images_per_grid = project.images_per_grid;
    // The project's findings beside their directions ("direction": "a_minus_b:C", 1-based).
    for (std::size_t k = 0; k < project.findings.size(); ++k) {
      const Finding& f = project.findings[k];
      const FindingOutcome& fo = out.findings[k];  // step 6: one per finding, in order
      ReportFinding rf;
      if (fo.comparison < 0) {
        say("finding about " + f.comparison + " not shown: no such comparison in this run");
        continue;
      }
      rf.comparison = static_cast<std::size_t>(fo.comparison);
      rf.set = parse_direction(f.direction)->a_minus_b ? "a_minus_b" : "b_minus_a";
      rf.component = fo.component;
      if (rf.component < 0) {
        say("finding about " + f.direction + " not shown: no such direction in comparison " +
            f.comparison);
        continue;
      }
      rf.hypothesis = f.hypothesis;
      rf.transform = f.transform;
      rf.verdict = f.verdict;
      if (f.target_class >= 0) rf.target_class = val.class_name(f.target_class);
      rf.effect = f.effect;
      rf.ci_low = f.ci_low;
      rf.ci_high = f.ci_high;
      std::ostringstream m;
      m.precision(3);
      if (!fo.skipped.empty())
        m << "not re-measured: " << fo.skipped << ".";
      else
        m << std::showpos << letters[0] << " minus " << letters[1] << " " << fo.effect
          << " (95% interval " << fo.ci_low << " to " << fo.ci_high << "; " << project.a.label
          << " " << fo.a << ", " << project.b.label << " " << fo.b << ")" << std::noshowpos
          << " on " << fo.images << " validation images, " << fo.checkpoints_a << " + "
          << fo.checkpoints_b << " checkpoints.";
      rf.measured = m.str();
      rf.reproduces = fo.reproduces;
      ri.findings.push_back(rf);
    }
    for (int i = 0; i < 2; ++i) {
      const AlgorithmOutcome& o = *outcomes[i];
      ri.facts.push_back({letters[i] + ": mean validation accuracy",
                          specs[i]->precomputed() ? "not measured (precomputed scores)"
                                                  : percent(mean(o.val_accuracy))});
      ri.facts.push_back({letters[i] + ": top-" + std::to_string(kSameLabelTopK) +
                              " same-label rate of " +
                              (specs[i]->precomputed() ? "the given scores" : "TRAK"),
                          percent(o.same_label_rate)});
    }
    if (out.planted.enabled) {
      const PlantedCheck& pc = out.planted;
      ri.facts.push_back({"planted patch: patched training images",
                          std::to_string(pc.patched_train) + " (" + percent(pc.base_rate) + ")"});
      if (!pc.precision.empty())
        ri.facts.push_back({"planted patch: patched among the top training images of " +
                                pc.direction_set + " direction 1",
                            percent(pc.precision[0])});
      ri.facts.push_back({"planted patch: other-class predictions moved to the patched class",
                          percent(pc.shift_seeing) + " (sees the patch) vs " +
                              percent(pc.shift_hidden) + " (patch hidden)"});
    }
    ri.facts.push_back({"project", project.source});
    ri.facts.push_back({"modeldiff version", MODELDIFF_VERSION});
    SubProgress sub(progress, at, 1.0, "report");
    out.report_index = write_html_report(project.output + "/report", ri, &sub);
  }

  // 8. The run record.
  out.seconds = since(start);
  {
    ordered_json r;
    r["format"] = "modeldiff-run";
    r["version"] = MODELDIFF_VERSION;
    r["project"] = ordered_json::parse(project_json(project));
    r["num_train"] = out.num_train;
    r["num_val"] = out.num_val;
    r["val_images"] = {{"images", "data/val_images.npy"}, {"labels", "data/val_labels.npy"}};
    for (int i = 0; i < 2; ++i) {
      const AlgorithmOutcome& o = *outcomes[i];
      ordered_json& a = r["algorithms"][letters[i]];
      a["label"] = o.label;
      a["checkpoints"] = o.checkpoints;
      a["val_accuracy"] = o.val_accuracy;
      a["mean_val_accuracy"] = number(mean(o.val_accuracy));
      a["same_label_rate"] = number(o.same_label_rate);
      a["same_label_top_k"] = kSameLabelTopK;
      if (!o.attributed.empty()) a["attributed"] = o.attributed;
      a["trained"] = o.trained;
      a["reused"] = o.reused;
      a["cached_features"] = o.cached;
      a["kernel_directions_dropped"] = o.kernel_dropped;
      a["train_seconds"] = o.train_seconds;
      a["trak_seconds"] = o.trak_seconds;
      a["scores"] = o.scores;
      if (specs[i]->precomputed()) a["scores_source"] = specs[i]->scores;
    }
    for (const auto& c : out.comparisons) {
      ordered_json cj = {{"title", c.title}, {"folder", c.folder}, {"targets", c.targets}};
      if (out.significance.empty())
        cj["above_noise_floor"] = {{"a_minus_b", c.above_floor_a_minus_b},
                                   {"b_minus_a", c.above_floor_b_minus_a}};
      r["comparisons"].push_back(cj);
    }
    r["significance"] = {{"computed", out.significance.empty()},
                         {"reason", out.significance},
                         {"rule", kSignificanceRule},
                         {"seconds", out.significance_seconds}};
    for (const FindingOutcome& fo : out.findings) {
      ordered_json fj = {{"index", fo.index}};
      // The direction in this run, 1-based as `--direction` takes it (null: none).
      fj["component"] = fo.component < 0 ? ordered_json() : ordered_json(fo.component + 1);
      if (!fo.skipped.empty()) {
        fj["skipped"] = fo.skipped;
      } else {
        fj["images"] = fo.images;
        fj["checkpoints"] = {{"A", fo.checkpoints_a}, {"B", fo.checkpoints_b}};
        fj["delta_p"] = {{"A", number(fo.a)}, {"B", number(fo.b)}};
        fj["effect"] = {{"mean", number(fo.effect)},
                        {"ci95", {number(fo.ci_low), number(fo.ci_high)}}};
        if (fo.reproduces.has_value()) fj["reproduces"] = *fo.reproduces;
      }
      r["findings"].push_back(fj);
    }
    if (out.planted.enabled) {
      const PlantedCheck& pc = out.planted;
      r["planted"] = {{"patched_train", pc.patched_train},
                      {"patched_val", pc.patched_val},
                      {"base_rate", pc.base_rate},
                      {"direction_set", pc.direction_set},
                      {"precision_top_k", pc.precision},
                      {"class_precision_top_k", pc.class_precision},
                      {"prediction_shift_seeing", number(pc.shift_seeing)},
                      {"prediction_shift_hidden", number(pc.shift_hidden)},
                      {"patched_train_indices", planted_train},
                      {"patched_val_indices", planted_val}};
    }
    r["blas"] = {{"library", blas.library}, {"gflops", blas.gflops}, {"slow", blas.slow}};
    r["report"] = "report/index.html";
    r["seconds"] = out.seconds;
    OutputDirectory od(project.output);
    write_text(od, "run.json", r.dump(2) + "\n");
    od.commit();
    out.run_json = project.output + "/run.json";
  }
  progress.report(1.0, "done");
  return out;
}

}  // namespace modeldiff::core
