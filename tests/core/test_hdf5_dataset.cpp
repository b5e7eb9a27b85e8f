// HDF5 dataset reader against files written by h5py (tests/fixtures/gen_hdf5.py).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/ndarray.h"
#include "core/io/hdf5_dataset.h"
#include "test_paths.h"

using namespace modeldiff::core;

namespace {

std::string fx(const std::string& name) {
  return modeldiff::test::test_fixture("hdf5/" + name);
}

// Mirrors value() in gen_hdf5.py.
double value(const std::string& kind, std::int64_t i) {
  if (kind[0] == 'f') return static_cast<double>(i) * 0.25 - 3;
  if (kind == "i1") return static_cast<double>(i * 7 - 40);
  if (kind == "i2") return static_cast<double>((i - 12) * 1301);
  if (kind == "i4") return static_cast<double>((i - 6) * 100000007);
  if (kind == "i8") return static_cast<double>((i - 6) * 1000000000007LL);
  if (kind == "u1") return static_cast<double>(i * 10 + 3);
  if (kind == "u2") return static_cast<double>(65535 - i * 1000);
  if (kind == "u4") return static_cast<double>(4294967295LL - i * 1000);
  if (kind == "u8") return static_cast<double>(i * 1000000000000LL);
  if (kind == "b1") return i % 3 == 0 ? 1.0 : 0.0;
  ADD_FAILURE() << "unknown kind " << kind;
  return 0;
}

DType dtype_of(const std::string& kind) {
  static const std::map<std::string, DType> kMap = {
      {"f2", DType::kFloat16}, {"f4", DType::kFloat32}, {"f8", DType::kFloat64},
      {"u1", DType::kUInt8},   {"i1", DType::kInt8},    {"i2", DType::kInt16},
      {"i4", DType::kInt32},   {"i8", DType::kInt64},   {"b1", DType::kBool},
      {"u2", DType::kInt32},   {"u4", DType::kInt64},   {"u8", DType::kInt64}};
  return kMap.at(kind);
}

double element(const NdArray& a, std::int64_t i) {
  auto at = [&](auto tag) {
    decltype(tag) v;
    std::memcpy(&v, a.data() + static_cast<std::size_t>(i) * sizeof(v), sizeof(v));
    return v;
  };
  switch (a.dtype()) {
    case DType::kBool:
    case DType::kUInt8:
      return at(std::uint8_t{});
    case DType::kInt8:
      return at(std::int8_t{});
    case DType::kInt16:
      return at(std::int16_t{});
    case DType::kInt32:
      return at(std::int32_t{});
    case DType::kInt64:
      return static_cast<double>(at(std::int64_t{}));
    case DType::kFloat16:
      return half_to_float(at(std::uint16_t{}));
    case DType::kBFloat16:
      return bfloat16_to_float(at(std::uint16_t{}));
    case DType::kFloat32:
      return at(float{});
    case DType::kFloat64:
      return at(double{});
  }
  return 0;
}

void expect_values(const NdArray& a, const std::string& kind, std::vector<std::int64_t> shape,
                   const std::string& what) {
  ASSERT_EQ(a.dtype(), dtype_of(kind)) << what;
  ASSERT_EQ(a.shape(), shape) << what;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    ASSERT_EQ(element(a, i), value(kind, i)) << what << " element " << i;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `read` and returns the InputError's message, checking that it names `file`.
template <typename F>
std::string input_error(const std::string& file, F&& read) {
  try {
    read();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), file);
    return e.what();
  }
  ADD_FAILURE() << "no InputError for " << file;
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(Hdf5Read, EveryNumericTypeH5pyWrites) {
  for (const char* kind : {"f2", "f4", "f8", "u1", "i1", "i2", "i4", "i8", "u2", "u4", "u8", "b1"})
    expect_values(read_hdf5_dataset(fx("basic.h5"), kind), kind, {3, 4}, kind);
}

TEST(Hdf5Read, BigEndianIsConvertedToNative) {
  for (const char* kind : {"f2", "f4", "f8", "i2", "i4", "i8", "u2", "u4"}) {
    expect_values(read_hdf5_dataset(fx("basic.h5"), std::string("be_") + kind), kind, {3, 4},
                  std::string("be_") + kind);
  }
}

TEST(Hdf5Read, NestedGroupPathsSoftLinksAndLeadingSlash) {
  expect_values(read_hdf5_dataset(fx("basic.h5"), "group/sub/weight"), "f4", {2, 3, 4}, "nested");
  expect_values(read_hdf5_dataset(fx("basic.h5"), "/group/sub/weight"), "f4", {2, 3, 4}, "slash");
  expect_values(read_hdf5_dataset(fx("basic.h5"), "group//sub/./weight"), "f4", {2, 3, 4}, "//");
  expect_values(read_hdf5_dataset(fx("basic.h5"), "alias"), "f4", {2, 3, 4}, "soft link");
  expect_values(read_hdf5_dataset(fx("basic.h5"), "group/bias"), "f8", {5}, "1-D");
}

TEST(Hdf5Read, ChunkedGzipShuffledDataset) {
  expect_values(read_hdf5_dataset(fx("basic.h5"), "chunked_gzip"), "f4", {50, 40}, "chunked");
}

TEST(Hdf5Read, ScalarEmptyAndFillValueDatasets) {
  NdArray scalar = read_hdf5_dataset(fx("basic.h5"), "scalar");
  EXPECT_EQ(scalar.ndim(), 0);
  ASSERT_EQ(scalar.dtype(), DType::kFloat64);
  EXPECT_EQ(scalar.data_as<double>()[0], 2.5);
  NdArray empty = read_hdf5_dataset(fx("basic.h5"), "empty");
  EXPECT_EQ(empty.shape(), (std::vector<std::int64_t>{0, 3}));
  // Never written: HDF5 returns the fill value, as h5py does.
  NdArray fill = read_hdf5_dataset(fx("basic.h5"), "fill_only");
  ASSERT_EQ(fill.shape(), (std::vector<std::int64_t>{4, 5}));
  for (std::int64_t i = 0; i < fill.numel(); ++i) EXPECT_EQ(fill.data_as<float>()[i], 7.0f);
}

TEST(Hdf5Read, Bfloat16TypeIsKeptAsBfloat16) {
  NdArray a = read_hdf5_dataset(fx("basic.h5"), "bf16");
  ASSERT_EQ(a.dtype(), DType::kBFloat16);
  ASSERT_EQ(a.shape(), std::vector<std::int64_t>{4});
  const std::vector<float> expected = {1.0f, -2.5f, 3.0f, 0.15625f};
  for (std::int64_t i = 0; i < 4; ++i) EXPECT_EQ(element(a, i), expected[i]);
}

TEST(Hdf5Read, LatestFileFormatAndUserBlock) {
  expect_values(read_hdf5_dataset(fx("latest.h5"), "group/sub/weight"), "f4", {2, 3, 4}, "v3");
  expect_values(read_hdf5_dataset(fx("latest.h5"), "chunked"), "i4", {3, 4}, "v2 B-tree");
  NdArray dense = read_hdf5_dataset(fx("latest.h5"), "dense/d13");
  EXPECT_EQ(dense.data_as<std::int8_t>()[0], 13);
  expect_values(read_hdf5_dataset(fx("userblock.h5"), "f8"), "f8", {3, 4}, "user block");
}

TEST(Hdf5Read, UnsupportedTypesAndValuesAreRefused) {
  const std::string path = fx("basic.h5");
  EXPECT_TRUE(contains(input_error(path, [&] { read_hdf5_dataset(path, "strings"); }),
                       "[strings]: string datasets are not supported"));
  EXPECT_TRUE(contains(input_error(path, [&] { read_hdf5_dataset(path, "complex"); }),
                       "compound (e.g. complex-number) datasets are not supported"));
  const std::string big = input_error(path, [&] { read_hdf5_dataset(path, "u8_too_big"); });
  EXPECT_TRUE(contains(big, "uint64 value too large")) << big;
  EXPECT_TRUE(contains(big, "9223372036854775808 at element 1")) << big;
}

TEST(Hdf5Read, MissingDatasetNamesFileKeyAndAvailableDatasets) {
  const std::string path = fx("basic.h5");
  const std::string msg = input_error(path, [&] { read_hdf5_dataset(path, "scores"); });
  EXPECT_TRUE(contains(msg, path + " [scores]: no such dataset")) << msg;
  EXPECT_TRUE(contains(msg, "one of the file's datasets: ")) << msg;
  EXPECT_TRUE(contains(msg, "be_f2")) << msg;
  const std::string deeper =
      input_error(path, [&] { read_hdf5_dataset(path, "group/nope/weight"); });
  EXPECT_TRUE(contains(deeper, "[group/nope/weight]: no such dataset")) << deeper;
  EXPECT_TRUE(
      contains(input_error(path, [&] { read_hdf5_dataset(path, "f4/below"); }), "no such dataset"));
  EXPECT_TRUE(
      contains(input_error(path, [&] { read_hdf5_dataset(path, "dangling"); }), "no such dataset"));

  const std::string many =
      input_error(fx("many.h5"), [&] { read_hdf5_dataset(fx("many.h5"), "x"); });
  EXPECT_TRUE(contains(many, "d00, d01, d02")) << many;
  EXPECT_TRUE(contains(many, "d19 and 5 more")) << many;
  EXPECT_FALSE(contains(many, "d20")) << many;

  const std::string none =
      input_error(fx("no_datasets.h5"), [&] { read_hdf5_dataset(fx("no_datasets.h5"), "x"); });
  EXPECT_TRUE(contains(none, "the file holds no datasets")) << none;
}

TEST(Hdf5Read, GroupsTypesAndExternalLinksAreNotDatasets) {
  const std::string path = fx("basic.h5");
  EXPECT_TRUE(contains(input_error(path, [&] { read_hdf5_dataset(path, "group"); }),
                       "[group]: this is a group, not a dataset"));
  EXPECT_TRUE(contains(input_error(path, [&] { read_hdf5_dataset(path, "named_type"); }),
                       "this is not a dataset"));
  // The target exists (other.h5:/x), but a file must not make us open other files.
  EXPECT_TRUE(
      contains(input_error(path, [&] { read_hdf5_dataset(path, "ext"); }), "no such dataset"));
  EXPECT_TRUE(
      contains(input_error(path, [&] { read_hdf5_dataset(path, ""); }), "no dataset name given"));
}

TEST(Hdf5Read, MaxBytesRefusesLargerDatasets) {
  const std::string path = fx("basic.h5");
  EXPECT_EQ(read_hdf5_dataset(path, "chunked_gzip", 50 * 40 * 4).numel(), 2000);
  const std::string msg =
      input_error(path, [&] { read_hdf5_dataset(path, "chunked_gzip", 50 * 40 * 4 - 1); });
  EXPECT_TRUE(contains(msg, "dataset too large to load")) << msg;
}

TEST(Hdf5Read, CorruptFilesThrowInputErrorNamingTheFile) {
  const std::map<std::string, std::string> cases = {
      {"bad_truncated.h5", "cannot open HDF5 file: truncated file"},
      {"bad_signature_only.h5", "cannot open HDF5 file"},
      {"bad_superblock.h5", "cannot open"},
      {"bad_eof_address.h5", "cannot"},
      {"bad_random.h5", "not an HDF5 file"},
      {"bad_empty.h5", "empty file"},
      {"bad_npy.h5", "not an HDF5 file"},
      {"does_not_exist.h5", "cannot open file"},
  };
  for (const auto& [name, problem] : cases) {
    const std::string path = fx(name);
    const std::string msg = input_error(path, [&] { read_hdf5_dataset(path, "f4"); });
    EXPECT_TRUE(contains(msg, problem)) << name << ": " << msg;
    input_error(path, [&] { list_hdf5_datasets(path); });
  }
}

TEST(Hdf5Read, ErrorsPrintNothingAndRestoreHdf5ErrorHandler) {
  H5E_auto2_t before_func = nullptr;
  void* before_data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &before_func, &before_data);
  testing::internal::CaptureStderr();
  EXPECT_THROW(read_hdf5_dataset(fx("bad_random.h5"), "x"), InputError);
  EXPECT_THROW(read_hdf5_dataset(fx("basic.h5"), "missing"), InputError);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  H5E_auto2_t after_func = nullptr;
  void* after_data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &after_func, &after_data);
  EXPECT_EQ(after_func, before_func);
  EXPECT_EQ(after_data, before_data);
}

