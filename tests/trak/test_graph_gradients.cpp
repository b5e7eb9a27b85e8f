// Batched per-example gradients by graph capture (core/trak/detail/graph_capture.h) against
// one backward pass per example, for models that are not an nn.Sequential: the ModelDiff
// paper's ResNet-9, torchvision's resnet18 (scripted and traced), a hand-written forward, a
// token model with LayerNorm, Embedding, a reused and a tied Linear, and channels_last.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "core/base/error.h"
#include "core/io/npy.h"
#include "core/test_paths.h"
#include "core/trak/detail/graph_capture.h"
#include "core/trak/detail/projection.h"
#include "trak/npy_tensor.h"

using namespace modeldiff::core;
using modeldiff::test::load_tensor;
using modeldiff::test::test_fixture;
namespace mdd = modeldiff::core::detail;

namespace {

// Per-example gradients of every attributed parameter by one backward pass per example
// through the module's own forward (LibTorch's autograd on the parameters).
std::vector<torch::Tensor> one_at_a_time(torch::jit::Module& model,
                                         const std::vector<mdd::GraphParameter>& params,
                                         const torch::Tensor& x, const torch::Tensor& y) {
  std::vector<torch::Tensor> leaves;
  for (const auto& p : params) leaves.push_back(p.tensor);
  std::vector<std::vector<torch::Tensor>> rows(params.size());
  for (std::int64_t i = 0; i < x.size(0); ++i) {
    const torch::Tensor logits = model.forward({x.narrow(0, i, 1)}).toTensor();
    const torch::Tensor f = mdd::margins(logits, y.narrow(0, i, 1)).sum();
    const auto g = torch::autograd::grad({f}, leaves, {}, false, false, /*allow_unused=*/true);
    for (std::size_t k = 0; k < params.size(); ++k)
      rows[k].push_back(g[k].defined() ? g[k] : torch::zeros_like(params[k].tensor));
  }
  std::vector<torch::Tensor> out;
  for (auto& r : rows) out.push_back(torch::stack(r));
  return out;
}

struct Parity {
  double worst = 0;  // max over parameters of max |g - ref| / max |ref|
  std::string where;
};

Parity compare(const std::vector<mdd::GraphParameter>& params,
               const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want) {
  Parity p;
  for (std::size_t k = 0; k < params.size(); ++k) {
    if (!params[k].attributed) continue;
    EXPECT_TRUE(got[k].defined()) << params[k].name;
    if (!got[k].defined()) continue;
    EXPECT_EQ(got[k].sizes(), want[k].sizes()) << params[k].name;
    const double scale = want[k].abs().max().item<double>();
    EXPECT_GT(scale, 0) << params[k].name << " has an all-zero reference gradient";
    const double rel = ((got[k] - want[k]).abs().max() / std::max(scale, 1e-30)).item<double>();
    if (rel > p.worst) {
      p.worst = rel;
      p.where = params[k].name;
    }
  }
  return p;
}

void expect_parity(const std::string& name, bool channels_last = false, bool probes = false) {
  SCOPED_TRACE(name + (probes ? " (every output probed)" : ""));
  const std::string file = "graph_" + name + ".pt";
  ASSERT_TRUE(std::filesystem::exists(test_fixture(file))) << test_fixture(file);
  torch::jit::Module model = torch::jit::load(test_fixture(file));
  torch::Tensor x = load_tensor("graph_" + name + "_x.npy");
  const torch::Tensor y = load_tensor("graph_" + name + "_y.npy");
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  const mdd::GraphGradients graph(model, file, {}, probes);
  EXPECT_TRUE(graph.left_out().empty());
  std::int64_t trainable = 0;
  for (const auto& p : model.parameters()) trainable += p.numel();
  const auto& params = graph.parameters();
  const std::vector<torch::Tensor> want = one_at_a_time(model, params, x, y);
  // Twice: from its second call the profiling executor would fuse ops and zero the gradients
  // with respect to intermediate values.
  for (int call = 1; call <= 3; ++call) {
    const mdd::Captured c = graph.capture(x, y);
    const Parity p = compare(params, graph.per_example(c), want);
    EXPECT_LT(p.worst, 1e-4) << "call " << call << ", worst parameter " << p.where;
    std::printf("[ parity   ] %s%s call %d: max relative error %.2e (%s)\n", name.c_str(),
                probes ? " (probes)" : "", call, p.worst, p.where.c_str());
  }
  // Tied tensors count once in named_parameters() deduplicated; every entry is attributed.
  std::int64_t distinct = 0;
  for (const auto& p : params) distinct += p.tensor.numel();
  EXPECT_EQ(graph.num_attributed(), distinct);
  EXPECT_LE(distinct, trainable);
}

void expect_refused(const std::string& file, const std::vector<std::string>& words) {
  SCOPED_TRACE(file);
  torch::jit::Module model = torch::jit::load(test_fixture(file));
  try {
    mdd::GraphGradients graph(model, file);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file), std::string::npos) << what;
    for (const auto& w : words) EXPECT_NE(what.find(w), std::string::npos) << w << ": " << what;
  }
}

}  // namespace

