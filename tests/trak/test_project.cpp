// Project files and the main job's quality measure.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "common/skip.h"
#include "common/temp_dir.h"
#include "core/attribution/score_quality.h"
#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/data/image_dataset.h"
#include "core/data/planted_feature.h"
#include "core/data/transform.h"
#include "core/diff/diff_summary.h"
#include "core/diff/model_diff.h"
#include "core/io/npy.h"
#include "core/pipeline/counterfactual.h"
#include "core/pipeline/project.h"
#include "core/pipeline/run_project.h"

#ifndef MODELDIFF_SOURCE_DIR
#define MODELDIFF_SOURCE_DIR "."
#endif

using namespace modeldiff::core;
using modeldiff::test::TempDir;
namespace fs = std::filesystem;

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

const char* kPrecomputed = R"({
  "data": {"train": {"images": "train.npy", "labels": "train_y.npy"},
           "val": {"images": "val.npy", "labels": "val_y.npy"},
           "planted_patch": {"class": 1}},
  "A": {"label": "aug", "scores": "s/a_scores.pt", "scores_key": "weight"},
  "B": {"label": "plain", "scores": "/abs/b.npy"}
})";

// kPrecomputed with A's entry replaced.
std::string with_a(const std::string& a) {
  std::string s = kPrecomputed;
  const auto begin = s.find("\"A\": {");
  const auto end = s.find('}', begin) + 1;
  return s.replace(begin, end - begin, "\"A\": {" + a + "}");
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  ASSERT_TRUE(f.good()) << path;
}

NdArray transposed(const NdArray& m) {
  const std::int64_t r = m.dim(0), c = m.dim(1);
  NdArray t = NdArray::allocate(DType::kFloat32, {c, r});
  for (std::int64_t i = 0; i < r; ++i)
    for (std::int64_t j = 0; j < c; ++j)
      t.mutable_data_as<float>()[j * r + i] = m.data_as<float>()[i * c + j];
  return t;
}

bool same_bytes(const NdArray& x, const NdArray& y) {
  return x.shape() == y.shape() && x.dtype() == y.dtype() &&
         std::memcmp(x.data(), y.data(), static_cast<std::size_t>(x.numel()) * sizeof(float)) == 0;
}

// A tiny labelled data set (6 x 6 grey images, classes 0 1 2 in turn) as .npy files. kN is
// more than the 20 training examples the same-label check looks at, so the scores decide it.
constexpr std::int64_t kT = 12, kN = 30, kSpecial = 7;
std::vector<std::int64_t> tiny_labels(std::int64_t n) {
  std::vector<std::int64_t> l(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) l[static_cast<std::size_t>(i)] = i % 3;
  return l;
}
void write_tiny_dataset(const TempDir& dir, const std::string& stem, std::int64_t n) {
  NdArray images = NdArray::allocate(DType::kUInt8, {n, 6, 6});
  for (std::int64_t i = 0; i < n * 36; ++i)
    images.mutable_data_as<std::uint8_t>()[i] = static_cast<std::uint8_t>((i * 37) % 251);
  NdArray labels = NdArray::allocate(DType::kInt64, {n});
  const auto l = tiny_labels(n);
  std::copy(l.begin(), l.end(), labels.mutable_data_as<std::int64_t>());
  write_npy(dir.file(stem + ".npy"), images);
  write_npy(dir.file(stem + "_y.npy"), labels);
}

// B: seeded positive noise (T x N) in [0.1, 1], plus 1 where the training example's label is
// the target's: every target's 10 same-label examples are among its top 20 and no other is
// needed, so the top-20 same-label rate is exactly 10 / 20 (1/3 over all 30, 7/20 or 6/20 for
// the first 20). A: B plus a large, varying weight on training example kSpecial (label 1) for
// three targets of other labels, so A minus B's first direction is that example; its top 20
// still hold the 10 same-label examples.
struct KnownScores {
  NdArray a, b;
};
KnownScores known_scores() {
  KnownScores s{NdArray::allocate(DType::kFloat32, {kT, kN}),
                NdArray::allocate(DType::kFloat32, {kT, kN})};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.1f, 1.0f);
  for (std::int64_t i = 0; i < kT * kN; ++i)
    s.a.mutable_data_as<float>()[i] = s.b.mutable_data_as<float>()[i] =
        u(rng) + (i / kN % 3 == i % kN % 3 ? 1.0f : 0.0f);
  for (std::int64_t t : {0, 5, 9}) s.a.mutable_data_as<float>()[t * kN + kSpecial] += 8.0f + t;
  return s;
}

