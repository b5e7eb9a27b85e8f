#include "core/trak/trak.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/attribution/trak_ensemble.h"
#include "core/base/error.h"
#include "core/base/output_directory.h"
#include "core/base/sha256.h"
#include "core/diff/significance.h"
#include "core/io/npy.h"
#include "core/trak/detail/featurizer.h"
#include "core/trak/detail/graph_capture.h"
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

// The first example of `inputs` (N x ...) as a 1 x ... array.
NdArray first_example(const NdArray& inputs) {
  std::vector<std::int64_t> shape = inputs.shape();
  shape[0] = 1;
  NdArray one = NdArray::allocate(inputs.dtype(), shape);
  std::memcpy(one.mutable_data(), inputs.data(), one.nbytes());
  return one;
}

// Before any gradient: the model on one training and one target example. A model that cannot
// take the inputs, or labels beyond its outputs, are an InputError naming the model file (and
// the input shape it expects), not a LibTorch error from inside the gradient code.
void check_model_fits(const TorchModel& model, const TrakData& data) {
  const std::int64_t classes = model.logits(first_example(data.train_inputs)).dim(1);
  (void)model.logits(first_example(data.target_inputs));
  const auto check = [&](const std::vector<std::int64_t>& labels, const char* which) {
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || labels[i] >= classes)
        throw InputError(model.impl().model_file(),
                         std::string("a ") + which + " label is not one of the model's classes")
            .key(std::string(which) + " example " + std::to_string(i))
            .expected("labels 0 to " + std::to_string(classes - 1) + " (the model has " +
                      std::to_string(classes) + " outputs)")
            .found(std::to_string(labels[i]));
  };
  check(data.train_labels, "training");
  check(data.target_labels, "target");
}

RowMatrixF to_matrix(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().to(torch::kFloat32).cpu();
  return Eigen::Map<const RowMatrixF>(c.data_ptr<float>(), c.size(0), c.size(1));
}

// While TRAK runs, glibc's malloc keeps freed memory for the next batch. By default it returns
// free memory at the top of its heaps to the system as soon as a threshold is exceeded that it
// adapts between 128 KB and 64 MB, and the workers' heaps shrink and grow with every batch of
// LibTorch's activations: on the demo (8 checkpoints, 6,000 examples) that was 600,000 page
// faults, 3 s of system time and about 1 s of the 12 s run. Here blocks below 32 MB come from
// the heaps and up to 512 MB of free memory stays there; the end gives it back (malloc_trim)
// and lowers the trim threshold to 64 MB. glibc keeps fixed thresholds once any is set (there
// is no way back to the adaptive ones): 32 MB and 64 MB are where its adaptive rule (trim = 2 x
// mmap threshold, the latter at most 32 MB) ends up in a process that frees large arrays, so
// the rest of the process (the GUI, a diff after TRAK) keeps no more free memory than that.
class MallocKeepsFreedMemory {
 public:
  MallocKeepsFreedMemory() {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
  }
  ~MallocKeepsFreedMemory() {
#if defined(__GLIBC__)
    malloc_trim(0);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
  }
  MallocKeepsFreedMemory(const MallocKeepsFreedMemory&) = delete;
  MallocKeepsFreedMemory& operator=(const MallocKeepsFreedMemory&) = delete;
};

struct CachedFeatures {
  RowMatrixF train, target;
  Eigen::VectorXf out_to_loss;
  double target_accuracy = 0;
};

std::string settings_key(const TrakSettings& s) {
  std::string key = std::to_string(s.proj_dim) + "|" + std::to_string(s.seed) + "|" +
                    std::to_string(static_cast<int>(s.projection));  // lambda, Q: applied later
  // Every trainable parameter (the default) keeps the key that entries had before selection.
  if (!s.params.patterns.empty() || s.params.skip_normalization) {
    key += "|params";
    for (const auto& p : s.params.patterns) key += ":" + p;
    key += s.params.skip_normalization ? "|no-norm" : "";
  }
  return key;
}

// One cache entry is a folder of .npy files, CACHE_DIR/features-<key>/ (kCacheFiles). It is
// written into a staging folder beside it and renamed into place in one step, so an entry
// either is complete or does not exist; a killed run leaves at most a staging folder, which
// is never read.
constexpr const char* kCacheFiles[] = {"train_features.npy", "target_features.npy",
                                       "out_to_loss.npy", "target_accuracy.npy"};

