// IDX reader against files from tests/fixtures/gen_idx.py and the real Fashion-MNIST files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "common/skip.h"
#include "core/base/error.h"
#include "core/base/ndarray.h"
#include "core/io/idx.h"
#include "test_paths.h"

using namespace modeldiff::core;

namespace {

std::string fx(const std::string& name) {
  return modeldiff::test::test_fixture("idx/" + name);
}

// Mirrors value() in gen_idx.py.
double value(const std::string& kind, std::int64_t i) {
  if (kind == "u1") return static_cast<double>((i * 37) % 256);
  if (kind == "i1") return static_cast<double>((i * 37) % 256 - 128);
  if (kind == "i2") return static_cast<double>((i - 30) * 1001);
  if (kind == "i4") return static_cast<double>((i - 30) * 50000017);
  if (kind == "f4") return static_cast<double>(i) * 0.25 - 3;
  if (kind == "f8") return 1e10 + static_cast<double>(i - 30) * 0.125;
  ADD_FAILURE() << "unknown kind " << kind;
  return 0;
}

DType dtype_of(const std::string& kind) {
  static const std::map<std::string, DType> kMap = {
      {"u1", DType::kUInt8}, {"i1", DType::kInt8},    {"i2", DType::kInt16},
      {"i4", DType::kInt32}, {"f4", DType::kFloat32}, {"f8", DType::kFloat64}};
  return kMap.at(kind);
}

double element(const NdArray& a, std::int64_t i) {
  auto at = [&](auto tag) {
    decltype(tag) v;
    std::memcpy(&v, a.data() + static_cast<std::size_t>(i) * sizeof(v), sizeof(v));
    return v;
  };
  switch (a.dtype()) {
    case DType::kUInt8:
      return at(std::uint8_t{});
    case DType::kInt8:
      return at(std::int8_t{});
    case DType::kInt16:
      return at(std::int16_t{});
    case DType::kInt32:
      return at(std::int32_t{});
    case DType::kFloat32:
      return at(float{});
    case DType::kFloat64:
      return at(double{});
    default:
      ADD_FAILURE() << "unexpected dtype " << dtype_name(a.dtype());
  }
  return 0;
}

void expect_values(const NdArray& a, const std::string& kind, const std::string& what) {
  ASSERT_EQ(a.dtype(), dtype_of(kind)) << what;
  ASSERT_EQ(a.shape(), (std::vector<std::int64_t>{3, 4, 5})) << what;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    ASSERT_EQ(element(a, i), value(kind, i)) << what << " element " << i;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::vector<std::string> kKinds = {"u1", "i1", "i2", "i4", "f4", "f8"};

}  // namespace

TEST(IdxRead, PlainEveryElementType) {
  for (const std::string& kind : kKinds) expect_values(read_idx(fx(kind + ".idx")), kind, kind);
}

TEST(IdxRead, GzippedEveryElementType) {
  for (const std::string& kind : kKinds)
    expect_values(read_idx(fx(kind + ".idx.gz")), kind, kind + ".gz");
}

TEST(IdxRead, OneDimensionalLabels) {
  NdArray labels = read_idx(fx("labels.idx"));
  ASSERT_EQ(labels.shape(), std::vector<std::int64_t>{10});
  for (std::int64_t i = 0; i < 10; ++i)
    EXPECT_EQ(labels.data_as<std::uint8_t>()[i], (i * 37) % 256 % 10);
}

TEST(IdxRead, MultiMemberAndZeroPaddedGzipAsGzipAccepts) {
  expect_values(read_idx(fx("gz_multi_member.idx.gz")), "f4", "multi-member");
  expect_values(read_idx(fx("gz_zero_padded.idx.gz")), "f4", "zero padded");
}

TEST(IdxRead, FromBytesCopiesAndMatchesTheFileReader) {
  for (const char* name : {"i2.idx", "f8.idx.gz"}) {
    const std::string bytes = file_bytes(fx(name));
    NdArray a = parse_idx_bytes("in-memory", reinterpret_cast<const std::byte*>(bytes.data()),
                                bytes.size());
    NdArray b = read_idx(fx(name));
    ASSERT_EQ(a.shape(), b.shape());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0) << name;
  }
}

