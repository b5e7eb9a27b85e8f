#include "core/diff/diff_output.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/io/hdf5_writer.h"

namespace modeldiff::core {
namespace {

using json = nlohmann::ordered_json;  // keeps keys in a readable order

std::vector<double> to_vector(const Eigen::VectorXd& v) {
  return std::vector<double>(v.data(), v.data() + v.size());
}

std::vector<std::int64_t> flatten(const std::vector<std::vector<std::int64_t>>& rows,
                                  std::int64_t* cols) {
  *cols = rows.empty() ? 0 : static_cast<std::int64_t>(rows.front().size());
  std::vector<std::int64_t> out;
  for (const auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json input_json(const std::string& label, const InputProvenance& p) {
  return {{"label", label},
          {"path", p.path},
          {"sha256", p.sha256},
          {"format", p.format},
          {"key", p.key},
          {"file_shape", p.file_shape},
          {"transposed", p.transposed}};
}

json set_json(const DirectionSet& s) {
  return {{"first", s.first},
          {"second", s.second},
          {"explained_variance", to_vector(s.explained_variance)},
          {"explained_variance_ratio", to_vector(s.explained_variance_ratio)},
          {"variance_a", to_vector(s.variance_a)},
          {"variance_b", to_vector(s.variance_b)},
          {"top_train", s.top_train},
          {"bottom_train", s.bottom_train},
          {"top_target", s.top_target},
          {"bottom_target", s.bottom_target},
          {"solver", s.solver},
          {"iterations", s.iterations},
          {"converged", s.converged}};
}

json significance_set_json(const DirectionSignificance& d) {
  std::vector<std::string> verdicts;
  for (const bool above : d.above_floor) verdicts.emplace_back(significance_verdict(above));
  return {{"noise_floor", to_vector(d.noise_floor)},
          {"half_explained_variance", to_vector(d.half_explained_variance)},
          {"null_explained_variance", to_vector(d.null_explained_variance)},
          {"floor_ratio", to_vector(d.floor_ratio)},
          {"above_noise_floor", d.above_floor},
          {"verdict", verdicts},
          {"reproducibility", to_vector(d.reproducibility)},
          {"reproducibility_std", to_vector(d.reproducibility_std)},
          {"rank_stable", to_vector(d.rank_stable)},
          {"full_match", to_vector(d.full_match)}};
}

json significance_json(const Significance& s) {
  json j = {{"computed", s.computed}, {"reason", s.reason}, {"rule", kSignificanceRule}};
  if (!s.computed) return j;
  j["splits"] = s.splits;
  j["half_checkpoints"] = {{"a", {s.checkpoints_a[0], s.checkpoints_a[1]}},
                           {"b", {s.checkpoints_b[0], s.checkpoints_b[1]}}};
  j["a_minus_b"] = significance_set_json(s.a_minus_b);
  j["b_minus_a"] = significance_set_json(s.b_minus_a);
  return j;
}

// nlohmann's pretty printer puts every number of a list on its own line; lists of numbers
// read better on one line each.
std::string collapse_number_lists(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '[') {
      const std::size_t end = text.find_first_of("[]{}\"", i + 1);
      if (end != std::string::npos && text[end] == ']') {
        out += '[';
        bool pending_space = false;
        for (std::size_t j = i + 1; j < end; ++j) {
          const char ch = text[j];
          if (ch == ' ' || ch == '\n') continue;
          if (pending_space) out += ' ';
          out += ch;
          pending_space = ch == ',';
        }
        out += ']';
        i = end;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

std::string row_normalization(bool normalized) {
  return normalized ? "unit-norm rows (as in the paper)" : "raw rows (as the modeldiff package)";
}

void write_set(Hdf5Writer& h5, const std::string& group, const DirectionSet& s) {
  h5.create_group(group);
  h5.set_attribute(group, "first", s.first);
  h5.set_attribute(group, "second", s.second);
  h5.set_attribute(group, "solver", s.solver);
  const auto c = static_cast<std::int64_t>(s.directions.rows());
  h5.write(group + "/directions", s.directions.data(),
           {c, static_cast<std::int64_t>(s.directions.cols())});
  h5.write(group + "/projections", s.projections.data(),
           {static_cast<std::int64_t>(s.projections.rows()), c});
  h5.write(group + "/variance_a", s.variance_a.data(), {c});
  h5.write(group + "/variance_b", s.variance_b.data(), {c});
  h5.write(group + "/explained_variance", s.explained_variance.data(), {c});
  h5.write(group + "/explained_variance_ratio", s.explained_variance_ratio.data(), {c});
  const std::pair<const char*, const std::vector<std::vector<std::int64_t>>*> lists[] = {
      {"top_train", &s.top_train},
      {"bottom_train", &s.bottom_train},
      {"top_target", &s.top_target},
      {"bottom_target", &s.bottom_target}};
  for (const auto& [name, rows] : lists) {
    std::int64_t k = 0;
    const std::vector<std::int64_t> flat = flatten(*rows, &k);
    h5.write(group + "/" + name, flat.data(), {c, k});
  }
}

void write_significance(Hdf5Writer& h5, const Significance& s) {
  h5.create_group("significance");
  h5.set_attribute("significance", "computed", s.computed ? "yes" : "no");
  h5.set_attribute("significance", "reason", s.reason);
  h5.set_attribute("significance", "rule", kSignificanceRule);
  if (!s.computed) return;
  h5.set_attribute("significance", "splits", std::to_string(s.splits));
  const std::int64_t checkpoints_a[2] = {s.checkpoints_a[0], s.checkpoints_a[1]};
  const std::int64_t checkpoints_b[2] = {s.checkpoints_b[0], s.checkpoints_b[1]};
  h5.write("significance/half_checkpoints_a", checkpoints_a, {2});
  h5.write("significance/half_checkpoints_b", checkpoints_b, {2});
  for (const auto& [name, d] : {std::pair<std::string, const DirectionSignificance*>{
                                    "significance/a_minus_b", &s.a_minus_b},
                                {"significance/b_minus_a", &s.b_minus_a}}) {
    h5.create_group(name);
    const auto c = static_cast<std::int64_t>(d->half_explained_variance.size());
    const std::pair<const char*, const Eigen::VectorXd*> vectors[] = {
        {"noise_floor", &d->noise_floor},
        {"half_explained_variance", &d->half_explained_variance},
        {"null_explained_variance", &d->null_explained_variance},
        {"floor_ratio", &d->floor_ratio},
        {"reproducibility", &d->reproducibility},
        {"reproducibility_std", &d->reproducibility_std},
        {"rank_stable", &d->rank_stable},
        {"full_match", &d->full_match}};
    for (const auto& [vname, v] : vectors) h5.write(name + "/" + vname, v->data(), {c});
    const std::vector<std::int64_t> above(d->above_floor.begin(), d->above_floor.end());
    h5.write(name + "/above_noise_floor", above.data(), {c});
  }
}

}  // namespace

std::string diff_summary_json(const DiffResult& result, const DiffOptions& options,
                              const DiffProvenance& provenance) {
  json j;
  j["format"] = "modeldiff-studio diff";
  j["version"] = MODELDIFF_VERSION;
  j["created"] = utc_now();
  j["command_line"] = provenance.command_line;
  j["orientation"] = "scores are T x N: row = target example, column = training example";
  j["row_normalization"] = row_normalization(result.normalized_rows);
  j["normalized_rows"] = result.normalized_rows;
  j["inputs"] = {{"a", input_json(result.label_a, provenance.a)},
                 {"b", input_json(result.label_b, provenance.b)}};
  j["settings"] = {{"components", options.components},
                   {"rotation", rotation_name(options.rotation)},
                   {"top_k", options.top_k},
                   {"seed", options.seed},
                   {"target_selection", provenance.target_selection}};
  j["num_targets"] = result.num_targets;
  j["num_train"] = result.num_train;
  j["num_analysed_targets"] = result.target_rows.size();
  j["a_minus_b"] = set_json(result.a_minus_b);
  j["b_minus_a"] = set_json(result.b_minus_a);
  j["significance"] = significance_json(result.significance);
  return collapse_number_lists(j.dump(2)) + "\n";
}

void write_diff_output(OutputDirectory& out, const DiffResult& result, const DiffOptions& options,
                       const DiffProvenance& provenance) {
  const std::string summary = diff_summary_json(result, options, provenance);
  {
    const std::string path = out.staging_path("summary.json");
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) throw InputError(path, "cannot create file");
    const bool ok = std::fwrite(summary.data(), 1, summary.size(), f) == summary.size();
    if (std::fclose(f) != 0 || !ok) throw InputError(path, "cannot write file");
  }
  Hdf5Writer h5(out.staging_path("diff.h5"));
  h5.set_attribute("/", "format", "modeldiff-studio diff");
  h5.set_attribute("/", "version", MODELDIFF_VERSION);
  h5.set_attribute("/", "label_a", result.label_a);
  h5.set_attribute("/", "label_b", result.label_b);
  h5.set_attribute("/", "rotation", rotation_name(options.rotation));
  h5.set_attribute("/", "row_normalization", row_normalization(result.normalized_rows));
  h5.set_attribute("/", "orientation", "T x N: row = target example, column = training example");
  h5.set_attribute("/", "provenance", summary);
  const auto t = static_cast<std::int64_t>(result.target_rows.size());
  h5.write("target_rows", result.target_rows.data(), {t});
  h5.write("cosine_ab", result.cosine_ab.data(), {t});
  write_set(h5, "a_minus_b", result.a_minus_b);
  write_set(h5, "b_minus_a", result.b_minus_a);
  write_significance(h5, result.significance);
  h5.close();
}

}  // namespace modeldiff::core
