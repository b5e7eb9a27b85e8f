// safetensors files from tests/fixtures/gen_safetensors.py, and every header inconsistency the
// reader must refuse, built in memory.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "core/io/torch_archive.h"
#include "core/test_paths.h"

using namespace modeldiff::core;
using modeldiff::test::test_fixture;

namespace {

std::string st_fixture(const std::string& name) {
  return test_fixture("safetensors/" + name);
}

// An in-memory safetensors file: 8-byte little-endian length, `header`, then `data`.
std::shared_ptr<const MappedFile> make_file(const std::string& header, const std::string& data,
                                            const std::string& name = "mem.safetensors") {
  std::string bytes(8, '\0');
  std::uint64_t n = header.size();
  for (int k = 0; k < 8; ++k) bytes[static_cast<std::size_t>(k)] = static_cast<char>(n >> (8 * k));
  bytes += header + data;
  return MappedFile::from_bytes(name, bytes.data(), bytes.size());
}

void expect_error(const std::string& header, const std::string& data,
                  std::initializer_list<const char*> parts) {
  SCOPED_TRACE(header);
  try {
    parse_safetensors(make_file(header, data));
    ADD_FAILURE() << "no InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mem.safetensors"), std::string::npos) << msg;
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << p << " in " << msg;
  }
}

struct ManifestLine {
  std::string file, name, npy, dtype;
  std::vector<std::int64_t> shape;
};

std::vector<ManifestLine> read_manifest(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<ManifestLine> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) f.push_back(field);
    if (line.back() == '\t') f.push_back("");
    if (f.size() != 5) {
      ADD_FAILURE() << line;
      continue;
    }
    ManifestLine m{f[0], f[1], f[2], f[3], {}};
    std::stringstream dims(f[4]);
    while (std::getline(dims, field, ',')) m.shape.push_back(std::stoll(field));
    out.push_back(m);
  }
  return out;
}

}  // namespace

TEST(Safetensors, EveryDtypeMatchesTheExpectedValues) {
  const auto manifest = read_manifest(st_fixture("manifest.tsv"));
  ASSERT_EQ(manifest.size(), 13u);
  std::string current;
  std::vector<NamedArray> arrays;
  std::size_t index = 0;
  for (const auto& m : manifest) {
    if (m.file != current) {
      if (!current.empty()) {
        EXPECT_EQ(index, arrays.size()) << current;
      }
      current = m.file;
      arrays = read_safetensors(st_fixture(m.file));
      index = 0;
    }
    SCOPED_TRACE(m.file + ":" + m.name);
    ASSERT_LT(index, arrays.size());
    const NamedArray& a = arrays[index++];
    EXPECT_EQ(a.name, m.name);  // header order, not data order
    EXPECT_EQ(dtype_name(a.array.dtype()), m.dtype);
    EXPECT_EQ(a.array.shape(), m.shape);
    const NdArray want = read_npy(st_fixture(m.npy));
    ASSERT_EQ(want.shape(), a.array.shape());
    if (want.dtype() == a.array.dtype()) {
      EXPECT_EQ(std::memcmp(want.data(), a.array.data(), want.nbytes()), 0);
    } else {  // bfloat16, exported as float32
      const NdArray got = a.array.to_float32(), exp = want.to_float32();
      for (std::int64_t i = 0; i < got.numel(); ++i) {
        EXPECT_EQ(got.data_as<float>()[i], exp.data_as<float>()[i]);
      }
    }
  }
  EXPECT_EQ(index, arrays.size());
}

TEST(Safetensors, BorrowsAlignedDataAndCopiesUnalignedData) {
  // weight_30x50: header padded to 8 bytes as the safetensors library does: zero copy.
  const auto aligned = MappedFile::open(st_fixture("weight_30x50.safetensors"));
  const auto w = parse_safetensors(aligned);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_GE(w[0].array.data(), aligned->data());
  EXPECT_LE(w[0].array.data() + w[0].array.nbytes(), aligned->data() + aligned->size());
  // dtypes: packed without padding; every array must still be aligned for its element type.
  const auto packed = MappedFile::open(st_fixture("dtypes.safetensors"));
  int borrowed = 0, copied = 0;
  for (const auto& a : parse_safetensors(packed)) {
    const auto address = reinterpret_cast<std::uintptr_t>(a.array.data());
    EXPECT_EQ(address % dtype_size(a.array.dtype()), 0u) << a.name;
    const bool inside =
        a.array.data() >= packed->data() && a.array.data() < packed->data() + packed->size();
    (inside ? borrowed : copied)++;
  }
  EXPECT_GT(borrowed, 0);
  EXPECT_GT(copied, 0);
}

