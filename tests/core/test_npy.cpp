// NPY reader and writer against files written by numpy (tests/fixtures/gen_npy.py).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/base/ndarray.h"
#include "core/io/npy.h"
#include "test_paths.h"

using namespace modeldiff::core;
namespace fs = std::filesystem;

namespace {

std::string fx(const std::string& name) {
  return modeldiff::test::test_fixture("npy/" + name);
}

// Mirrors value() in gen_npy.py: element i (C order) of the test array of a kind.
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

// The NdArray dtype each file dtype reads as (unsigned wider than a byte is widened).
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

NdArray make_array(const std::string& kind, std::vector<std::int64_t> shape) {
  NdArray a = NdArray::allocate(dtype_of(kind), shape);
  const std::size_t es = dtype_size(a.dtype());
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double v = value(kind, i);
    std::byte* p = a.mutable_data() + static_cast<std::size_t>(i) * es;
    auto put = [&](auto x) { std::memcpy(p, &x, sizeof(x)); };
    switch (a.dtype()) {
      case DType::kBool:
      case DType::kUInt8:
        put(static_cast<std::uint8_t>(v));
        break;
      case DType::kInt8:
        put(static_cast<std::int8_t>(v));
        break;
      case DType::kInt16:
        put(static_cast<std::int16_t>(v));
        break;
      case DType::kInt32:
        put(static_cast<std::int32_t>(v));
        break;
      case DType::kInt64:
        put(static_cast<std::int64_t>(v));
        break;
      case DType::kFloat16:
        put(float_to_half(static_cast<float>(v)));
        break;
      case DType::kFloat32:
        put(static_cast<float>(v));
        break;
      case DType::kFloat64:
        put(v);
        break;
      case DType::kBFloat16:
        break;
    }
  }
  return a;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A fresh empty directory for writer tests.
fs::path temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "npy_test_XXXXXX").string();
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

const std::vector<std::string> kAllKinds = {"f2", "f4", "f8", "u1", "i1", "i2",
                                            "i4", "i8", "b1", "u2", "u4", "u8"};
const std::vector<std::string> kWritableKinds = {"f2", "f4", "f8", "u1", "i1",
                                                 "i2", "i4", "i8", "b1"};

}  // namespace

TEST(NpyRead, LittleEndianEveryDtype) {
  for (const std::string& kind : kAllKinds)
    expect_values(read_npy(fx("le_" + kind + ".npy")), kind, {3, 4}, "le_" + kind);
}

TEST(NpyRead, BigEndianEveryDtypeIsSwapped) {
  for (const std::string& kind : kAllKinds) {
    if (kind[1] == '1') continue;  // single bytes have no byte order
    expect_values(read_npy(fx("be_" + kind + ".npy")), kind, {3, 4}, "be_" + kind);
  }
}

TEST(NpyRead, NativeCOrderBorrowsTheMapping) {
  auto file = MappedFile::open(fx("le_f4.npy"));
  NdArray a = parse_npy(file);
  // numpy pads the header so that the data starts at byte 128 for this shape.
  EXPECT_EQ(a.data(), file->data() + 128);
  file.reset();  // the array keeps the mapping alive
  EXPECT_EQ(a.data_as<float>()[11], -0.25f);
}

TEST(NpyRead, FortranOrderBecomesCOrder) {
  expect_values(read_npy(fx("fortran_f4_2d.npy")), "f4", {3, 4}, "2-D");
  expect_values(read_npy(fx("fortran_i2_3d.npy")), "i2", {2, 3, 4}, "3-D");
  expect_values(read_npy(fx("fortran_be_f8_3d.npy")), "f8", {2, 3, 4}, "3-D big-endian");
  expect_values(read_npy(fx("fortran_u2_4d.npy")), "u2", {2, 1, 3, 2}, "4-D widened");
  expect_values(read_npy(fx("hdr_fortran_1d.npy")), "f8", {5}, "1-D");
}

