// The traker save_dirs in ../shared/fixtures (written by traker 0.3.2 on a GPU) and broken
// copies of them made in a temporary directory.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/io/npy.h"
#include "core/io/traker_savedir.h"
#include "core/test_paths.h"

using namespace modeldiff::core;
using modeldiff::test::shared_fixture;
namespace fs = std::filesystem;

namespace {

// A writable copy of a shared save_dir, removed at the end of the test.
class SaveDirCopy {
 public:
  explicit SaveDirCopy(const std::string& fixture) {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("modeldiff_traker_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::copy(shared_fixture(fixture), dir_, fs::copy_options::recursive);
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
    }
    fs::permissions(dir_, fs::perms::owner_write, fs::perm_options::add);
  }
  ~SaveDirCopy() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path() const { return dir_.string(); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::trunc) << text;
  }

 private:
  fs::path dir_;
};

// Expects an InputError whose message contains every one of `parts`.
void expect_error(const std::string& save_dir, const std::string& experiment,
                  std::initializer_list<std::string> parts) {
  try {
    read_traker_scores(save_dir, experiment);
    ADD_FAILURE() << "no InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << p << " in " << msg;
  }
}

const char* kExperiments =
    R"({"val": {"num_targets": 40, "scores_path": "/nonexistent/val.mmap", "scores_finalized": 1}})";

}  // namespace

TEST(TrakerSaveDir, Fp32ScoresAreTheExactTranspose) {
  const NdArray scores = read_traker_scores(shared_fixture("traker_savedir_small_fp32"));
  const NdArray expected =
      read_npy(shared_fixture("traker_savedir_small_fp32_expected_N_x_T.npy")).to_float32();
  ASSERT_EQ(expected.shape(), (std::vector<std::int64_t>{300, 40}));
  ASSERT_EQ(scores.shape(), (std::vector<std::int64_t>{40, 300}));  // T x N
  ASSERT_EQ(scores.dtype(), DType::kFloat32);
  for (std::int64_t t = 0; t < 40; ++t) {
    for (std::int64_t n = 0; n < 300; ++n) {
      ASSERT_EQ(scores.data_as<float>()[t * 300 + n], expected.data_as<float>()[n * 40 + t]);
    }
  }
}

TEST(TrakerSaveDir, Fp16ScoresMatchToHalfPrecision) {
  const NdArray scores = read_traker_scores(shared_fixture("traker_savedir_small_fp16"), "val");
  const NdArray expected =
      read_npy(shared_fixture("traker_savedir_small_fp16_expected_N_x_T.npy")).to_float32();
  ASSERT_EQ(scores.shape(), (std::vector<std::int64_t>{40, 300}));
  for (std::int64_t t = 0; t < 40; ++t) {
    for (std::int64_t n = 0; n < 300; ++n) {
      const float want = expected.data_as<float>()[n * 40 + t];
      const float got = scores.data_as<float>()[t * 300 + n];
      ASSERT_NEAR(got, want, std::abs(want) * 1e-3f + 1e-7f) << t << ", " << n;
    }
  }
}

TEST(TrakerSaveDir, UsesScoresPathWhenItExists) {
  SaveDirCopy copy("traker_savedir_small_fp32");
  fs::rename(copy.file("scores/val.mmap"), copy.file("elsewhere.mmap"));
  copy.write("experiments.json", R"({"val": {"num_targets": 40, "scores_path": ")" +
                                     copy.file("elsewhere.mmap") + R"(", "scores_finalized": 1}})");
  EXPECT_EQ(read_traker_scores(copy.path()).shape(), (std::vector<std::int64_t>{40, 300}));
}

TEST(TrakerSaveDir, BrokenJsonNamesTheFile) {
  SaveDirCopy copy("traker_savedir_small_fp32");
  copy.write("metadata.json", "{\"train set size\": 300");
  expect_error(copy.path(), "", {copy.file("metadata.json"), "invalid JSON"});
  copy.write("metadata.json", R"({"JL dimension": 512})");
  expect_error(copy.path(), "", {copy.file("metadata.json"), "train set size"});
  copy.write("experiments.json", "not json");
  expect_error(copy.path(), "", {copy.file("experiments.json"), "invalid JSON"});
  copy.write("experiments.json", R"({"val": 3})");
  expect_error(copy.path(), "", {copy.file("experiments.json"), "[val]"});
}

TEST(TrakerSaveDir, WrongTrainSetSizeOrTargetCount) {
  SaveDirCopy copy("traker_savedir_small_fp32");
  copy.write("metadata.json", R"({"train set size": 299})");
  expect_error(copy.path(), "",
               {copy.file("scores/val.mmap"), "train set size", "299", "300 x 40"});
  copy.write("metadata.json", R"({"train set size": 300})");
  copy.write("experiments.json", R"({"val": {"num_targets": 41}})");
  expect_error(copy.path(), "", {"num_targets", "41", "300 x 40"});
}

TEST(TrakerSaveDir, MissingScoresFileIsNamed) {
  SaveDirCopy copy("traker_savedir_small_fp32");
  fs::remove(copy.file("scores/val.mmap"));
  expect_error(copy.path(), "", {copy.file("scores/val.mmap"), "missing", "/tmp/small_fp32"});
}

TEST(TrakerSaveDir, ChoosingAnExperiment) {
  SaveDirCopy copy("traker_savedir_small_fp32");
  copy.write("experiments.json",
             R"({"val": {"num_targets": 40}, "test": {"num_targets": 40, "scores_finalized": 0}})");
  expect_error(copy.path(), "", {"several experiments", "'val', 'test'"});
  expect_error(copy.path(), "train", {"no such experiment", "[train]", "'val', 'test'"});
  expect_error(copy.path(), "test", {"not finalized"});
  EXPECT_EQ(read_traker_scores(copy.path(), "val").dim(0), 40);
  copy.write("experiments.json", "{}");
  expect_error(copy.path(), "", {"no experiments"});
}

TEST(TrakerSaveDir, NotASaveDir) {
  expect_error("/nonexistent/save_dir", "", {"/nonexistent/save_dir", "experiments.json"});
}

TEST(TrakerSaveDir, ParsesExperimentsText) {
  const auto e = parse_traker_experiments("e.json", kExperiments);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].name, "val");
  EXPECT_EQ(e[0].num_targets, 40);
  EXPECT_EQ(e[0].scores_path, "/nonexistent/val.mmap");
  EXPECT_TRUE(e[0].finalized);
  EXPECT_EQ(parse_traker_experiments("e.json", R"({"a": {}})")[0].num_targets, -1);
  EXPECT_THROW(parse_traker_experiments("e.json", R"({"a": {"num_targets": -1}})"), InputError);
  EXPECT_THROW(parse_traker_experiments("e.json", R"({"a": {"scores_path": 3}})"), InputError);
  EXPECT_THROW(parse_traker_experiments("e.json", "[]"), InputError);
  EXPECT_EQ(parse_traker_train_set_size("m.json", R"({"train set size": 300.0})"), 300);
  EXPECT_THROW(parse_traker_train_set_size("m.json", R"({"train set size": "300"})"), InputError);
}
