#include "core/trak/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/base/error.h"
#include "core/trak/detail/projection.h"
#include "core/trak/detail/torch_convert.h"
#include "core/trak/detail/torch_model_impl.h"
#include "core/trak/detail/training.h"

namespace modeldiff::core {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kAugmentPad = 2;

// Independent random streams derived from the one user seed.
enum Stream : std::uint64_t { kInit = 1, kShuffle = 2, kAugment = 3, kTorch = 4 };

// Uniform in [0, n), n > 0, from the raw engine output: std distributions differ between
// standard libraries, and the same seed must give the same model everywhere.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) {
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
  std::uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

// Uniform in [0, 1) with 53 random bits.
double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

std::string short_type(const torch::jit::Module& m) {
  const std::string q = m.type()->name() ? m.type()->name()->qualifiedName() : std::string("?");
  const auto dot = q.find_last_of('.');
  return dot == std::string::npos ? q : q.substr(dot + 1);
}

// The tensor attribute `name` of `m`, or an undefined tensor (absent or None).
torch::Tensor tensor_attr(const torch::jit::Module& m, const char* name) {
  if (!m.hasattr(name)) return {};
  const c10::IValue v = m.attr(name);
  return v.isTensor() ? v.toTensor() : torch::Tensor();
}

void fill_uniform(torch::Tensor& t, double bound, std::uint64_t seed) {
  torch::Tensor values = torch::empty({t.numel()}, torch::kFloat64);
  double* p = values.data_ptr<double>();
  std::mt19937_64 rng(seed);
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = (2.0 * uniform01(rng) - 1.0) * bound;
  t.copy_(values.view(t.sizes()));
}

bool is_convolution_or_linear(const std::string& type) {
  return type == "Linear" || type == "Conv1d" || type == "Conv2d" || type == "Conv3d" ||
         type == "ConvTranspose1d" || type == "ConvTranspose2d" || type == "ConvTranspose3d";
}

bool is_normalisation(const std::string& type) {
  return type == "BatchNorm1d" || type == "BatchNorm2d" || type == "BatchNorm3d" ||
         type == "LayerNorm" || type == "GroupNorm";
}

}  // namespace

namespace detail {

void initialise_parameters(torch::jit::Module& module, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  std::uint64_t tensor_index = 0;
  for (const auto& named : module.named_modules()) {
    const std::string type = short_type(named.value);
    if (is_convolution_or_linear(type)) {
      torch::Tensor weight = tensor_attr(named.value, "weight");
      if (!weight.defined() || weight.dim() < 2) continue;
      std::int64_t fan_in = weight.size(1);
      for (std::int64_t d = 2; d < weight.dim(); ++d) fan_in *= weight.size(d);
      const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
      fill_uniform(weight, bound, detail::mix_seed(seed, kInit, tensor_index++));
      torch::Tensor bias = tensor_attr(named.value, "bias");
      if (bias.defined()) fill_uniform(bias, bound, detail::mix_seed(seed, kInit, tensor_index++));
    } else if (is_normalisation(type)) {
      torch::Tensor t;
      if ((t = tensor_attr(named.value, "weight")).defined()) t.fill_(1);
      if ((t = tensor_attr(named.value, "bias")).defined()) t.fill_(0);
      if ((t = tensor_attr(named.value, "running_mean")).defined()) t.fill_(0);
      if ((t = tensor_attr(named.value, "running_var")).defined()) t.fill_(1);
      if ((t = tensor_attr(named.value, "num_batches_tracked")).defined()) t.fill_(0);
    }
  }
}

}  // namespace detail

