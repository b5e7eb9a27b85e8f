// Per-example gradients, projections and the TRAK ensemble against references computed by
// torch one example at a time and against the closed form of logistic regression.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/attribution/trak_ensemble.h"
#include "core/base/error.h"
#include "core/base/threads.h"
#include "core/io/npy.h"
#include "core/test_paths.h"
#include "core/trak/detail/featurizer.h"
#include "core/trak/param_selection.h"
#include "core/trak/torch_model.h"
#include "core/trak/trak.h"
#include "trak/npy_tensor.h"

using namespace modeldiff::core;
using modeldiff::test::load_tensor;
using modeldiff::test::test_fixture;
namespace mdd = modeldiff::core::detail;

namespace {

torch::jit::Module load_module(const std::string& name) {
  return torch::jit::load(test_fixture(name));
}

RowMatrixF to_eigen(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().to(torch::kFloat32);
  return Eigen::Map<const RowMatrixF>(c.data_ptr<float>(), c.size(0), c.size(1));
}

}  // namespace

TEST(PerExampleGradients, MatchOneBackwardPerExample) {
  torch::jit::Module model = load_module("trak_cnn.pt");
  const mdd::GraphGradients graph(model, "trak_cnn.pt");
  const torch::Tensor x = load_tensor("trak_inputs.npy"), y = load_tensor("trak_labels.npy");
  const torch::Tensor grads = graph.flat(graph.capture(x, y));
  const torch::Tensor want = load_tensor("trak_grads.npy");
  ASSERT_EQ(grads.sizes(), want.sizes());
  const double rel = ((grads - want).abs().max() / want.abs().max()).item<double>();
  EXPECT_LT(rel, 1e-4);
  EXPECT_TRUE(graph.left_out().empty());
}

TEST(PerExampleGradients, CustomForwardIsFollowed) {
  // forward() = fc(x) * 2: not the chain of its children, which the graph capture follows.
  // Margin f = 2 (l_y - l_{1-y}) with l = W x + b: d f / d W_c = (c == y ? 2 x : -2 x),
  // d f / d b_c = (c == y ? 2 : -2).
  torch::jit::Module model = load_module("trak_custom.pt");
  const mdd::GraphGradients graph(model, "trak_custom.pt");
  const torch::Tensor x = torch::randn({3, 6}), y = torch::tensor({0, 1, 1}, torch::kLong);
  const torch::Tensor g = graph.flat(graph.capture(x, y));
  ASSERT_EQ(g.size(1), 2 * 6 + 2);
  for (std::int64_t i = 0; i < 3; ++i) {
    const double sign = y[i].item<std::int64_t>() == 0 ? 2.0 : -2.0;
    const torch::Tensor want =
        torch::cat({sign * x[i], -sign * x[i], torch::tensor({sign, -sign}, torch::kFloat32)});
    EXPECT_LT((g[i] - want).abs().max().item<double>(), 1e-5) << "example " << i;
  }
}

TEST(Projection, SeededAndDeterministic) {
  const torch::Tensor a = mdd::rademacher(5, 7, 42), b = mdd::rademacher(5, 7, 42);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, mdd::rademacher(5, 7, 43)));
  EXPECT_EQ(a.abs().min().item<float>(), 1.0f);
  torch::jit::Module model = load_module("trak_cnn.pt");
  const torch::Tensor x = load_tensor("trak_inputs.npy"), y = load_tensor("trak_labels.npy");
  TrakSettings s;
  s.proj_dim = 64;
  NullProgress progress;
  for (ProjectionKind kind : {ProjectionKind::kDense, ProjectionKind::kStructured}) {
    s.projection = kind;
    mdd::CheckpointFeaturizer f1(model.clone(), "m", s, 0), f2(model.clone(), "m", s, 0),
        f3(model.clone(), "m", s, 1);
    const auto r1 = f1.run(x, y, progress), r2 = f2.run(x, y, progress),
               r3 = f3.run(x, y, progress);
    EXPECT_TRUE(torch::equal(r1.features, r2.features));
    EXPECT_FALSE(torch::equal(r1.features, r3.features));  // another checkpoint, another P
  }
}