// A project over the tiny data sets whose algorithms are the given JSON entries.
std::string tiny_project(const std::string& a, const std::string& b) {
  return R"({"name": "precomputed", "output": "out",
    "data": {"train": {"images": "train.npy", "labels": "train_y.npy"},
             "val": {"images": "val.npy", "labels": "val_y.npy"}},
    "A": {"label": "aug", )" +
         a + R"(}, "B": {"label": "plain", )" + b + R"(},
    "diff": {"components": 3, "class_components": 2, "top_k": 5}})";
}

// run_project on the tiny data sets; the InputError's message, or "" when it ran.
std::string run_error(const TempDir& dir, const std::string& project_text) {
  write_text(dir.file("p.json"), project_text);
  try {
    NullProgress progress;
    run_project(load_project(dir.file("p.json")), progress);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Project, PrecomputedScoresParseAndRoundTrip) {
  const Project p = parse_project(kPrecomputed, "/base", "/base/p.json");
  EXPECT_EQ(p.a.scores, "/base/s/a_scores.pt");
  EXPECT_EQ(p.a.scores_key, "weight");
  EXPECT_EQ(p.b.scores, "/abs/b.npy");
  EXPECT_EQ(p.b.scores_key, "");
  EXPECT_TRUE(p.a.precomputed() && p.b.precomputed());
  EXPECT_FALSE(p.a.trains() || p.b.trains());
  EXPECT_TRUE(p.a.checkpoints.empty());
  EXPECT_TRUE(p.a.architecture.empty());
  // A checkpoints algorithm is not precomputed.
  EXPECT_FALSE(parse_project(kMinimal, "/base", "p.json").a.precomputed());

  const std::string text = project_json(p);
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["A"]["scores"], "/base/s/a_scores.pt");
  EXPECT_EQ(j["A"]["scores_key"], "weight");
  EXPECT_FALSE(j["B"].contains("scores_key"));
  EXPECT_FALSE(j["A"].contains("checkpoints") || j["A"].contains("train"));
  const Project q = parse_project(text, "/elsewhere", "q.json");
  EXPECT_EQ(q.a.scores, p.a.scores);
  EXPECT_EQ(q.a.scores_key, "weight");
  EXPECT_EQ(q.b.scores, p.b.scores);
  EXPECT_EQ(q.b.scores_key, "");
  EXPECT_TRUE(q.a.precomputed() && !q.a.trains());
}

TEST(Project, PrecomputedScoresExcludeModels) {
  const auto expect_error = [](const std::string& text, const std::string& key,
                               const std::string& words) {
    const std::string e = error_of(text);
    EXPECT_NE(e.find("p.json"), std::string::npos) << e;
    EXPECT_NE(e.find(key), std::string::npos) << e;
    EXPECT_NE(e.find(words), std::string::npos) << e;
  };
  EXPECT_EQ(error_of(with_a(R"("scores": "a.npy")")), "");
  expect_error(with_a(R"("scores": "a.npy", "architecture": "m.pt", "checkpoints": ["c.pt"])"),
               "A.checkpoints", "precomputed scores");
  expect_error(with_a(R"("scores": "a.npy", "architecture": "m.pt", "train": {"models": 2})"),
               "A.train", "precomputed scores");
  expect_error(with_a(R"("scores": "a.npy", "hide_patch": true)"), "A.hide_patch",
               "precomputed scores");
  expect_error(with_a(R"("checkpoints": ["c.pt"], "scores_key": "weight")"), "A.scores_key",
               "without scores");
  expect_error(with_a(R"("scores": 3)"), "A.scores", "wrong type");
  expect_error(with_a(R"("scores": "a.npy", "scores_keys": "w")"), "A.scores_keys", "unknown key");
  expect_error(with_a(R"("label": "only a label")"), "A.checkpoints", "scores");
}

