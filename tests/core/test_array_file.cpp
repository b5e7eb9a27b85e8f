// Loading score matrices and integer lists from every supported format through one call.
#include <gtest/gtest.h>

#include <functional>

#include "core/base/error.h"
#include "core/io/array_file.h"
#include "core/test_paths.h"

using namespace modeldiff::core;
using modeldiff::test::test_fixture;

namespace {

std::string fx(const std::string& name) {
  return test_fixture("scores/" + name);
}

float expected(std::int64_t i, std::int64_t j) {
  return static_cast<float>(i * 50 + j) * 0.125f - 7.0f;
}

void expect_matrix(const NdArray& m, const std::string& what) {
  ASSERT_EQ(m.dtype(), DType::kFloat32) << what;
  ASSERT_EQ(m.shape(), (std::vector<std::int64_t>{30, 50})) << what;
  for (std::int64_t i = 0; i < 30; ++i)
    for (std::int64_t j = 0; j < 50; ++j)
      ASSERT_EQ(m.data_as<float>()[i * 50 + j], expected(i, j)) << what << " at " << i << "," << j;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ArrayFile, DetectsFormatsFromBytes) {
  EXPECT_EQ(detect_format(fx("m.npy")), FileFormat::kNpy);
  EXPECT_EQ(detect_format(fx("m_ordered.pt")), FileFormat::kTorch);
  EXPECT_EQ(detect_format(fx("m.safetensors")), FileFormat::kSafetensors);
  EXPECT_EQ(detect_format(fx("m.h5")), FileFormat::kHdf5);
  EXPECT_EQ(detect_format(fx("rows.txt")), FileFormat::kText);
}

TEST(ArrayFile, SameMatrixFromEveryFormatLoadsIdentically) {
  const std::pair<std::string, std::string> files[] = {{"m.npy", ""},
                                                       {"m_fortran.npy", ""},
                                                       {"m_ordered.pt", ""},
                                                       {"m_nested.pt", "model.weight"},
                                                       {"m_two.pt", "a"},
                                                       {"m.safetensors", ""},
                                                       {"m.h5", "group/scores"},
                                                       {"m_single.h5", ""}};
  for (const auto& [file, key] : files)
    expect_matrix(load_score_matrix(fx(file), key, Transpose::kNo), file);
  // float16 holds these values exactly (multiples of 1/8 below 2048).
  expect_matrix(load_score_matrix(fx("m_f16.npy"), "", Transpose::kAuto), "m_f16.npy");
}

TEST(ArrayFile, TransposeAutoUsesKnownSizes) {
  expect_matrix(load_score_matrix(fx("m_T.npy"), "", Transpose::kAuto, {30, -1, "labels"}),
                "T by T");
  expect_matrix(load_score_matrix(fx("m_T.npy"), "", Transpose::kAuto, {-1, 50, "N"}), "T by N");
  expect_matrix(load_score_matrix(fx("m_T.npy"), "", Transpose::kYes), "forced");
  // Without sizes, auto keeps the file's orientation.
  EXPECT_EQ(load_score_matrix(fx("m_T.npy"), "", Transpose::kAuto).shape(),
            (std::vector<std::int64_t>{50, 30}));
  const std::string neither = error_of([] {
    load_score_matrix(fx("m.npy"), "", Transpose::kAuto, {31, -1, "31 labels in l.npy"});
  });
  EXPECT_NE(neither.find("31 labels in l.npy"), std::string::npos) << neither;
  const std::string forced = error_of([] {
    load_score_matrix(fx("m.npy"), "", Transpose::kYes, {30, 50, "x"});
  });
  EXPECT_NE(forced.find("after transposing"), std::string::npos) << forced;
}

TEST(ArrayFile, AmbiguousOrAbsentKeysAreExplained) {
  const std::string several = error_of([] { load_array(fx("m_two.pt")); });
  EXPECT_NE(several.find("--key"), std::string::npos) << several;
  EXPECT_NE(several.find("'a' (30 x 50)"), std::string::npos) << several;
  const std::string missing = error_of([] { load_array(fx("m_ordered.pt"), "weights"); });
  EXPECT_NE(missing.find("'weight'"), std::string::npos) << missing;
  const std::string h5 = error_of([] { load_array(fx("m.h5")); });
  EXPECT_NE(h5.find("group/scores"), std::string::npos) << h5;
  EXPECT_NE(error_of([] { load_array(fx("m.npy"), "weight"); }).find("does not apply"),
            std::string::npos);
  const std::string vector =
      error_of([] { load_score_matrix(fx("labels.npy"), "", Transpose::kAuto); });
  EXPECT_NE(vector.find("not a matrix"), std::string::npos) << vector;
}

TEST(ArrayFile, IntegerVectorsFromArraysAndText) {
  const std::vector<std::int64_t> labels = load_integer_vector(fx("labels.npy"));
  ASSERT_EQ(labels.size(), 30u);
  EXPECT_EQ(labels[4], 1);
  EXPECT_EQ(load_integer_vector(fx("labels_float.npy")), labels);
  EXPECT_EQ(load_integer_vector(fx("m.h5"), "labels"), labels);
  EXPECT_EQ(load_integer_vector(fx("rows.txt")), (std::vector<std::int64_t>{1, 2, 3, 10}));
  EXPECT_NE(error_of([] { load_integer_vector(fx("rows_bad.txt")); }).find("line 1"),
            std::string::npos);
  EXPECT_NE(error_of([] { load_integer_vector(fx("labels_bad.npy")); }).find("whole number"),
            std::string::npos);
  EXPECT_NE(error_of([] { load_integer_vector(fx("m.npy")); }).find("list of integers"),
            std::string::npos);
}

TEST(ArrayFile, MissingAndEmptyFilesNameThePath) {
  EXPECT_NE(error_of([] { detect_format(fx("nope.npy")); }).find("nope.npy"), std::string::npos);
}
