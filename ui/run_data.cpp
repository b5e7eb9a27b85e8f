#include "run_data.h"

#include <QDir>
#include <QFileInfo>
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/base/error.h"
#include "core/io/hdf5_dataset.h"
#include "error_reporting.h"
#if MODELDIFF_UI_RUNS
#include "core/io/array_file.h"
#include "core/io/npy.h"
#include "core/pipeline/project.h"
#endif

namespace modeldiff::ui {

namespace {

using nlohmann::ordered_json;

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw core::InputError(path, "cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Reads the values behind the summary's index lists from the result's diff.h5.
void readValues(const QString& folder, const core::DiffSummary& summary, Comparison& comparison) {
  DirectionValues(&values)[2] = comparison.values;
  const std::string h5 = QDir(folder).filePath(QStringLiteral("diff.h5")).toStdString();
  const core::NdArray rows_array = core::read_hdf5_dataset(h5, "target_rows");
  if (rows_array.dtype() != core::DType::kInt64 || rows_array.ndim() != 1)
    throw core::InputError(h5, "target_rows is not a vector of int64");
  std::unordered_map<std::int64_t, std::int64_t> row_of;  // original row -> projections row
  const auto* rows = rows_array.data_as<std::int64_t>();
  for (std::int64_t i = 0; i < rows_array.dim(0); ++i) row_of.emplace(rows[i], i);
  comparison.target_rows.assign(rows, rows + rows_array.dim(0));
  const core::NdArray cosine = core::read_hdf5_dataset(h5, "cosine_ab").to_float32();
  if (cosine.ndim() != 1 || cosine.dim(0) != rows_array.dim(0))
    throw core::InputError(h5, "cosine_ab does not match target_rows");
  comparison.cosine_ab.assign(cosine.data_as<float>(), cosine.data_as<float>() + cosine.dim(0));

  for (int set = 0; set < 2; ++set) {
    const std::string group = set == 0 ? "a_minus_b/" : "b_minus_a/";
    const core::DirectionSummary& s = set == 0 ? summary.a_minus_b : summary.b_minus_a;
    const core::NdArray directions = core::read_hdf5_dataset(h5, group + "directions").to_float32();
    const core::NdArray projections =
        core::read_hdf5_dataset(h5, group + "projections").to_float32();
    const auto components = static_cast<std::int64_t>(s.top_train.size());
    if (directions.ndim() != 2 || directions.dim(0) < components || projections.ndim() != 2 ||
        projections.dim(1) < components || projections.dim(0) != rows_array.dim(0))
      throw core::InputError(h5, group + "directions or projections do not match summary.json");
    const std::int64_t n = directions.dim(1), c_total = projections.dim(1);
    const float* d = directions.data_as<float>();
    const float* p = projections.data_as<float>();
    auto loadings = [&](const std::vector<std::vector<std::int64_t>>& lists) {
      std::vector<std::vector<double>> out(lists.size());
      for (std::size_t c = 0; c < lists.size(); ++c)
        for (std::int64_t index : lists[c]) {
          if (index < 0 || index >= n)
            throw core::InputError(
                h5, "training index " + std::to_string(index) + " of summary.json is out of range");
          out[c].push_back(d[static_cast<std::int64_t>(c) * n + index]);
        }
      return out;
    };
    comparison.projections[set].assign(p, p + projections.dim(0) * c_total);
    comparison.projection_columns[set] = c_total;
    DirectionValues& v = values[set];
    v.top_train = loadings(s.top_train);
    v.bottom_train = loadings(s.bottom_train);
    auto projected = [&](const std::vector<std::vector<std::int64_t>>& lists) {
      std::vector<std::vector<double>> out(lists.size());
      for (std::size_t c = 0; c < lists.size(); ++c)
        for (std::int64_t row : lists[c]) {
          const auto it = row_of.find(row);
          if (it == row_of.end())
            throw core::InputError(
                h5, "target row " + std::to_string(row) + " of summary.json was not analysed");
          out[c].push_back(p[it->second * c_total + static_cast<std::int64_t>(c)]);
        }
      return out;
    };
    v.top_target = projected(s.top_target);
    v.bottom_target = projected(s.bottom_target);
  }
}

AlgorithmInfo algorithmInfo(const ordered_json& j, const QString& fallback) {
  AlgorithmInfo info;
  info.label = fallback;
  if (!j.is_object()) return info;
  if (j.contains("label") && j["label"].is_string())
    info.label = QString::fromStdString(j["label"].get<std::string>());
  if (j.contains("mean_val_accuracy") && j["mean_val_accuracy"].is_number())
    info.mean_val_accuracy = j["mean_val_accuracy"].get<double>();
  // same_label_rate (runs of this version) or top20_same_label (earlier ones: k was 20).
  for (const char* key : {"same_label_rate", "top20_same_label"})
    if (info.same_label_rate < 0 && j.contains(key) && j[key].is_number())
      info.same_label_rate = j[key].get<double>();
  info.same_label_top_k =
      j.contains("same_label_top_k") && j["same_label_top_k"].is_number_integer()
          ? j["same_label_top_k"].get<int>()
          : 20;
  if (j.contains("attributed") && j["attributed"].is_string())
    info.attributed = QString::fromStdString(j["attributed"].get<std::string>());
  return info;
}

}  // namespace

bool RunData::isPatchedTrain(std::int64_t index) const {
  return std::binary_search(planted_train.begin(), planted_train.end(), index);
}

bool RunData::isPatchedVal(std::int64_t index) const {
  return std::binary_search(planted_val.begin(), planted_val.end(), index);
}

Comparison loadComparison(const QString& path, const QString& title, bool need_values) {
  const QFileInfo info(path);  // the folder, or its summary.json
  Comparison comparison;
  comparison.folder = info.isFile() ? info.absolutePath() : info.absoluteFilePath();
  auto summary = std::make_shared<core::DiffSummary>(
      core::read_diff_summary(info.absoluteFilePath().toStdString()));
  comparison.title = title.isEmpty() ? QString::fromStdString(summary->target_selection) : title;
  comparison.targets = summary->num_analysed_targets;
  comparison.summary = summary;
  Comparison with_values = comparison;  // all or nothing of diff.h5
  try {
    readValues(comparison.folder, *summary, with_values);
  } catch (...) {
    if (need_values) throw;
    // diff.h5 is optional (a result copied without it); one that is there but cannot be
    // read is said, not passed over.
    if (QFileInfo::exists(QDir(comparison.folder).filePath(QStringLiteral("diff.h5"))))
      comparison.values_problem = currentError().message;
    return comparison;
  }
  return with_values;
}

QString nextSelectionFolder(const QString& run_folder) {
  const QDir diff_dir(QDir(run_folder).filePath(QStringLiteral("diff")));
  for (int n = 1;; ++n) {
    const QString path = diff_dir.filePath(QStringLiteral("selection-%1").arg(n));
    if (!QFileInfo::exists(path)) return path;
  }
}

bool isRunPath(const QString& path) {
  const QFileInfo info(path);
  if (info.isDir()) return QFileInfo::exists(QDir(path).filePath(QStringLiteral("run.json")));
  return info.fileName() == QStringLiteral("run.json");
}

std::shared_ptr<const RunData> loadRun(const QString& path) {
#if !MODELDIFF_UI_RUNS
  throw core::InputError(path.toStdString(),
                         "is a run folder, which this build (without LibTorch) cannot open; "
                         "open one of its diff/ folders instead");
#else
  const QFileInfo info(path);
  const QString folder = info.isDir() ? info.absoluteFilePath() : info.absolutePath();
  const std::string run_json = QDir(folder).filePath(QStringLiteral("run.json")).toStdString();
  ordered_json j;
  try {
    j = ordered_json::parse(readText(run_json));
  } catch (const ordered_json::exception& e) {
    throw core::InputError(run_json, std::string("is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw core::InputError(run_json, "is not a JSON object");
  if (!j.contains("project") || !j["project"].is_object())
    throw core::InputError(run_json, "has no \"project\" object");
  if (!j.contains("comparisons") || !j["comparisons"].is_array() || j["comparisons"].empty())
    throw core::InputError(run_json, "has no \"comparisons\" list");

  auto run = std::make_shared<RunData>();
  run->folder = folder;
  run->is_run = true;
  const core::Project project = core::parse_project(j["project"].dump(), "/", run_json);
  {
    // As the project of this folder: its output is where the run is now (it may have moved).
    ordered_json current = j["project"];
    current["output"] = folder.toStdString();
    run->project_json = QString::fromStdString(current.dump(2));
  }
  run->name = QString::fromStdString(project.name);
  if (run->name.isEmpty()) run->name = QFileInfo(folder).fileName();
  if (j.contains("algorithms") && j["algorithms"].is_object()) {
    const ordered_json& algorithms = j["algorithms"];
    run->a = algorithmInfo(algorithms.contains("A") ? algorithms["A"] : ordered_json(),
                           QString::fromStdString(project.a.label));
    run->b = algorithmInfo(algorithms.contains("B") ? algorithms["B"] : ordered_json(),
                           QString::fromStdString(project.b.label));
  } else {
    run->a.label = QString::fromStdString(project.a.label);
    run->b.label = QString::fromStdString(project.b.label);
  }
  // The models: the project's checkpoints, or the ones the run trained (run.json).
  for (int i = 0; i < 2; ++i) {
    const core::AlgorithmSpec& spec = i == 0 ? project.a : project.b;
    AlgorithmInfo& algorithm = i == 0 ? run->a : run->b;
    algorithm.architecture = spec.architecture;
    algorithm.hide_patch = spec.hide_patch;
    algorithm.checkpoints = spec.checkpoints;
    const char* letter = i == 0 ? "A" : "B";
    if (j.contains("algorithms") && j["algorithms"].is_object() &&
        j["algorithms"].contains(letter) && j["algorithms"][letter].is_object() &&
        j["algorithms"][letter].contains("checkpoints") &&
        j["algorithms"][letter]["checkpoints"].is_array()) {
      algorithm.checkpoints.clear();
      for (const ordered_json& c : j["algorithms"][letter]["checkpoints"])
        if (c.is_string()) algorithm.checkpoints.push_back(c.get<std::string>());
    }
    for (std::string& c : algorithm.checkpoints)
      c = QDir(folder).absoluteFilePath(QString::fromStdString(c)).toStdString();
  }
  run->preprocessing = project.preprocessing;

  for (const ordered_json& c : j["comparisons"]) {
    if (!c.is_object() || !c.contains("title") || !c["title"].is_string() ||
        !c.contains("folder") || !c["folder"].is_string())
      throw core::InputError(run_json, "a comparison lacks \"title\" or \"folder\"");
    const QString title = QString::fromStdString(c["title"].get<std::string>());
    try {
      run->comparisons.push_back(loadComparison(
          QDir(folder).absoluteFilePath(QString::fromStdString(c["folder"].get<std::string>())),
          title));
    } catch (const core::InputError& e) {
      throw core::InputError(
          run_json, "its comparison \"" + title.toStdString() + "\" cannot be read: " + e.what());
    }
  }
  // Comparisons of selections made in the GUI (diff/selection-<n>), in order of n; one that
  // cannot be read is left out (it is not part of the run's record).
  const QDir diff_dir(QDir(folder).filePath(QStringLiteral("diff")));
  std::vector<std::pair<int, QString>> selections;
  for (const QString& name :
       diff_dir.entryList({QStringLiteral("selection-*")}, QDir::Dirs | QDir::NoDotAndDotDot)) {
    bool ok = false;
    const int n = name.mid(10).toInt(&ok);
    if (ok) selections.emplace_back(n, diff_dir.filePath(name));
  }
  std::sort(selections.begin(), selections.end());
  for (const auto& [n, selection] : selections) {
    try {
      run->comparisons.push_back(loadComparison(selection));
    } catch (...) {
      // An interrupted or foreign folder: not listed.
    }
  }

  core::ProjectData data = core::load_project_data(project);
  run->planted_train = std::move(data.planted_train);
  run->planted_val = std::move(data.planted_val);
  run->planted = project.plant.enabled;
  run->planted_class = project.plant.enabled ? project.plant.target_class : -1;
  run->patch_x = project.plant.patch.x;
  run->patch_y = project.plant.patch.y;
  run->patch_size = project.plant.patch.size;
  run->patch_value = project.plant.patch.value;
  if (j.contains("planted") && j["planted"].is_object()) {
    const ordered_json& p = j["planted"];
    if (p.contains("base_rate") && p["base_rate"].is_number())
      run->planted_base_rate = p["base_rate"].get<double>();
    if (p.contains("direction_set") && p["direction_set"].is_string())
      run->planted_direction_set = QString::fromStdString(p["direction_set"].get<std::string>());
  }
  // The score matrices must fit the datasets: a row per validation image, a column per
  // training image.
  for (int i = 0; i < 2; ++i) {
    const QString file =
        QDir(folder).filePath(QStringLiteral("scores/%1.npy").arg(i == 0 ? 'A' : 'B'));
    if (!QFileInfo::exists(file)) continue;
    // Only the inspector and Compare Selected need them: a bad file is reported there, and
    // the rest of the run still opens.
    try {
      auto scores =
          std::make_shared<core::NdArray>(core::read_npy(file.toStdString()).to_float32());
      if (scores->ndim() != 2 || scores->dim(0) != data.val.size() ||
          scores->dim(1) != data.train.size())
        throw core::InputError(file.toStdString(), "does not fit the run's datasets")
            .expected(std::to_string(data.val.size()) + " x " + std::to_string(data.train.size()) +
                      " (validation x training images)")
            .found(core::shape_to_string(scores->shape()));
      core::require_finite_scores(*scores, file.toStdString());
      run->scores[i] = std::move(scores);
    } catch (...) {
      // Whatever reading it threw: one line, naming the file.
      const CaughtError error = currentError();
      run->scores_problem += (error.kind == core::ErrorKind::kInput
                                  ? error.message
                                  : QStringLiteral("%1: %2").arg(file, error.message)) +
                             QLatin1Char('\n');
    }
  }
  run->train = std::make_shared<const core::ImageDataset>(std::move(data.train));
  run->val = std::make_shared<const core::ImageDataset>(std::move(data.val));
  return run;
#endif
}

std::shared_ptr<const RunData> loadDiffResult(const QString& path) {
  auto run = std::make_shared<RunData>();
  const QFileInfo info(path);
  run->folder = info.isDir() ? info.absoluteFilePath() : info.absolutePath();
  run->name = QFileInfo(run->folder).fileName();
  // The table and the variance plot need only summary.json.
  run->comparisons.push_back(loadComparison(path, {}, /*need_values=*/false));
  run->a.label = QString::fromStdString(run->comparisons.front().summary->label_a);
  run->b.label = QString::fromStdString(run->comparisons.front().summary->label_b);
  return run;
}

}  // namespace modeldiff::ui