TEST(RunProject, PrecomputedScoresGoStraightToModelDiff) {
  TempDir dir("precomputed");
  write_tiny_dataset(dir, "train", kN);
  write_tiny_dataset(dir, "val", kT);
  const KnownScores s = known_scores();
  write_npy(dir.file("a.npy"), s.a);
  write_npy(dir.file("b.npy"), s.b);
  write_text(dir.file("p.json"), tiny_project(R"("scores": "a.npy")", R"("scores": "b.npy")"));
  const Project project = load_project(dir.file("p.json"));
  NullProgress progress;
  std::vector<std::string> log;
  const RunOutcome out =
      run_project(project, progress, [&](const std::string& line) { log.push_back(line); });

  // The matrices are the run's scores, unchanged.
  EXPECT_TRUE(same_bytes(read_npy(dir.file("out/scores/A.npy")), s.a));
  EXPECT_TRUE(same_bytes(read_npy(dir.file("out/scores/B.npy")), s.b));
  EXPECT_EQ(out.a.scores, dir.file("out/scores/A.npy"));
  EXPECT_TRUE(out.a.checkpoints.empty() && out.b.checkpoints.empty());
  EXPECT_TRUE(out.a.val_accuracy.empty() && out.b.val_accuracy.empty());
  EXPECT_DOUBLE_EQ(out.a.same_label_rate, 0.5);
  EXPECT_DOUBLE_EQ(out.b.same_label_rate, 0.5);
  const std::string loaded = "scores aug: loaded " + dir.file("a.npy") + " (12 x 30)";
  EXPECT_NE(std::find_if(log.begin(), log.end(),
                         [&](const std::string& l) { return l.rfind(loaded, 0) == 0; }),
            log.end());
  EXPECT_EQ(out.comparisons.size(), 4u);  // all + three classes

  // The comparison over all validation examples is ModelDiff on the same two matrices.
  ASSERT_TRUE(fs::exists(dir.file("out/diff/all/summary.json")));
  const DiffSummary summary = read_diff_summary(dir.file("out/diff/all"));
  DiffOptions options;
  options.components = 3;
  options.top_k = 5;
  options.rotation = Project{}.rotation;  // a project's default
  const DiffResult direct = run_model_diff(ScoreInput{"aug", "a.npy", s.a},
                                           ScoreInput{"plain", "b.npy", s.b}, options, progress);
  EXPECT_EQ(summary.a_minus_b.top_train, direct.a_minus_b.top_train);
  EXPECT_EQ(summary.a_minus_b.bottom_train, direct.a_minus_b.bottom_train);
  EXPECT_EQ(summary.a_minus_b.top_target, direct.a_minus_b.top_target);
  EXPECT_EQ(summary.b_minus_a.top_train, direct.b_minus_a.top_train);
  ASSERT_EQ(summary.a_minus_b.explained_variance.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(summary.a_minus_b.explained_variance[static_cast<std::size_t>(c)],
                direct.a_minus_b.explained_variance[c],
                1e-9 + 1e-6 * direct.a_minus_b.explained_variance[c]);
  }
  // The training example made to differ leads A minus B.
  ASSERT_FALSE(summary.a_minus_b.top_train.empty());
  EXPECT_EQ(summary.a_minus_b.top_train[0][0], kSpecial);

  // run.json: empty model lists, no accuracy, and a project the GUI can parse back.
  const auto rec = nlohmann::json::parse(read_text_file(dir.file("out/run.json")));
  const auto& a = rec["algorithms"]["A"];
  EXPECT_TRUE(a["checkpoints"].is_array() && a["checkpoints"].empty());
  EXPECT_TRUE(a["val_accuracy"].is_array() && a["val_accuracy"].empty());
  EXPECT_TRUE(a["mean_val_accuracy"].is_null());
  EXPECT_EQ(a["same_label_rate"], 0.5);
  EXPECT_EQ(a["same_label_top_k"], kSameLabelTopK);
  EXPECT_EQ(a["scores_source"], dir.file("a.npy"));
  const Project back = parse_project(rec["project"].dump(), "/", "run.json");
  EXPECT_EQ(back.a.scores, dir.file("a.npy"));
  EXPECT_EQ(back.b.scores, dir.file("b.npy"));

  // The report says what was not measured instead of printing NaN.
  const std::string report = read_text_file(dir.file("out/report/index.html"));
  EXPECT_NE(report.find("not measured (precomputed scores)"), std::string::npos);
  EXPECT_EQ(report.find("nan%"), std::string::npos);
  EXPECT_EQ(report.find(">nan"), std::string::npos);
}

