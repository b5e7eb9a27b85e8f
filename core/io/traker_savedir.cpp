#include "core/io/traker_savedir.h"

#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/io/npy.h"

namespace modeldiff::core {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // experiments listed in file order

Json parse_json_object(const std::string& file, const std::string& text) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    throw InputError(file, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) {
    throw InputError(file, "unexpected JSON").expected("an object").found(j.type_name());
  }
  return j;
}

// A non-negative integer field (traker writes ints; a float with an integral value is accepted).
std::int64_t count_field(const std::string& file, const std::string& key, const Json& v) {
  if (v.is_number_unsigned() &&
      v.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(v.get<std::uint64_t>());
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d >= 0 && d < 9.2e18 && d == static_cast<double>(static_cast<std::int64_t>(d))) {
      return static_cast<std::int64_t>(d);
    }
  }
  throw InputError(file, "bad value").key(key).expected("a non-negative integer").found(v.dump());
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string list_names(const std::vector<TrakerExperiment>& experiments) {
  std::string s;
  for (const auto& e : experiments) {
    if (!s.empty()) s += ", ";
    s += "'" + e.name + "'";
  }
  return s;
}

}  // namespace

std::vector<TrakerExperiment> parse_traker_experiments(const std::string& file,
                                                       const std::string& json_text) {
  const Json j = parse_json_object(file, json_text);
  std::vector<TrakerExperiment> out;
  for (const auto& [name, entry] : j.items()) {
    if (!entry.is_object()) {
      throw InputError(file, "bad experiment entry")
          .key(name)
          .expected("an object")
          .found(entry.type_name());
    }
    TrakerExperiment e;
    e.name = name;
    if (const auto t = entry.find("num_targets"); t != entry.end()) {
      e.num_targets = count_field(file, name + ".num_targets", *t);
    }
    if (const auto p = entry.find("scores_path"); p != entry.end()) {
      if (!p->is_string()) {
        throw InputError(file, "bad value")
            .key(name + ".scores_path")
            .expected("a path")
            .found(p->dump());
      }
      e.scores_path = p->get<std::string>();
    }
    if (const auto f = entry.find("scores_finalized"); f != entry.end()) {
      if (f->is_boolean()) {
        e.finalized = f->get<bool>();
      } else if (f->is_number()) {
        e.finalized = f->get<double>() != 0.0;
      } else {
        throw InputError(file, "bad value")
            .key(name + ".scores_finalized")
            .expected("0 or 1")
            .found(f->dump());
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::int64_t parse_traker_train_set_size(const std::string& file, const std::string& json_text) {
  const Json j = parse_json_object(file, json_text);
  const auto n = j.find("train set size");
  if (n == j.end()) {
    throw InputError(file, "missing key")
        .key("train set size")
        .expected("the number of training examples");
  }
  return count_field(file, "train set size", *n);
}

NdArray read_traker_scores(const std::string& save_dir, const std::string& experiment) {
  const fs::path dir(save_dir);
  const std::string experiments_file = (dir / "experiments.json").string();
  const std::string metadata_file = (dir / "metadata.json").string();
  if (!is_file(experiments_file)) {
    throw InputError(experiments_file, "not a traker save_dir: experiments.json is missing")
        .expected("the directory passed as TRAKer(save_dir=...)");
  }
  const std::vector<TrakerExperiment> experiments =
      parse_traker_experiments(experiments_file, read_text_file(experiments_file));
  if (experiments.empty()) {
    throw InputError(experiments_file, "no experiments: scores were never computed")
        .expected("an experiment written by traker's finalize_scores(exp_name=...)");
  }
  const TrakerExperiment* chosen = nullptr;
  if (experiment.empty()) {
    if (experiments.size() > 1) {
      throw InputError(experiments_file, "several experiments; choose one")
          .found(list_names(experiments));
    }
    chosen = &experiments.front();
  } else {
    for (const auto& e : experiments) {
      if (e.name == experiment) chosen = &e;
    }
    if (chosen == nullptr) {
      throw InputError(experiments_file, "no such experiment")
          .key(experiment)
          .expected("one of " + list_names(experiments));
    }
  }
  if (!chosen->finalized) {
    throw InputError(experiments_file, "scores not finalized (scores_finalized = 0)")
        .key(chosen->name)
        .expected("a save_dir after traker's finalize_scores()");
  }

  if (!is_file(metadata_file)) throw InputError(metadata_file, "missing from the traker save_dir");
  const std::int64_t n = parse_traker_train_set_size(metadata_file, read_text_file(metadata_file));

  std::string scores_file = chosen->scores_path;
  if (scores_file.empty() || !is_file(scores_file)) {
    scores_file = (dir / "scores" / (chosen->name + ".mmap")).string();
  }
  if (!is_file(scores_file)) {
    throw InputError(scores_file, "traker scores file is missing")
        .key(chosen->name)
        .expected(chosen->scores_path.empty() ? std::string("the file finalize_scores() writes")
                                              : "it here or at scores_path " + chosen->scores_path);
  }
  const NdArray scores = read_npy(scores_file);  // N x T
  if (scores.ndim() != 2) {
    throw InputError(scores_file, "traker scores are not a matrix")
        .expected("N x T")
        .found(shape_to_string(scores.shape()));
  }
  if (!dtype_is_floating(scores.dtype()) || scores.dtype() == DType::kBFloat16) {
    throw InputError(scores_file, "unexpected dtype of traker scores")
        .expected("float16 or float32")
        .found(dtype_name(scores.dtype()));
  }
  if (scores.dim(0) != n) {
    throw InputError(scores_file, "rows do not match the train set size in " + metadata_file)
        .expected(std::to_string(n) + " rows (N x T)")
        .found(shape_to_string(scores.shape()));
  }
  if (chosen->num_targets >= 0 && scores.dim(1) != chosen->num_targets) {
    throw InputError(scores_file, "columns do not match num_targets of '" + chosen->name + "' in " +
                                      experiments_file)
        .expected(std::to_string(chosen->num_targets) + " columns (N x T)")
        .found(shape_to_string(scores.shape()));
  }
  return scores.to_float32().transposed2d();
}

}  // namespace modeldiff::core