TEST(IdxRead, CorruptAndLyingFilesThrowInputErrorNamingTheFile) {
  const std::map<std::string, std::string> cases = {
      {"bad_truncated.idx", "truncated IDX data (expected 240 data bytes for 3 x 4 x 5"},
      {"bad_trailing.idx", "more bytes than the IDX header declares"},
      {"bad_truncated_header.idx", "truncated IDX header"},
      {"bad_truncated_dims.idx", "truncated IDX header"},
      {"bad_magic.idx", "not an IDX file"},
      {"bad_type.idx", "unknown IDX element type"},
      {"bad_zero_dims.idx", "0 dimensions"},
      {"bad_overflow.idx", "IDX data too large"},
      {"bad_too_large.idx", "IDX data too large"},
      {"bad_empty.idx", "empty file"},
      {"bad_random.idx", "not an IDX file"},
      {"gz_bad_truncated_stream.idx.gz", "truncated gzip data"},
      {"gz_bad_no_trailer.idx.gz", "truncated gzip data"},
      {"gz_bad_short_data.idx.gz", "truncated IDX data"},
      {"gz_bad_extra_data.idx.gz", "more bytes than the IDX header declares"},
      {"gz_bad_crc.idx.gz", "corrupt gzip data: incorrect data check"},
      {"gz_bad_lying_header.idx.gz", "too small to hold what the header declares"},
      {"gz_bad_bomb.idx.gz", "more bytes than the IDX header declares"},
      {"gz_bad_trailing_garbage.idx.gz", "unexpected bytes after the end of the gzip data"},
      {"gz_bad_random.idx.gz", "corrupt gzip data"},
      {"gz_bad_empty_stream.idx.gz", "truncated IDX header"},
      {"gz_bad_not_idx.idx.gz", "not an IDX file"},
  };
  for (const auto& [name, problem] : cases) {
    const std::string path = fx(name);
    try {
      read_idx(path);
      ADD_FAILURE() << name << ": no error";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_EQ(e.file(), path);
      EXPECT_NE(what.find(problem), std::string::npos) << name << ": " << what;
    }
  }
}

TEST(IdxRead, EveryTruncationOfAValidFileIsAnInputError) {
  for (const char* name : {"f8.idx", "f8.idx.gz"}) {
    const std::string bytes = file_bytes(fx(name));
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      const std::string label = std::string(name) + " prefix " + std::to_string(n);
      try {
        parse_idx_bytes(label, reinterpret_cast<const std::byte*>(bytes.data()), n);
        ADD_FAILURE() << label << " parsed";
      } catch (const InputError& e) {
        EXPECT_EQ(e.file(), label);
      }
    }
  }
}

TEST(IdxRead, MissingFileThrowsInputError) {
  EXPECT_THROW(read_idx(fx("does_not_exist.idx")), InputError);
}

// The real Fashion-MNIST distribution (gzipped IDX), where installed.
class IdxFashionMnist : public ::testing::Test {
 protected:
  static std::string path(const std::string& name) {
    return "/usr/share/datasets/fashion-mnist/" + name;
  }
  void SetUp() override {
    MODELDIFF_SKIP_IF_MISSING(
        !std::filesystem::exists(path("train-labels-idx1-ubyte.gz")),
        "Fashion-MNIST not installed under /usr/share/datasets/fashion-mnist");
  }
};

TEST_F(IdxFashionMnist, TrainingSetShapesAndKnownProperties) {
  const NdArray images = read_idx(path("train-images-idx3-ubyte.gz"));
  ASSERT_EQ(images.dtype(), DType::kUInt8);
  ASSERT_EQ(images.shape(), (std::vector<std::int64_t>{60000, 28, 28}));
  const auto* px = images.data_as<std::uint8_t>();
  std::uint64_t total = 0, first = 0;
  std::uint8_t max_px = 0;
  for (std::int64_t i = 0; i < images.numel(); ++i) {
    total += px[i];
    if (i < 28 * 28) first += px[i];
    max_px = std::max(max_px, px[i]);
  }
  EXPECT_EQ(total, 3431114169u);  // mean pixel 72.94, as published for Fashion-MNIST
  EXPECT_EQ(first, 76247u);
  EXPECT_EQ(max_px, 255);

  const NdArray labels = read_idx(path("train-labels-idx1-ubyte.gz"));
  ASSERT_EQ(labels.shape(), std::vector<std::int64_t>{60000});
  const auto* lab = labels.data_as<std::uint8_t>();
  std::vector<int> counts(10, 0);
  for (std::int64_t i = 0; i < labels.numel(); ++i) {
    ASSERT_LT(lab[i], 10) << "label " << i;
    ++counts[lab[i]];
  }
  EXPECT_EQ(counts, std::vector<int>(10, 6000));
  const std::vector<int> first_ten(lab, lab + 10);
  EXPECT_EQ(first_ten, (std::vector<int>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));  // ankle boot first
}

TEST_F(IdxFashionMnist, TestSetShapesAndBalancedLabels) {
  const NdArray images = read_idx(path("t10k-images-idx3-ubyte.gz"));
  EXPECT_EQ(images.shape(), (std::vector<std::int64_t>{10000, 28, 28}));
  const NdArray labels = read_idx(path("t10k-labels-idx1-ubyte.gz"));
  ASSERT_EQ(labels.shape(), std::vector<std::int64_t>{10000});
  std::vector<int> counts(10, 0);
  for (std::int64_t i = 0; i < labels.numel(); ++i) {
    ASSERT_LT(labels.data_as<std::uint8_t>()[i], 10);
    ++counts[labels.data_as<std::uint8_t>()[i]];
  }
  EXPECT_EQ(counts, std::vector<int>(10, 1000));
}