TEST(RunProject, PrecomputedScoresTransposedOrRefused) {
  TempDir dir("precomputed_shapes");
  write_tiny_dataset(dir, "train", kN);
  write_tiny_dataset(dir, "val", kT);
  const KnownScores s = known_scores();
  write_npy(dir.file("a_nxt.npy"), transposed(s.a));  // N x T, as traker stores scores
  write_npy(dir.file("b.npy"), s.b);
  EXPECT_EQ(run_error(dir, tiny_project(R"("scores": "a_nxt.npy")", R"("scores": "b.npy")")), "");
  EXPECT_TRUE(same_bytes(read_npy(dir.file("out/scores/A.npy")), s.a));

  // Fits neither way: refused naming the file and the sizes wanted.
  write_npy(dir.file("short.npy"), NdArray::allocate(DType::kFloat32, {kT - 1, kN}));
  std::string e = run_error(dir, tiny_project(R"("scores": "b.npy")", R"("scores": "short.npy")"));
  EXPECT_NE(e.find(dir.file("short.npy")), std::string::npos) << e;
  EXPECT_NE(e.find("12 x 30"), std::string::npos) << e;

  // NaN: refused naming the file and the entry.
  NdArray bad = NdArray::allocate(DType::kFloat32, {kT, kN});
  std::copy_n(s.a.data_as<float>(), kT * kN, bad.mutable_data_as<float>());
  bad.mutable_data_as<float>()[2 * kN + 3] = std::numeric_limits<float>::quiet_NaN();
  write_npy(dir.file("nan.npy"), bad);
  e = run_error(dir, tiny_project(R"("scores": "nan.npy")", R"("scores": "b.npy")"));
  EXPECT_NE(e.find(dir.file("nan.npy")), std::string::npos) << e;
  EXPECT_NE(e.find("NaN at row 2, column 3"), std::string::npos) << e;

  // A missing file is named when the run loads it.
  e = run_error(dir, tiny_project(R"("scores": "gone.npy")", R"("scores": "b.npy")"));
  EXPECT_NE(e.find(dir.file("gone.npy")), std::string::npos) << e;
}

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

// Findings: the images a run re-measures them on parse, round trip and are checked by key.
TEST(Project, FindingsNameTheirImagesAndAreCheckedByKey) {
  std::string text = kMinimal;
  const std::string findings = R"(,
  "findings": [{"comparison": "class-6-shirt", "direction": "b_minus_a:2", "hypothesis": "h",
                "transform": "flip:alpha=1", "target_class": 5, "images": {"direction_k": 20},
                "effect": {"mean": -0.1, "ci95": [-0.2, -0.05]}, "verdict": "supported"},
               {"transform": "shift:dx=2", "target_class": 1, "images": {"exclude_class": 1}}]
})";
  text.replace(text.rfind('}'), 1, findings);
  const Project p = parse_project(text, "/base", "p.json");
  ASSERT_EQ(p.findings.size(), 2u);
  for (const Project& q : {p, parse_project(project_json(p), "/elsewhere", "q.json")}) {
    const Finding& f = q.findings[0];
    EXPECT_EQ(f.comparison, "class-6-shirt");
    EXPECT_EQ(f.direction, "b_minus_a:2");
    EXPECT_EQ(f.direction_k, 20);
    EXPECT_EQ(f.only_class, -1);
    EXPECT_DOUBLE_EQ(f.ci_high, -0.05);
    EXPECT_EQ(q.findings[1].exclude_class, 1);
    EXPECT_EQ(q.findings[1].direction, "a_minus_b:1");  // the defaults
    EXPECT_EQ(q.findings[1].direction_k, 0);
  }
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return error_of(t);
  };
  std::string e = with(R"("direction_k": 20)", R"("class": 2, "exclude_class": 3)");
  EXPECT_NE(e.find("findings[0].images.class"), std::string::npos) << e;
  e = with(R"("direction_k": 20)", R"("directionk": 20)");
  EXPECT_NE(e.find("findings[0].images.directionk"), std::string::npos) << e;
  e = with("flip:alpha=1", "flip:alpha=3");
  EXPECT_NE(e.find("findings[0].transform"), std::string::npos) << e;
  e = with(R"("direction_k": 20)", R"("direction_k": -1)");
  EXPECT_NE(e.find("findings[0].images.direction_k"), std::string::npos) << e;
  for (const char* bad : {"b_minus_a:0", "b_minus_a:02", "b_minus_a:", "b_minus_a", "a-b:1",
                          "b_minus_a:-1", "b_minus_a:1x", "b_minus_a:9999999"}) {
    e = with("b_minus_a:2", bad);
    EXPECT_NE(e.find("findings[0].direction"), std::string::npos) << bad << ": " << e;
  }
}

