// Files written by LibTorch itself (not Python) read by the core's torch.save reader.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/io/torch_archive.h"

using namespace modeldiff::core;

TEST(LibTorchFiles, PickleSaveOfATypedDictIsRead) {
  // torch::pickle_save wraps a c10::Dict as torch.jit._pickle.restore_type_tag(dict, type).
  c10::Dict<std::string, at::Tensor> dict;
  dict.insert("weight", torch::arange(6, torch::kFloat32).reshape({2, 3}));
  dict.insert("bias", torch::tensor({0.5f, -1.5f}));
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  const std::string path = testing::TempDir() + "/pickle_save_dict.pt";
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const std::vector<NamedArray> arrays = read_torch_file(path);
  ASSERT_EQ(arrays.size(), 2u);
  for (const NamedArray& a : arrays) {
    if (a.name == "weight") {
      ASSERT_EQ(a.array.shape(), (std::vector<std::int64_t>{2, 3}));
      EXPECT_EQ(a.array.data_as<float>()[4], 4.0f);
    } else {
      EXPECT_EQ(a.name, "bias");
      EXPECT_EQ(a.array.data_as<float>()[1], -1.5f);
    }
  }
  std::filesystem::remove(path);
}