TEST(GraphGradients, ResNet9MatchesOneBackwardPerExample) {
  expect_parity("resnet9");
}

TEST(GraphGradients, ResNet9ChannelsLast) {
  expect_parity("resnet9_cl", /*channels_last=*/true);
}

TEST(GraphGradients, TorchvisionResNet18Scripted) {
  expect_parity("resnet18_script");
}

TEST(GraphGradients, TorchvisionResNet18Traced) {
  expect_parity("resnet18_trace");
}

TEST(GraphGradients, HandWrittenForwardWithPreprocessing) {
  expect_parity("custom");
}

TEST(GraphGradients, HandWrittenForwardTraced) {
  expect_parity("custom_trace");
}

TEST(GraphGradients, LayerNormEmbeddingReusedAndTiedLinear) {
  expect_parity("tokens");
}

TEST(GraphGradients, OutputWrittenInPlaceGoesThroughAProbe) {
  torch::jit::Module model = torch::jit::load(test_fixture("graph_inplace_view.pt"));
  const mdd::GraphGradients graph(model, "graph_inplace_view.pt");
  ASSERT_EQ(graph.ops().size(), 2u);
  EXPECT_TRUE(graph.ops()[0].probed);  // fc: its output is written by relu_ through a view
  EXPECT_FALSE(graph.ops()[1].probed);
  expect_parity("inplace_view");
}

TEST(GraphGradients, ProbesGiveTheSameGradients) {
  // The probe path (y + eps, differentiated with respect to eps) on every op of the models.
  for (const char* name : {"resnet9", "resnet18_trace", "custom", "tokens"})
    expect_parity(name, false, /*probes=*/true);
  expect_parity("resnet9_cl", true, /*probes=*/true);
}

TEST(GraphGradients, ResNet9MatchesPythonAutograd) {
  // The same gradients by Python's autograd, one example at a time (flattened in
  // named_parameters order), so that the C++ reference is checked too.
  torch::jit::Module model = torch::jit::load(test_fixture("graph_resnet9.pt"));
  const mdd::GraphGradients graph(model, "graph_resnet9.pt");
  const torch::Tensor x = load_tensor("graph_resnet9_x.npy"),
                      y = load_tensor("graph_resnet9_y.npy");
  const torch::Tensor got = graph.flat(graph.capture(x, y));
  const torch::Tensor want = load_tensor("graph_resnet9_grads.npy");
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LT(((got - want).abs().max() / want.abs().max()).item<double>(), 1e-4);
  // The Mul(0.2) output scale is a float attribute named weight, not a parameter.
  for (const auto& p : graph.parameters()) EXPECT_NE(p.name, "10.weight");
}