TEST(Safetensors, MetadataIsReadAndSkippedAsATensor) {
  const auto meta = read_safetensors_metadata(MappedFile::open(st_fixture("dtypes.safetensors")));
  ASSERT_EQ(meta.size(), 2u);
  EXPECT_EQ(meta[0], (std::pair<std::string, std::string>("format", "pt")));
  EXPECT_EQ(meta[1].first, "source");
  EXPECT_TRUE(read_safetensors_metadata(make_file("{}", "")).empty());
  EXPECT_THROW(read_safetensors_metadata(make_file(R"({"__metadata__": {"a": 1}})", "")),
               InputError);
}

TEST(Safetensors, SameMatrixAsTheTorchFile) {
  const auto st = read_safetensors(st_fixture("weight_30x50.safetensors"));
  const auto pt = read_torch_file(test_fixture("torch/weight_30x50.pt"));
  ASSERT_EQ(st.size(), 1u);
  ASSERT_EQ(pt.size(), 1u);
  EXPECT_EQ(st[0].name, "weight");
  EXPECT_EQ(pt[0].name, "weight");
  ASSERT_EQ(st[0].array.shape(), (std::vector<std::int64_t>{30, 50}));
  ASSERT_EQ(pt[0].array.shape(), st[0].array.shape());
  const NdArray a = st[0].array.to_float32(), b = pt[0].array.to_float32();
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_EQ(a.data_as<float>()[i], b.data_as<float>()[i]) << i;
  }
}

TEST(Safetensors, EmptyHeaderAndZeroSizeTensors) {
  EXPECT_TRUE(parse_safetensors(make_file("{}", "")).empty());
  const auto a = parse_safetensors(make_file(
      R"({"e": {"dtype": "F32", "shape": [0, 7], "data_offsets": [4, 4]},
          "x": {"dtype": "I32", "shape": [], "data_offsets": [0, 4]}})",
      std::string("\x2a\0\0\0", 4)));
  ASSERT_EQ(a.size(), 2u);
  EXPECT_TRUE(a[0].array.empty());
  EXPECT_EQ(a[1].array.data_as<std::int32_t>()[0], 42);
}

TEST(Safetensors, RefusesInconsistentHeaders) {
  const std::string data(64, '\0');
  auto entry = [](const char* dtype, const char* shape, const char* offsets) {
    return std::string("{\"t\": {\"dtype\": \"") + dtype + "\", \"shape\": " + shape +
           ", \"data_offsets\": " + offsets + "}}";
  };
  expect_error("{", data, {"invalid JSON"});
  expect_error("[1, 2]", data, {"not a JSON object"});
  expect_error("{\"t\": 3}", data, {"bad tensor entry", "[t]"});
  expect_error("{\"t\": {\"dtype\": \"F32\"}}", data, {"data_offsets"});
  expect_error(entry("F8_E4M3", "[2]", "[0, 2]"), data, {"unsupported dtype", "F8_E4M3"});
  expect_error(entry("U16", "[2]", "[0, 4]"), data, {"unsupported dtype", "U16"});
  expect_error(entry("F32", "[-2]", "[0, 8]"), data, {"bad shape"});
  expect_error(entry("F32", "[2.5]", "[0, 8]"), data, {"bad shape"});
  expect_error(entry("F32", "2", "[0, 8]"), data, {"bad shape"});
  expect_error(entry("F32", "[2]", "[0, 9]"), data, {"do not match the shape", "8 bytes"});
  expect_error(entry("F32", "[2]", "[60, 68]"), data, {"outside the data"});
  expect_error(entry("F32", "[2]", "[8, 0]"), data, {"outside the data"});
  expect_error(entry("F32", "[2]", "[0]"), data, {"bad data_offsets"});
  expect_error(entry("F32", "[4294967296, 4294967296, 4294967296]", "[0, 8]"), data,
               {"shape overflows"});
  expect_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                   "b": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}})",
               data, {"overlap", "[b]", "a"});
  expect_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                   "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
               data, {"listed twice", "[a]"});
}

TEST(Safetensors, RefusesBadFramingNamingTheFile) {
  const auto tiny = MappedFile::from_bytes("mem.safetensors", "abc", 3);
  EXPECT_THROW(parse_safetensors(tiny), InputError);
  // Header length beyond the file.
  std::string bytes("\xff\xff\0\0\0\0\0\0{}", 10);
  try {
    parse_safetensors(MappedFile::from_bytes("mem.safetensors", bytes.data(), bytes.size()));
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad header length"), std::string::npos) << e.what();
    EXPECT_EQ(e.file(), "mem.safetensors");
  }
  EXPECT_THROW(parse_safetensors(make_file("", "")), InputError);
  EXPECT_THROW(read_safetensors(st_fixture("no_such_file.safetensors")), InputError);
}

TEST(Safetensors, EveryTruncationIsAnInputError) {
  std::ifstream in(st_fixture("dtypes.safetensors"), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string good = ss.str();
  for (std::size_t n = 0; n < good.size(); ++n) {
    try {
      const auto a = parse_safetensors(MappedFile::from_bytes("cut", good.data(), n));
      ADD_FAILURE() << "truncated to " << n << " bytes but parsed " << a.size() << " tensors";
    } catch (const InputError&) {
    }
  }
}
