// torch.save archives written by the real torch 1.13 (tests/fixtures/gen_torch.py), compared
// with the values torch itself exported to .npy, plus refused formats and corrupt archives.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/io/npy.h"
#include "core/io/torch_archive.h"
#include "core/test_paths.h"

using namespace modeldiff::core;
using modeldiff::test::test_fixture;

namespace {

std::string torch_fixture(const std::string& name) {
  return test_fixture("torch/" + name);
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
    EXPECT_EQ(f.size(), 5u) << line;
    if (f.size() != 5) continue;
    ManifestLine m{f[0], f[1], f[2], f[3], {}};
    std::stringstream dims(f[4]);
    while (std::getline(dims, field, ',')) m.shape.push_back(std::stoll(field));
    out.push_back(m);
  }
  return out;
}

// Exact comparison: same bytes when the expected file has the same dtype, else same float32
// values (bfloat16 is exported as float32).
void expect_same_values(const NdArray& got, const NdArray& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  if (got.dtype() == want.dtype()) {
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.nbytes()), 0) << what;
    return;
  }
  const NdArray a = got.to_float32(), b = want.to_float32();
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_EQ(a.data_as<float>()[i], b.data_as<float>()[i]) << what << " element " << i;
  }
}

std::vector<std::string> names_of(const std::vector<NamedArray>& arrays) {
  std::vector<std::string> names;
  for (const auto& a : arrays) names.push_back(a.name);
  return names;
}

// gen_torch.py's formula: exact in float16 and bfloat16.
double formula(std::int64_t i, int salt) {
  return static_cast<double>(((i + 7 * salt) * 37) % 101 - 50) / 16.0;
}

// Runs `f`, expecting an InputError whose message names `path` and contains `text`.
template <typename F>
void expect_input_error(F f, const std::string& path, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no InputError for " << path;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(text), std::string::npos) << "'" << text << "' not in: " << msg;
  }
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(TorchArchive, EveryFixtureMatchesWhatTorchExported) {
  const auto manifest = read_manifest(torch_fixture("manifest.tsv"));
  ASSERT_GT(manifest.size(), 50u);
  std::map<std::string, std::vector<ManifestLine>> by_file;
  std::vector<std::string> order;
  for (const auto& m : manifest) {
    if (by_file[m.file].empty()) order.push_back(m.file);
    by_file[m.file].push_back(m);
  }
  for (const auto& file : order) {
    SCOPED_TRACE(file);
    const auto arrays = read_torch_file(torch_fixture(file));
    const auto& want = by_file[file];
    ASSERT_EQ(arrays.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      SCOPED_TRACE(want[i].name);
      EXPECT_EQ(arrays[i].name, want[i].name);
      EXPECT_EQ(dtype_name(arrays[i].array.dtype()), want[i].dtype);
      EXPECT_EQ(arrays[i].array.shape(), want[i].shape);
      expect_same_values(arrays[i].array, read_npy(torch_fixture(want[i].npy)),
                         file + ":" + want[i].name);
    }
  }
}

TEST(TorchArchive, StateDictOfSequentialInFileOrder) {
  const auto arrays = read_torch_file(torch_fixture("state_dict.pt"));
  const std::vector<std::string> expected = {"0.weight",
                                             "0.bias",
                                             "1.weight",
                                             "1.bias",
                                             "1.running_mean",
                                             "1.running_var",
                                             "1.num_batches_tracked",
                                             "3.weight",
                                             "3.bias"};
  EXPECT_EQ(names_of(arrays), expected);
  const NdArray& conv = arrays[0].array;
  ASSERT_EQ(conv.shape(), (std::vector<std::int64_t>{3, 2, 3, 3}));
  ASSERT_EQ(conv.dtype(), DType::kFloat32);
  for (std::int64_t i = 0; i < conv.numel(); ++i) {
    EXPECT_EQ(conv.data_as<float>()[i], formula(i, 0));
  }
  const NdArray& tracked = arrays[6].array;
  EXPECT_EQ(tracked.dtype(), DType::kInt64);
  EXPECT_EQ(tracked.ndim(), 0);
  std::int64_t v;
  std::memcpy(&v, tracked.data(), sizeof v);
  EXPECT_EQ(v, 5);
}

TEST(TorchArchive, DeflatedArchiveReadsLikeStoredOne) {
  const auto stored = read_torch_file(torch_fixture("state_dict.pt"));
  const auto deflated = read_torch_file(torch_fixture("state_dict_deflate.pt"));
  ASSERT_EQ(names_of(stored), names_of(deflated));
  for (std::size_t i = 0; i < stored.size(); ++i) {
    expect_same_values(deflated[i].array, stored[i].array, stored[i].name);
  }
}

TEST(TorchArchive, CheckpointSelectsModelStateDict) {
  auto all = read_torch_file(torch_fixture("checkpoint.pt"));
  EXPECT_EQ(all.size(), 15u);  // 9 model tensors + 6 momentum buffers; "epoch" skipped
  EXPECT_EQ(all[9].name, "optimizer.state.0.momentum_buffer");
  std::string prefix = "unset";
  const auto sd = select_state_dict(all, &prefix);
  EXPECT_EQ(prefix, "model");
  EXPECT_EQ(names_of(sd), names_of(read_torch_file(torch_fixture("state_dict.pt"))));
}