TEST(Projection, ScaledOrthogonalColumnsAreOrthogonalAndSeeded) {
  const torch::Tensor a = mdd::scaled_orthogonal(10, 9, 7);
  ASSERT_EQ(a.sizes(), (std::vector<std::int64_t>{10, 9}));
  EXPECT_TRUE(torch::equal(a, mdd::scaled_orthogonal(10, 9, 7)));
  EXPECT_FALSE(torch::equal(a, mdd::scaled_orthogonal(10, 9, 8)));
  // P^T P = rows I: orthogonal columns of norm sqrt(rows).
  const torch::Tensor ata = a.t().mm(a).to(torch::kFloat64);
  EXPECT_LT((ata - 10.0 * torch::eye(9, torch::kFloat64)).abs().max().item<double>(), 1e-4);
}

TEST(Projection, HeadKeepsEveryZeroSumDirection) {
  // Every block of the fixture's CNN keeps all its output rows but one (k1 = rows - 1: 3, 4
  // and 5 rows). The margin's gradients with respect to the logits sum to zero, so the head's
  // features lose nothing exactly when [P_out, 1] is regular. Over many seeds it must always
  // be, and P_out P_out^T / k1 must average to the identity (unbiased). Sign matrices this
  // small, what the projection used before, are singular for about half of the seeds.
  torch::jit::Module model = load_module("trak_cnn.pt");
  const mdd::GraphGradients graph(model, "m");
  TrakSettings s;
  s.proj_dim = 64;
  constexpr int kSeeds = 300;
  std::vector<Eigen::MatrixXd> mean(3);
  int singular_signs = 0, blocks = 0;
  const auto rank_with_ones = [](const torch::Tensor& p) {
    Eigen::MatrixXd m(p.size(0), p.size(1) + 1);
    m.leftCols(p.size(1)) = to_eigen(p).cast<double>();
    m.rightCols(1).setOnes();
    return Eigen::FullPivLU<Eigen::MatrixXd>(m).rank();
  };
  for (int seed = 0; seed < kSeeds; ++seed) {
    s.seed = static_cast<std::uint64_t>(seed);
    const mdd::Projector proj(graph, s, 0);
    ASSERT_EQ(proj.blocks().size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      const mdd::Projector::Block& b = proj.blocks()[i];
      ASSERT_EQ(b.k1, b.rows - 1) << "block " << i;
      EXPECT_EQ(rank_with_ones(b.p_out), b.rows) << "block " << i << ", seed " << seed;
      const Eigen::MatrixXd p = to_eigen(b.p_out).cast<double>();
      const Eigen::MatrixXd ppt = p * p.transpose() / static_cast<double>(b.k1);
      mean[i] = mean[i].size() == 0 ? ppt : Eigen::MatrixXd(mean[i] + ppt);
      singular_signs += rank_with_ones(mdd::rademacher(b.rows, b.k1, 1000 * seed + i)) < b.rows;
      ++blocks;
    }
  }
  for (std::size_t i = 0; i < 3; ++i) {
    const Eigen::MatrixXd m = mean[i] / kSeeds;
    // Entries of P P^T / k1 have a standard deviation below 1: 5 standard errors.
    EXPECT_LT((m - Eigen::MatrixXd::Identity(m.rows(), m.cols())).cwiseAbs().maxCoeff(),
              5.0 / std::sqrt(kSeeds))
        << "block " << i;
  }
  EXPECT_GT(singular_signs, blocks / 4);
}