TEST(Project, DirectionsParseToSetAndZeroBasedComponent) {
  const auto d = parse_direction("b_minus_a:12");
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->a_minus_b);
  EXPECT_EQ(d->component, 11);
  const auto e = parse_direction("a_minus_b:1");
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->a_minus_b);
  EXPECT_EQ(e->component, 0);
  EXPECT_FALSE(parse_direction("a_minus_b:0").has_value());
  EXPECT_FALSE(parse_direction(":3").has_value());
  const auto c = parse_direction("b_minus_a:class=0");
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->a_minus_b);
  EXPECT_EQ(c->of_class, 0);
  EXPECT_EQ(parse_direction("a_minus_b:class=7")->of_class, 7);
  for (const char* bad : {"a_minus_b:class=", "a_minus_b:class=07", "a_minus_b:class=-1",
                          "a_minus_b:class=x", "a_minus_b:klass=1"})
    EXPECT_FALSE(parse_direction(bad).has_value()) << bad;
}

// A direction named by class is the first whose top k validation examples are more than half
// of that class; by number, that component if the set has it.
TEST(Project, DirectionsNamedByClassResolveToTheFirstThatShowsIt) {
  const std::vector<std::int64_t> labels = {7, 7, 7, 6, 6, 6, 7, 2, 2, 2};
  // Direction 1: rows 3, 4, 5, 0 (shirts), direction 2: rows 0, 1, 6, 7 (3 of 4 sneakers),
  // direction 3: rows 7, 8, 9, 2 (pullovers).
  const std::vector<std::vector<std::int64_t>> top = {{3, 4, 5, 0}, {0, 1, 6, 7}, {7, 8, 9, 2}};
  DirectionRef d = *parse_direction("b_minus_a:class=7");
  EXPECT_EQ(resolve_direction(d, top, labels, 4), 1);
  EXPECT_EQ(resolve_direction(d, top, labels, 0), 1);  // all kept
  EXPECT_EQ(resolve_direction(d, top, labels, 2), 1);  // rows 0, 1
  d.of_class = 6;
  EXPECT_EQ(resolve_direction(d, top, labels, 4), 0);
  d.of_class = 2;
  EXPECT_EQ(resolve_direction(d, top, labels, 4), 2);
  EXPECT_EQ(resolve_direction(d, top, labels, 99), 2);  // more than kept: all kept
  d.of_class = 5;
  EXPECT_EQ(resolve_direction(d, top, labels, 4), -1);  // no direction shows it
  // Half is not most: 2 of 4 sneakers in direction 1 of another set.
  EXPECT_EQ(resolve_direction(*parse_direction("a_minus_b:class=7"), {{0, 6, 3, 4}}, labels, 4),
            -1);
  EXPECT_EQ(resolve_direction(*parse_direction("a_minus_b:3"), top, labels, 4), 2);
  EXPECT_EQ(resolve_direction(*parse_direction("a_minus_b:4"), top, labels, 4), -1);
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
  // A minus B: the difference of the means. B is constant, so each resample of A minus B is
  // one of A's resample means less exactly 0.05; those means are multiples of 1/60, so (for this
  // seed) the interval is A's alone shifted by 0.05, to rounding. Ignoring B would be off by 0.05.
  const Interval d = bootstrap_interval(v, {0.05, 0.05}, 7);
  EXPECT_NEAR(d.mean, 0.2, 1e-12);
  EXPECT_NEAR(d.low, i.low - 0.05, 1e-12);
  EXPECT_NEAR(d.high, i.high - 0.05, 1e-12);
  // A B that varies is resampled too: a wider interval (standard deviation of the difference
  // about 0.078 against A's 0.070 alone, so about 0.03 wider).
  const Interval wide = bootstrap_interval(v, {0.0, 0.1}, 7);
  EXPECT_NEAR(wide.mean, 0.2, 1e-12);
  EXPECT_GT(wide.high - wide.low, i.high - i.low + 0.015);
  // Nothing measured is NaN, not an effect of 0 in [0, 0].
  const Interval none = bootstrap_interval({}, {0.1}, 7);
  EXPECT_TRUE(std::isnan(none.mean) && std::isnan(none.low) && std::isnan(none.high));
}

namespace {

// Every fraction reported, to check that the steps' shares of the bar add up.
class RecordingProgress final : public Progress {
 public:
  void report(double fraction, std::string_view) override { fractions.push_back(fraction); }
  bool cancelled() const override { return false; }
  std::vector<double> fractions;
};

}  // namespace