TEST(GraphGradients, BatchSizeChangesBetweenCalls) {
  // The probes' shapes are learnt per input shape: a short last batch must not reuse them.
  torch::jit::Module model = torch::jit::load(test_fixture("graph_custom.pt"));
  const mdd::GraphGradients graph(model, "graph_custom.pt");
  const torch::Tensor x = load_tensor("graph_custom_x.npy"), y = load_tensor("graph_custom_y.npy");
  const torch::Tensor all = graph.flat(graph.capture(x, y));
  const torch::Tensor head = graph.flat(graph.capture(x.narrow(0, 0, 2), y.narrow(0, 0, 2)));
  const torch::Tensor tail = graph.flat(graph.capture(x.narrow(0, 2, 4), y.narrow(0, 2, 4)));
  EXPECT_LT((torch::cat({head, tail}) - all).abs().max().item<double>(),
            1e-5 * all.abs().max().item<double>());
}

TEST(GraphGradients, ParameterInsideIfIsRefused) {
  expect_refused("graph_if.pt", {"fc", "prim::If"});
}

TEST(GraphGradients, FrozenModuleIsRefused) {
  expect_refused("graph_frozen.pt", {"no trainable parameters", "freeze"});
}

TEST(GraphGradients, UnsupportedOpOnParameterIsRefused) {
  expect_refused("graph_pow.pt", {"gain", "aten::pow"});
}

TEST(GraphGradients, BatchNormWithoutRunningStatisticsIsRefused) {
  expect_refused("graph_bn_nostats.pt", {"1.weight", "aten::batch_norm", "training"});
}

namespace {

// The structured projection from its definition: per block, P_out^T G P_in of the block's
// per-example gradient matrix (weight rows x cols, its paired bias as a last column), and the
// rest (all other attributed parameters, in parameter order) times P_in; each block scaled.
torch::Tensor projection_by_definition(const mdd::GraphGradients& graph, const mdd::Projector& proj,
                                       const mdd::Captured& c) {
  const auto grads = graph.per_example(c);
  const auto& params = graph.parameters();
  const std::int64_t batch = c.logits.size(0);
  std::vector<bool> in_block(params.size(), false);
  for (const auto& b : proj.blocks()) {
    if (b.weight >= 0) in_block[b.weight] = true;
    if (b.bias >= 0) in_block[b.bias] = true;
  }
  const double overall = std::sqrt(static_cast<double>(proj.dim()) / proj.num_params());
  std::vector<torch::Tensor> parts;
  for (const auto& b : proj.blocks()) {
    torch::Tensor g;
    if (b.weight >= 0) {
      g = grads[b.weight].reshape({batch, b.rows, -1});
      if (b.bias >= 0) g = torch::cat({g, grads[b.bias].reshape({batch, b.rows, 1})}, 2);
    } else {
      std::vector<torch::Tensor> rest;
      for (std::size_t i = 0; i < params.size(); ++i)
        if (params[i].attributed && !in_block[i]) rest.push_back(grads[i].reshape({batch, -1}));
      g = torch::cat(rest, 1).unsqueeze(1);
    }
    EXPECT_EQ(g.size(2), b.cols);
    if (b.p_out.defined()) g = torch::matmul(b.p_out.t(), g);
    if (b.p_in.defined()) g = torch::matmul(g, b.p_in);
    parts.push_back(g.reshape({batch, -1}) * (b.scale * overall));
  }
  return torch::cat(parts, 1);
}

void expect_projection_matches_definition(const std::string& name) {
  SCOPED_TRACE(name);
  torch::jit::Module model = torch::jit::load(test_fixture("graph_" + name + ".pt"));
  const torch::Tensor x = load_tensor("graph_" + name + "_x.npy");
  const torch::Tensor y = load_tensor("graph_" + name + "_y.npy");
  const mdd::GraphGradients graph(model, name);
  const mdd::Captured c = graph.capture(x, y);
  TrakSettings s;
  s.projection = ProjectionKind::kStructured;
  for (int k : {64, 1000, 1 << 20}) {
    s.proj_dim = k;
    const mdd::Projector proj(graph, s, 0);
    const torch::Tensor got = proj.project(graph, c);
    const torch::Tensor want = projection_by_definition(graph, proj, c);
    ASSERT_EQ(got.sizes(), want.sizes()) << "k = " << k;
    EXPECT_LE(proj.dim(), std::min<std::int64_t>(k, graph.num_attributed()));
    const double rel = ((got - want).abs().max() / want.abs().max()).item<double>();
    EXPECT_LT(rel, 1e-4) << "k = " << k;
    std::printf("[ project  ] %s k = %d: dim %lld, %zu blocks, max relative error %.2e\n",
                name.c_str(), k, static_cast<long long>(proj.dim()), proj.blocks().size(), rel);
    if (k == (1 << 20)) {  // every block kept whole: inner products are exact
      const torch::Tensor g = graph.flat(c).to(torch::kFloat64), phi = got.to(torch::kFloat64);
      EXPECT_EQ(proj.dim(), graph.num_attributed());
      const torch::Tensor gram = g.mm(g.t());
      EXPECT_LT(((phi.mm(phi.t()) - gram).abs().max() / gram.abs().max()).item<double>(), 1e-5);
    }
  }
}

}  // namespace

