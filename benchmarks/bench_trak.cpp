// Benchmark: TRAK featurization throughput and peak memory of one checkpoint, in the same run:
//   structured   per-op Kronecker projection from the captured graph (the default)
//   dense        P^T g with a dense p x k Rademacher matrix (skipped when P would not fit)
//   baseline     one forward + backward pass per example, then the dense projection (the
//                projection is left out when P would not fit)
// plus the measured GEMM rate and the dense ceiling it implies (2 p k flops per example), and
// for each the peak resident memory of that phase alone (VmHWM, reset between phases).
//
//   bench_trak [--model ARCH.pt] [--input CxHxW] [--examples N] [--proj-dim K] [--batch B]
//              [--threads T] [--reps R] [--baseline-examples M] [--device cpu|cuda|cuda:N]
// Each rate is the best of R runs (default 3). Inputs are Fashion-MNIST training images when
// installed and the input is 1x28x28 (the default), random images otherwise.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
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

// CPU time of the process (all threads): on a shared machine a rate per CPU second is what
// the code costs, whatever the other processes do to the wall clock.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Rate {
  double wall = 0, cpu = 0;  // examples per second of wall time and per CPU second
};

// Peak resident memory since the last reset, in MB (Linux: VmHWM; "5" to clear_refs resets
// it to the current resident size).
void reset_peak() {
  std::ofstream("/proc/self/clear_refs") << "5";
}
double peak_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// Dense matrices beyond this are not formed (the dense projection refuses them too).
constexpr double kMaxDenseBytes = 4.0 * (1ull << 30);

}  // namespace