// One algorithm given by its scores, the other trained here with the planted patch hidden:
// the planted check's precision runs, the counterfactual measures only the trained models.
TEST(RunProject, PrecomputedScoresBesideTrainedModels) {
  const std::string fm = "/usr/share/datasets/fashion-mnist/";
  MODELDIFF_SKIP_IF_MISSING(!fs::exists(fm + "train-images-idx3-ubyte.gz"),
                            "Fashion-MNIST not installed");
  TempDir dir("precomputed_mixed");
  const std::int64_t n = 300, t = 100;
  NdArray given = NdArray::allocate(DType::kFloat32, {n, t});  // N x T: transposed on loading
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (std::int64_t i = 0; i < n * t; ++i) given.mutable_data_as<float>()[i] = u(rng);
  write_npy(dir.file("a.npy"), given);
  const std::string arch = std::string(MODELDIFF_SOURCE_DIR) + "/resources/demo/demo_cnn.pt";
  write_text(dir.file("p.json"), R"({"name": "mixed", "output": "out",
    "data": {"train": {"images": ")" +
                                     fm + R"(train-images-idx3-ubyte.gz",
                       "labels": ")" +
                                     fm + R"(train-labels-idx1-ubyte.gz", "subset": 300},
             "val": {"images": ")" + fm +
                                     R"(t10k-images-idx3-ubyte.gz",
                     "labels": ")" + fm +
                                     R"(t10k-labels-idx1-ubyte.gz", "subset": 100,
                     "subset_seed": 1},
             "preprocessing": "scale=1/255,mean=0.5,std=0.25",
             "planted_patch": {"class": 6, "train_fraction": 0.5, "val_fraction": 0.2}},
    "A": {"label": "given", "scores": "a.npy"},
    "B": {"label": "blind", "architecture": ")" +
                                     arch + R"(",
          "train": {"models": 1, "epochs": 1, "batch_size": 64}, "hide_patch": true},
    "trak": {"proj_dim": 64},
    "diff": {"components": 2, "per_class": false}})");
  RecordingProgress progress;
  std::vector<std::string> log;
  const RunOutcome out = run_project(load_project(dir.file("p.json")), progress,
                                     [&](const std::string& line) { log.push_back(line); });

  EXPECT_TRUE(same_bytes(read_npy(dir.file("out/scores/A.npy")), transposed(given)));
  EXPECT_TRUE(out.a.checkpoints.empty());
  EXPECT_EQ(out.b.checkpoints.size(), 1u);
  EXPECT_EQ(out.b.val_accuracy.size(), 1u);
  ASSERT_TRUE(out.planted.enabled);
  EXPECT_EQ(out.planted.direction_set, "A minus B");
  EXPECT_EQ(out.planted.precision.size(), 2u);
  EXPECT_TRUE(std::isnan(out.planted.shift_seeing));  // A has no models to test
  EXPECT_TRUE(std::isfinite(out.planted.shift_hidden));
  const auto rec = nlohmann::json::parse(read_text_file(dir.file("out/run.json")));
  EXPECT_TRUE(rec["planted"]["prediction_shift_seeing"].is_null());
  EXPECT_TRUE(rec["planted"]["prediction_shift_hidden"].is_number());
  EXPECT_EQ(rec["algorithms"]["B"]["checkpoints"].size(), 1u);
  for (const auto& line : log) {
    EXPECT_EQ(line.find("nan"), std::string::npos) << line;
  }
  const std::string report = read_text_file(dir.file("out/report/index.html"));
  EXPECT_NE(report.find("not measured (sees the patch)"), std::string::npos);

  // The progress bar only moves forward, within [0, 1], and ends full.
  ASSERT_FALSE(progress.fractions.empty());
  for (std::size_t i = 0; i < progress.fractions.size(); ++i) {
    EXPECT_GE(progress.fractions[i], 0.0);
    EXPECT_LE(progress.fractions[i], 1.0);
    if (i > 0) {
      EXPECT_GE(progress.fractions[i], progress.fractions[i - 1] - 1e-9) << i;
    }
  }
  EXPECT_DOUBLE_EQ(progress.fractions.back(), 1.0);
}

