// Training the demo CNN on real Fashion-MNIST: it learns, its checkpoint loads back with the
// same logits, seeds decide the weights bit for bit, cancelling writes nothing, ensembles resume.
// Plus the pieces on their own: PyTorch's default initialisation and the crop/flip augmentation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include "common/skip.h"
#include "common/temp_dir.h"
#include "core/base/error.h"
#include "core/data/image_dataset.h"
#include "core/test_paths.h"
#include "core/trak/detail/torch_model_impl.h"
#include "core/trak/detail/training.h"
#include "core/trak/trainer.h"

using namespace modeldiff::core;
using modeldiff::test::TempDir;
namespace fs = std::filesystem;

#ifndef MODELDIFF_SOURCE_DIR
#define MODELDIFF_SOURCE_DIR "."
#endif

namespace {

const std::string kFashion = "/usr/share/datasets/fashion-mnist/";

std::string demo_architecture() {
  return std::string(MODELDIFF_SOURCE_DIR) + "/resources/demo/demo_cnn.pt";
}

bool have_fashion_mnist() {
  return fs::exists(kFashion + "train-images-idx3-ubyte.gz") &&
         fs::exists(kFashion + "t10k-images-idx3-ubyte.gz");
}

std::vector<std::int64_t> first(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

// Loaded once for the whole file: decoding 70,000 gzipped images takes a moment.
struct Fashion {
  ImageDataset train, val;
};
const Fashion& fashion() {
  static const Fashion data = [] {
    Fashion f;
    f.train = subset(load_idx_dataset(kFashion + "train-images-idx3-ubyte.gz",
                                      kFashion + "train-labels-idx1-ubyte.gz"),
                     first(2000));
    f.val = subset(load_idx_dataset(kFashion + "t10k-images-idx3-ubyte.gz",
                                    kFashion + "t10k-labels-idx1-ubyte.gz"),
                   first(500));
    return f;
  }();
  return data;
}

// Every parameter and buffer, by name.
std::vector<std::pair<std::string, torch::Tensor>> state_of(const TorchModel& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : m.impl().module.named_parameters(/*recurse=*/true))
    out.emplace_back(p.name, p.value.detach().clone());
  for (const auto& b : m.impl().module.named_buffers(/*recurse=*/true))
    out.emplace_back(b.name, b.value.detach().clone());
  return out;
}

bool identical(const TorchModel& a, const TorchModel& b) {
  const auto sa = state_of(a), sb = state_of(b);
  if (sa.size() != sb.size()) return false;
  for (std::size_t i = 0; i < sa.size(); ++i)
    if (sa[i].first != sb[i].first || !torch::equal(sa[i].second, sb[i].second)) return false;
  return true;
}

// One thread: on a busy machine a second OpenMP thread slows these small batches down more than
// it helps; the first test trains with two to check determinism across parallel kernels.
TrainSettings one_epoch(std::uint64_t seed, int threads = 1) {
  TrainSettings s;
  s.epochs = 1;
  s.seed = seed;
  s.threads = threads;
  return s;
}

// Cancels once `after` reports have arrived.
class CancelAfter final : public Progress {
 public:
  explicit CancelAfter(int after) : after_(after) {}
  void report(double, std::string_view) override { ++reports_; }
  bool cancelled() const override { return reports_ >= after_; }
  int reports() const { return reports_; }

 private:
  int after_;
  int reports_ = 0;
};

class CountingProgress final : public Progress {
 public:
  void report(double fraction, std::string_view) override {
    EXPECT_GE(fraction, last_);
    last_ = fraction;
    ++reports_;
  }
  bool cancelled() const override { return false; }
  int reports() const { return reports_; }
  double last() const { return last_; }

 private:
  int reports_ = 0;
  double last_ = 0;
};

}  // namespace