TEST(NpyRead, FormatVersions2And3) {
  expect_values(read_npy(fx("v2_f4.npy")), "f4", {3, 4}, "2.0");
  expect_values(read_npy(fx("v3_f4.npy")), "f4", {3, 4}, "3.0");
}

TEST(NpyRead, OneDimScalarAndEmpty) {
  expect_values(read_npy(fx("d1_f8.npy")), "f8", {5}, "1-D");
  NdArray scalar = read_npy(fx("d0_f4.npy"));
  EXPECT_EQ(scalar.ndim(), 0);
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.data_as<float>()[0], -3.0f);
  NdArray empty = read_npy(fx("empty_f4.npy"));
  EXPECT_EQ(empty.shape(), (std::vector<std::int64_t>{0, 3}));
  EXPECT_TRUE(empty.empty());
}

TEST(NpyRead, HandWrittenHeadersNumpyAccepts) {
  for (const char* name : {"hdr_shuffled.npy", "hdr_spacing.npy", "hdr_quotes.npy",
                           "hdr_py2_long.npy", "hdr_unaligned.npy", "hdr_v2_unaligned_be.npy"}) {
    NdArray a = read_npy(fx(name));
    expect_values(a, a.dtype() == DType::kFloat64 ? "f8" : "f4", {3, 4}, name);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % dtype_size(a.dtype()), 0u) << name;
  }
}

TEST(NpyRead, TrailingBytesAreToleratedAsByNumpy) {
  expect_values(read_npy(fx("trailing_bytes.npy")), "f4", {3, 4}, "trailing");
}

TEST(NpyRead, Uint64BeyondInt64IsRefused) {
  try {
    read_npy(fx("bad_u8_too_big.npy"));
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("9223372036854775808"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("element 1"), std::string::npos) << e.what();
  }
}

TEST(NpyRead, CorruptAndUnsupportedFilesThrowInputErrorNamingTheFile) {
  const std::map<std::string, std::string> cases = {
      {"bad_truncated_data.npy", "truncated .npy data (expected 48 data bytes"},
      {"bad_truncated_header.npy", "header length runs past the end"},
      {"bad_magic.npy", "bad magic"},
      {"bad_version.npy", "unsupported .npy format version"},
      {"bad_header_len.npy", "header length runs past the end"},
      {"bad_no_header_len.npy", "no header length"},
      {"bad_shape_overflow.npy", "array size overflows"},
      {"bad_dim_too_big.npy", "does not fit in 64 bits"},
      {"bad_huge_numel.npy", "truncated .npy data"},
      {"bad_negative_dim.npy", "negative dimension"},
      {"bad_not_tuple.npy", "not a tuple"},
      {"bad_33_dims.npy", "more than 32 dimensions"},
      {"bad_missing_key.npy", "missing key 'shape'"},
      {"bad_extra_key.npy", "unexpected key 'x'"},
      {"bad_fortran_int.npy", "must be True or False"},
      {"bad_garbage_after.npy", "unexpected text after"},
      {"bad_complex.npy", "complex dtypes are not supported"},
      {"bad_string.npy", "string dtypes are not supported"},
      {"bad_datetime.npy", "datetime dtypes are not supported"},
      {"bad_structured.npy", "structured dtypes are not supported"},
      {"bad_object.npy", "object arrays"},
      {"bad_f16.npy", "unsupported floating-point width"},
      {"bad_empty.npy", "empty file"},
      {"bad_random.npy", "bad magic"},
      {"bad_npz.npy", "zip archive"},
  };
  for (const auto& [name, problem] : cases) {
    const std::string path = fx(name);
    try {
      read_npy(path);
      ADD_FAILURE() << name << ": no error";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_EQ(e.file(), path);
      EXPECT_NE(what.find(path), std::string::npos) << what;
      EXPECT_NE(what.find(problem), std::string::npos) << name << ": " << what;
    }
  }
}

TEST(NpyRead, MissingFileThrowsInputError) {
  EXPECT_THROW(read_npy(fx("does_not_exist.npy")), InputError);
}