TEST(Projection, StructuredPreservesInnerProductsLikeDense) {
  // k well below p = 223, so neither projection is exact (no layer fits its share). Both are
  // scaled so that E[phi_i . phi_j] = (k / p) g_i . g_j: over many seeds the mean of
  // (p / k) phi phi^T converges to the Gram matrix g g^T. Each seed's entry is off by a
  // Johnson-Lindenstrauss error: for the dense +-1 projection its variance is exactly
  //   (|g_i|^2 |g_j|^2 + (g_i . g_j)^2 - 2 sum_a g_ia^2 g_ja^2) / k,
  // in units of |g_i| |g_j|. The structured (per-layer Kronecker) projection shares its random
  // vectors between dimensions and is noisier, but must stay within a small factor of dense.
  torch::jit::Module model = load_module("trak_cnn.pt");
  const torch::Tensor x = load_tensor("trak_inputs.npy"), y = load_tensor("trak_labels.npy");
  const mdd::GraphGradients graph(model, "m");
  const mdd::Captured mg = graph.capture(x, y);
  const torch::Tensor g = graph.flat(mg).to(torch::kFloat64);
  const double p = static_cast<double>(g.size(1));
  ASSERT_EQ(g.size(1), 30 + 108 + 85);  // conv 3 x (9 + 1), conv 4 x 27, linear 5 x (16 + 1)
  const torch::Tensor gram = g.mm(g.t());
  const torch::Tensor sq = gram.diagonal();
  const torch::Tensor sq_outer = sq.unsqueeze(1) * sq.unsqueeze(0);  // |g_i|^2 |g_j|^2
  const torch::Tensor scale = sq_outer.sqrt();
  constexpr int kSeeds = 200;
  TrakSettings s;
  s.proj_dim = 64;
  struct Stats {
    double rms = 0;        // of the entry errors / (|g_i| |g_j|), over entries and seeds
    double worst = 0;      // largest of them
    double bias = 0;       // largest entry error / (|g_i| |g_j|) of the mean over seeds
    std::int64_t dim = 0;  // the projection's k
  };
  const auto measure = [&](ProjectionKind kind) {
    Stats st;
    s.projection = kind;
    torch::Tensor sum = torch::zeros_like(gram);
    double squares = 0;
    for (int seed = 0; seed < kSeeds; ++seed) {
      s.seed = static_cast<std::uint64_t>(seed);
      const mdd::Projector proj(graph, s, 0);
      st.dim = proj.dim();
      const torch::Tensor phi = proj.project(graph, mg).to(torch::kFloat64);
      const torch::Tensor estimate = phi.mm(phi.t()) * (p / static_cast<double>(proj.dim()));
      const torch::Tensor err = (estimate - gram) / scale;
      squares += err.pow(2).mean().item<double>();
      st.worst = std::max(st.worst, err.abs().max().item<double>());
      sum += estimate;
    }
    st.rms = std::sqrt(squares / kSeeds);
    st.bias = ((sum / kSeeds - gram) / scale).abs().max().item<double>();
    return st;
  };
  const Stats dense = measure(ProjectionKind::kDense);
  const Stats structured = measure(ProjectionKind::kStructured);
  ASSERT_EQ(dense.dim, 64);
  EXPECT_LE(structured.dim, 64);  // per-layer k1 x k2, rounded down
  EXPECT_GE(structured.dim, 56);
  const torch::Tensor g2 = g.pow(2);
  const double theory =
      std::sqrt(((sq_outer + gram.pow(2) - 2 * g2.mm(g2.t())) / sq_outer).mean().item<double>() /
                static_cast<double>(dense.dim));
  const auto report = [&](const Stats& st) {
    return "rms " + std::to_string(st.rms) + ", worst " + std::to_string(st.worst) + ", bias " +
           std::to_string(st.bias);
  };
  SCOPED_TRACE("dense: " + report(dense) + " (theory: rms " + std::to_string(theory) +
               "); structured: " + report(structured));
  // Dense: the JL error it should have, no entry beyond 6 of its standard deviations, and
  // unbiased (the mean over seeds within 5 standard errors).
  EXPECT_NEAR(dense.rms / theory, 1.0, 0.15);
  EXPECT_LT(dense.worst, 6 * theory);
  EXPECT_LT(dense.bias, 5 * dense.rms / std::sqrt(kSeeds));
  // Structured: as unbiased, and its error within 2.2 times the dense one's (about 1.6 here:
  // each block's output side is all rows but one, from a random orthogonal matrix; with signs
  // there it was 2.7).
  EXPECT_LT(structured.bias, 5 * structured.rms / std::sqrt(kSeeds));
  EXPECT_LT(structured.rms, 2.2 * dense.rms);
  EXPECT_GT(structured.rms, 0.5 * theory);  // approximate, as k < p makes it

  // With k >= p every layer is kept whole: the structured projection is exact.
  s.projection = ProjectionKind::kStructured;
  s.proj_dim = 4096;
  const mdd::Projector whole(graph, s, 0);
  EXPECT_EQ(whole.dim(), g.size(1));
  const torch::Tensor phi = whole.project(graph, mg).to(torch::kFloat64);
  EXPECT_LT(((phi.mm(phi.t()) - gram).abs().max() / gram.abs().max()).item<double>(), 1e-5);
}