TEST(Trainer, DemoCnnLearnsFashionMnistAndItsCheckpointGivesTheSameLogits) {
  MODELDIFF_SKIP_IF_MISSING(!have_fashion_mnist(), "Fashion-MNIST not installed");
  const Fashion& data = fashion();
  TempDir dir("trainer");
  CountingProgress progress;
  const std::string ckpt = dir.file("m.pt");
  const TrainResult r = train_model(demo_architecture(), data.train, &data.val, Preprocessing{},
                                    one_epoch(0, 2), ckpt, progress);
  EXPECT_EQ(r.checkpoint, ckpt);
  EXPECT_GT(r.val_accuracy, 0.5) << "chance is 0.1";
  EXPECT_GT(r.train_accuracy, 0.3);
  // A share of the 2000 training examples of the (only) epoch: a whole number of them.
  EXPECT_NEAR(r.train_accuracy * 2000, std::round(r.train_accuracy * 2000), 1e-6);
  EXPECT_GT(r.seconds, 0.0);
  EXPECT_GT(r.examples_per_second, 0.0);
  EXPECT_FALSE(r.reused);
  EXPECT_EQ(progress.reports(), 16);  // ceil(2000 / 128) batches, one report each
  EXPECT_DOUBLE_EQ(progress.last(), 1.0);

  // The same seed again, kept in memory: identical weights, and the written checkpoint loads
  // back into the architecture with exactly the trained module's logits.
  NullProgress quiet;
  TrainResult again;
  const TorchModel trained = train_torch_model(demo_architecture(), data.train, &data.val,
                                               Preprocessing{}, one_epoch(0, 2), quiet, &again);
  EXPECT_EQ(again.val_accuracy, r.val_accuracy);
  EXPECT_EQ(again.train_accuracy, r.train_accuracy);
  const TorchModel loaded = TorchModel::load(demo_architecture(), ckpt);
  EXPECT_TRUE(identical(trained, loaded));
  const NdArray x = preprocess(data.val, Preprocessing{}, 0, 100);
  const NdArray a = trained.logits(x), b = loaded.logits(x);
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.nbytes()));
  // The reported validation accuracy is the share of the 500 validation images whose largest
  // logit (of the checkpoint, here) is their label.
  const NdArray val_logits = loaded.logits(preprocess(data.val, Preprocessing{}, 0, 500));
  ASSERT_EQ(val_logits.shape(), (std::vector<std::int64_t>{500, 10}));
  int correct = 0;
  for (std::int64_t i = 0; i < 500; ++i) {
    const float* row = val_logits.data_as<float>() + i * 10;
    correct +=
        std::max_element(row, row + 10) - row == data.val.labels[static_cast<std::size_t>(i)];
  }
  EXPECT_DOUBLE_EQ(r.val_accuracy, correct / 500.0);
  EXPECT_GT(correct, 250) << "chance is 50";

  // Another seed: other initial weights, other order, another model.
  const TorchModel other = train_torch_model(demo_architecture(), data.train, nullptr,
                                             Preprocessing{}, one_epoch(1, 2), quiet);
  EXPECT_FALSE(identical(trained, other));
}

TEST(Trainer, AugmentedTrainingIsSeededToo) {
  MODELDIFF_SKIP_IF_MISSING(!have_fashion_mnist(), "Fashion-MNIST not installed");
  const ImageDataset train = subset(fashion().train, first(300));
  TrainSettings s = one_epoch(5);
  s.augment = true;
  s.batch_size = 64;
  NullProgress quiet;
  const TorchModel a =
      train_torch_model(demo_architecture(), train, nullptr, Preprocessing{}, s, quiet);
  const TorchModel b =
      train_torch_model(demo_architecture(), train, nullptr, Preprocessing{}, s, quiet);
  EXPECT_TRUE(identical(a, b));
  s.augment = false;
  const TorchModel c =
      train_torch_model(demo_architecture(), train, nullptr, Preprocessing{}, s, quiet);
  EXPECT_FALSE(identical(a, c));
}

TEST(Trainer, CancelledTrainingWritesNothing) {
  MODELDIFF_SKIP_IF_MISSING(!have_fashion_mnist(), "Fashion-MNIST not installed");
  TempDir dir("trainer");
  CancelAfter progress(3);
  EXPECT_THROW(train_model(demo_architecture(), fashion().train, &fashion().val, Preprocessing{},
                           one_epoch(0), dir.file("m.pt"), progress),
               Cancelled);
  EXPECT_EQ(progress.reports(), 3);  // stopped at the next batch boundary
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Trainer, EnsembleTrainsOneSeedPerModelAndResumes) {
  MODELDIFF_SKIP_IF_MISSING(!have_fashion_mnist(), "Fashion-MNIST not installed");
  const ImageDataset train = subset(fashion().train, first(256));
  const ImageDataset val = subset(fashion().val, first(100));
  TempDir dir("trainer");
  const std::string out = dir.file("ensemble");  // created by train_ensemble
  TrainSettings s = one_epoch(10);
  NullProgress quiet;
  const auto first_run =
      train_ensemble(demo_architecture(), train, &val, Preprocessing{}, s, 2, out, "algo", quiet);
  ASSERT_EQ(first_run.size(), 2u);
  EXPECT_EQ(first_run[0].checkpoint, out + "/algo_0.pt");
  EXPECT_EQ(first_run[1].checkpoint, out + "/algo_1.pt");
  EXPECT_FALSE(first_run[0].reused);

  // Model m is the model of seed + m.
  TrainSettings seed11 = s;
  seed11.seed = 11;
  const TorchModel direct =
      train_torch_model(demo_architecture(), train, nullptr, Preprocessing{}, seed11, quiet);
  EXPECT_TRUE(identical(direct, TorchModel::load(demo_architecture(), out + "/algo_1.pt")));

  // Resume: the existing model is kept (not retrained), the missing one is trained again.
  fs::remove(out + "/algo_0.pt");
  const auto mtime = fs::last_write_time(out + "/algo_1.pt");
  const auto second_run =
      train_ensemble(demo_architecture(), train, &val, Preprocessing{}, s, 2, out, "algo", quiet);
  EXPECT_FALSE(second_run[0].reused);
  EXPECT_TRUE(second_run[1].reused);
  EXPECT_TRUE(std::isnan(second_run[1].train_accuracy));
  EXPECT_EQ(second_run[1].examples_per_second, 0.0);
  EXPECT_EQ(second_run[1].val_accuracy, first_run[1].val_accuracy);
  EXPECT_EQ(second_run[0].val_accuracy, first_run[0].val_accuracy);
  EXPECT_EQ(fs::last_write_time(out + "/algo_1.pt"), mtime);
}

