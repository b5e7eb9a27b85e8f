// `modeldiff train`: trains an ensemble of models of one algorithm (a TorchScript architecture
// plus a recipe), optionally on data with a planted feature or with the feature's region
// hidden, and records what was done in DIR/train.json.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "console_progress.h"
#include "core/base/error.h"
#include "core/base/output_directory.h"
#include "core/base/sha256.h"
#include "core/base/threads.h"
#include "core/data/image_dataset.h"
#include "core/data/planted_feature.h"
#include "core/data/preprocessing.h"
#include "core/trak/builtin_architecture.h"
#include "core/trak/trainer.h"

namespace modeldiff::cli {
namespace {

using nlohmann::json;

struct TrainArgs {
  std::string model, train_images, train_labels, val_images, val_labels, out, preprocessing;
  std::string name = "model", device = "cpu";
  std::int64_t train_subset = 0;
  int models = 1;
  core::TrainSettings settings;
  std::int64_t plant_class = -1;
  double plant_fraction = 0.3;
  core::PlantedPatch patch;
  int plant_value = 255;
  std::uint64_t plant_seed = 0;
  bool hide_patch = false;
};

// NaN (no value) as JSON null.
json number_or_null(double v) {
  return std::isnan(v) ? json(nullptr) : json(v);
}

// Everything that decides what the checkpoints hold: a resumed run must have the same recipe.
json recipe_of(const TrainArgs& args, const core::Preprocessing& prep, std::int64_t n_train) {
  const core::TrainSettings& s = args.settings;
  json r;
  r["architecture"] = args.model;
  r["train"] = {{"images", args.train_images},
                {"labels", args.train_labels},
                {"subset", args.train_subset > 0 ? json(args.train_subset) : json(nullptr)},
                {"examples", n_train}};
  r["preprocessing"] = core::describe(prep);
  r["settings"] = {{"epochs", s.epochs},
                   {"batch_size", s.batch_size},
                   {"lr", s.lr},
                   {"schedule", "cosine"},
                   {"momentum", s.momentum},
                   {"weight_decay", s.weight_decay},
                   {"augment", s.augment},
                   {"seed", s.seed}};
  // Fine-tuning: the starting checkpoint by content (another one is another recipe).
  if (!s.init.empty()) r["init"] = {{"checkpoint", s.init}, {"sha256", core::sha256_path(s.init)}};
  const json region = {{"size", args.patch.size}, {"x", args.patch.x}, {"y", args.patch.y}};
  if (args.plant_class >= 0) {
    r["planted"] = region;
    r["planted"]["class"] = args.plant_class;
    r["planted"]["fraction"] = args.plant_fraction;
    r["planted"]["value"] = args.plant_value;
    r["planted"]["seed"] = args.plant_seed;
  } else {
    r["planted"] = nullptr;
  }
  r["hidden_region"] = args.hide_patch ? region : json(nullptr);
  return r;
}

// DIR/train.json, replaced atomically.
void write_record(const std::string& dir, const json& record) {
  core::OutputDirectory out(dir);
  const std::string path = out.staging_path("train.json");
  std::ofstream f(path);
  f << record.dump(2) << '\n';
  f.close();
  if (!f) throw core::InputError(path, "cannot write the training record");
  out.commit();
}

// A run into a directory that already holds models must use the same recipe, or the ensemble
// would mix models of two algorithms.
void check_resume(const std::string& dir, const json& recipe) {
  const std::string path = (std::filesystem::path(dir) / "train.json").string();
  if (!std::filesystem::exists(path)) return;
  json previous;
  try {
    std::ifstream f(path);
    previous = json::parse(f);
  } catch (const json::exception& e) {
    throw core::InputError(path,
                           std::string("cannot read the earlier training record: ") + e.what());
  }
  if (!previous.contains("recipe") || previous["recipe"] == recipe) return;
  std::string differs;
  for (const auto& [key, value] : recipe.items())
    if (!previous["recipe"].contains(key) || previous["recipe"][key] != value)
      differs += (differs.empty() ? "" : ", ") + key;
  throw core::InputError(dir, "holds models trained with another recipe (different: " + differs +
                                  "); use another --out or delete its models")
      .found("the recipe in " + path);
}

int run_train(TrainArgs args) {
  core::set_compute_threads(args.settings.threads);
  core::validate(args.settings);
  args.settings.device = args.device;
  args.patch.value = static_cast<std::uint8_t>(args.plant_value);
  const core::Preprocessing prep = core::parse_preprocessing(args.preprocessing);
  // Check the output location before any long work, so a typo fails in a second.
  { core::OutputDirectory check(args.out); }
  ConsoleProgress progress;

  progress.report(0.0, "loading data");
  core::ImageDataset train = core::load_dataset(args.train_images, args.train_labels);
  if (args.train_subset > 0) {
    if (args.train_subset > train.size())
      throw core::InputError(args.train_images, "--train-subset is larger than the data")
          .expected("at most " + std::to_string(train.size()))
          .found(std::to_string(args.train_subset));
    std::vector<std::int64_t> first(static_cast<std::size_t>(args.train_subset));
    for (std::int64_t i = 0; i < args.train_subset; ++i) first[static_cast<std::size_t>(i)] = i;
    train = core::subset(train, first);
  }
  std::unique_ptr<core::ImageDataset> val;
  if (!args.val_images.empty())
    val =
        std::make_unique<core::ImageDataset>(core::load_dataset(args.val_images, args.val_labels));

  std::vector<std::int64_t> planted;
  if (args.plant_class >= 0)
    planted = core::plant_patch(train, args.patch, args.plant_class, args.plant_fraction,
                                args.plant_seed);
  if (args.hide_patch) {
    core::hide_patch_region(train, args.patch);
    if (val) core::hide_patch_region(*val, args.patch);
  }

  // A built-in architecture is written into the output folder first; the recipe names it by
  // its canonical spec (the file's bytes follow from it).
  std::string architecture_file = args.model;
  if (core::is_builtin_architecture(args.model)) {
    std::int64_t largest_label = 0;
    for (const std::int64_t label : train.labels) largest_label = std::max(largest_label, label);
    const core::BuiltinArchitecture arch = core::with_data_defaults(
        core::parse_builtin_architecture(args.model), static_cast<int>(train.channels()),
        static_cast<int>(largest_label + 1));
    args.model = core::describe(arch);
    architecture_file = core::write_builtin_architecture(arch, args.out);
  }
  const json recipe = recipe_of(args, prep, train.size());
  check_resume(args.out, recipe);
  std::filesystem::create_directories(args.out);
  json record;
  record["recipe"] = recipe;
  record["architecture_file"] = std::filesystem::path(architecture_file).filename().string();
  record["validation"] = val ? json{{"images", args.val_images},
                                    {"labels", args.val_labels},
                                    {"examples", val->size()}}
                             : json(nullptr);
  record["planted_indices"] = planted;
  record["threads"] = args.settings.threads;
  record["device"] = args.device;
  record["complete"] = false;
  // Written first so that an interrupted run is resumed only with the same recipe.
  write_record(args.out, record);

  core::SubProgress sub(progress, 0.01, 1.0);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<core::TrainResult> results =
      core::train_ensemble(architecture_file, train, val.get(), prep, args.settings, args.models,
                           args.out, args.name, sub);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress.finish();

  record["models"] = json::array();
  for (std::size_t m = 0; m < results.size(); ++m) {
    const core::TrainResult& r = results[m];
    record["models"].push_back(
        {{"checkpoint", std::filesystem::path(r.checkpoint).filename().string()},
         {"seed", args.settings.seed + m},
         {"train_accuracy", number_or_null(r.train_accuracy)},
         {"val_accuracy", number_or_null(r.val_accuracy)},
         {"seconds", r.seconds},
         {"examples_per_second", r.examples_per_second},
         {"reused", r.reused}});
    std::printf("%s: ", r.checkpoint.c_str());
    if (r.reused) {
      std::printf("kept from an earlier run");
    } else {
      std::printf("train accuracy %.2f%% (last epoch), %.1f s, %.0f examples/s",
                  100.0 * r.train_accuracy, r.seconds, r.examples_per_second);
    }
    if (!std::isnan(r.val_accuracy))
      std::printf(", validation accuracy %.2f%%", 100.0 * r.val_accuracy);
    std::printf("\n");
  }
  record["seconds"] = seconds;
  record["complete"] = true;
  write_record(args.out, record);
  if (!planted.empty())
    std::printf("planted the patch in %zu training examples of class %lld\n", planted.size(),
                static_cast<long long>(args.plant_class));
  std::printf("wrote %zu checkpoints and train.json to %s\n", results.size(), args.out.c_str());
  if (architecture_file != args.model)
    std::printf("architecture %s: %s (for --model in trak, run and counterfactual)\n",
                args.model.c_str(), architecture_file.c_str());
  return 0;
}

}  // namespace

Command add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train an ensemble of models of one algorithm: DIR/<name>_<m>.pt (state dicts, model m "
      "with seed + m) and DIR/train.json. Rerunning with the same options resumes.");
  cmd->add_option("--model", args->model,
                  "TorchScript architecture (torch.jit.script(model).save), or a built-in one: "
                  "resnet9[:width=W] (the ModelDiff paper's ResNet-9, width 16 by default; the "
                  "paper's is 64), written into --out. The demo CNN for 28 x 28 grayscale "
                  "images is resources/demo/demo_cnn.pt in the source tree")
      ->required();
  cmd->add_option("--train-images", args->train_images,
                  "Training images: IDX, .npy (N x H x W [x C] uint8 or N x C x H x W float32) "
                  "or a folder of class sub-folders")
      ->required();
  cmd->add_option("--train-labels", args->train_labels, "Training labels (IDX, .npy, text)");
  auto* val_images = cmd->add_option("--val-images", args->val_images,
                                     "Validation images, for the accuracy of each model");
  cmd->add_option("--val-labels", args->val_labels, "Validation labels")->needs(val_images);
  cmd->add_option("--train-subset", args->train_subset, "Train on the first N examples only")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-m,--models", args->models, "Number of models")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--name", args->name, "Checkpoint name prefix: <name>_<m>.pt")
      ->capture_default_str();
  cmd->add_option("--epochs", args->settings.epochs, "Epochs")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", args->settings.batch_size, "Examples per batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--lr", args->settings.lr, "Peak learning rate (cosine decay to 0)")
      ->capture_default_str();
  cmd->add_option("--momentum", args->settings.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", args->settings.weight_decay, "SGD weight decay")
      ->capture_default_str();
  cmd->add_option("--init", args->settings.init,
                  "Start every model from this checkpoint of the architecture (fine-tuning a "
                  "pre-trained model) instead of the seeded initialisation")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--augment", args->settings.augment,
                "Random crop (2 pixels of zero padding) and horizontal flip");
  cmd->add_option("--seed", args->settings.seed,
                  "Seed of model 0 (initial weights, data order, augmentation)")
      ->capture_default_str();
  auto* plant_class = cmd->add_option(
      "--plant-class", args->plant_class,
      "Plant a square patch in a fraction of this class's training images (a feature the "
      "models can learn; the stamped indices go to train.json)");
  plant_class->check(CLI::NonNegativeNumber);
  cmd->add_option("--plant-fraction", args->plant_fraction,
                  "Fraction of the class's images that get the patch")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0))
      ->needs(plant_class);
  cmd->add_option("--plant-size", args->patch.size, "Patch side in pixels (also for --hide-patch)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--plant-x", args->patch.x, "Patch left column (also for --hide-patch)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--plant-y", args->patch.y, "Patch top row (also for --hide-patch)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--plant-value", args->plant_value, "Pixel value of the patch")
      ->capture_default_str()
      ->check(CLI::Range(0, 255))
      ->needs(plant_class);
  cmd->add_option("--plant-seed", args->plant_seed, "Seed choosing the stamped images")
      ->capture_default_str()
      ->needs(plant_class);
  cmd->add_flag("--hide-patch", args->hide_patch,
                "Set the patch region to 0 in every training and validation image (an "
                "algorithm that cannot see the planted feature)");
  cmd->add_option("--preprocess", args->preprocessing,
                  "Preprocessing, e.g. 'scale=1/255,mean=0.5,std=0.25,resize=32x32' (default: "
                  "uint8 / 255)");
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--threads", args->settings.threads, "Threads (0 = all cores)")
      ->capture_default_str();
  cmd->add_option("-o,--out", args->out, "Output directory")->required();
  return [args] { return run_train(*args); };
}

}  // namespace modeldiff::cli