// Every path of the structured projection: conv factors through filters (ResNet-9), grouped
// convolutions and elementwise parameters in the dense rest (custom), embedding rows gathered,
// a matmul operand, a tied weight and a reused Linear (tokens), traced convolutions.
TEST(GraphProjection, ResNet9MatchesDefinition) {
  expect_projection_matches_definition("resnet9");
}
TEST(GraphProjection, CustomMatchesDefinition) {
  expect_projection_matches_definition("custom");
}
TEST(GraphProjection, TokensMatchDefinition) {
  expect_projection_matches_definition("tokens");
}
TEST(GraphProjection, TracedCustomMatchesDefinition) {
  expect_projection_matches_definition("custom_trace");
}

TEST(GraphProjection, BiasJoinsItsWeightsBlock) {
  // Linear and Conv2d biases are the last column of their weight's block; BatchNorm's
  // parameters and the elementwise scale/shift go to the dense rest block.
  torch::jit::Module model = torch::jit::load(test_fixture("graph_custom.pt"));
  const mdd::GraphGradients graph(model, "graph_custom.pt");
  TrakSettings s;
  s.proj_dim = 256;
  const mdd::Projector proj(graph, s, 0);
  std::vector<std::string> blocks;
  for (const auto& b : proj.blocks()) {
    const auto& p = graph.parameters();
    blocks.push_back(b.weight < 0 ? "rest"
                                  : p[b.weight].name + (b.bias >= 0 ? "+" + p[b.bias].name : ""));
  }
  const std::vector<std::string> want{"conv1.weight+conv1.bias", "conv2.weight+conv2.bias",
                                      "conv3.weight", "fc.weight+fc.bias", "rest"};
  EXPECT_EQ(blocks, want);
  EXPECT_EQ(proj.blocks().back().cols, 6 + 6);  // scale and shift
}

TEST(GraphProjection, DenseProjectionTooLargeIsRefused) {
  torch::jit::Module model = torch::jit::load(test_fixture("graph_resnet18_script.pt"));
  const mdd::GraphGradients graph(model, "graph_resnet18_script.pt");
  TrakSettings s;
  s.projection = ProjectionKind::kDense;
  s.proj_dim = 2048;
  try {
    mdd::Projector proj(graph, s, 0);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--projection structured"), std::string::npos) << e.what();
  }
}

TEST(ParamSelection, PatternsAndNormalisation) {
  EXPECT_TRUE(glob_match("layer4.*", "layer4.1.conv2.weight"));
  EXPECT_FALSE(glob_match("layer4.*", "layer3.1.conv2.weight"));
  EXPECT_TRUE(glob_match("*.bn?.weight", "layer1.0.bn2.weight"));
  EXPECT_FALSE(glob_match("fc.weight", "fc.weight2"));
  EXPECT_TRUE(glob_match("*", ""));
  const ParamSelection s = parse_param_patterns(" layer4.* , fc.*", false);
  EXPECT_EQ(s.patterns, (std::vector<std::string>{"layer4.*", "fc.*"}));
  EXPECT_TRUE(parse_param_patterns("", true).patterns.empty());
  EXPECT_THROW(parse_param_patterns("fc.*,,x", false), InputError);
}

