// The models a run trains are kept for the next run only while their recipe holds, and the
// recipe names the training data by content: a training file rewritten in place (same path,
// other images) is never silently reused. The log says why models were kept or retrained.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "core/base/error.h"
#include "core/base/progress.h"
#include "core/base/sha256.h"
#include "core/io/npy.h"
#include "core/pipeline/project.h"
#include "core/pipeline/run_project.h"
#include "core/test_paths.h"

using namespace modeldiff::core;
using modeldiff::test::TempDir;

namespace {

constexpr std::int64_t kN = 40, kT = 12;

// N x 28 x 28 uint8 images drawn from `seed`, labels i % 10.
void write_images(const TempDir& dir, const std::string& stem, std::int64_t n, unsigned seed) {
  NdArray images = NdArray::allocate(DType::kUInt8, {n, 28, 28});
  std::mt19937 rng(seed);
  for (std::int64_t i = 0; i < images.numel(); ++i)
    images.mutable_data_as<std::uint8_t>()[i] = static_cast<std::uint8_t>(rng() % 256);
  NdArray labels = NdArray::allocate(DType::kInt64, {n});
  for (std::int64_t i = 0; i < n; ++i) labels.mutable_data_as<std::int64_t>()[i] = i % 10;
  write_npy(dir.file(stem + ".npy"), images);
  write_npy(dir.file(stem + "_y.npy"), labels);
}

// a.npy: a kT x kN score matrix for an algorithm given by its scores.
void write_given_scores(const TempDir& dir) {
  NdArray scores = NdArray::allocate(DType::kFloat32, {kT, kN});
  std::mt19937 rng(3);
  for (std::int64_t i = 0; i < scores.numel(); ++i)
    scores.mutable_data_as<float>()[i] = static_cast<float>(rng() % 1000) / 1000.0f + 0.01f;
  write_npy(dir.file("a.npy"), scores);
}

std::vector<std::string> run_logged(const TempDir& dir) {
  std::vector<std::string> log;
  NullProgress progress;
  run_project(load_project(dir.file("p.json")), progress,
              [&](const std::string& line) { log.push_back(line); });
  return log;
}

// The log line about training B.
std::string training_line(const std::vector<std::string>& log) {
  for (const auto& line : log)
    if (line.rfind("trained blind:", 0) == 0) return line;
  return "";
}

}  // namespace

TEST(RecipeContent, RewrittenTrainingFileRetrainsAndSaysWhy) {
  const TempDir dir("recipe_content");
  write_images(dir, "train", kN, 1);
  write_images(dir, "val", kT, 2);
  write_given_scores(dir);
  const std::string arch = std::string(MODELDIFF_SOURCE_DIR) + "/resources/demo/demo_cnn.pt";
  {
    std::ofstream f(dir.file("p.json"));
    f << R"({"name": "recipe", "output": "out",
      "data": {"train": {"images": "train.npy", "labels": "train_y.npy"},
               "val": {"images": "val.npy", "labels": "val_y.npy"}},
      "A": {"label": "given", "scores": "a.npy"},
      "B": {"label": "blind", "architecture": ")"
      << arch << R"(", "train": {"models": 1, "epochs": 1, "batch_size": 20}},
      "trak": {"proj_dim": 32}, "diff": {"components": 2, "per_class": false}})";
  }
  const std::string model = dir.file("out/models/B/model_0.pt");

  const std::string first = training_line(run_logged(dir));
  EXPECT_NE(first.find("trained blind: 1 models (0 kept"), std::string::npos) << first;
  ASSERT_TRUE(std::filesystem::exists(model));
  const std::string trained_on_first = sha256_path(model);

  // The same data: kept, and the log says on what grounds.
  const std::string second = training_line(run_logged(dir));
  EXPECT_NE(second.find("0 models (1 kept"), std::string::npos) << second;
  EXPECT_NE(second.find("same architecture, training data"), std::string::npos) << second;
  EXPECT_EQ(sha256_path(model), trained_on_first);

  // train.npy rewritten in place with other images (same path, shape and labels).
  write_images(dir, "train", kN, 99);
  const std::string third = training_line(run_logged(dir));
  EXPECT_NE(third.find("1 models (0 kept"), std::string::npos) << third;
  EXPECT_NE(third.find("retrained: train_data_sha256 changed"), std::string::npos) << third;
  EXPECT_NE(sha256_path(model), trained_on_first);
  // The earlier models are set aside, not deleted.
  EXPECT_EQ(sha256_path(dir.file("out/models/B.previous/model_0.pt")), trained_on_first);
}