namespace {

// Says "cancelled" from its `call`-th question on.
class CancelOnCall final : public Progress {
 public:
  explicit CancelOnCall(int call) : call_(call) {}
  void report(double, std::string_view) override {}
  bool cancelled() const override { return ++calls_ >= call_; }

 private:
  int call_;
  mutable int calls_ = 0;
};

// Sets LibTorch's and the BLAS's thread counts for a scope.
class Threads {
 public:
  explicit Threads(int n) : torch_(torch_threads()), compute_(compute_threads()) {
    set_compute_threads(n);
    set_torch_threads(n);
  }
  ~Threads() {
    set_compute_threads(compute_);
    set_torch_threads(torch_);
  }

 private:
  int torch_, compute_;
};

}  // namespace

TEST(CheckpointFeaturizer, WorkersGiveTheSameFeaturesAndRestoreTheThreadCounts) {
  // More examples than batches (32 per pass; dense: 64 per projection), so that three
  // workers share them; each batch is computed alike on any worker.
  torch::jit::Module model = load_module("trak_cnn.pt");
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({150, 1, 8, 8});
  const torch::Tensor y = torch::randint(0, 5, {150}, torch::kLong);
  TrakSettings s;
  s.proj_dim = 64;
  s.batch_size = 64;
  NullProgress progress;
  for (ProjectionKind kind : {ProjectionKind::kDense, ProjectionKind::kStructured}) {
    s.projection = kind;
    mdd::CheckpointFeaturizer f(model, "m", s, 0);
    mdd::Features one, three;
    {
      const Threads threads(1);
      one = f.run(x, y, progress);
    }
    {
      const Threads threads(3);
      three = f.run(x, y, progress);
      EXPECT_EQ(torch_threads(), 3);
      EXPECT_EQ(compute_threads(), 3);
    }
    EXPECT_TRUE(torch::equal(one.features, three.features));
    EXPECT_TRUE(torch::equal(one.out_to_loss, three.out_to_loss));
    EXPECT_TRUE(torch::equal(one.logits, three.logits));
  }
}

