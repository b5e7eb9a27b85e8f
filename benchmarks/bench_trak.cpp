// Benchmark: TRAK featurization throughput of one checkpoint, in the same run:
//   structured   per-layer Kronecker projection (the default)
//   dense        P^T g with a dense p x k Rademacher matrix
//   baseline     one forward + backward pass per example, then the dense projection
// plus the measured GEMM rate and the dense ceiling it implies (2 p k flops per example).
//
//   bench_trak [--model ARCH.pt] [--examples N] [--proj-dim K] [--batch B] [--threads T]
//              [--reps R] [--device cpu|cuda|cuda:N]   (each rate is the best of R runs,
//              default 3)
// Inputs are Fashion-MNIST training images when installed, random images otherwise.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "core/base/progress.h"
#include "core/base/threads.h"
#include "core/data/image_dataset.h"
#include "core/data/preprocessing.h"
#include "core/trak/detail/featurizer.h"
#include "core/trak/detail/torch_model_impl.h"
#include "core/trak/torch_model.h"

using namespace modeldiff::core;
using Clock = std::chrono::steady_clock;
namespace mdd = modeldiff::core::detail;  // torch has a ::detail of its own

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path = MODELDIFF_SOURCE_DIR "/resources/demo/demo_cnn.pt";
  std::int64_t n = 4096;
  int k = 2048, batch = 256, threads = 0, reps = 3;
  std::string device = "cpu";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model_path = v;
    else if (a == "--examples")
      n = std::stoll(v);
    else if (a == "--proj-dim")
      k = std::stoi(v);
    else if (a == "--batch")
      batch = std::stoi(v);
    else if (a == "--threads")
      threads = std::stoi(v);
    else if (a == "--reps")
      reps = std::max(1, std::stoi(v));
    else if (a == "--device")
      device = v;
  }
  set_compute_threads(threads);
  set_torch_threads(threads);
  torch::Tensor x, y;
  const std::string fmnist = "/usr/share/datasets/fashion-mnist/";
  try {
    const ImageDataset d = load_idx_dataset(fmnist + "train-images-idx3-ubyte.gz",
                                            fmnist + "train-labels-idx1-ubyte.gz");
    const NdArray in = preprocess(d, Preprocessing{}, 0, n);
    x = torch::from_blob(const_cast<std::byte*>(in.data()), in.shape(), torch::kFloat32).clone();
    y = torch::tensor(std::vector<std::int64_t>(d.labels.begin(), d.labels.begin() + n));
  } catch (const InputError&) {
    x = torch::rand({n, 1, 28, 28});
    y = torch::randint(0, 10, {n});
  }
  TorchModel model = TorchModel::load(model_path, "", device);
  const torch::Device dev = model.impl().device;
  // The featurizer takes CPU inputs and moves each batch (as `modeldiff trak` does); the
  // breakdown below works on inputs already on the device.
  const torch::Tensor xd = x.to(dev), yd = y.to(dev);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
  std::printf("bench_trak: %s, %lld examples, k = %d, batch %d, %d torch threads\n",
              model.describe().c_str(), static_cast<long long>(n), k, batch, torch_threads());

  // Every rate is the best of `reps` timed runs: the machine's noise only ever slows a run.
  const auto best_rate = [&](std::int64_t count, const auto& fn) {
    double best = 0;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      fn();
      if (dev.is_cuda()) torch::cuda::synchronize();
      best = std::max(best, static_cast<double>(count) / seconds_since(t0));
    }
    return best;
  };

  // GEMM rate at the dense projection's shape.
  const std::int64_t p = model.num_parameters();
  const torch::Tensor g = torch::randn({batch, p}, options), proj = torch::randn({p, k}, options);
  g.mm(proj);
  const double gemm_rate = best_rate(batch, [&] { g.mm(proj); });  // rows per second
  const double gflops = gemm_rate * 2.0 * p * k / 1e9;
  const double ceiling = gemm_rate;  // examples/s if the projection were the only cost

  NullProgress progress;
  double rate[2] = {0, 0};
  for (int kind = 0; kind < 2; ++kind) {
    TrakSettings s;
    s.proj_dim = k;
    s.batch_size = batch;
    s.projection = kind == 0 ? ProjectionKind::kStructured : ProjectionKind::kDense;
    mdd::CheckpointFeaturizer f(model.impl().module, "demo", s, 0);
    f.run(x.narrow(0, 0, batch), y.narrow(0, 0, batch), progress);  // warm-up
    rate[kind] = best_rate(n, [&] { f.run(x, y, progress); });
  }

  // Breakdown: the batched forward + backward alone (what every projection pays), and the
  // per-example gradients materialised without projecting them.
  TrakSettings s;
  s.proj_dim = k;
  mdd::CheckpointFeaturizer f(model.impl().module, "demo", s, 0);
  const auto& layers = f.layers();
  const double capture_rate = best_rate(n, [&] {
    for (std::int64_t b = 0; b < n; b += batch) {
      const std::int64_t size = std::min<std::int64_t>(batch, n - b);
      mdd::margin_gradients(layers, xd.narrow(0, b, size), yd.narrow(0, b, size));
    }
  });
  const double materialise_rate = best_rate(n, [&] {
    for (std::int64_t b = 0; b < n; b += batch) {
      const std::int64_t size = std::min<std::int64_t>(batch, n - b);
      const auto gr = mdd::margin_gradients(layers, xd.narrow(0, b, size), yd.narrow(0, b, size));
      torch::NoGradGuard no_grad;
      mdd::flat_gradients(layers, gr);
    }
  });

  // Baseline: one backward pass per example (on a subset: it is slow), then dense projection.
  const std::int64_t nb = std::min<std::int64_t>(n, 512);
  torch::jit::Module& m = model.impl().module;
  std::vector<torch::Tensor> params;
  for (const auto& prm : m.parameters()) params.push_back(prm);
  const double baseline = best_rate(nb, [&] {
    torch::Tensor rows = torch::empty({nb, p}, options);
    for (std::int64_t i = 0; i < nb; ++i) {
      const torch::Tensor logits = m.forward({xd.narrow(0, i, 1)}).toTensor();
      const torch::Tensor fm = mdd::margins(logits, yd.narrow(0, i, 1)).sum();
      const auto grads = torch::autograd::grad({fm}, params);
      std::vector<torch::Tensor> flat;
      for (const auto& gr : grads) flat.push_back(gr.reshape({-1}));
      rows[i] = torch::cat(flat);
    }
    rows.mm(proj);
  });

  std::printf("\nGEMM (%d x %lld x %d): %.1f GFLOP/s -> dense-projection ceiling %.0f examples/s\n",
              batch, static_cast<long long>(p), k, gflops, ceiling);
  std::printf("\n%-44s %14s\n", "featurization (one checkpoint)", "examples/s");
  std::printf("%-44s %14.0f\n", "baseline: one backward per example + dense", baseline);
  std::printf("%-44s %14.0f   (%.2f of ceiling)\n", "dense projection, batched gradients", rate[1],
              rate[1] / ceiling);
  std::printf("%-44s %14.0f\n", "  of which: batched forward + backward", capture_rate);
  std::printf("%-44s %14.0f\n", "  of which: + per-example gradients (p floats)", materialise_rate);
  std::printf("%-44s %14.0f   (%.1fx dense)\n", "structured (Kronecker) projection", rate[0],
              rate[0] / rate[1]);
  return 0;
}