TEST(TorchArchive, DataParallelPrefixIsStripped) {
  std::string prefix = "unset";
  const auto sd = select_state_dict(read_torch_file(torch_fixture("dataparallel.pt")), &prefix);
  EXPECT_EQ(prefix, "module");
  EXPECT_EQ(names_of(sd), names_of(read_torch_file(torch_fixture("state_dict.pt"))));
}

TEST(TorchArchive, SelectStateDictRules) {
  const NdArray x = NdArray::allocate(DType::kFloat32, {1});
  auto make = [&](std::vector<std::string> names) {
    std::vector<NamedArray> v;
    for (auto& n : names) v.push_back({n, x});
    return v;
  };
  std::string prefix;
  EXPECT_EQ(names_of(select_state_dict(make({"a.w", "b.w"}), &prefix)),
            (std::vector<std::string>{"a.w", "b.w"}));
  EXPECT_EQ(prefix, "");
  EXPECT_EQ(
      names_of(select_state_dict(make({"net.module.w", "net.b", "opt.m", "netx.y"}), &prefix)),
      (std::vector<std::string>{"w", "b"}));
  EXPECT_EQ(prefix, "net");
  // "state_dict" wins over "model" (first in order); a nesting key alone is not a prefix.
  EXPECT_EQ(names_of(select_state_dict(make({"model.a", "state_dict.b", "model"}), &prefix)),
            (std::vector<std::string>{"b"}));
  EXPECT_EQ(prefix, "state_dict");
  EXPECT_EQ(names_of(select_state_dict(make({"model_state_dict.module.fc.w"}), nullptr)),
            (std::vector<std::string>{"fc.w"}));
}

TEST(TorchArchive, BareTensorAndParameterHaveEmptyNames) {
  const auto bare = read_torch_file(torch_fixture("bare.pt"));
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_EQ(bare[0].name, "");
  EXPECT_EQ(bare[0].array.shape(), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(bare[0].array.data_as<float>()[5], formula(5, 1));
  const auto param = read_torch_file(torch_fixture("parameter.pt"));
  ASSERT_EQ(param.size(), 1u);
  EXPECT_EQ(param[0].name, "");
  EXPECT_EQ(param[0].array.shape(), (std::vector<std::int64_t>{2, 5}));
  EXPECT_EQ(param[0].array.data_as<float>()[9], formula(9, 2));
}

TEST(TorchArchive, TransposedTensorIsMadeContiguous) {
  const auto t = read_torch_file(torch_fixture("transposed.pt"));
  ASSERT_EQ(t.size(), 1u);
  ASSERT_EQ(t[0].array.shape(), (std::vector<std::int64_t>{6, 4}));
  for (std::int64_t i = 0; i < 6; ++i) {
    for (std::int64_t j = 0; j < 4; ++j) {
      EXPECT_EQ(t[0].array.data_as<float>()[i * 4 + j], formula(j * 6 + i, 8));
    }
  }
}

TEST(TorchArchive, ViewsSharingOneStorage) {
  const auto v = read_torch_file(torch_fixture("views.pt"));
  ASSERT_EQ(names_of(v),
            (std::vector<std::string>{"base", "t", "slice", "row", "expanded", "again"}));
  const float* slice = v[2].array.data_as<float>();  // base[1:3, ::2]
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) EXPECT_EQ(slice[i * 3 + j], formula((1 + i) * 6 + 2 * j, 8));
  }
  const float* row = v[3].array.data_as<float>();  // base[2]
  for (int j = 0; j < 6; ++j) EXPECT_EQ(row[j], formula(12 + j, 8));
  const float* expanded = v[4].array.data_as<float>();  // arange(3).expand(4, 3)
  for (int i = 0; i < 12; ++i) EXPECT_EQ(expanded[i], static_cast<float>(i % 3));
  // One pickled tensor under two names: the same bytes.
  EXPECT_EQ(v[5].array.data(), v[0].array.data());
}