TEST(CheckpointFeaturizer, ModelThatCannotTakeChannelsLastGetsItsInputsAsGiven) {
  // A convolution whose activations a view() flattens: in channels-last memory format the view
  // fails, so the featurizer must notice on its first batch and go on with NCHW inputs, giving
  // the features of a capture of the inputs as they are.
  torch::jit::Module model(c10::QualifiedName("__torch__.ViewNet"));
  model.register_attribute("training", c10::BoolType::get(), false);
  torch::manual_seed(5);
  model.register_parameter("cw", torch::randn({4, 3, 3, 3}).set_requires_grad(true), false);
  model.register_parameter("cb", torch::randn({4}).set_requires_grad(true), false);
  model.register_parameter("lw", torch::randn({5, 4 * 6 * 6}).set_requires_grad(true), false);
  model.register_parameter("lb", torch::randn({5}).set_requires_grad(true), false);
  model.define(
      "def forward(self, x):\n"
      "    h = torch.relu(torch.conv2d(x, self.cw, self.cb, [1, 1], [1, 1], [1, 1], 1))\n"
      "    return torch.linear(h.view(h.size(0), -1), self.lw, self.lb)\n");
  const torch::Tensor x = torch::randn({100, 3, 6, 6});
  const torch::Tensor y = torch::randint(0, 5, {100}, torch::kLong);
  TrakSettings s;
  s.proj_dim = 64;
  const mdd::GraphGradients graph(model, "m");
  EXPECT_ANY_THROW(graph.capture(x.contiguous(torch::MemoryFormat::ChannelsLast), y));
  const mdd::Projector proj(graph, s, 0);
  const torch::Tensor expected = proj.project(graph, graph.capture(x, y));
  NullProgress progress;
  mdd::CheckpointFeaturizer f(model, "m", s, 0);
  for (int run = 0; run < 2; ++run) {  // the second run knows the layout from the first
    const mdd::Features got = f.run(x, y, progress);
    EXPECT_LT((got.features - expected).abs().max().item<double>(),
              1e-5 * expected.abs().max().item<double>())
        << "run " << run;
  }
}

TEST(CheckpointFeaturizer, ErrorsAndCancelsOfWorkersReachTheCaller) {
  torch::jit::Module model = load_module("trak_cnn.pt");
  const torch::Tensor x = torch::randn({150, 1, 8, 8});
  torch::Tensor y = torch::randint(0, 5, {150}, torch::kLong);
  TrakSettings s;
  s.proj_dim = 64;
  mdd::CheckpointFeaturizer f(model, "m", s, 0);
  const Threads threads(3);
  // Not cancelled at the start, then at this thread's first batch of the workers' loop: the
  // other workers stop after the batch they are on.
  CancelOnCall cancel(2);
  EXPECT_THROW(f.run(x, y, cancel), Cancelled);
  EXPECT_EQ(torch_threads(), 3);
  // A label beyond the model's 5 classes, in the last batch: LibTorch's error on whichever
  // worker takes it, rethrown here once every worker has stopped.
  y[149] = 7;
  NullProgress progress;
  EXPECT_THROW(f.run(x, y, progress), std::exception);
  EXPECT_EQ(torch_threads(), 3);
  EXPECT_EQ(compute_threads(), 3);
}

