// TorchModel against PyTorch itself: tests/fixtures/gen_models.py saves architectures and
// checkpoints in every form users have, plus the logits Python computes; C++ must agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "core/base/error.h"
#include "core/io/npy.h"
#include "core/io/torch_archive.h"
#include "core/test_paths.h"
#include "core/trak/detail/torch_convert.h"
#include "core/trak/detail/torch_model_impl.h"
#include "core/trak/torch_model.h"

namespace modeldiff::core {
namespace {

std::string model_file(const std::string& name) {
  return test::test_fixture("models/" + name);
}

NdArray inputs_for(const std::string& model) {
  const NdArray images = read_npy(model_file("inputs.npy"));
  return model == "mlp" ? images.reshaped({images.dim(0), 784}) : images;
}

float max_abs_diff(const NdArray& a, const NdArray& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const NdArray fa = a.to_float32(), fb = b.to_float32();
  float worst = 0.0f;
  for (std::int64_t i = 0; i < fa.numel(); ++i) {
    worst = std::max(worst, std::abs(fa.data_as<float>()[i] - fb.data_as<float>()[i]));
  }
  return worst;
}

// The message of the InputError `f` throws (fails the test when it throws nothing).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError thrown";
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct Form {
  std::string architecture;  // suffix of "<model>_..." or "" for none
  std::string checkpoint;
};

// Every checkpoint form gen_models.py writes, each with the perturbed weights.
const std::vector<Form> kForms = {
    {"arch.pt", "sd.pt"},   {"arch.pt", "nested.pt"},      {"arch.pt", "module.pt"},
    {"arch.pt", "full.pt"}, {"arch.pt", "sd.safetensors"}, {"", "full.pt"},
};

class LogitsParity : public ::testing::TestWithParam<std::string> {};

TEST_P(LogitsParity, EveryCheckpointFormMatchesPython) {
  const std::string model = GetParam();
  const NdArray inputs = inputs_for(model);
  const NdArray expected = read_npy(model_file(model + "_logits.npy"));
  ASSERT_EQ(expected.shape(), (std::vector<std::int64_t>{600, 10}));
  for (const Form& form : kForms) {
    SCOPED_TRACE(form.architecture + " + " + form.checkpoint);
    const std::string arch =
        form.architecture.empty() ? "" : model_file(model + "_" + form.architecture);
    const TorchModel m = TorchModel::load(arch, model_file(model + "_" + form.checkpoint));
    const NdArray logits = m.logits(inputs);
    EXPECT_EQ(logits.dtype(), DType::kFloat32);
    EXPECT_LT(max_abs_diff(logits, expected), 1e-5f);
  }
}

TEST_P(LogitsParity, ArchitectureAloneKeepsItsInitialWeights) {
  const std::string model = GetParam();
  const TorchModel m = TorchModel::load(model_file(model + "_arch.pt"), "");
  EXPECT_LT(
      max_abs_diff(m.logits(inputs_for(model)), read_npy(model_file(model + "_init_logits.npy"))),
      1e-5f);
}

TEST_P(LogitsParity, BatchSizeDoesNotChangeLogits) {
  const std::string model = GetParam();
  const TorchModel m =
      TorchModel::load(model_file(model + "_arch.pt"), model_file(model + "_sd.pt"));
  const NdArray inputs = inputs_for(model);
  const NdArray whole = m.logits(inputs, 1000);
  const NdArray batched = m.logits(inputs, 7);  // 85 full batches and one of 5
  EXPECT_LT(max_abs_diff(whole, batched), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(Models, LogitsParity, ::testing::Values("demo", "mlp", "bn"));

TEST(TorchModel, Float16CheckpointLoadsIntoFloat32Parameters) {
  // gen_models.py rounds the weights to float16 precision, so the values are identical.
  const TorchModel m = TorchModel::load(model_file("demo_arch.pt"), model_file("demo_sd_fp16.pt"));
  EXPECT_LT(max_abs_diff(m.logits(inputs_for("demo")), read_npy(model_file("demo_logits.npy"))),
            1e-5f);
  for (const auto& p : m.impl().module.named_parameters()) {
    EXPECT_EQ(p.value.scalar_type(), torch::kFloat32) << p.name;
  }
}

TEST(TorchModel, BuffersAreLoadedAndModelIsInEvalMode) {
  const TorchModel m = TorchModel::load(model_file("bn_arch.pt"), model_file("bn_nested.pt"));
  EXPECT_FALSE(m.impl().module.is_training());
  bool saw_counter = false;
  for (const auto& b : m.impl().module.named_buffers()) {
    if (b.name == "1.num_batches_tracked") {
      saw_counter = true;
      EXPECT_EQ(b.value.scalar_type(), torch::kInt64);
      EXPECT_EQ(b.value.item<std::int64_t>(), 7);
    }
  }
  EXPECT_TRUE(saw_counter);
}

TEST(TorchModel, ParameterShapesCountAndDescription) {
  const TorchModel m = TorchModel::load(model_file("demo_arch.pt"), model_file("demo_sd.pt"));
  const auto shapes = m.parameter_shapes();
  ASSERT_EQ(shapes.size(), 6u);
  EXPECT_EQ(shapes[0].first, "0.weight");
  EXPECT_EQ(shapes[0].second, (std::vector<std::int64_t>{16, 1, 3, 3}));
  EXPECT_EQ(shapes[4].first, "7.weight");
  EXPECT_EQ(shapes[4].second, (std::vector<std::int64_t>{10, 1568}));
  EXPECT_EQ(m.num_parameters(), 20490);  // as stated in make_demo_architecture.py
  const std::string d = m.describe();
  EXPECT_TRUE(contains(d, "demo_arch.pt")) << d;
  EXPECT_TRUE(contains(d, "demo_sd.pt")) << d;
  EXPECT_TRUE(contains(d, "20,490 parameters")) << d;
  EXPECT_EQ(m.device(), "cpu");
  // Buffers are not parameters.
  const TorchModel bn = TorchModel::load(model_file("bn_arch.pt"), "");
  for (const auto& [name, shape] : bn.parameter_shapes()) {
    EXPECT_FALSE(contains(name, "running")) << name;
  }
}

TEST(TorchModel, TheTopLevelModuleIsTheSequentialTheTrakCodeWalks) {
  const TorchModel m = TorchModel::load(model_file("demo_arch.pt"), "");
  std::vector<std::string> kinds;
  for (const auto& child : m.impl().module.named_children()) {
    std::string type = child.value.type()->name()->name();
    kinds.push_back(type);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU",
                                             "MaxPool2d", "Flatten", "Linear"}));
}

TEST(TorchModelErrors, MissingNameIsListed) {
  const std::string ckpt = model_file("demo_missing.pt");
  const std::string msg = error_of([&] { TorchModel::load(model_file("demo_arch.pt"), ckpt); });
  EXPECT_TRUE(contains(msg, ckpt)) << msg;
  EXPECT_TRUE(contains(msg, "1 missing: 7.bias")) << msg;
  EXPECT_FALSE(contains(msg, "unexpected")) << msg;
}

TEST(TorchModelErrors, UnexpectedNameIsListed) {
  const std::string ckpt = model_file("demo_extra.pt");
  const std::string msg = error_of([&] { TorchModel::load(model_file("demo_arch.pt"), ckpt); });
  EXPECT_TRUE(contains(msg, ckpt)) << msg;
  EXPECT_TRUE(contains(msg, "1 unexpected: 8.weight")) << msg;
  EXPECT_FALSE(contains(msg, "missing")) << msg;
}

TEST(TorchModelErrors, MisshapedNameIsListedWithBothShapes) {
  const std::string ckpt = model_file("demo_misshaped.pt");
  const std::string msg = error_of([&] { TorchModel::load(model_file("demo_arch.pt"), ckpt); });
  EXPECT_TRUE(contains(msg, ckpt)) << msg;
  EXPECT_TRUE(contains(msg, "1 mis-shaped: 7.weight (checkpoint 10 x 1500, model 10 x 1568)"))
      << msg;
}

TEST(TorchModelErrors, LongListsAreCut) {
  const std::string msg = error_of(
      [&] { TorchModel::load(model_file("demo_arch.pt"), model_file("demo_many_extra.pt")); });
  EXPECT_TRUE(contains(msg, "15 unexpected: extra.0, extra.1")) << msg;
  EXPECT_TRUE(contains(msg, "extra.9, ... (5 more)")) << msg;
  EXPECT_FALSE(contains(msg, "extra.10")) << msg;
}

TEST(TorchModelErrors, CheckpointOfAnotherModelListsEverything) {
  const std::string msg =
      error_of([&] { TorchModel::load(model_file("demo_arch.pt"), model_file("bn_nested.pt")); });
  EXPECT_TRUE(contains(msg, "weights read from its 'model' entry")) << msg;
  EXPECT_TRUE(contains(msg, "missing: 3.weight, 3.bias, 7.weight, 7.bias")) << msg;
  EXPECT_TRUE(contains(msg, "unexpected: 1.weight, 1.bias, 1.running_mean")) << msg;
  EXPECT_TRUE(
      contains(msg, "mis-shaped: 0.weight (checkpoint 4 x 1 x 3 x 3, model 16 x 1 x 3 x 3)"))
      << msg;
}

TEST(TorchModelErrors, StateDictGivenAsArchitecture) {
  for (const std::string name : {"demo_sd.pt", "demo_sd.safetensors", "demo_nested.pt"}) {
    const std::string path = model_file(name);
    const std::string msg = error_of([&] { TorchModel::load(path, model_file("demo_sd.pt")); });
    EXPECT_TRUE(contains(msg, path)) << msg;
    EXPECT_TRUE(contains(msg,
                         "is a state dict, not a TorchScript architecture; pass it as a "
                         "checkpoint"))
        << msg;
  }
  const std::string msg = error_of([&] { TorchModel::load("", model_file("demo_sd.pt")); });
  EXPECT_TRUE(contains(msg, "no architecture was given")) << msg;
}

TEST(TorchModelErrors, CorruptOrMissingArchitectureNamesTheFile) {
  for (const std::string name : {"demo_corrupt_arch.pt", "demo_garbage.pt", "inputs.npy"}) {
    const std::string path = model_file(name);
    const std::string msg = error_of([&] { TorchModel::load(path, ""); });
    EXPECT_TRUE(contains(msg, path + ": cannot load as TorchScript: ")) << msg;
    EXPECT_FALSE(contains(msg, "\n")) << msg;  // one line, no C++ backtrace
  }
  const std::string absent = model_file("no_such_arch.pt");
  EXPECT_TRUE(contains(error_of([&] { TorchModel::load(absent, ""); }),
                       absent + ": architecture file not found"));
}

TEST(TorchModelErrors, UnreadableCheckpointNamesTheFile) {
  const std::string arch = model_file("demo_arch.pt");
  for (const std::string name : {"demo_garbage.pt", "demo_corrupt_arch.pt", "inputs.npy"}) {
    const std::string path = model_file(name);
    const std::string msg = error_of([&] { TorchModel::load(arch, path); });
    EXPECT_TRUE(contains(msg, path)) << msg;
  }
  const std::string absent = model_file("no_such_ckpt.pt");
  EXPECT_TRUE(contains(error_of([&] { TorchModel::load(arch, absent); }),
                       absent + ": checkpoint file not found"));
}

TEST(TorchModelErrors, WrongInputShapeExplainsWhatTheModelTakes) {
  const std::string arch = model_file("mlp_arch.pt");
  const TorchModel mlp = TorchModel::load(arch, "");
  const std::string msg = error_of([&] { mlp.logits(inputs_for("demo")); });  // images, not 784
  EXPECT_TRUE(contains(msg, arch)) << msg;
  EXPECT_TRUE(contains(msg, "cannot take inputs of shape 600 x 1 x 28 x 28")) << msg;
  EXPECT_TRUE(contains(msg, "expected N x 784 features")) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;

  const TorchModel demo = TorchModel::load(model_file("demo_arch.pt"), "");
  const std::string msg2 = error_of([&] {
    demo.logits(NdArray::allocate(DType::kFloat32, {2, 3, 28, 28}));
  });
  EXPECT_TRUE(contains(msg2, "expected N x 1 x H x W images")) << msg2;
  const std::string msg3 = error_of([&] {
    demo.logits(NdArray::allocate(DType::kInt64, {2, 1, 28, 28}));
  });
  EXPECT_TRUE(contains(msg3, "floating-point")) << msg3;
}

TEST(TorchModelErrors, UnavailableOrUnknownDevice) {
  const std::string arch = model_file("demo_arch.pt");
  EXPECT_TRUE(
      contains(error_of([&] { TorchModel::load(arch, "", "tpu"); }), "unknown device 'tpu'"));
  if (!torch::cuda::is_available()) {
    EXPECT_TRUE(
        contains(error_of([&] { TorchModel::load(arch, "", "cuda"); }), "CUDA is not available"));
  }
}

TEST(TorchModel, RunsOnTheGpuWhenThereIsOne) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const TorchModel m = TorchModel::load(model_file("bn_arch.pt"), model_file("bn_sd.pt"), "cuda");
  EXPECT_EQ(m.device(), "cuda");
  // cuDNN may use TF32 convolutions: compare loosely.
  EXPECT_LT(max_abs_diff(m.logits(inputs_for("bn")), read_npy(model_file("bn_logits.npy"))), 1e-2f);
}

TEST(TorchModel, SaveStateDictRoundTrip) {
  const TorchModel m = TorchModel::load(model_file("bn_arch.pt"), model_file("bn_module.pt"));
  const std::string path = ::testing::TempDir() + "bn_saved_" + std::to_string(::getpid()) + ".pt";
  TorchModel::save_state_dict(m, path);

  // The project's own reader sees what Python's state_dict() holds: the same names in the
  // same order, dtypes and values.
  const std::vector<NamedArray> saved = read_torch_file(path);
  const std::vector<NamedArray> python = read_torch_file(model_file("bn_sd.pt"));
  ASSERT_EQ(saved.size(), python.size());
  ASSERT_EQ(saved.size(), 9u);  // 4 + 2 + 2 parameters, 3 buffers
  for (std::size_t i = 0; i < saved.size(); ++i) {
    SCOPED_TRACE(python[i].name);
    EXPECT_EQ(saved[i].name, python[i].name);
    EXPECT_EQ(saved[i].array.dtype(), python[i].array.dtype());
    EXPECT_TRUE(
        torch::equal(detail::to_tensor(saved[i].array), detail::to_tensor(python[i].array)));
  }
  // No temporary file is left beside it.
  for (const auto& entry : std::filesystem::directory_iterator(::testing::TempDir())) {
    EXPECT_FALSE(contains(entry.path().string(), path + ".tmp")) << entry.path();
  }

  // And TorchModel takes it back as a checkpoint.
  const TorchModel again = TorchModel::load(model_file("bn_arch.pt"), path);
  EXPECT_EQ(max_abs_diff(again.logits(inputs_for("bn")), m.logits(inputs_for("bn"))), 0.0f);
  std::remove(path.c_str());

  const std::string bad = ::testing::TempDir() + "no_such_dir/x.pt";
  EXPECT_TRUE(contains(error_of([&] { TorchModel::save_state_dict(m, bad); }), bad));
}

TEST(TorchThreads, SetAndRestore) {
  const int before = torch_threads();
  set_torch_threads(2);
  EXPECT_EQ(torch_threads(), 2);
  set_torch_threads(0);
  EXPECT_EQ(torch_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  set_torch_threads(before);
  EXPECT_EQ(torch_threads(), before);
}

TEST(TorchConvert, RoundTripKeepsDtypeShapeAndValues) {
  NdArray a = NdArray::allocate(DType::kFloat16, {2, 3});
  for (int i = 0; i < 6; ++i) a.mutable_data_as<std::uint16_t>()[i] = float_to_half(0.5f * i - 1);
  const torch::Tensor t = detail::to_tensor(a);
  EXPECT_EQ(t.scalar_type(), torch::kFloat16);
  EXPECT_EQ(detail::shape_of(t), a.shape());
  EXPECT_EQ(t.to(torch::kFloat32)[1][2].item<float>(), 1.5f);
  const NdArray back = detail::to_ndarray(t.t());  // non-contiguous view
  EXPECT_EQ(back.shape(), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(half_to_float(back.data_as<std::uint16_t>()[1]), 0.5f);  // a[1][0]
  EXPECT_THROW(detail::to_dtype(torch::kComplexFloat), InputError);
}

}  // namespace
}  // namespace modeldiff::core