TEST(Trainer, BatchNormModelTrainsAndTracksItsStatistics) {
  const std::string arch = modeldiff::test::test_fixture("models/bn_arch.pt");
  MODELDIFF_SKIP_IF_MISSING(!fs::exists(arch), "python fixtures not generated");
  ImageDataset train;
  train.source = "random";
  train.images = NdArray::allocate(DType::kUInt8, {65, 28, 28, 1});
  auto* p = train.images.mutable_data_as<std::uint8_t>();
  for (std::int64_t i = 0; i < train.images.numel(); ++i) p[i] = static_cast<std::uint8_t>(i * 37);
  for (std::int64_t i = 0; i < 65; ++i) train.labels.push_back(i % 10);
  TrainSettings s = one_epoch(0);
  s.epochs = 2;
  s.batch_size = 16;  // 65 = 4 x 16 + 1: the one-example batch is left out
  CountingProgress progress;
  const TorchModel m = train_torch_model(arch, train, nullptr, Preprocessing{}, s, progress);
  EXPECT_EQ(progress.reports(), 8);
  bool tracked = false;
  for (const auto& b : m.impl().module.named_buffers(/*recurse=*/true))
    if (b.name == "1.num_batches_tracked") {
      EXPECT_EQ(b.value.item<std::int64_t>(), 8);  // reset to 0 by the initialisation
      tracked = true;
    }
  EXPECT_TRUE(tracked);
  EXPECT_FALSE(m.impl().module.is_training());
}

TEST(TrainerErrors, BadInputIsAnInputError) {
  ImageDataset train;
  train.source = "tiny";
  train.images = NdArray::allocate(DType::kUInt8, {4, 28, 28, 1});
  train.labels = {0, 1, 2, 12};
  NullProgress quiet;
  try {
    train_torch_model(demo_architecture(), train, nullptr, Preprocessing{}, one_epoch(0), quiet);
    FAIL() << "label 12 with 10 outputs";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("12"), std::string::npos) << e.what();
  }
  train.labels = {0, 1, 2, 3};
  ImageDataset wrong_size = train;
  wrong_size.images = NdArray::allocate(DType::kUInt8, {4, 32, 32, 1});
  EXPECT_THROW(train_torch_model(demo_architecture(), wrong_size, nullptr, Preprocessing{},
                                 one_epoch(0), quiet),
               InputError);
  TrainSettings bad = one_epoch(0);
  bad.lr = 0;
  EXPECT_THROW(train_torch_model(demo_architecture(), train, nullptr, Preprocessing{}, bad, quiet),
               InputError);
  bad = one_epoch(0);
  bad.epochs = 0;
  EXPECT_THROW(train_torch_model(demo_architecture(), train, nullptr, Preprocessing{}, bad, quiet),
               InputError);
  EXPECT_THROW(train_torch_model("/nonexistent/arch.pt", train, nullptr, Preprocessing{},
                                 one_epoch(0), quiet),
               InputError);
  TempDir dir("trainer");
  EXPECT_THROW(train_ensemble(demo_architecture(), train, nullptr, Preprocessing{}, one_epoch(0), 0,
                              dir.path(), "m", quiet),
               InputError);
}