TEST(Trak, LogisticRegressionEqualsClosedForm) {
  torch::jit::Module model = load_module("trak_logreg.pt");
  const torch::Tensor x = load_tensor("trak_logreg_x.npy"), y = load_tensor("trak_logreg_y.npy");
  TrakSettings s;
  s.proj_dim = 10;
  s.projection = ProjectionKind::kDense;
  s.lambda = 0.01;
  NullProgress progress;
  mdd::CheckpointFeaturizer f(model, "logreg", s, 0);
  const mdd::Features train = f.run(x, y, progress);
  const mdd::Features target = f.run(x.narrow(0, 0, 5), y.narrow(0, 0, 5), progress);
  TrakEnsemble ensemble(5, 24, s.lambda);
  ensemble.add_checkpoint(
      to_eigen(train.features), to_eigen(target.features),
      Eigen::Map<const Eigen::VectorXf>(train.out_to_loss.data_ptr<float>(), 24), "logreg");
  const NdArray scores = ensemble.scores(true);

  // Closed form. Logits l = W x + b (2 classes); margin f = l_y - l_{1-y}, so
  // d f / d W_c = (c == y ? x : -x), d f / d b_c = (c == y ? 1 : -1), parameters in order
  // W (2 x 6, row-major) then b. Projection: the same seeded Rademacher P (p x k) / sqrt(p).
  const Eigen::MatrixXd w = to_eigen(load_tensor("trak_logreg_w.npy")).cast<double>();
  const Eigen::VectorXd b =
      to_eigen(load_tensor("trak_logreg_b.npy").reshape({2, 1})).cast<double>();
  const Eigen::MatrixXd xd = to_eigen(x).cast<double>();
  const int p = 14;
  Eigen::MatrixXd grads(24, p);
  Eigen::VectorXd q(24);
  for (int i = 0; i < 24; ++i) {
    const int yi = static_cast<int>(y[i].item<std::int64_t>());
    for (int c = 0; c < 2; ++c) {
      const double sign = c == yi ? 1.0 : -1.0;
      grads.block(i, c * 6, 1, 6) = sign * xd.row(i);
      grads(i, 12 + c) = sign;
    }
    const Eigen::Vector2d logits = w * xd.row(i).transpose() + b;
    const double py = 1.0 / (1.0 + std::exp(logits(1 - yi) - logits(yi)));
    q(i) = 1.0 - py;
  }
  const Eigen::MatrixXd proj =
      to_eigen(mdd::rademacher(p, 10, mdd::mix_seed(0, 0, 0))).cast<double>() / std::sqrt(p);
  const Eigen::MatrixXd phi = grads * proj;  // 24 x 10
  Eigen::MatrixXd kernel = phi.transpose() * phi;
  kernel.diagonal().array() += 0.01;
  const Eigen::MatrixXd expected =
      phi.topRows(5) * kernel.ldlt().solve(phi.transpose()) * q.asDiagonal();  // 5 x 24
  const Eigen::MatrixXd got =
      to_eigen(torch::from_blob(const_cast<std::byte*>(scores.data()), {5, 24}, torch::kFloat32))
          .cast<double>();
  EXPECT_LT((got - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff(), 1e-4);
}

namespace {

TrakData small_data() {
  TrakData d;
  const NdArray x = read_npy(test_fixture("trak_inputs.npy")).to_float32();
  const NdArray y = read_npy(test_fixture("trak_labels.npy"));
  const std::int64_t per = 8 * 8;
  d.train_inputs = NdArray::allocate(DType::kFloat32, {12, 1, 8, 8});
  d.target_inputs = NdArray::allocate(DType::kFloat32, {4, 1, 8, 8});
  std::copy_n(x.data_as<float>(), 12 * per, d.train_inputs.mutable_data_as<float>());
  std::copy_n(x.data_as<float>() + 12 * per, 4 * per, d.target_inputs.mutable_data_as<float>());
  for (int i = 0; i < 16; ++i)
    (i < 12 ? d.train_labels : d.target_labels).push_back(y.data_as<std::int64_t>()[i]);
  return d;
}

}  // namespace

TEST(TrakScores, CachedCheckpointsAreReusedAndInvalidatedByAnyChange) {
  const std::string dir = ::testing::TempDir() + "/trak_cache_test";
  std::filesystem::remove_all(dir);
  Algorithm alg{"cnn", "", {test_fixture("trak_cnn.pt"), test_fixture("trak_cnn.pt")}};
  TrakSettings s;
  s.proj_dim = 8;  // below N = 12 so the kernel is invertible without lambda
  NullProgress progress;
  TrakReport first, second, third;
  const NdArray a = trak_scores(alg, small_data(), s, dir, progress, &first);
  ASSERT_EQ(a.shape(), (std::vector<std::int64_t>{4, 12}));
  for (const auto& c : first.checkpoints) EXPECT_FALSE(c.from_cache);
  const NdArray b = trak_scores(alg, small_data(), s, dir, progress, &second);
  for (const auto& c : second.checkpoints) EXPECT_TRUE(c.from_cache);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0);
  // One folder of .npy files per checkpoint, nothing else (no staging folder left behind).
  std::vector<std::string> entries;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    entries.push_back(e.path().filename().string());
    EXPECT_EQ(entries.back().rfind("features-", 0), 0u) << entries.back();
    for (const char* f :
         {"train_features.npy", "target_features.npy", "out_to_loss.npy", "target_accuracy.npy"})
      EXPECT_TRUE(std::filesystem::is_regular_file(e.path() / f)) << e.path() << " " << f;
  }
  ASSERT_EQ(entries.size(), 2u);
  // A damaged entry is recomputed (and rewritten); the other one still comes from the cache.
  std::filesystem::remove(std::filesystem::path(dir) / entries[0] / "target_features.npy");
  TrakReport damaged;
  const NdArray recomputed = trak_scores(alg, small_data(), s, dir, progress, &damaged);
  EXPECT_EQ(damaged.checkpoints[0].from_cache + damaged.checkpoints[1].from_cache, 1);
  EXPECT_EQ(std::memcmp(a.data(), recomputed.data(), a.nbytes()), 0);
  EXPECT_TRUE(std::filesystem::is_regular_file(std::filesystem::path(dir) / entries[0] /
                                               "target_features.npy"));
  s.seed = 1;  // another projection: nothing may come from the cache
  trak_scores(alg, small_data(), s, dir, progress, &third);
  for (const auto& c : third.checkpoints) EXPECT_FALSE(c.from_cache);
  // Two checkpoints with identical weights but different projections (seeded by position)
  // still give finite, non-trivial scores.
  ConstRowMapF m(a.data_as<float>(), 4, 12);
  EXPECT_TRUE(m.allFinite());
  EXPECT_GT(m.cwiseAbs().maxCoeff(), 0.0f);
  std::filesystem::remove_all(dir);
}

