#include "core/trak/trak.h"

#include <chrono>
#include <filesystem>

#include "core/attribution/trak_ensemble.h"
#include "core/base/error.h"
#include "core/base/sha256.h"
#include "core/io/hdf5_dataset.h"
#include "core/io/hdf5_writer.h"
#include "core/trak/detail/featurizer.h"
#include "core/trak/detail/torch_model_impl.h"
#include "core/trak/torch_model.h"

namespace modeldiff::core {
namespace {

torch::Tensor as_tensor(const NdArray& a) {
  const NdArray f = a.to_float32();
  // from_blob does not own the bytes: clone so the tensor outlives `f`.
  return torch::from_blob(const_cast<std::byte*>(f.data()), f.shape(), torch::kFloat32).clone();
}

torch::Tensor as_labels(const std::vector<std::int64_t>& labels) {
  return torch::tensor(labels, torch::kLong);
}

RowMatrixF to_matrix(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().to(torch::kFloat32).cpu();
  return Eigen::Map<const RowMatrixF>(c.data_ptr<float>(), c.size(0), c.size(1));
}

struct CachedFeatures {
  RowMatrixF train, target;
  Eigen::VectorXf out_to_loss;
  double target_accuracy = 0;
};

std::string settings_key(const TrakSettings& s) {
  return std::to_string(s.proj_dim) + "|" + std::to_string(s.seed) + "|" +
         std::to_string(static_cast<int>(s.projection));  // lambda and Q are applied later
}

bool read_cache(const std::string& path, CachedFeatures* out) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return false;
  try {
    const NdArray train = read_hdf5_dataset(path, "train_features").to_float32();
    const NdArray target = read_hdf5_dataset(path, "target_features").to_float32();
    const NdArray q = read_hdf5_dataset(path, "out_to_loss").to_float32();
    const NdArray acc = read_hdf5_dataset(path, "target_accuracy").to_float32();
    out->train = Eigen::Map<const RowMatrixF>(train.data_as<float>(), train.dim(0), train.dim(1));
    out->target =
        Eigen::Map<const RowMatrixF>(target.data_as<float>(), target.dim(0), target.dim(1));
    out->out_to_loss = Eigen::Map<const Eigen::VectorXf>(q.data_as<float>(), q.dim(0));
    out->target_accuracy = acc.data_as<float>()[0];
    return true;
  } catch (const InputError&) {
    return false;  // a damaged cache entry (e.g. from a killed run) is recomputed
  }
}

void write_cache(const std::string& path, const CachedFeatures& f) {
  const std::string tmp = path + ".tmp";
  {
    Hdf5Writer h5(tmp);
    h5.write("train_features", f.train.data(), {f.train.rows(), f.train.cols()});
    h5.write("target_features", f.target.data(), {f.target.rows(), f.target.cols()});
    h5.write("out_to_loss", f.out_to_loss.data(), {f.out_to_loss.size()});
    const float acc = static_cast<float>(f.target_accuracy);
    h5.write("target_accuracy", &acc, {1});
    h5.set_attribute("/", "orientation",
                     "train_features N x k, target_features T x k (row = example)");
    h5.close();
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw InputError(path, "cannot write TRAK cache entry: " + ec.message());
}

}  // namespace

std::string trak_data_fingerprint(const TrakData& data) {
  std::string key;
  key += sha256_data(data.train_inputs.data(), data.train_inputs.nbytes());
  key += shape_to_string(data.train_inputs.shape());
  key += sha256_data(data.train_labels.data(), data.train_labels.size() * sizeof(std::int64_t));
  key += sha256_data(data.target_inputs.data(), data.target_inputs.nbytes());
  key += shape_to_string(data.target_inputs.shape());
  key += sha256_data(data.target_labels.data(), data.target_labels.size() * sizeof(std::int64_t));
  return sha256_bytes(key);
}

NdArray trak_scores(const Algorithm& algorithm, const TrakData& data, const TrakSettings& settings,
                    const std::string& cache_dir, Progress& progress, TrakReport* report) {
  if (algorithm.checkpoints.empty())
    throw InputError("", "algorithm " + algorithm.label + " has no checkpoints")
        .expected("at least one checkpoint file");
  const std::int64_t n = data.train_inputs.empty() ? 0 : data.train_inputs.dim(0);
  const std::int64_t t = data.target_inputs.empty() ? 0 : data.target_inputs.dim(0);
  if (n == 0) throw InputError("", "the training set is empty");
  if (t == 0) throw InputError("", "the target (validation) set is empty");
  if (static_cast<std::int64_t>(data.train_labels.size()) != n ||
      static_cast<std::int64_t>(data.target_labels.size()) != t)
    throw InputError("", "labels do not match the inputs")
        .expected(std::to_string(n) + " training and " + std::to_string(t) + " target labels")
        .found(std::to_string(data.train_labels.size()) + " and " +
               std::to_string(data.target_labels.size()));

  const std::string data_key = cache_dir.empty() ? "" : trak_data_fingerprint(data);
  if (!cache_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(cache_dir, ec);
    if (ec) throw InputError(cache_dir, "cannot create the TRAK cache directory: " + ec.message());
  }
  torch::Tensor train_x, train_y, target_x, target_y;  // converted on first use only
  const std::string arch_hash =
      algorithm.architecture.empty() ? "" : sha256_path(algorithm.architecture);

  TrakEnsemble ensemble(t, n, settings.lambda);
  TrakReport local;
  TrakReport& rep = report != nullptr ? *report : local;
  const auto m = static_cast<int>(algorithm.checkpoints.size());
  for (int i = 0; i < m; ++i) {
    const std::string& ckpt = algorithm.checkpoints[static_cast<std::size_t>(i)];
    SubProgress sub(
        progress, static_cast<double>(i) / m, static_cast<double>(i + 1) / m,
        algorithm.label + " checkpoint " + std::to_string(i + 1) + "/" + std::to_string(m));
    CheckpointReport cr;
    cr.checkpoint = ckpt;
    CachedFeatures features;
    std::string cache_path;
    if (!cache_dir.empty()) {
      const std::string key = sha256_bytes(arch_hash + "|" + sha256_path(ckpt) + "|" + data_key +
                                           "|" + settings_key(settings) + "|" + std::to_string(i));
      cache_path = cache_dir + "/features-" + key.substr(0, 24) + ".h5";
      cr.from_cache = read_cache(cache_path, &features);
    }
    if (!cr.from_cache) {
      const auto start = std::chrono::steady_clock::now();
      TorchModel model = TorchModel::load(algorithm.architecture, ckpt);
      if (!train_x.defined()) {
        train_x = as_tensor(data.train_inputs);
        train_y = as_labels(data.train_labels);
        target_x = as_tensor(data.target_inputs);
        target_y = as_labels(data.target_labels);
      }
      detail::CheckpointFeaturizer featurizer(model.impl().module, model.describe(), settings, i);
      SubProgress train_progress(sub, 0.0, 0.9, "training examples");
      const detail::Features train = featurizer.run(train_x, train_y, train_progress);
      SubProgress target_progress(sub, 0.9, 1.0, "target examples");
      const detail::Features target = featurizer.run(target_x, target_y, target_progress);
      features.train = to_matrix(train.features);
      features.target = to_matrix(target.features);
      features.out_to_loss =
          Eigen::Map<const Eigen::VectorXf>(train.out_to_loss.data_ptr<float>(), n);
      features.target_accuracy =
          target.logits.argmax(1).eq(target_y).to(torch::kFloat64).mean().item<double>();
      rep.num_parameters = featurizer.projector().num_params();
      rep.frozen_parameters = featurizer.frozen_parameters();
      cr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!cache_path.empty()) write_cache(cache_path, features);
    }
    cr.target_accuracy = features.target_accuracy;
    cr.feature_dim = features.train.cols();
    const std::int64_t dropped_before = ensemble.dropped_columns() + ensemble.null_directions();
    ensemble.add_checkpoint(features.train, features.target, features.out_to_loss, ckpt);
    cr.kernel_dropped = ensemble.dropped_columns() + ensemble.null_directions() - dropped_before;
    rep.checkpoints.push_back(cr);
    sub.report(1.0, "done");
  }
  return ensemble.scores(settings.out_to_loss);
}

}  // namespace modeldiff::core
