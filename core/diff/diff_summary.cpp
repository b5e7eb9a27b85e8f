#include "core/diff/diff_summary.h"

#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/mapped_file.h"

namespace modeldiff::core {
namespace {

using nlohmann::json;

template <typename T>
T get(const std::string& file, const json& j, const std::string& key, const std::string& where) {
  const std::string full = where.empty() ? key : where + "." + key;
  if (!j.is_object() || !j.contains(key))
    throw InputError(file, "missing entry in result summary").key(full);
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw InputError(file, "malformed entry in result summary")
        .key(full)
        .found(j.at(key).dump().substr(0, 60));
  }
}

// Every per-direction list of one set has the set's number of directions c.
void check_directions(const std::string& file, const std::string& where, std::size_t c,
                      std::initializer_list<std::size_t> sizes) {
  for (std::size_t n : sizes)
    if (n != c)
      throw InputError(file, "inconsistent number of directions in result summary")
          .key(where)
          .expected(std::to_string(c))
          .found(std::to_string(n));
}

DirectionSummary read_set(const std::string& file, const json& root, const std::string& name) {
  if (!root.contains(name)) throw InputError(file, "missing entry in result summary").key(name);
  const json& j = root.at(name);
  DirectionSummary s;
  s.first = get<std::string>(file, j, "first", name);
  s.second = get<std::string>(file, j, "second", name);
  s.solver = get<std::string>(file, j, "solver", name);
  s.converged = get<bool>(file, j, "converged", name);
  s.explained_variance = get<std::vector<double>>(file, j, "explained_variance", name);
  s.explained_variance_ratio = get<std::vector<double>>(file, j, "explained_variance_ratio", name);
  s.variance_a = get<std::vector<double>>(file, j, "variance_a", name);
  s.variance_b = get<std::vector<double>>(file, j, "variance_b", name);
  using Lists = std::vector<std::vector<std::int64_t>>;
  s.top_train = get<Lists>(file, j, "top_train", name);
  s.bottom_train = get<Lists>(file, j, "bottom_train", name);
  s.top_target = get<Lists>(file, j, "top_target", name);
  s.bottom_target = get<Lists>(file, j, "bottom_target", name);
  const std::size_t c = s.explained_variance.size();
  check_directions(
      file, name, c,
      {s.explained_variance_ratio.size(), s.variance_a.size(), s.variance_b.size(),
       s.top_train.size(), s.bottom_train.size(), s.top_target.size(), s.bottom_target.size()});
  return s;
}

DirectionSignificanceSummary read_significance_set(const std::string& file, const json& sig,
                                                   const std::string& name, std::size_t c) {
  const std::string where = "significance." + name;
  if (!sig.contains(name)) throw InputError(file, "missing entry in result summary").key(where);
  const json& j = sig.at(name);
  DirectionSignificanceSummary d;
  const std::pair<const char*, std::vector<double>*> vectors[] = {
      {"noise_floor", &d.noise_floor},
      {"half_explained_variance", &d.half_explained_variance},
      {"null_explained_variance", &d.null_explained_variance},
      {"floor_ratio", &d.floor_ratio},
      {"reproducibility", &d.reproducibility},
      {"reproducibility_std", &d.reproducibility_std},
      {"rank_stable", &d.rank_stable},
      {"full_match", &d.full_match}};
  for (const auto& [key, v] : vectors) {
    // A ratio over a zero floor is infinite, which JSON writes as null.
    const json& values = j.contains(key) ? j.at(key) : json();
    if (!values.is_array())
      throw InputError(file, "missing entry in result summary").key(where + "." + key);
    for (const json& x : values) v->push_back(x.is_number() ? x.get<double>() : HUGE_VAL);
  }
  d.above_noise_floor = get<std::vector<bool>>(file, j, "above_noise_floor", where);
  check_directions(
      file, where, c,
      {d.noise_floor.size(), d.half_explained_variance.size(), d.null_explained_variance.size(),
       d.floor_ratio.size(), d.above_noise_floor.size(), d.reproducibility.size(),
       d.reproducibility_std.size(), d.rank_stable.size(), d.full_match.size()});
  return d;
}

SignificanceSummary read_significance(const std::string& file, const json& root, std::size_t c) {
  SignificanceSummary s;
  if (!root.contains("significance")) {
    s.reason = "not in this result (written by a version without significance)";
    return s;
  }
  const json& j = root.at("significance");
  s.computed = get<bool>(file, j, "computed", "significance");
  s.reason = get<std::string>(file, j, "reason", "significance");
  s.rule = get<std::string>(file, j, "rule", "significance");
  if (!s.computed) return s;
  s.splits = get<int>(file, j, "splits", "significance");
  s.a_minus_b = read_significance_set(file, j, "a_minus_b", c);
  s.b_minus_a = read_significance_set(file, j, "b_minus_a", c);
  return s;
}

}  // namespace

DiffSummary read_diff_summary(const std::string& path) {
  const std::string file = std::filesystem::is_directory(path) ? path + "/summary.json" : path;
  const std::string text = read_text_file(file);
  const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) throw InputError(file, "not a JSON result summary");
  if (!root.contains("format") || root["format"] != "modeldiff-studio diff")
    throw InputError(file, "not a ModelDiff Studio result summary")
        .expected("\"format\": \"modeldiff-studio diff\"");
  DiffSummary s;
  const json inputs = root.value("inputs", json::object());
  s.label_a = get<std::string>(file, inputs.value("a", json::object()), "label", "inputs.a");
  s.label_b = get<std::string>(file, inputs.value("b", json::object()), "label", "inputs.b");
  s.source_a = get<std::string>(file, inputs.value("a", json::object()), "path", "inputs.a");
  s.source_b = get<std::string>(file, inputs.value("b", json::object()), "path", "inputs.b");
  s.row_normalization = get<std::string>(file, root, "row_normalization", "");
  s.normalized_rows = get<bool>(file, root, "normalized_rows", "");
  s.num_targets = get<std::int64_t>(file, root, "num_targets", "");
  s.num_train = get<std::int64_t>(file, root, "num_train", "");
  s.num_analysed_targets = get<std::int64_t>(file, root, "num_analysed_targets", "");
  const json settings = root.value("settings", json::object());
  s.components = get<int>(file, settings, "components", "settings");
  s.target_selection = get<std::string>(file, settings, "target_selection", "settings");
  s.a_minus_b = read_set(file, root, "a_minus_b");
  s.b_minus_a = read_set(file, root, "b_minus_a");
  s.significance = read_significance(file, root, s.a_minus_b.explained_variance.size());
  return s;
}

}  // namespace modeldiff::core