TEST(TrakScores, ParameterSelectionIsItsOwnCacheEntryAndSaysWhatIsLeftOut) {
  const std::string dir = ::testing::TempDir() + "/trak_params_test";
  std::filesystem::remove_all(dir);
  Algorithm alg{"cnn", "", {test_fixture("trak_cnn.pt")}};
  TrakSettings s;
  s.proj_dim = 8;
  NullProgress progress;
  TrakReport all, first_conv, again;
  const NdArray a = trak_scores(alg, small_data(), s, dir, progress, &all);
  EXPECT_EQ(all.attributed.find("left out"), std::string::npos) << all.attributed;
  s.params = parse_param_patterns("0.*", /*skip_normalization=*/false);
  const NdArray c = trak_scores(alg, small_data(), s, dir, progress, &first_conv);
  // Not the all-parameters entry from the cache: other features, other scores.
  EXPECT_FALSE(first_conv.checkpoints[0].from_cache);
  EXPECT_NE(first_conv.attributed.find("left out"), std::string::npos) << first_conv.attributed;
  EXPECT_LT(first_conv.num_parameters, all.num_parameters);
  EXPECT_NE(std::memcmp(a.data(), c.data(), a.nbytes()), 0);
  // The same selection again comes from its own entry.
  const NdArray c2 = trak_scores(alg, small_data(), s, dir, progress, &again);
  EXPECT_TRUE(again.checkpoints[0].from_cache);
  EXPECT_EQ(std::memcmp(c.data(), c2.data(), c.nbytes()), 0);
  // A pattern that matches nothing is refused, naming the names there are.
  s.params = parse_param_patterns("layer9.*", false);
  EXPECT_THROW(trak_scores(alg, small_data(), s, "", progress), InputError);
  std::filesystem::remove_all(dir);
}