namespace {

// Both stored layouts through strides.
template <typename T>
void augment_images(T* images, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                    bool channels_last, std::mt19937_64& rng) {
  // Element (y, x, ch) of one image at y * sy + x * sx + ch * sc.
  const std::int64_t sy = channels_last ? w * c : w;
  const std::int64_t sx = channels_last ? c : 1;
  const std::int64_t sc = channels_last ? 1 : h * w;
  const std::int64_t image_size = h * w * c;
  std::vector<T> source(static_cast<std::size_t>(image_size));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto dy =
        static_cast<std::int64_t>(uniform_below(rng, 2 * kAugmentPad + 1)) - kAugmentPad;
    const auto dx =
        static_cast<std::int64_t>(uniform_below(rng, 2 * kAugmentPad + 1)) - kAugmentPad;
    const bool flip = (rng() & 1u) != 0;
    T* image = images + i * image_size;
    std::copy(image, image + image_size, source.begin());
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const std::int64_t from_y = y + dy, from_x = (flip ? w - 1 - x : x) + dx;
        const bool inside = from_y >= 0 && from_y < h && from_x >= 0 && from_x < w;
        for (std::int64_t ch = 0; ch < c; ++ch)
          image[y * sy + x * sx + ch * sc] =
              inside ? source[static_cast<std::size_t>(from_y * sy + from_x * sx + ch * sc)] : T{};
      }
  }
}

}  // namespace

namespace detail {

void random_crop_flip(ImageDataset& batch, std::mt19937_64& rng) {
  const std::int64_t n = batch.size();
  if (n == 0) return;
  if (batch.images.dtype() == DType::kUInt8) {
    augment_images(batch.images.mutable_data_as<std::uint8_t>(), n, batch.height(), batch.width(),
                   batch.channels(), batch.channels_last, rng);
  } else {
    MD_ASSERT(batch.images.dtype() == DType::kFloat32);
    augment_images(batch.images.mutable_data_as<float>(), n, batch.height(), batch.width(),
                   batch.channels(), batch.channels_last, rng);
  }
}

}  // namespace detail