TEST(Project, ClassNamesComeFromTheProjectOrANamesFileNeverFromPaths) {
  TempDir dir("class_names");
  // Under a folder named like Fashion-MNIST's: the path must not name the classes.
  std::filesystem::create_directories(dir.file("fashion-mnist"));
  write_tiny_dataset(dir, "fashion-mnist/train", kN);
  write_tiny_dataset(dir, "fashion-mnist/val", kT);
  const std::string data = R"("train": {"images": "fashion-mnist/train.npy",
                                        "labels": "fashion-mnist/train_y.npy"},
                              "val": {"images": "fashion-mnist/val.npy",
                                      "labels": "fashion-mnist/val_y.npy"})";
  const auto project = [&](const std::string& names) {
    return R"({"name": "n", "data": {)" + data + names + R"(},
      "A": {"scores": "a.npy"}, "B": {"scores": "b.npy"}})";
  };
  const auto load = [&](const std::string& text) {
    write_text(dir.file("p.json"), text);
    return load_project_data(load_project(dir.file("p.json")));
  };
  EXPECT_TRUE(load(project("")).train.class_names.empty());

  const ProjectData listed = load(project(R"(, "class_names": ["zero", "one", "two"])"));
  EXPECT_EQ(listed.val.class_name(2), "two");

  write_text(dir.file("classes.txt"), "  round \r\nsquare\ntriangle\n\n");
  const std::string with_file = project(R"(, "class_names": "classes.txt")");
  const ProjectData from_file = load(with_file);
  EXPECT_EQ(from_file.train.class_names, (std::vector<std::string>{"round", "square", "triangle"}));
  EXPECT_EQ(from_file.val.class_names, from_file.train.class_names);
  // The project keeps naming the file (not its contents) when written back.
  const Project p = load_project(dir.file("p.json"));
  EXPECT_EQ(nlohmann::json::parse(project_json(p))["data"]["class_names"], dir.file("classes.txt"));

  // Fewer names than classes, an empty line inside, no names: errors naming the file.
  write_text(dir.file("classes.txt"), "round\nsquare\n");
  try {
    load(with_file);
    FAIL() << "two names for three classes";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), dir.file("classes.txt"));
    EXPECT_NE(std::string(e.what()).find("fewer class names than classes"), std::string::npos);
  }
  write_text(dir.file("classes.txt"), "round\n\nsquare\n");
  EXPECT_THROW(load(with_file), InputError);
  write_text(dir.file("classes.txt"), "\n");
  EXPECT_THROW(load(with_file), InputError);

  // The built-in demo names its classes itself.
  EXPECT_EQ(demo_project("/r/demo_cnn.pt", "/f", "/o", true).class_names,
            fashion_mnist_class_names());
}

TEST(Project, TrakParameterSelectionParsesAndRoundTrips) {
  const auto with_trak = [](const std::string& extra) {
    std::string text = kMinimal;
    const std::string from = R"("out_to_loss": false})";
    return text.replace(text.find(from), from.size(), R"("out_to_loss": false, )" + extra + "}");
  };
  const Project p = parse_project(
      with_trak(R"("params": "layer4.*, fc.*", "skip_normalization": true)"), "/base", "p.json");
  EXPECT_EQ(p.trak.params.patterns, (std::vector<std::string>{"layer4.*", "fc.*"}));
  EXPECT_TRUE(p.trak.params.skip_normalization);
  const nlohmann::json j = nlohmann::json::parse(project_json(p));
  EXPECT_EQ(j["trak"]["params"], "layer4.*,fc.*");
  EXPECT_EQ(j["trak"]["skip_normalization"], true);
  const Project q = parse_project(project_json(p), "/base", "q.json");
  EXPECT_EQ(q.trak.params.patterns, p.trak.params.patterns);
  EXPECT_TRUE(q.trak.params.skip_normalization);
  // The default selects everything and writes nothing.
  const nlohmann::json plain =
      nlohmann::json::parse(project_json(parse_project(kMinimal, "/b", "p.json")));
  EXPECT_FALSE(plain["trak"].contains("params") || plain["trak"].contains("skip_normalization"));
  const std::string e = error_of(with_trak(R"("params": "fc.*,,")"));
  EXPECT_NE(e.find("trak.params"), std::string::npos) << e;
}

TEST(Project, BuiltinArchitectureIsASpecNotAPath) {
  std::string text = kMinimal;
  const std::string from = R"("label": "blind", "architecture": "arch.pt")";
  text.replace(text.find(from), from.size(),
               R"("label": "blind", "architecture": "resnet9:width=8")");
  const Project p = parse_project(text, "/base", "p.json");
  EXPECT_EQ(p.b.architecture, "resnet9:width=8");  // not /base/resnet9:width=8
  EXPECT_EQ(p.a.architecture, "/base/arch.pt");
  EXPECT_EQ(parse_project(project_json(p), "/elsewhere", "q.json").b.architecture,
            "resnet9:width=8");
  std::string bad = text;
  bad.replace(bad.find("width=8"), 7, "depth=8");
  const std::string e = error_of(bad);
  EXPECT_NE(e.find("B.architecture: depth"), std::string::npos) << e;
}