TEST(Hdf5Read, FromImageMatchesTheFileReader) {
  const std::string bytes = file_bytes(fx("basic.h5"));
  NdArray a = read_hdf5_dataset_from_image("image", bytes.data(), bytes.size(), "chunked_gzip");
  expect_values(a, "f4", {50, 40}, "image");
  EXPECT_EQ(list_hdf5_datasets_from_image("image", bytes.data(), bytes.size()),
            list_hdf5_datasets(fx("basic.h5")));
  const std::string msg =
      input_error("image", [&] { read_hdf5_dataset_from_image("image", "junk", 4, "x"); });
  EXPECT_TRUE(contains(msg, "image: ")) << msg;
}

TEST(Hdf5Read, EveryTruncationOfASmallFileIsAnInputError) {
  const std::string bytes = file_bytes(fx("small.h5"));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::string name = "small.h5 prefix " + std::to_string(n);
    try {
      read_hdf5_dataset_from_image(name, bytes.data(), n, "x");
      // HDF5 reads lazily: a prefix holding everything up to the data is still readable.
      // Whatever it returns must be the right array.
      expect_values(read_hdf5_dataset_from_image(name, bytes.data(), n, "x"), "f4", {3, 4}, name);
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), name);
    }
  }
}

TEST(Hdf5List, AllDatasetsRecursivelyThroughHardLinks) {
  const std::vector<std::string> expected = {"b1",
                                             "be_f2",
                                             "be_f4",
                                             "be_f8",
                                             "be_i2",
                                             "be_i4",
                                             "be_i8",
                                             "be_u2",
                                             "be_u4",
                                             "bf16",
                                             "chunked_gzip",
                                             "complex",
                                             "empty",
                                             "f2",
                                             "f4",
                                             "f8",
                                             "fill_only",
                                             "group/bias",
                                             "group/sub/weight",
                                             "i1",
                                             "i2",
                                             "i4",
                                             "i8",
                                             "scalar",
                                             "strings",
                                             "u1",
                                             "u2",
                                             "u4",
                                             "u8",
                                             "u8_too_big"};
  EXPECT_EQ(list_hdf5_datasets(fx("basic.h5")), expected);
  EXPECT_TRUE(list_hdf5_datasets(fx("no_datasets.h5")).empty());
  EXPECT_EQ(list_hdf5_datasets(fx("many.h5")).size(), 25u);
  const std::vector<std::string> latest = list_hdf5_datasets(fx("latest.h5"));
  EXPECT_EQ(latest.size(), 22u);
  EXPECT_EQ(latest.front(), "chunked");
  EXPECT_EQ(latest.back(), "group/sub/weight");
}