TEST(RecipeContent, AModelTrakCannotFollowIsRefusedBeforeTraining) {
  // BatchNorm without running statistics: TRAK cannot follow it in eval mode. The run must say
  // so at once, naming the file, the parameter and the op, not after training its models.
  const TempDir dir("refused_before_training");
  write_images(dir, "train", kN, 1);
  write_images(dir, "val", kT, 2);
  const std::string arch = modeldiff::test::test_fixture("graph_bn_nostats.pt");
  ASSERT_TRUE(std::filesystem::exists(arch)) << arch;
  {
    std::ofstream f(dir.file("p.json"));
    f << R"({"name": "refused", "output": "out",
      "data": {"train": {"images": "train.npy", "labels": "train_y.npy"},
               "val": {"images": "val.npy", "labels": "val_y.npy"}},
      "A": {"label": "a", "architecture": ")"
      << arch << R"(", "train": {"models": 2, "epochs": 1, "batch_size": 20}},
      "B": {"label": "b", "architecture": ")"
      << arch << R"(", "train": {"models": 2, "epochs": 1, "batch_size": 20}},
      "trak": {"proj_dim": 32}, "diff": {"components": 2, "per_class": false}})";
  }
  try {
    run_logged(dir);
    FAIL() << "ran";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("graph_bn_nostats.pt"), std::string::npos) << what;
    EXPECT_NE(what.find("aten::batch_norm"), std::string::npos) << what;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("out/models/A/model_0.pt")));
}

TEST(RecipeContent, BuiltinResNet9IsWrittenTrainedAttributedAndKept) {
  // "architecture": "resnet9:width=2": the run writes the TorchScript file into its models
  // folder, shaped by the data (1 channel, 10 classes), trains on it, attributes every one of
  // its parameters, and a rerun keeps the models (the file's bytes are the same).
  const TempDir dir("builtin_recipe");
  write_images(dir, "train", kN, 1);
  write_images(dir, "val", kT, 2);
  write_given_scores(dir);
  {
    std::ofstream f(dir.file("p.json"));
    f << R"({"name": "builtin", "output": "out",
      "data": {"train": {"images": "train.npy", "labels": "train_y.npy"},
               "val": {"images": "val.npy", "labels": "val_y.npy"}},
      "A": {"label": "given", "scores": "a.npy"},
      "B": {"label": "blind", "architecture": "resnet9:width=2",
            "train": {"models": 1, "epochs": 1, "batch_size": 20}},
      "trak": {"proj_dim": 32}, "diff": {"components": 2, "per_class": false}})";
  }
  const std::vector<std::string> log = run_logged(dir);
  const std::string arch = dir.file("out/models/resnet9-w2-c1-k10.pt");
  ASSERT_TRUE(std::filesystem::exists(arch));
  bool named = false, attributed = false;
  for (const auto& line : log) {
    named |= line.find("architecture of blind: resnet9:width=2,in_channels=1,classes=10") == 0;
    // 2*1*9 + 4*2*25 + 2*(4*4*9) + 8*4*9 + 2*(8*8*9) + 4*8*9 + 10*4 = 2274 conv and linear
    // weights, 2 * (2 + 4 + 4 + 4 + 8 + 8 + 8 + 4) = 84 BatchNorm parameters.
    attributed |= line.find("TRAK blind:") == 0 &&
                  line.find("attributes 2358 parameters in 25 tensors") != std::string::npos;
  }
  EXPECT_TRUE(named) << "no line naming the built-in architecture";
  EXPECT_TRUE(attributed) << "no TRAK line attributing all 2358 parameters";
  const std::string model = dir.file("out/models/B/model_0.pt");
  ASSERT_TRUE(std::filesystem::exists(model));
  const nlohmann::json recipe =
      nlohmann::json::parse(std::ifstream(dir.file("out/models/B/recipe.json")));
  EXPECT_EQ(recipe["architecture_sha256"], sha256_path(arch));
  const std::string trained = sha256_path(model);
  const std::string again = training_line(run_logged(dir));
  EXPECT_NE(again.find("0 models (1 kept"), std::string::npos) << again;
  EXPECT_EQ(sha256_path(model), trained);
}