TEST(TrakScores, SingularKernelIsReportedAndSolvedOnItsRange) {
  Algorithm alg{"cnn", "", {test_fixture("trak_cnn.pt")}};
  TrakSettings s;
  s.proj_dim = 64;  // more features than the 12 training examples, lambda = 0
  NullProgress progress;
  TrakReport report;
  const NdArray scores = trak_scores(alg, small_data(), s, "", progress, &report);
  ASSERT_EQ(report.checkpoints.size(), 1u);
  EXPECT_GE(report.checkpoints[0].kernel_dropped, report.checkpoints[0].feature_dim - 12);
  const float* p = scores.data_as<float>();
  for (std::int64_t i = 0; i < scores.numel(); ++i) ASSERT_TRUE(std::isfinite(p[i]));
  s.lambda = 1e-3;
  trak_scores(alg, small_data(), s, "", progress, &report);
  EXPECT_EQ(report.checkpoints.back().kernel_dropped, 0);
}

// The block sums that the significance's half ensembles are made from: the full ensemble is
// their mean (with the mean out-to-loss weights), and the first blocks are exactly TRAK over
// the first checkpoints alone (their positions, and so their projections, are the same).
TEST(TrakScores, BlockSumsAddUpToTheEnsembleAndItsPrefixes) {
  const std::string ckpt = test_fixture("trak_cnn.pt");
  const Algorithm alg{"cnn", "", {ckpt, ckpt, ckpt, ckpt}};
  TrakSettings s;
  s.proj_dim = 8;
  s.out_to_loss = true;
  NullProgress progress;
  TrakBlockSums blocks;
  blocks.cuts = {0, 1, 3, 4};
  const std::string dir = ::testing::TempDir() + "/trak_blocks_test";
  std::filesystem::remove_all(dir);
  const NdArray full = trak_scores(alg, small_data(), s, dir, progress, nullptr, &blocks);
  ASSERT_EQ(blocks.sums.score_sums.size(), 3u);
  ASSERT_EQ(blocks.sums.out_to_loss.size(), 3u);
  const std::int64_t t = 4, n = 12;
  RowMatrixF sum = RowMatrixF::Zero(t, n);
  Eigen::VectorXd q = Eigen::VectorXd::Zero(n);
  for (std::size_t b = 0; b < 3; ++b) {
    ASSERT_EQ(blocks.sums.score_sums[b].shape(), (std::vector<std::int64_t>{t, n}));
    ASSERT_EQ(blocks.sums.out_to_loss[b].size(), static_cast<std::size_t>(n));
    sum += ConstRowMapF(blocks.sums.score_sums[b].data_as<float>(), t, n);
    q += Eigen::Map<const Eigen::VectorXd>(blocks.sums.out_to_loss[b].data(), n);
  }
  const RowMatrixF mean = (sum / 4.0f) * (q / 4.0).cast<float>().asDiagonal();
  const ConstRowMapF want(full.data_as<float>(), t, n);
  const float scale = want.cwiseAbs().maxCoeff();
  ASSERT_GT(scale, 0.0f);
  EXPECT_LT((mean - want).cwiseAbs().maxCoeff(), 1e-5f * scale);
  // The first two blocks (checkpoints 1 to 3) against TRAK over those three alone, Q off.
  s.out_to_loss = false;
  const Algorithm first{"cnn", "", {ckpt, ckpt, ckpt}};
  const NdArray prefix = trak_scores(first, small_data(), s, dir, progress);
  const RowMatrixF two = (ConstRowMapF(blocks.sums.score_sums[0].data_as<float>(), t, n) +
                          ConstRowMapF(blocks.sums.score_sums[1].data_as<float>(), t, n)) /
                         3.0f;
  const ConstRowMapF p(prefix.data_as<float>(), t, n);
  EXPECT_LT((two - p).cwiseAbs().maxCoeff(), 1e-5f * p.cwiseAbs().maxCoeff());
  // The blocks differ (each checkpoint has its own projection): not one block counted thrice.
  const ConstRowMapF b0(blocks.sums.score_sums[0].data_as<float>(), t, n);
  const ConstRowMapF b2(blocks.sums.score_sums[2].data_as<float>(), t, n);
  EXPECT_GT((b0 - b2).cwiseAbs().maxCoeff(), 1e-3f * b0.cwiseAbs().maxCoeff());
  std::filesystem::remove_all(dir);
}