TEST(TorchArchive, ListsNestedDictsAndScalars) {
  EXPECT_EQ(names_of(read_torch_file(torch_fixture("list.pt"))),
            (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(names_of(read_torch_file(torch_fixture("nested.pt"))),
            (std::vector<std::string>{"a.b.0", "4.0"}));
  const auto d = read_torch_file(torch_fixture("dtypes.pt"));
  ASSERT_EQ(d.size(), 11u);
  EXPECT_EQ(d[2].array.dtype(), DType::kBFloat16);
  EXPECT_EQ(d[2].array.to_float32().data_as<float>()[4], formula(4, 5));
  EXPECT_EQ(d[9].name, "scalar");
  EXPECT_EQ(d[9].array.ndim(), 0);
  EXPECT_EQ(d[9].array.data_as<float>()[0], 2.5f);
  EXPECT_EQ(d[10].array.shape(), (std::vector<std::int64_t>{0, 5}));
  EXPECT_TRUE(d[10].array.empty());
}

TEST(TorchArchive, PickleProtocols4And5AndOrderedDictFromPairs) {
  for (const char* file : {"crafted_p2.pt", "crafted_p4.pt", "crafted_p5.pt"}) {
    SCOPED_TRACE(file);
    const auto a = read_torch_file(torch_fixture(file));
    ASSERT_EQ(names_of(a), (std::vector<std::string>{"x", "pairs.y", "z.0"}));
    // pairs.y = as_strided(storage, (2, 2), (1, 4), offset 2)
    const float* y = a[1].array.data_as<float>();
    EXPECT_EQ(y[0], static_cast<float>(formula(2, 13)));
    EXPECT_EQ(y[1], static_cast<float>(formula(6, 13)));
    EXPECT_EQ(y[2], static_cast<float>(formula(3, 13)));
    EXPECT_EQ(y[3], static_cast<float>(formula(7, 13)));
  }
}

TEST(TorchArchive, FromBytesNamesTheGivenName) {
  const std::string bytes = file_bytes(torch_fixture("bare.pt"));
  const auto a =
      parse_torch_archive(MappedFile::from_bytes("memory.pt", bytes.data(), bytes.size()));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].array.numel(), 12);
  expect_input_error(
      [&] { parse_torch_archive(MappedFile::from_bytes("memory.pt", bytes.data(), 100)); },
      "memory.pt", "zip");
}

TEST(TorchArchive, RefusesLegacyFormatWithAdvice) {
  const std::string path = torch_fixture("legacy.pt");
  expect_input_error([&] { read_torch_file(path); }, path, "legacy");
  expect_input_error([&] { read_torch_file(path); }, path, "zip format");
}

TEST(TorchArchive, RefusesTorchScriptArchive) {
  const std::string path = torch_fixture("scripted.pt");
  expect_input_error([&] { read_torch_file(path); }, path, "TorchScript");
  expect_input_error([&] { read_torch_file(path); }, path, "--model");
}

TEST(TorchArchive, CorruptArchivesThrowInputErrorNamingTheFile) {
  const std::pair<const char*, const char*> cases[] = {
      {"bad_truncated.pt", "zip"},
      {"bad_garbage_pkl.pt", "data.pkl"},
      {"bad_missing_storage.pt", "storage missing"},
      {"bad_short_storage.pt", "storage has the wrong size"},
      {"bad_random.pt", "not a torch.save file"},
      {"bad_outside_storage.pt", "outside its storage"},
      {"bad_storage_size.pt", "storage has the wrong size"},
      {"bad_dtype.pt", "ComplexFloatStorage"},
      {"does_not_exist.pt", "cannot open"},
  };
  for (const auto& [file, text] : cases) {
    SCOPED_TRACE(file);
    const std::string path = torch_fixture(file);
    expect_input_error([&] { read_torch_file(path); }, path, text);
  }
}

// Every truncation and every single-byte corruption of a real archive (run under the sanitizer
// build as well). No prefix of a zip archive is one (its end record is the last 22 bytes), so
// every truncation must be an InputError naming the file. A flipped byte must never change the
// arrays silently: either an InputError naming the file (CRC-32, header consistency, pickle) or
// exactly the intact file's arrays (the byte is one nothing depends on, e.g. a time stamp or an
// entry that is never read).
TEST(TorchArchive, EveryTruncationIsRefusedAndNoFlippedByteGoesUnnoticed) {
  const std::string good = file_bytes(torch_fixture("views.pt"));
  ASSERT_GT(good.size(), 500u);
  const auto want =
      parse_torch_archive(MappedFile::from_bytes("good.pt", good.data(), good.size()));
  ASSERT_EQ(want.size(), 6u);
  for (std::size_t n = 0; n < good.size(); ++n) {
    try {
      parse_torch_archive(MappedFile::from_bytes("cut.pt", good.data(), n));
      ADD_FAILURE() << "the first " << n << " of " << good.size() << " bytes read as an archive";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("cut.pt"), std::string::npos) << n << ": " << e.what();
    }
  }
  const auto same = [&](const std::vector<NamedArray>& got) {
    if (got.size() != want.size()) return false;
    for (std::size_t k = 0; k < got.size(); ++k) {
      const NdArray &a = got[k].array, &b = want[k].array;
      if (got[k].name != want[k].name || a.dtype() != b.dtype() || a.shape() != b.shape() ||
          std::memcmp(a.data(), b.data(), a.nbytes()) != 0)
        return false;
    }
    return true;
  };
  int refused = 0, unchanged = 0;
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    try {
      const auto got =
          parse_torch_archive(MappedFile::from_bytes("flip.pt", bad.data(), bad.size()));
      EXPECT_TRUE(same(got)) << "byte " << i << " flipped: other arrays and no error";
      ++unchanged;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("flip.pt"), std::string::npos) << i << ": " << e.what();
      ++refused;
    }
  }
  // Most bytes are covered by a CRC-32 or a header check (930 of 1247 with libzip).
  EXPECT_GT(refused, 2 * unchanged);
}