// A planted feature given as any transformation, and an algorithm's own view of the images:
// parsed, written back, and applied by load_project_data to exactly the chosen images.
TEST(Project, PlantedFeatureAndViewParseRoundTripAndStamp) {
  TempDir dir;
  write_tiny_dataset(dir, "train", kN);
  write_tiny_dataset(dir, "val", kT);
  const std::string text = R"({"name": "feature", "output": "out",
    "data": {"train": {"images": "train.npy", "labels": "train_y.npy"},
             "val": {"images": "val.npy", "labels": "val_y.npy"},
             "planted_feature": {"class": 1, "train_fraction": 0.5, "val_fraction": 0.5,
                                 "transform": "brightness:delta=-0.5",
                                 "val_transform": "patch:x=0,y=0,size=2,value=255"}},
    "A": {"architecture": "arch.pt", "checkpoints": ["a.pt"]},
    "B": {"label": "stretched", "architecture": "arch.pt", "checkpoints": ["b.pt"],
          "view": "autocontrast"}})";
  const Project p = parse_project(text, dir.path(), "p.json");
  ASSERT_TRUE(p.plant.enabled && p.plant.is_transform());
  EXPECT_EQ(p.plant.transform, parse_transform("brightness:delta=-0.5").text);
  EXPECT_EQ(p.b.view, parse_transform("autocontrast").text);
  EXPECT_TRUE(p.a.view.empty());
  const Project back = parse_project(project_json(p), "/elsewhere", "back.json");
  EXPECT_EQ(back.plant.transform, p.plant.transform);
  EXPECT_EQ(back.plant.val_transform, p.plant.val_transform);
  EXPECT_EQ(back.plant.target_class, 1);
  EXPECT_EQ(back.b.view, p.b.view);

  const ProjectData pd = load_project_data(p);
  const ImageDataset train = load_dataset_spec(p.train, "training");
  const ImageDataset val = load_dataset_spec(p.val, "validation");
  EXPECT_EQ(pd.planted_train, choose_planted(train, 1, 0.5, 0));
  ASSERT_EQ(pd.planted_train.size(), 5u);  // half of the 10 images of class 1
  const ImageDataset dark =
      apply_transform(train, parse_transform("brightness:delta=-0.5"), pd.planted_train);
  const std::size_t bytes = 36;
  std::size_t next = 0;
  for (std::int64_t i = 0; i < train.size(); ++i) {
    const auto* got = pd.train.images.data_as<std::uint8_t>() + i * bytes;
    const bool planted = next < pd.planted_train.size() && pd.planted_train[next] == i;
    const auto* want = planted ? dark.images.data_as<std::uint8_t>() + next * bytes
                               : train.images.data_as<std::uint8_t>() + i * bytes;
    EXPECT_EQ(std::memcmp(got, want, bytes), 0) << "training image " << i;
    next += planted ? 1 : 0;
  }
  // Validation images carry val_transform, on half the images of every class.
  ASSERT_EQ(pd.planted_val.size(), 6u);
  for (std::int64_t i = 0; i < val.size(); ++i) {
    const bool planted = std::count(pd.planted_val.begin(), pd.planted_val.end(), i) > 0;
    const auto* got = pd.val.images.data_as<std::uint8_t>() + i * bytes;
    const auto* was = val.images.data_as<std::uint8_t>() + i * bytes;
    if (planted) {
      for (const int k : {0, 1, 6, 7}) EXPECT_EQ(got[k], 255) << "validation image " << i;
      EXPECT_EQ(std::memcmp(got + 12, was + 12, bytes - 12), 0) << "validation image " << i;
    } else {
      EXPECT_EQ(std::memcmp(got, was, bytes), 0) << "validation image " << i;
    }
  }

  // Mistakes are named by key.
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return error_of(t);
  };
  EXPECT_NE(
      with("brightness:delta=-0.5", "brightness:delta=-3").find("data.planted_feature.transform"),
      std::string::npos);
  EXPECT_NE(with("\"view\": \"autocontrast\"", "\"view\": \"sparkle\"").find("B.view"),
            std::string::npos);
  EXPECT_NE(with("\"view\": \"autocontrast\"", "\"hide_patch\": true").find("hide_patch"),
            std::string::npos);
  EXPECT_NE(with("\"planted_feature\": {",
                 "\"planted_patch\": {\"class\": 1}, "
                 "\"planted_feature\": {")
                .find("one feature"),
            std::string::npos);
  EXPECT_NE(with("\"transform\": \"brightness:delta=-0.5\",", "").find("transform"),
            std::string::npos);
  EXPECT_NE(error_of(with_a("\"scores\": \"a.npy\", \"view\": \"autocontrast\"")).find("view"),
            std::string::npos);
}