int main(int argc, char** argv) {
  std::string model_path = MODELDIFF_SOURCE_DIR "/resources/demo/demo_cnn.pt";
  std::string input = "1x28x28";
  std::int64_t n = 4096, nb = 512;
  int k = 2048, batch = 256, threads = 0, reps = 3;
  std::string device = "cpu";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model_path = v;
    else if (a == "--input")
      input = v;
    else if (a == "--examples")
      n = std::stoll(v);
    else if (a == "--baseline-examples")
      nb = std::stoll(v);
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
  std::vector<std::int64_t> shape{n};
  {
    std::stringstream ss(input);
    std::string part;
    while (std::getline(ss, part, 'x')) shape.push_back(std::stoll(part));
  }
  set_compute_threads(threads);
  set_torch_threads(threads);
  torch::Tensor x, y;
  const std::string fmnist = "/usr/share/datasets/fashion-mnist/";
  try {
    if (input != "1x28x28") throw InputError("", "random inputs");
    const ImageDataset d = load_idx_dataset(fmnist + "train-images-idx3-ubyte.gz",
                                            fmnist + "train-labels-idx1-ubyte.gz");
    const NdArray in = preprocess(d, Preprocessing{}, 0, n);
    x = torch::from_blob(const_cast<std::byte*>(in.data()), in.shape(), torch::kFloat32).clone();
    y = torch::tensor(std::vector<std::int64_t>(d.labels.begin(), d.labels.begin() + n));
  } catch (const InputError&) {
    x = torch::rand(shape);
    y = torch::randint(0, 10, {n});
  }
  TorchModel model = TorchModel::load(model_path, "", device);
  const torch::Device dev = model.impl().device;
  // The featurizer takes CPU inputs and moves each batch (as `modeldiff trak` does); the
  // breakdown below works on inputs already on the device.
  const torch::Tensor xd = x.to(dev), yd = y.to(dev);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
  std::printf("bench_trak: %s, input %s, %lld examples, k = %d, batch %d, %d torch threads\n",
              model.describe().c_str(), input.c_str(), static_cast<long long>(n), k, batch,
              torch_threads());

  // Every rate is the best of `reps` timed runs: the machine's noise only ever slows a run.
  const auto best_rate = [&](std::int64_t count, const auto& fn) {
    Rate best;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      const double c0 = cpu_seconds();
      fn();
      if (dev.is_cuda()) torch::cuda::synchronize();
      best.wall = std::max(best.wall, static_cast<double>(count) / seconds_since(t0));
      best.cpu = std::max(best.cpu, static_cast<double>(count) / (cpu_seconds() - c0));
    }
    return best;
  };

  const std::int64_t p = model.num_parameters();
  const bool dense_fits = 4.0 * static_cast<double>(p) * k <= kMaxDenseBytes;
  const bool flat_fits = 4.0 * static_cast<double>(p) * batch <= kMaxDenseBytes;
  // GEMM rate at the dense projection's shape.
  torch::Tensor proj;
  double gemm_rate = 0;  // rows per second
  if (dense_fits && flat_fits) {
    const torch::Tensor g = torch::randn({batch, p}, options);
    proj = torch::randn({p, k}, options);
    g.mm(proj);
    gemm_rate = best_rate(batch, [&] { g.mm(proj); }).wall;
  }

  NullProgress progress;
  Rate rate[2];
  double peak[2] = {0, 0};
  for (int kind = 0; kind < 2; ++kind) {
    if (kind == 1 && !dense_fits) continue;
    TrakSettings s;
    s.proj_dim = k;
    s.batch_size = batch;
    s.projection = kind == 0 ? ProjectionKind::kStructured : ProjectionKind::kDense;
    reset_peak();
    mdd::CheckpointFeaturizer f(model.impl().module, "bench", s, 0);
    f.run(x.narrow(0, 0, std::min<std::int64_t>(batch, n)),
          y.narrow(0, 0, std::min<std::int64_t>(batch, n)), progress);  // warm-up
    rate[kind] = best_rate(n, [&] { f.run(x, y, progress); });
    peak[kind] = peak_mb();
  }

  // Breakdown: the batched forward + backward alone (what every projection pays), and the
  // per-example gradients materialised without projecting them.
  TrakSettings s;
  s.proj_dim = k;
  mdd::CheckpointFeaturizer f(model.impl().module, "bench", s, 0);
  const mdd::GraphGradients& graph = f.graph();
  const Rate capture_rate = best_rate(n, [&] {
    for (std::int64_t b = 0; b < n; b += batch) {
      const std::int64_t size = std::min<std::int64_t>(batch, n - b);
      graph.capture(xd.narrow(0, b, size), yd.narrow(0, b, size));
    }
  });
  Rate materialise_rate;
  if (flat_fits)
    materialise_rate = best_rate(n, [&] {
      for (std::int64_t b = 0; b < n; b += batch) {
        const std::int64_t size = std::min<std::int64_t>(batch, n - b);
        const auto gr = graph.capture(xd.narrow(0, b, size), yd.narrow(0, b, size));
        torch::NoGradGuard no_grad;
        graph.flat(gr);
      }
    });

  // Baseline: one backward pass per example (on a subset: it is slow), then the dense
  // projection of the rows (when P fits).
  nb = std::min(n, nb);
  torch::jit::Module& m = model.impl().module;
  std::vector<torch::Tensor> params;
  for (const auto& prm : m.parameters()) params.push_back(prm);
  reset_peak();
  const Rate baseline = best_rate(nb, [&] {
    const bool keep = dense_fits && 4.0 * static_cast<double>(nb) * p <= kMaxDenseBytes;
    torch::Tensor rows = keep ? torch::empty({nb, p}, options) : torch::Tensor();
    for (std::int64_t i = 0; i < nb; ++i) {
      const torch::Tensor logits = m.forward({xd.narrow(0, i, 1)}).toTensor();
      const torch::Tensor fm = mdd::margins(logits, yd.narrow(0, i, 1)).sum();
      const auto grads = torch::autograd::grad({fm}, params);
      std::vector<torch::Tensor> flat;
      for (const auto& gr : grads) flat.push_back(gr.reshape({-1}));
      if (keep) rows[i] = torch::cat(flat);
    }
    if (keep) rows.mm(proj.defined() ? proj : torch::randn({p, k}, options));
  });
  const double baseline_peak = peak_mb();

  if (gemm_rate > 0)
    std::printf(
        "\nGEMM (%d x %lld x %d): %.1f GFLOP/s -> dense-projection ceiling %.0f "
        "examples/s\n",
        batch, static_cast<long long>(p), k, gemm_rate * 2.0 * p * k / 1e9, gemm_rate);
  std::printf("\n%-44s %12s %12s %14s\n", "featurization (one checkpoint)", "examples/s",
              "ex/CPU-s", "peak RSS (MB)");
  const auto row = [](const char* what, const Rate& r, double peak_rss, const std::string& note) {
    if (peak_rss > 0)
      std::printf("%-44s %12.1f %12.1f %14.0f%s\n", what, r.wall, r.cpu, peak_rss, note.c_str());
    else
      std::printf("%-44s %12.1f %12.1f %14s%s\n", what, r.wall, r.cpu, "", note.c_str());
  };
  row("baseline: one backward per example + dense", baseline, baseline_peak,
      dense_fits ? "" : "   (projection left out: P does not fit)");
  if (rate[1].wall > 0)
    row("dense projection, batched gradients", rate[1], peak[1],
        gemm_rate > 0
            ? "   (" + std::to_string(rate[1].wall / gemm_rate).substr(0, 4) + " of ceiling)"
            : "");
  else
    std::printf("%-44s %12s\n", "dense projection, batched gradients", "(P too big)");
  row("  batched forward + backward alone", capture_rate, 0, "");
  if (materialise_rate.wall > 0)
    row("  + per-example gradients (p floats)", materialise_rate, 0, "");
  row("structured (Kronecker) projection", rate[0], peak[0],
      "   (" + std::to_string(rate[0].cpu / baseline.cpu).substr(0, 4) +
          "x baseline per CPU second)");
  return 0;
}