TEST(TrainerInit, PyTorchDefaultBoundsAndSeeded) {
  TorchModel a = TorchModel::load(demo_architecture(), "");
  TorchModel b = TorchModel::load(demo_architecture(), "");
  TorchModel c = TorchModel::load(demo_architecture(), "");
  modeldiff::core::detail::initialise_parameters(a.impl().module, 3);
  modeldiff::core::detail::initialise_parameters(b.impl().module, 3);
  modeldiff::core::detail::initialise_parameters(c.impl().module, 4);
  EXPECT_TRUE(identical(a, b));
  EXPECT_FALSE(identical(a, c));
  // fan_in: conv 0: 1 x 3 x 3, conv 3: 16 x 3 x 3, linear 7: 1568.
  const std::map<std::string, double> fan_in = {{"0", 9}, {"3", 144}, {"7", 1568}};
  for (const auto& p : a.impl().module.named_parameters(/*recurse=*/true)) {
    const std::string layer = p.name.substr(0, p.name.find('.'));
    const double bound = 1.0 / std::sqrt(fan_in.at(layer));
    const torch::Tensor t = p.value.detach().to(torch::kFloat64);
    EXPECT_LE(t.abs().max().item<double>(), bound) << p.name;
    if (t.numel() >= 1000) {  // U(-b, b): mean 0, standard deviation b / sqrt(3)
      EXPECT_NEAR(t.mean().item<double>(), 0.0, 0.1 * bound) << p.name;
      EXPECT_NEAR(t.std().item<double>(), bound / std::sqrt(3.0), 0.05 * bound) << p.name;
    }
  }
}

TEST(TrainerAugment, CropWithZeroPaddingAndFlip) {
  // 1000 images 5 x 6 x 2 with distinct non-zero pixels; every output must be the input shifted
  // by (dy, dx) in [-2, 2] after an optional flip, zero where it came from outside.
  const std::int64_t n = 1000, h = 5, w = 6, c = 2;
  ImageDataset batch;
  batch.images = NdArray::allocate(DType::kUInt8, {n, h, w, c});
  auto* p = batch.images.mutable_data_as<std::uint8_t>();
  auto pixel = [&](std::int64_t i, std::int64_t y, std::int64_t x, std::int64_t ch) {
    return static_cast<std::uint8_t>(1 + (i * 7 + y * w * c + x * c + ch) % 250);
  };
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x)
        for (std::int64_t ch = 0; ch < c; ++ch)
          p[((i * h + y) * w + x) * c + ch] = pixel(i, y, x, ch);
  batch.labels.assign(n, 0);
  std::mt19937_64 rng(1);
  modeldiff::core::detail::random_crop_flip(batch, rng);

  std::set<std::tuple<int, int, bool>> seen;
  for (std::int64_t i = 0; i < n; ++i) {
    int matches = 0;
    for (int dy = -2; dy <= 2; ++dy)
      for (int dx = -2; dx <= 2; ++dx)
        for (const bool flip : {false, true}) {
          bool all = true;
          for (std::int64_t y = 0; y < h && all; ++y)
            for (std::int64_t x = 0; x < w && all; ++x)
              for (std::int64_t ch = 0; ch < c && all; ++ch) {
                const std::int64_t fy = y + dy, fx = (flip ? w - 1 - x : x) + dx;
                const bool inside = fy >= 0 && fy < h && fx >= 0 && fx < w;
                all = p[((i * h + y) * w + x) * c + ch] == (inside ? pixel(i, fy, fx, ch) : 0);
              }
          if (all) {
            ++matches;
            seen.emplace(dy, dx, flip);
          }
        }
    EXPECT_EQ(matches, 1) << "image " << i;
  }
  EXPECT_EQ(seen.size(), 50u);  // all 5 x 5 x 2 transforms occur in 1000 draws

  // The float channels-first layout takes the same transform from the same draws.
  ImageDataset floats;
  floats.channels_last = false;
  floats.images = NdArray::allocate(DType::kFloat32, {1, 1, 3, 3});
  float* f = floats.images.mutable_data_as<float>();
  for (int k = 0; k < 9; ++k) f[k] = static_cast<float>(k + 1);
  floats.labels = {0};
  ImageDataset bytes;
  bytes.images = NdArray::allocate(DType::kUInt8, {1, 3, 3, 1});
  for (int k = 0; k < 9; ++k)
    bytes.images.mutable_data_as<std::uint8_t>()[k] = static_cast<std::uint8_t>(k + 1);
  bytes.labels = {0};
  std::mt19937_64 r1(9), r2(9);
  modeldiff::core::detail::random_crop_flip(floats, r1);
  modeldiff::core::detail::random_crop_flip(bytes, r2);
  for (int k = 0; k < 9; ++k)
    EXPECT_EQ(f[k], static_cast<float>(bytes.images.data_as<std::uint8_t>()[k])) << k;
}
