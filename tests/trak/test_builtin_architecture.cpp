// The built-in ResNet-9 (core/trak/builtin_architecture.h) against the paper's ResNet-9 as a
// researcher writes it in Python (tests/fixtures/gen_graph_models.py: nn.Sequential of conv_bn,
// Residual, Mul(0.2), scripted by Debian's python3-torch, BatchNorm statistics randomised):
// the same state dict keys and shapes, the same logits and BatchNorm updates with the same
// weights, and the same per-example gradients as Python's autograd.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "common/temp_dir.h"
#include "core/base/error.h"
#include "core/test_paths.h"
#include "core/trak/builtin_architecture.h"
#include "core/trak/detail/graph_capture.h"
#include "core/trak/detail/training.h"
#include "trak/npy_tensor.h"

using namespace modeldiff::core;
using modeldiff::test::load_tensor;
using modeldiff::test::TempDir;
using modeldiff::test::test_fixture;
namespace mdd = modeldiff::core::detail;

namespace {

std::map<std::string, torch::Tensor> state_of(const torch::jit::Module& m) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& p : m.named_parameters()) state[p.name] = p.value;
  for (const auto& b : m.named_buffers()) state[b.name] = b.value;
  return state;
}

// The fixture's weights and statistics copied into `to` by name.
void copy_state(const torch::jit::Module& from, torch::jit::Module& to) {
  torch::NoGradGuard no_grad;
  const auto source = state_of(from);
  for (auto& [name, tensor] : state_of(to)) tensor.copy_(source.at(name));
}

std::string bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The paper's ResNet-9 at width 8 for 1 x 16 x 16 inputs and 10 classes, as the fixture has it.
torch::jit::Module builtin_like_fixture(const TempDir& dir) {
  BuiltinArchitecture a = parse_builtin_architecture("resnet9:width=8");
  a = with_data_defaults(a, 1, 10);
  return torch::jit::load(write_builtin_architecture(a, dir.path()));
}

}  // namespace

TEST(BuiltinArchitecture, SpecsAreParsedAndCheckedByKey) {
  EXPECT_TRUE(is_builtin_architecture("resnet9"));
  EXPECT_TRUE(is_builtin_architecture("resnet9:width=4"));
  EXPECT_FALSE(is_builtin_architecture("resnet9.pt"));
  EXPECT_FALSE(is_builtin_architecture("./resnet9"));
  EXPECT_EQ(describe(with_data_defaults(parse_builtin_architecture("resnet9"), 1, 10)),
            "resnet9:width=16,in_channels=1,classes=10");
  EXPECT_EQ(describe(parse_builtin_architecture("resnet9")), "resnet9:width=16");
  EXPECT_EQ(describe(parse_builtin_architecture("resnet9:classes=100,width=64,in_channels=3")),
            "resnet9:width=64,in_channels=3,classes=100");
  // The data fill in only what the spec leaves open; one class is never enough.
  EXPECT_EQ(describe(with_data_defaults(parse_builtin_architecture("resnet9:in_channels=3"), 1, 1)),
            "resnet9:width=16,in_channels=3,classes=2");
  for (const auto& [spec, key] :
       std::vector<std::pair<std::string, std::string>>{{"resnet9:width=0", "width"},
                                                        {"resnet9:width=8.5", "width"},
                                                        {"resnet9:width=", "width"},
                                                        {"resnet9:depth=3", "depth"},
                                                        {"resnet9:width", "width"},
                                                        {"resnet9:classes=1", "classes"}}) {
    try {
      parse_builtin_architecture(spec);
      ADD_FAILURE() << spec << " was accepted";
    } catch (const InputError& e) {
      EXPECT_EQ(e.key_name(), key) << spec << ": " << e.what();
    }
  }
}

TEST(BuiltinArchitecture, HasThePapersStateDictAndComputesTheSameLogits) {
  const TempDir dir("builtin_resnet9");
  torch::jit::Module ours = builtin_like_fixture(dir);
  torch::jit::Module paper = torch::jit::load(test_fixture("graph_resnet9.pt"));
  const auto a = state_of(ours), b = state_of(paper);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : b) {
    ASSERT_EQ(a.count(name), 1u) << name << " is missing from the built-in ResNet-9";
    EXPECT_EQ(a.at(name).sizes(), tensor.sizes()) << name;
    EXPECT_EQ(a.at(name).scalar_type(), tensor.scalar_type()) << name;
  }
  copy_state(paper, ours);
  ours.eval();
  paper.eval();
  const torch::Tensor x = load_tensor("graph_resnet9_x.npy");
  torch::NoGradGuard no_grad;
  const torch::Tensor want = paper.forward({x}).toTensor();
  const torch::Tensor got = ours.forward({x}).toTensor();
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-6 * want.abs().max().item<double>());
}