TEST(NpyRead, EveryTruncationOfAValidFileIsAnInputError) {
  const std::string bytes = file_bytes(fx("fortran_be_f8_3d.npy"));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto file = MappedFile::from_bytes("prefix-" + std::to_string(n), bytes.data(), n);
    try {
      parse_npy(file);
      ADD_FAILURE() << "prefix of " << n << " bytes parsed";
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), "prefix-" + std::to_string(n));
    }
  }
}

TEST(NpyWrite, MatchesNumpySaveByteForByte) {
  const fs::path dir = temp_dir();
  struct Case {
    std::string ref, kind;
    std::vector<std::int64_t> shape;
  };
  std::vector<Case> cases;
  for (const std::string& kind : kWritableKinds) cases.push_back({kind + ".npy", kind, {3, 4}});
  cases.push_back({"d1_i8.npy", "i8", {5}});
  cases.push_back({"d0_f8.npy", "f8", {}});
  cases.push_back({"empty_f4.npy", "f4", {0, 3}});
  cases.push_back({"d3_u1.npy", "u1", {2, 3, 4}});
  cases.push_back({"full_pad_f4.npy", "f4", {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 123}});
  for (const Case& c : cases) {
    const fs::path out = dir / c.ref;
    write_npy(out.string(), make_array(c.kind, c.shape));
    EXPECT_EQ(file_bytes(out.string()), file_bytes(fx("writer_ref/" + c.ref))) << c.ref;
  }
  // A wide first dim shortens numpy's growth padding; the values wrap as numpy's astype does.
  NdArray wide = NdArray::allocate(DType::kUInt8, {12345, 2});
  for (std::int64_t i = 0; i < wide.numel(); ++i)
    wide.mutable_data_as<std::uint8_t>()[i] = static_cast<std::uint8_t>(i & 0xff);
  write_npy((dir / "wide_u1.npy").string(), wide);
  EXPECT_EQ(file_bytes((dir / "wide_u1.npy").string()), file_bytes(fx("writer_ref/wide_u1.npy")));
  fs::remove_all(dir);
}

TEST(NpyWrite, RoundTripsEveryDtype) {
  const fs::path dir = temp_dir();
  for (const std::string& kind : kWritableKinds) {
    const std::string path = (dir / (kind + ".npy")).string();
    write_npy(path, make_array(kind, {2, 3, 2}));
    NdArray back = read_npy(path);
    expect_values(back, kind, {2, 3, 2}, kind);
  }
  fs::remove_all(dir);
}

TEST(NpyWrite, ReplacesExistingFileAndLeavesNoTemporaryFiles) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "scores.npy").string();
  write_npy(path, make_array("f4", {3, 4}));
  write_npy(path, make_array("f8", {5}));
  expect_values(read_npy(path), "f8", {5}, "rewritten");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"scores.npy"});
  fs::remove_all(dir);
}

TEST(NpyWrite, UnwritableTargetThrowsInputErrorAndLeavesNothing) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "missing_dir" / "scores.npy").string();
  try {
    write_npy(path, make_array("f4", {3, 4}));
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), path);
  }
  // Renaming onto a directory fails after the data was written: the temporary must go.
  fs::create_directory(dir / "is_a_dir.npy");
  EXPECT_THROW(write_npy((dir / "is_a_dir.npy").string(), make_array("f4", {3, 4})), InputError);
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1u);  // only is_a_dir.npy
  fs::remove_all(dir);
}

TEST(NpyWrite, RefusesArraysNumpyCannotHold) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "x.npy").string();
  EXPECT_THROW(write_npy(path, NdArray::allocate(DType::kBFloat16, {2})), InputError);
  EXPECT_THROW(
      write_npy(path, NdArray::allocate(DType::kFloat32, std::vector<std::int64_t>(33, 1))),
      InputError);
  EXPECT_FALSE(fs::exists(path));
  fs::remove_all(dir);
}
