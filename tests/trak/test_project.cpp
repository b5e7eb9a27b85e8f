// Project files and the main job's quality measure.
#include <gtest/gtest.h>

#include "core/base/error.h"
#include "core/pipeline/counterfactual.h"
#include "core/pipeline/project.h"
#include "core/pipeline/run_project.h"

using namespace modeldiff::core;

namespace {

const char* kMinimal = R"({
  "data": {"train": {"images": "d/train.npy", "labels": "d/train_y.npy", "subset": 100},
           "val": {"images": "/abs/val.npy", "labels": "/abs/val_y.npy"},
           "planted_patch": {"class": 2, "size": 4}},
  "A": {"architecture": "arch.pt", "checkpoints": ["a0.pt", "a1.pt"]},
  "B": {"label": "blind", "architecture": "arch.pt", "train": {"models": 3, "epochs": 2},
        "hide_patch": true},
  "trak": {"proj_dim": 512, "projection": "dense", "out_to_loss": false},
  "diff": {"components": 4, "raw_rows": true}
})";

std::string error_of(const std::string& text) {
  try {
    parse_project(text, "/base", "p.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Project, ParsesAndResolvesPathsAgainstTheFile) {
  const Project p = parse_project(kMinimal, "/base", "/base/p.json");
  EXPECT_EQ(p.train.images, "/base/d/train.npy");
  EXPECT_EQ(p.train.subset, 100);
  EXPECT_EQ(p.val.images, "/abs/val.npy");
  EXPECT_EQ(p.output, "/base/p-run");
  EXPECT_EQ(p.a.label, "A");
  EXPECT_EQ(p.a.checkpoints, (std::vector<std::string>{"/base/a0.pt", "/base/a1.pt"}));
  EXPECT_FALSE(p.a.trains());
  EXPECT_TRUE(p.b.trains());
  EXPECT_EQ(p.b.models, 3);
  EXPECT_EQ(p.b.train.epochs, 2);
  EXPECT_TRUE(p.b.hide_patch);
  EXPECT_TRUE(p.plant.enabled);
  EXPECT_EQ(p.plant.target_class, 2);
  EXPECT_EQ(p.plant.patch.size, 4);
  EXPECT_EQ(p.trak.proj_dim, 512);
  EXPECT_EQ(p.trak.projection, ProjectionKind::kDense);
  EXPECT_FALSE(p.trak.out_to_loss);
  EXPECT_EQ(p.components, 4);
  EXPECT_FALSE(p.normalize_rows);
  // project_json round-trips.
  const Project q = parse_project(project_json(p), "/elsewhere", "q.json");
  EXPECT_EQ(q.train.images, p.train.images);
  EXPECT_EQ(q.b.models, 3);
  EXPECT_EQ(q.trak.projection, ProjectionKind::kDense);
  EXPECT_EQ(q.output, p.output);
}

TEST(Project, MistakesAreNamedByKey) {
  std::string s = kMinimal;
  EXPECT_NE(error_of(s.replace(s.find("proj_dim"), 8, "projdim")).find("trak.projdim"),
            std::string::npos);
  s = kMinimal;
  EXPECT_NE(
      error_of(s.replace(s.find("\"epochs\": 2"), 11, "\"epochs\": 0")).find("B.train.epochs"),
      std::string::npos);
  s = kMinimal;
  EXPECT_NE(error_of(s.replace(s.find("\"dense\""), 7, "\"sparse\"")).find("trak.projection"),
            std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("expected an object"), std::string::npos);
  EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"data": {"train": {"images": "x"}}})").find("data.val"),
            std::string::npos);
  s = kMinimal;
  const std::string both = s.replace(s.find("\"label\": \"blind\""), 16, "\"label\": \"A\"");
  EXPECT_NE(error_of(both).find("different labels"), std::string::npos);
}

TEST(Project, DemoIsAValidProject) {
  const Project p = demo_project("/r/demo_cnn.pt", "/f", "/o", false);
  EXPECT_TRUE(p.a.trains() && p.b.trains());
  EXPECT_TRUE(p.b.hide_patch && !p.a.hide_patch);
  EXPECT_EQ(p.a.models, 8);
  const Project round = parse_project(project_json(p), "/", "demo.json");
  EXPECT_EQ(round.train.subset, p.train.subset);
  EXPECT_EQ(round.plant.target_class, 6);
}

TEST(SameLabelRate, CountsTheTopKLabels) {
  // Two targets, four training examples with labels 0 0 1 1.
  NdArray s = NdArray::allocate(DType::kFloat32, {2, 4});
  float* p = s.mutable_data_as<float>();
  const float rows[8] = {4, 3, 2, 1,   // target 0 (label 0): top-2 = {0, 1}: both label 0
                         4, 1, 3, 2};  // target 1 (label 1): top-2 = {0, 2}: one label 1
  std::copy(rows, rows + 8, p);
  EXPECT_DOUBLE_EQ(same_label_rate(s, {0, 0, 1, 1}, {0, 1}, 2), 0.75);
  EXPECT_DOUBLE_EQ(same_label_rate(s, {0, 0, 1, 1}, {0, 1}, 4), 0.5);
  EXPECT_THROW(same_label_rate(s, {0, 0, 1}, {0, 1}, 2), InputError);
}

TEST(Counterfactual, BootstrapIntervalOverCheckpoints) {
  // Identical checkpoints: no spread.
  const Interval same = bootstrap_interval({0.2, 0.2, 0.2}, {}, 1);
  EXPECT_DOUBLE_EQ(same.mean, 0.2);
  EXPECT_DOUBLE_EQ(same.low, 0.2);
  EXPECT_DOUBLE_EQ(same.high, 0.2);
  // The interval holds the mean, lies within the values' range, and is seeded.
  const std::vector<double> v = {0.1, 0.3, 0.2, 0.5, 0.0, 0.4};
  const Interval i = bootstrap_interval(v, {}, 7);
  EXPECT_NEAR(i.mean, 0.25, 1e-12);
  EXPECT_LT(i.low, i.mean);
  EXPECT_GT(i.high, i.mean);
  EXPECT_GE(i.low, 0.0);
  EXPECT_LE(i.high, 0.5);
  const Interval again = bootstrap_interval(v, {}, 7);
  EXPECT_EQ(i.low, again.low);
  // A minus B: the difference of the means.
  const Interval d = bootstrap_interval(v, {0.05, 0.05}, 7);
  EXPECT_NEAR(d.mean, 0.2, 1e-12);
  EXPECT_NEAR(d.low, i.low - 0.05, 0.05);
}