namespace {

// Per-example gradients of the selected parameters equal one backward per example, and
// exactly the parameters `want` (in order) are attributed.
void expect_selection(const std::string& name, const ParamSelection& selection,
                      const std::vector<std::string>& want_left_out_some,
                      const std::vector<std::string>& want_attributed_some,
                      std::int64_t want_count) {
  SCOPED_TRACE(name + ": " + describe(selection));
  torch::jit::Module model = torch::jit::load(test_fixture("graph_" + name + ".pt"));
  const torch::Tensor x = load_tensor("graph_" + name + "_x.npy");
  const torch::Tensor y = load_tensor("graph_" + name + "_y.npy");
  const mdd::GraphGradients graph(model, name, selection);
  std::vector<std::string> attributed;
  for (const auto& p : graph.parameters())
    if (p.attributed) attributed.push_back(p.name);
  EXPECT_EQ(static_cast<std::int64_t>(attributed.size()), want_count);
  const auto left_out = graph.left_out();
  for (const auto& n : want_left_out_some)
    EXPECT_NE(std::find(left_out.begin(), left_out.end(), n), left_out.end()) << n;
  for (const auto& n : want_attributed_some)
    EXPECT_NE(std::find(attributed.begin(), attributed.end(), n), attributed.end()) << n;
  const auto want = one_at_a_time(model, graph.parameters(), x, y);
  const Parity p = compare(graph.parameters(), graph.per_example(graph.capture(x, y)), want);
  EXPECT_LT(p.worst, 1e-4) << p.where;
}

}  // namespace

TEST(ParamSelection, PatternsChooseTheAttributedParameters) {
  // layer4: 2 blocks x (2 convs + 2 BatchNorms x 2) + the downsample conv and BatchNorm (3)
  // = 15 tensors, fc: 2.
  expect_selection("resnet18_trace", parse_param_patterns("layer4.*,fc.*", false),
                   {"conv1.weight", "layer3.1.bn2.bias"}, {"layer4.0.conv1.weight", "fc.bias"}, 17);
}

TEST(ParamSelection, NormalisationLeftOut) {
  // ResNet-9: 8 convolutions and the Linear; its 8 BatchNorms' weights and biases left out.
  expect_selection("resnet9", parse_param_patterns("", true), {"0.1.weight", "0.1.bias"},
                   {"0.0.weight", "9.weight"}, 9);
  // LayerNorm left out, the tied embedding kept.
  expect_selection("tokens", parse_param_patterns("", true), {"ln.weight", "ln.bias"},
                   {"emb.weight", "W"}, 4);
}

TEST(ParamSelection, TiedParameterSelectedUnderEitherName) {
  // out.weight is emb.weight: selecting it by its second name attributes both of its uses.
  expect_selection("tokens", parse_param_patterns("out.weight", false), {"fc.weight"},
                   {"emb.weight"}, 1);
}

TEST(ParamSelection, UnselectedParameterMayUseAnyOp) {
  // aten::pow of `gain` is refused only while gain is attributed.
  expect_refused("graph_pow.pt", {"gain", "aten::pow"});
  torch::jit::Module model = torch::jit::load(test_fixture("graph_pow.pt"));
  const mdd::GraphGradients graph(model, "graph_pow.pt", parse_param_patterns("fc.*", false));
  EXPECT_EQ(graph.left_out(), std::vector<std::string>{"gain"});
  EXPECT_EQ(graph.num_attributed(), 28 * 28 * 10 + 10);
  EXPECT_EQ(graph.describe(), "attributes 7850 parameters in 2 tensors (1 ops); left out: gain");
}

TEST(ParamSelection, PatternMatchingNothingIsRefused) {
  torch::jit::Module model = torch::jit::load(test_fixture("graph_resnet9.pt"));
  try {
    mdd::GraphGradients graph(model, "graph_resnet9.pt", parse_param_patterns("layer4.*", false));
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("layer4.*"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("0.0.weight"), std::string::npos) << e.what();
  }
}