TEST(BuiltinArchitecture, TrainModeUpdatesBatchNormAsPyTorchDoes) {
  const TempDir dir("builtin_resnet9_train");
  torch::jit::Module ours = builtin_like_fixture(dir);
  torch::jit::Module paper = torch::jit::load(test_fixture("graph_resnet9.pt"));
  copy_state(paper, ours);
  ours.train(true);
  paper.train(true);
  const torch::Tensor x = load_tensor("graph_resnet9_x.npy");
  torch::NoGradGuard no_grad;
  const torch::Tensor want = paper.forward({x}).toTensor();
  const torch::Tensor got = ours.forward({x}).toTensor();
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5 * want.abs().max().item<double>());
  const auto a = state_of(ours), b = state_of(paper);
  for (const auto& [name, tensor] : b) {
    if (name.find("running") == std::string::npos && name.find("num_batches") == std::string::npos)
      continue;
    EXPECT_TRUE(
        torch::allclose(a.at(name).to(torch::kDouble), tensor.to(torch::kDouble), 1e-5, 1e-6))
        << name << " after one batch in train mode";
  }
}

TEST(BuiltinArchitecture, PerExampleGradientsEqualPythonAutograd) {
  const TempDir dir("builtin_resnet9_grads");
  torch::jit::Module ours = builtin_like_fixture(dir);
  copy_state(torch::jit::load(test_fixture("graph_resnet9.pt")), ours);
  ours.eval();
  const mdd::GraphGradients graph(ours, "resnet9:width=8");
  EXPECT_TRUE(graph.left_out().empty());
  const torch::Tensor x = load_tensor("graph_resnet9_x.npy"),
                      y = load_tensor("graph_resnet9_y.npy");
  const torch::Tensor want = load_tensor("graph_resnet9_grads.npy");
  for (int call = 1; call <= 2; ++call) {
    const torch::Tensor got = graph.flat(graph.capture(x, y));
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT(((got - want).abs().max() / want.abs().max()).item<double>(), 1e-4)
        << "call " << call;
  }
}

TEST(BuiltinArchitecture, SameSpecWritesTheSameBytesAndInitialisation) {
  const TempDir one("builtin_bytes_1"), two("builtin_bytes_2");
  const BuiltinArchitecture a =
      with_data_defaults(parse_builtin_architecture("resnet9:width=4"), 3, 7);
  const std::string p1 = write_builtin_architecture(a, one.path());
  const std::string p2 = write_builtin_architecture(a, two.path());
  EXPECT_EQ(std::filesystem::path(p1).filename(), "resnet9-w4-c3-k7.pt");
  EXPECT_EQ(bytes_of(p1), bytes_of(p2));
  // Rewriting an identical file leaves it alone.
  const auto before = std::filesystem::last_write_time(p1);
  write_builtin_architecture(a, one.path());
  EXPECT_EQ(std::filesystem::last_write_time(p1), before);

  // The file holds the trainer's seed-0 initialisation (what training starts from with seed 0),
  // not zeros; every parameter is trainable.
  torch::jit::Module m = torch::jit::load(p1);
  torch::jit::Module fresh = torch::jit::load(p1);
  mdd::initialise_parameters(fresh, 0);
  const auto got = state_of(m), want = state_of(fresh);
  for (const auto& [name, tensor] : want) EXPECT_TRUE(torch::equal(got.at(name), tensor)) << name;
  EXPECT_GT(got.at("0.0.weight").abs().max().item<double>(), 0);
  for (const auto& p : m.parameters()) EXPECT_TRUE(p.requires_grad());
  // 3-channel input, 7 classes.
  EXPECT_EQ(got.at("0.0.weight").size(1), 3);
  EXPECT_EQ(got.at("9.weight").size(0), 7);
  torch::NoGradGuard no_grad;
  EXPECT_EQ(m.forward({torch::rand({2, 3, 12, 12})}).toTensor().sizes(),
            (std::vector<std::int64_t>{2, 7}));
}