namespace {

void check_labels(const ImageDataset& data, std::int64_t classes, const std::string& model_file) {
  for (std::size_t i = 0; i < data.labels.size(); ++i) {
    if (data.labels[i] >= classes) {
      throw InputError(data.source, "a label is not one of the model's classes")
          .key("example " + std::to_string(i))
          .expected("labels below " + std::to_string(classes) + " (the outputs of " + model_file +
                    ")")
          .found(std::to_string(data.labels[i]));
    }
  }
}

double accuracy(const NdArray& logits, const std::vector<std::int64_t>& labels) {
  const std::int64_t n = logits.dim(0), k = logits.dim(1);
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const float* p = logits.data_as<float>();
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = p + i * k;
    if (std::max_element(row, row + k) - row == labels[static_cast<std::size_t>(i)]) ++correct;
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

double evaluate(const TorchModel& model, const ImageDataset& data, const Preprocessing& prep) {
  if (data.size() == 0) return std::numeric_limits<double>::quiet_NaN();
  constexpr std::int64_t kChunk = 4096;  // bounds the float copy of a large validation set
  double correct = 0;
  for (std::int64_t begin = 0; begin < data.size(); begin += kChunk) {
    const std::int64_t end = std::min(data.size(), begin + kChunk);
    const NdArray logits = model.logits(preprocess(data, prep, begin, end));
    const std::vector<std::int64_t> labels(data.labels.begin() + begin, data.labels.begin() + end);
    correct += accuracy(logits, labels) * static_cast<double>(end - begin);
  }
  return correct / static_cast<double>(data.size());
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

void validate(const TrainSettings& s) {
  auto bad = [](const std::string& name, const std::string& expected, const std::string& found) {
    return InputError("", "training setting " + name + " out of range")
        .expected(expected)
        .found(found);
  };
  if (s.epochs < 1) throw bad("epochs", ">= 1", std::to_string(s.epochs));
  if (s.batch_size < 1) throw bad("batch size", ">= 1", std::to_string(s.batch_size));
  if (!(std::isfinite(s.lr) && s.lr > 0)) throw bad("lr", "> 0", number_text(s.lr));
  if (!(s.momentum >= 0 && s.momentum < 1))
    throw bad("momentum", "in [0, 1)", number_text(s.momentum));
  if (!(std::isfinite(s.weight_decay) && s.weight_decay >= 0))
    throw bad("weight decay", ">= 0", number_text(s.weight_decay));
}

std::string describe(const TrainSettings& s) {
  return "epochs=" + std::to_string(s.epochs) + ",batch=" + std::to_string(s.batch_size) +
         ",lr=" + number_text(s.lr) + ",momentum=" + number_text(s.momentum) +
         ",wd=" + number_text(s.weight_decay) + ",augment=" + (s.augment ? "yes" : "no") +
         ",seed=" + std::to_string(s.seed) + ",schedule=cosine" +
         (s.init.empty() ? "" : ",init=" + std::filesystem::path(s.init).filename().string());
}

TorchModel train_torch_model(const std::string& architecture, const ImageDataset& train,
                             const ImageDataset* val, const Preprocessing& prep,
                             const TrainSettings& settings, Progress& progress,
                             TrainResult* result) {
  const auto start = std::chrono::steady_clock::now();
  validate(settings);
  if (train.size() == 0) throw InputError(train.source, "no training examples");
  if (train.images.dtype() != DType::kUInt8 && train.images.dtype() != DType::kFloat32)
    throw InputError(train.source, "unsupported image type")
        .expected("uint8 or float32 images")
        .found(dtype_name(train.images.dtype()));
  validate(prep, train.channels());
  set_torch_threads(settings.threads);
  torch::manual_seed(detail::mix_seed(settings.seed, kTorch, 0));
  torch::AutoGradMode enable_grad(true);

  TorchModel model = TorchModel::load(architecture, settings.init, settings.device);
  torch::jit::Module& module = model.impl().module;
  const torch::Device device = model.impl().device;
  const std::string& model_file = model.impl().model_file();
  {
    // One example through the model first: logits() turns a shape mismatch into an InputError
    // naming the model and the input it expects.
    if (settings.init.empty()) detail::initialise_parameters(module, settings.seed);
    const NdArray probe = model.logits(preprocess(train, prep, 0, 1));
    check_labels(train, probe.dim(1), model_file);
    if (val != nullptr && val->size() > 0) {
      // Validation data the model cannot take should fail now, not after training.
      validate(prep, val->channels());
      const NdArray val_probe = model.logits(preprocess(*val, prep, 0, 1));
      if (val_probe.dim(1) != probe.dim(1))
        throw InputError(val->source, "validation images give another number of outputs")
            .expected(std::to_string(probe.dim(1)))
            .found(std::to_string(val_probe.dim(1)));
      check_labels(*val, probe.dim(1), model_file);
    }
  }

  std::vector<torch::Tensor> parameters;
  for (const torch::Tensor& p : module.parameters(/*recurse=*/true))
    if (p.requires_grad()) parameters.push_back(p);
  if (parameters.empty())
    throw InputError(model_file, "the model has no trainable parameters")
        .expected("parameters with requires_grad");
  torch::optim::SGD optimizer(parameters, torch::optim::SGDOptions(settings.lr)
                                              .momentum(settings.momentum)
                                              .weight_decay(settings.weight_decay));
  const torch::ScalarType input_type = parameters.front().scalar_type();

  const std::int64_t n = train.size();
  const std::int64_t batch = settings.batch_size;
  std::int64_t batches = (n + batch - 1) / batch;
  // A last batch of one example would break BatchNorm in train mode; it is left out (a
  // different one each epoch, as the order is reshuffled).
  if (n > 1 && n % batch == 1) --batches;
  const std::int64_t total_steps = batches * settings.epochs;

  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 shuffle_rng(detail::mix_seed(settings.seed, kShuffle, 0));
  std::mt19937_64 augment_rng(detail::mix_seed(settings.seed, kAugment, 0));

  module.train(true);
  const auto train_start = std::chrono::steady_clock::now();
  std::int64_t step = 0, examples_trained = 0, last_epoch_correct = 0, last_epoch_seen = 0;
  for (int epoch = 0; epoch < settings.epochs; ++epoch) {
    for (std::int64_t i = n - 1; i > 0; --i)  // Fisher-Yates
      std::swap(order[static_cast<std::size_t>(i)],
                order[uniform_below(shuffle_rng, static_cast<std::uint64_t>(i) + 1)]);
    for (std::int64_t b = 0; b < batches; ++b, ++step) {
      progress.throw_if_cancelled();
      const std::int64_t begin = b * batch, end = std::min(n, begin + batch);
      ImageDataset batch_data =
          subset(train, std::vector<std::int64_t>(order.begin() + begin, order.begin() + end));
      if (settings.augment) detail::random_crop_flip(batch_data, augment_rng);
      const torch::Tensor x =
          detail::to_tensor(preprocess(batch_data, prep, 0, end - begin)).to(device, input_type);
      const torch::Tensor y = torch::tensor(batch_data.labels, torch::kLong).to(device);

      const double lr =
          0.5 * settings.lr *
          (1.0 + std::cos(kPi * static_cast<double>(step) / static_cast<double>(total_steps)));
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      optimizer.zero_grad();
      const torch::Tensor logits = module.forward({x}).toTensor();
      const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      optimizer.step();

      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value)) {
        throw InputError(model_file, "training diverged: the loss is not finite")
            .key("epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(b + 1))
            .expected("a smaller learning rate than " + number_text(settings.lr));
      }
      examples_trained += end - begin;
      if (epoch == settings.epochs - 1) {
        last_epoch_correct += logits.argmax(1).eq(y).sum().item<std::int64_t>();
        last_epoch_seen += end - begin;
      }
      char message[128];
      std::snprintf(message, sizeof message, "epoch %d/%d, batch %lld/%lld, loss %.3f", epoch + 1,
                    settings.epochs, static_cast<long long>(b + 1), static_cast<long long>(batches),
                    loss_value);
      progress.report(static_cast<double>(step + 1) / static_cast<double>(total_steps), message);
    }
  }
  const double train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
  module.eval();
  progress.throw_if_cancelled();

  if (result != nullptr) {
    *result = TrainResult{};
    if (last_epoch_seen > 0)
      result->train_accuracy =
          static_cast<double>(last_epoch_correct) / static_cast<double>(last_epoch_seen);
    if (train_seconds > 0)
      result->examples_per_second = static_cast<double>(examples_trained) / train_seconds;
    if (val != nullptr) result->val_accuracy = evaluate(model, *val, prep);
    result->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return model;
}

TrainResult train_model(const std::string& architecture, const ImageDataset& train,
                        const ImageDataset* val, const Preprocessing& prep,
                        const TrainSettings& settings, const std::string& out_checkpoint,
                        Progress& progress) {
  TrainResult result;
  const TorchModel model =
      train_torch_model(architecture, train, val, prep, settings, progress, &result);
  progress.throw_if_cancelled();
  TorchModel::save_state_dict(model, out_checkpoint);
  result.checkpoint = out_checkpoint;
  return result;
}

std::string ensemble_checkpoint_path(const std::string& out_dir, const std::string& name_prefix,
                                     int m) {
  return (std::filesystem::path(out_dir) / (name_prefix + "_" + std::to_string(m) + ".pt"))
      .string();
}

std::vector<TrainResult> train_ensemble(const std::string& architecture, const ImageDataset& train,
                                        const ImageDataset* val, const Preprocessing& prep,
                                        const TrainSettings& settings, int models,
                                        const std::string& out_dir, const std::string& name_prefix,
                                        Progress& progress) {
  if (models < 1)
    throw InputError("", "the number of models must be at least 1").found(std::to_string(models));
  validate(settings);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (!std::filesystem::is_directory(out_dir))
    throw InputError(
        out_dir, "cannot create the output directory" + (ec ? ": " + ec.message() : std::string()));

  std::vector<TrainResult> results;
  for (int m = 0; m < models; ++m) {
    progress.throw_if_cancelled();
    const std::string path = ensemble_checkpoint_path(out_dir, name_prefix, m);
    const std::string label = "model " + std::to_string(m + 1) + "/" + std::to_string(models);
    SubProgress sub(progress, static_cast<double>(m) / models, static_cast<double>(m + 1) / models,
                    label);
    if (std::filesystem::exists(path)) {
      TrainResult reused;
      reused.checkpoint = path;
      reused.reused = true;
      const auto start = std::chrono::steady_clock::now();
      if (val != nullptr)
        reused.val_accuracy =
            evaluate(TorchModel::load(architecture, path, settings.device), *val, prep);
      reused.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      sub.report(1.0, "kept existing " + path);
      results.push_back(reused);
      continue;
    }
    TrainSettings member = settings;
    member.seed = settings.seed + static_cast<std::uint64_t>(m);
    results.push_back(train_model(architecture, train, val, prep, member, path, sub));
  }
  return results;
}

}  // namespace modeldiff::core