bool read_cache(const std::string& dir, const TrakData& data, CachedFeatures* out) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return false;
  try {
    const NdArray train = read_npy(dir + "/" + kCacheFiles[0]).to_float32();
    const NdArray target = read_npy(dir + "/" + kCacheFiles[1]).to_float32();
    const NdArray q = read_npy(dir + "/" + kCacheFiles[2]).to_float32();
    const NdArray acc = read_npy(dir + "/" + kCacheFiles[3]).to_float32();
    const std::int64_t n = data.train_inputs.dim(0), t = data.target_inputs.dim(0);
    if (train.ndim() != 2 || target.ndim() != 2 || train.dim(0) != n || target.dim(0) != t ||
        target.dim(1) != train.dim(1) || q.ndim() != 1 || q.dim(0) != n || acc.numel() != 1)
      return false;  // not what this key's features look like: recomputed
    out->train = Eigen::Map<const RowMatrixF>(train.data_as<float>(), train.dim(0), train.dim(1));
    out->target =
        Eigen::Map<const RowMatrixF>(target.data_as<float>(), target.dim(0), target.dim(1));
    out->out_to_loss = Eigen::Map<const Eigen::VectorXf>(q.data_as<float>(), q.dim(0));
    out->target_accuracy = acc.data_as<float>()[0];
    return true;
  } catch (const InputError&) {
    return false;  // a damaged cache entry is recomputed
  }
}

NdArray float_array(const float* values, std::vector<std::int64_t> shape) {
  NdArray a = NdArray::allocate(DType::kFloat32, std::move(shape));
  if (a.nbytes() > 0) std::memcpy(a.mutable_data(), values, a.nbytes());
  return a;
}

void write_cache(const std::string& dir, const CachedFeatures& f) {
  std::error_code ec;
  // An entry that exists but could not be read is replaced as a whole.
  if (std::filesystem::exists(dir, ec)) std::filesystem::remove_all(dir, ec);
  if (ec) throw InputError(dir, "cannot replace a damaged TRAK cache entry: " + ec.message());
  OutputDirectory entry(dir);  // stages beside `dir`; commit() renames the staging folder
  write_npy(entry.staging_path(kCacheFiles[0]),
            float_array(f.train.data(), {f.train.rows(), f.train.cols()}));
  write_npy(entry.staging_path(kCacheFiles[1]),
            float_array(f.target.data(), {f.target.rows(), f.target.cols()}));
  write_npy(entry.staging_path(kCacheFiles[2]),
            float_array(f.out_to_loss.data(), {f.out_to_loss.size()}));
  const float acc = static_cast<float>(f.target_accuracy);
  write_npy(entry.staging_path(kCacheFiles[3]), float_array(&acc, {1}));
  entry.commit();
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

void check_attributable(const std::string& architecture, const std::string& checkpoint,
                        const TrakSettings& settings) {
  TorchModel model = TorchModel::load(architecture, checkpoint, "cpu");
  const detail::GraphGradients graph(model.impl().module, model.describe(), settings.params);
}

NdArray trak_scores(const Algorithm& algorithm, const TrakData& data, const TrakSettings& settings,
                    const std::string& cache_dir, Progress& progress, TrakReport* report,
                    TrakBlockSums* blocks) {
  if (algorithm.checkpoints.empty())
    throw InputError("", "algorithm " + algorithm.label + " has no checkpoints")
        .expected("at least one checkpoint file");
  if (blocks != nullptr) {
    // The cuts end at the last checkpoint; TrakEnsemble::record_blocks checks the rest.
    MD_ASSERT(!blocks->cuts.empty() &&
              blocks->cuts.back() == static_cast<int>(algorithm.checkpoints.size()));
    blocks->sums = {};
  }
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

  const MallocKeepsFreedMemory keep_freed_memory;
  TrakEnsemble ensemble(t, n, settings.lambda);
  if (blocks != nullptr) ensemble.record_blocks(blocks->cuts);
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
      cache_path = cache_dir + "/features-" + key.substr(0, 24);
      cr.from_cache = read_cache(cache_path, data, &features);
    }
    if (!cr.from_cache) {
      const auto start = std::chrono::steady_clock::now();
      TorchModel model = TorchModel::load(algorithm.architecture, ckpt, settings.device);
      check_model_fits(model, data);
      if (!train_x.defined()) {
        train_x = as_tensor(data.train_inputs);
        train_y = as_labels(data.train_labels);
        target_x = as_tensor(data.target_inputs);
        target_y = as_labels(data.target_labels);
      }
      detail::CheckpointFeaturizer featurizer(model.impl().module, model.describe(), settings, i,
                                              settings.params);
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
      rep.attributed = featurizer.graph().describe();
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
  if (blocks != nullptr) blocks->sums = ensemble.take_blocks();
  return ensemble.scores(settings.out_to_loss);
}

BlockHalves trak_half_ensembles(TrakBlockSums& blocks, bool out_to_loss) {
  MD_ASSERT(blocks.cuts.size() == 5 && blocks.sums.score_sums.size() == 4 &&
            blocks.sums.out_to_loss.size() == 4);
  std::array<NdArray, 4> sums;
  std::array<std::vector<double>, 4> q;
  std::array<int, 5> cuts{};
  for (std::size_t k = 0; k < 4; ++k) {
    sums[k] = std::move(blocks.sums.score_sums[k]);
    q[k] = std::move(blocks.sums.out_to_loss[k]);
  }
  for (std::size_t k = 0; k < 5; ++k) cuts[k] = blocks.cuts[k];
  return block_halves(sums, cuts, out_to_loss ? &q : nullptr);
}

}  // namespace modeldiff::core
