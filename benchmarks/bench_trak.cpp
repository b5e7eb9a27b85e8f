// Benchmark: TRAK in two sections, each printing both sides in the same run.
//
// Featurization throughput and peak memory of one checkpoint:
//   structured   per-op Kronecker projection from the captured graph (the default)
//   dense        P^T g with a dense p x k Rademacher matrix (skipped when P would not fit)
//   baseline     one forward + backward pass per example, then the dense projection (the
//                projection is left out when P would not fit)
// plus the measured GEMM rate and the dense ceiling it implies (2 p k flops per example), and
// for each the peak resident memory of that phase alone (VmHWM, reset between phases). Each
// rate is the best of R runs (default 3). Inputs are Fashion-MNIST training images when
// installed and the input is 1x28x28 (the default), random images otherwise.
//
// End to end (ALGORITHM.md section 1), against what a user of the reference `traker` package
// runs: M checkpoints of the demo CNN (trained by `modeldiff train`, kept in the work folder),
// N training and T target examples (Fashion-MNIST when installed, synthetic images
// otherwise), k dimensions, each side in its own child process (wall time and peak RSS from
// wait4):
//   ours       the real `modeldiff trak` executable, the whole process: start-up, reading the
//              data, featurizing, the kernel solves, the scores written
//   reference  reference_trak.py beside this file, on Debian's python3: functorch's
//              vmap(grad(margin)) per checkpoint, a dense Gaussian projection per batch, the
//              float64 kernel, the scores summed over checkpoints; its own timing (models and
//              data loaded first, not timed) is the number compared
// then the agreement of the two T x N score matrices (row correlation, top-10 overlap,
// same-label rate) beside that of ours with another projection seed (how far two random
// projections of the same gradients differ), and an exact check on a subset: ours with
// --projection dense against the reference given our Rademacher matrices, which must agree
// to rounding.
//
//   bench_trak [--only featurization|end-to-end] [--model ARCH.pt|resnet9:width=W] [--input CxHxW]
//              [--examples N] [--proj-dim K] [--batch B] [--threads T] [--reps R]
//              [--baseline-examples M] [--device cpu|cuda|cuda:N]
//              [--checkpoints M] [--train N] [--targets T] [--epochs E] [--workdir DIR]
//              (default: $TMPDIR/bench_trak_work)
//              [--modeldiff PATH] [--python PATH]
// --threads 0 (the default) is all cores; both end-to-end sides get the same count. Run the
// end-to-end section on an otherwise idle machine: the reference's OpenMP threads spin at every
// barrier, so other load stretches its time several-fold (ours, one thread per worker, far
// less), which would flatter the speed-up. The CPU seconds of each child are printed beside
// its wall time.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/attribution/score_quality.h"
#include "core/base/mapped_file.h"
#include "core/base/progress.h"
#include "core/base/threads.h"
#include "core/data/image_dataset.h"
#include "core/data/preprocessing.h"
#include "core/diff/residual_pca.h"
#include "core/io/npy.h"
#include "core/pipeline/run_project.h"
#include "core/trak/builtin_architecture.h"
#include "core/trak/detail/featurizer.h"
#include "core/trak/detail/projection.h"
#include "core/trak/detail/torch_model_impl.h"
#include "core/trak/torch_model.h"

extern char** environ;

using namespace modeldiff::core;
using Clock = std::chrono::steady_clock;
namespace mdd = modeldiff::core::detail;  // torch has a ::detail of its own

namespace {

struct Args {
  std::string only;  // "" = both sections
  std::string model = MODELDIFF_SOURCE_DIR "/resources/demo/demo_cnn.pt";
  std::string input = "1x28x28";
  std::int64_t examples = 4096, baseline_examples = 512;
  int proj_dim = 2048, batch = 256, threads = 0, reps = 3;
  std::string device = "cpu";
  // End to end.
  int checkpoints = 8, epochs = 2;
  std::int64_t train = 5000, targets = 1000;
  // Inputs, checkpoints and outputs of the end-to-end section, kept between runs (the
  // checkpoints are trained once); outside any source tree.
  std::string workdir = (std::filesystem::temp_directory_path() / "bench_trak_work").string();
  std::string modeldiff = MODELDIFF_CLI;
  std::string python = "/usr/bin/python3";
};

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

int featurization(const Args& args) {
  const std::int64_t n = args.examples;
  std::int64_t nb = args.baseline_examples;
  const int k = args.proj_dim, batch = args.batch, reps = args.reps;
  std::vector<std::int64_t> shape{n};
  {
    std::stringstream ss(args.input);
    std::string part;
    while (std::getline(ss, part, 'x')) shape.push_back(std::stoll(part));
  }
  set_compute_threads(args.threads);
  set_torch_threads(args.threads);
  torch::Tensor x, y;
  const std::string fmnist = "/usr/share/datasets/fashion-mnist/";
  try {
    if (args.input != "1x28x28") throw InputError("", "random inputs");
    const ImageDataset d = load_idx_dataset(fmnist + "train-images-idx3-ubyte.gz",
                                            fmnist + "train-labels-idx1-ubyte.gz");
    const NdArray in = preprocess(d, Preprocessing{}, 0, n);
    x = torch::from_blob(const_cast<std::byte*>(in.data()), in.shape(), torch::kFloat32).clone();
    y = torch::tensor(std::vector<std::int64_t>(d.labels.begin(), d.labels.begin() + n));
  } catch (const InputError&) {
    x = torch::rand(shape);
    y = torch::randint(0, 10, {n});
  }
  // A built-in architecture (resnet9:width=64, the paper's ResNet-9) is written for the input's
  // channels and 10 classes into the work folder first, as `modeldiff train` writes it.
  std::string model_file = args.model;
  if (is_builtin_architecture(args.model))
    model_file = write_builtin_architecture(
        with_data_defaults(parse_builtin_architecture(args.model),
                           shape.size() > 1 ? static_cast<int>(shape[1]) : 1, 10),
        args.workdir);
  TorchModel model = TorchModel::load(model_file, "", args.device);
  const torch::Device dev = model.impl().device;
  // The featurizer takes CPU inputs and moves each batch (as `modeldiff trak` does); the
  // breakdown below works on inputs already on the device.
  const torch::Tensor xd = x.to(dev), yd = y.to(dev);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
  std::printf("bench_trak: %s, input %s, %lld examples, k = %d, batch %d, %d torch threads\n",
              model.describe().c_str(), args.input.c_str(), static_cast<long long>(n), k, batch,
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

// ---- End to end ----

struct Child {
  double seconds = 0, cpu_seconds = 0, peak_rss_mb = 0;  // wall, user + system, peak RSS
  int status = -1;
};

// Runs argv (argv[0] searched on PATH) with its standard output to `out` and its standard error
// (progress bars) to `log`, and waits for it: wall time, exit status and peak RSS of the child
// (wait4's rusage).
Child run_child(const std::vector<std::string>& argv, const std::string& out,
                const std::string& log) {
  std::fflush(stdout);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&files, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> cargs;
  for (const auto& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  Child c;
  const auto start = Clock::now();
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, cargs[0], &files, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (err != 0) {
    std::fprintf(stderr, "cannot run %s: %s\n", cargs[0], std::strerror(err));
    return c;
  }
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  c.seconds = seconds_since(start);
  c.peak_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
  for (const timeval& t : {usage.ru_utime, usage.ru_stime})
    c.cpu_seconds += static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec);
  c.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return c;
}

std::string dir_file(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

// The first `count` images and labels of `d` as FILE_images.npy (count x H x W uint8) and
// FILE_labels.npy (int64).
void write_examples(const ImageDataset& d, std::int64_t count, const std::string& file) {
  std::vector<std::int64_t> shape = d.images.shape();
  shape[0] = count;
  NdArray images = NdArray::allocate(DType::kUInt8, {count, shape[1], shape[2]});
  std::memcpy(images.mutable_data(), d.images.data(), images.nbytes());
  write_npy(file + "_images.npy", images);
  NdArray labels = NdArray::allocate(DType::kInt64, {count});
  std::copy_n(d.labels.begin(), count, labels.mutable_data_as<std::int64_t>());
  write_npy(file + "_labels.npy", labels);
}

// 28 x 28 grayscale images a small CNN can learn: noise plus a bright square whose place is
// the class.
ImageDataset synthetic_examples(std::int64_t count, std::uint32_t seed) {
  ImageDataset d;
  d.images = NdArray::allocate(DType::kUInt8, {count, 28, 28, 1});
  std::mt19937 rng(seed);
  std::uint8_t* px = d.images.mutable_data_as<std::uint8_t>();
  for (std::int64_t i = 0; i < count; ++i) {
    const auto label = static_cast<std::int64_t>(rng() % 10);
    d.labels.push_back(label);
    std::uint8_t* img = px + i * 28 * 28;
    for (int j = 0; j < 28 * 28; ++j) img[j] = static_cast<std::uint8_t>(rng() % 96);
    const int y0 = 2 + 12 * static_cast<int>(label / 5), x0 = 1 + 5 * static_cast<int>(label % 5);
    for (int y = y0; y < y0 + 10; ++y)
      for (int x = x0; x < x0 + 5; ++x) img[y * 28 + x] = 255;
  }
  return d;
}

double json_number(const std::string& text, const std::string& key) {
  const auto at = text.find("\"" + key + "\": ");
  return at == std::string::npos ? std::nan("") : std::stod(text.substr(at + key.size() + 4));
}

struct Agreement {
  double median_correlation = 0, min_correlation = 0;  // Pearson, per target row
  double top_overlap = 0;                              // shared top-10 training examples
};

// a, b: T x N float32 scores.
Agreement agreement(const NdArray& a, const NdArray& b) {
  constexpr std::int64_t kTop = 10;
  const std::int64_t t = a.dim(0), n = a.dim(1);
  ConstRowMapF ma(a.data_as<float>(), t, n), mb(b.data_as<float>(), t, n);
  std::vector<double> corr;
  double overlap = 0;
  std::vector<std::int64_t> ia(static_cast<std::size_t>(n)), ib(ia.size());
  for (std::int64_t i = 0; i < t; ++i) {
    const Eigen::VectorXd ra = ma.row(i).cast<double>().transpose(),
                          rb = mb.row(i).cast<double>().transpose();
    const Eigen::VectorXd ca = ra.array() - ra.mean(), cb = rb.array() - rb.mean();
    corr.push_back(ca.dot(cb) / std::sqrt(ca.squaredNorm() * cb.squaredNorm()));
    for (auto* idx : {&ia, &ib}) {
      const Eigen::VectorXd& r = idx == &ia ? ra : rb;
      for (std::int64_t j = 0; j < n; ++j) (*idx)[static_cast<std::size_t>(j)] = j;
      std::partial_sort(idx->begin(), idx->begin() + kTop, idx->end(),
                        [&](std::int64_t x, std::int64_t y) { return r(x) > r(y); });
      std::sort(idx->begin(), idx->begin() + kTop);
    }
    std::vector<std::int64_t> shared;
    std::set_intersection(ia.begin(), ia.begin() + kTop, ib.begin(), ib.begin() + kTop,
                          std::back_inserter(shared));
    overlap += static_cast<double>(shared.size()) / kTop;
  }
  std::sort(corr.begin(), corr.end());
  return {corr[corr.size() / 2], corr.front(), overlap / static_cast<double>(t)};
}

std::vector<std::int64_t> labels_of(const std::string& npy) {
  const NdArray a = read_npy(npy);
  return std::vector<std::int64_t>(a.data_as<std::int64_t>(),
                                   a.data_as<std::int64_t>() + a.numel());
}

int end_to_end(const Args& args) {
  const int threads = args.threads > 0
                          ? args.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string& work = args.workdir;
  std::filesystem::create_directories(work);
  const std::string demo = MODELDIFF_SOURCE_DIR "/resources/demo/demo_cnn.pt";
  const std::string demo_py = MODELDIFF_SOURCE_DIR "/resources/demo/make_demo_architecture.py";
  const std::string script = MODELDIFF_BENCHMARK_DIR "/reference_trak.py";

  // Data: the first N training and T test images of Fashion-MNIST, or synthetic ones.
  const std::string fmnist = "/usr/share/datasets/fashion-mnist/";
  std::string source = "Fashion-MNIST";
  ImageDataset train, test;
  try {
    train = load_idx_dataset(fmnist + "train-images-idx3-ubyte.gz",
                             fmnist + "train-labels-idx1-ubyte.gz");
    test = load_idx_dataset(fmnist + "t10k-images-idx3-ubyte.gz",
                            fmnist + "t10k-labels-idx1-ubyte.gz");
    if (train.size() < args.train || test.size() < args.targets)
      throw InputError(fmnist, "fewer images than asked for");
  } catch (const InputError&) {
    source = "synthetic";
    train = synthetic_examples(args.train, 1);
    test = synthetic_examples(args.targets, 2);
  }
  write_examples(train, args.train, dir_file(work, "train"));
  write_examples(test, args.targets, dir_file(work, "target"));

  // Each child writes WORK/NAME.out (its standard output) and WORK/NAME.log (its progress).
  bool failed = false;
  const auto run = [&](const std::string& name, const std::vector<std::string>& argv) {
    const Child c = run_child(argv, dir_file(work, name + ".out"), dir_file(work, name + ".log"));
    if (c.status != 0) {
      std::fprintf(stderr, "bench_trak: %s failed (status %d), see %s\n", name.c_str(), c.status,
                   dir_file(work, name + ".log").c_str());
      failed = true;
    }
    return c;
  };
  // Checkpoints from the real trainer (a rerun with the same options resumes: nothing to do).
  const std::string ckpt_dir = dir_file(work, "checkpoints");
  run("train",
      {args.modeldiff, "train", "--model", demo, "--train-images",
       dir_file(work, "train_images.npy"), "--train-labels", dir_file(work, "train_labels.npy"),
       "--models", std::to_string(args.checkpoints), "--epochs", std::to_string(args.epochs),
       "--threads", std::to_string(threads), "-o", ckpt_dir});
  if (failed) return 1;
  std::vector<std::string> checkpoints;
  for (int m = 0; m < args.checkpoints; ++m)
    checkpoints.push_back(dir_file(ckpt_dir, "model_" + std::to_string(m) + ".pt"));
  const std::int64_t p = TorchModel::load(demo, checkpoints[0], "cpu").num_parameters();
  std::printf(
      "\nend to end: %d checkpoints of the demo CNN (%lld parameters), %lld training x %lld "
      "target examples (%s), k = %d, %d threads\n",
      args.checkpoints, static_cast<long long>(p), static_cast<long long>(args.train),
      static_cast<long long>(args.targets), source.c_str(), args.proj_dim, threads);

  // A side's command line: HEAD, the checkpoints, the examples in the files FILE_images.npy and
  // FILE_labels.npy (FILE = PREFIX train and PREFIX target), k, the scores to WORK/OUT (after
  // OUT_FLAG), then EXTRA. Both sides take the same data options.
  const auto command = [&](std::vector<std::string> v, const std::string& prefix,
                           const std::vector<std::string>& ckpts, int k,
                           const std::string& out_flag, const std::string& out,
                           const std::vector<std::string>& extra) {
    v.push_back("--checkpoints");
    v.insert(v.end(), ckpts.begin(), ckpts.end());
    for (const std::string& s :
         {std::string("--train-images"), dir_file(work, prefix + "train_images.npy"),
          std::string("--train-labels"), dir_file(work, prefix + "train_labels.npy"),
          std::string("--val-images"), dir_file(work, prefix + "target_images.npy"),
          std::string("--val-labels"), dir_file(work, prefix + "target_labels.npy"),
          std::string("--proj-dim"), std::to_string(k), std::string("--threads"),
          std::to_string(threads), out_flag, dir_file(work, out)})
      v.push_back(s);
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  const auto ours_args = [&](const std::string& prefix, const std::vector<std::string>& ckpts,
                             int k, const std::string& out, const std::vector<std::string>& extra) {
    return command({args.modeldiff, "trak", "--model", demo}, prefix, ckpts, k, "-o", out, extra);
  };
  const auto reference_args = [&](const std::string& prefix, const std::vector<std::string>& ckpts,
                                  int k, const std::string& out, const std::string& projection) {
    return command({args.python, script, "--arch", demo_py}, prefix, ckpts, k, "--out", out,
                   {"--projection", projection});
  };

  const Child ours = run("ours", ours_args("", checkpoints, args.proj_dim, "ours.npy", {}));
  const Child ref =
      run("reference", reference_args("", checkpoints, args.proj_dim, "reference.npy", "gaussian"));
  const Child seed1 = run(
      "ours_seed1", ours_args("", checkpoints, args.proj_dim, "ours_seed1.npy", {"--seed", "1"}));

  // The exact check: a subset small enough for p x k matrices on disk, N_s > k_s so that the
  // kernel is regular.
  const std::int64_t sub_n = std::min<std::int64_t>(1000, args.train),
                     sub_t = std::min<std::int64_t>(200, args.targets);
  const int sub_k = static_cast<int>(std::min<std::int64_t>(512, sub_n / 2));
  const int sub_m = std::min(2, args.checkpoints);
  write_examples(train, sub_n, dir_file(work, "subset_train"));
  write_examples(test, sub_t, dir_file(work, "subset_target"));
  for (int m = 0; m < sub_m; ++m) {
    // What the dense projection of checkpoint m uses (its p x k +-1 matrix, before 1 / sqrt(p)).
    const torch::Tensor r =
        mdd::rademacher(p, sub_k, mdd::mix_seed(0, static_cast<std::uint64_t>(m), 0));
    NdArray a = NdArray::allocate(DType::kFloat32, {p, sub_k});
    std::memcpy(a.mutable_data(), r.data_ptr<float>(), a.nbytes());
    write_npy(dir_file(work, "rademacher_" + std::to_string(m) + ".npy"), a);
  }
  const std::vector<std::string> sub_ckpts(checkpoints.begin(), checkpoints.begin() + sub_m);
  run("subset_ours_dense",
      ours_args("subset_", sub_ckpts, sub_k, "subset_ours_dense.npy", {"--projection", "dense"}));
  run("subset_reference_dense",
      reference_args("subset_", sub_ckpts, sub_k, "subset_reference_dense.npy",
                     dir_file(work, "rademacher_")));
  if (failed) return 1;
  const std::string ref_json = dir_file(work, "reference.out");  // its one JSON line
  const std::string ref_text = read_text_file(ref_json);
  const double ref_seconds = json_number(ref_text, "seconds");
  const double ref_featurize = json_number(ref_text, "featurize_seconds");
  const double ref_peak = json_number(ref_text, "peak_rss_mb");
  if (!std::isfinite(ref_seconds)) {
    std::fprintf(stderr, "no timing from the reference: %s\n", ref_text.c_str());
    return 1;
  }

  const int ref_threads = static_cast<int>(json_number(ref_text, "threads"));
  if (ref_threads != threads) {  // the comparison would not be like for like
    std::fprintf(stderr, "the reference ran with %d threads, not %d: %s\n", ref_threads, threads,
                 ref_text.c_str());
    return 1;
  }

  std::printf("\n%-58s %9s %9s %14s\n", "method", "wall [s]", "CPU [s]", "peak RSS [MB]");
  std::printf("%-58s %9.2f %9s %14.0f\n",
              "reference: functorch vmap(grad), dense Gaussian (timed part)", ref_seconds, "",
              ref_peak);
  std::printf("%-58s %9.2f\n", "  of which gradients and projections", ref_featurize);
  const auto method = [](const char* what, const Child& c) {
    std::printf("%-58s %9.2f %9.2f %14.0f\n", what, c.seconds, c.cpu_seconds, c.peak_rss_mb);
  };
  method("  the whole python process", ref);
  method("modeldiff trak (structured projection), whole process", ours);
  method("modeldiff trak --seed 1, whole process", seed1);
  // The line the acceptance reads: featurize + kernel + solve + score of every checkpoint, ours
  // as the whole process (start-up and reading included), the reference's timed part.
  std::printf(
      "\nend to end (featurize + kernel + solve + score, %d checkpoints, %lld x %lld, k = %d):\n"
      "  modeldiff trak %.2f s, peak RSS %.0f MB, %d threads (--threads %d: %d featurization "
      "workers, BLAS %d)\n"
      "  functorch TRAK %.2f s, peak RSS %.0f MB, %d threads (torch.set_num_threads(%d))\n"
      "  speed-up %.2fx (with --seed 1: %.2fx)\n",
      args.checkpoints, static_cast<long long>(args.targets), static_cast<long long>(args.train),
      args.proj_dim, ours.seconds, ours.peak_rss_mb, threads, threads, threads, threads,
      ref_seconds, ref.peak_rss_mb, ref_threads, ref_threads, ref_seconds / ours.seconds,
      ref_seconds / seed1.seconds);

  const NdArray s_ours = read_npy(dir_file(work, "ours.npy"));
  const NdArray s_ref = read_npy(dir_file(work, "reference.npy"));
  const NdArray s_seed1 = read_npy(dir_file(work, "ours_seed1.npy"));
  const auto train_labels = labels_of(dir_file(work, "train_labels.npy"));
  const auto target_labels = labels_of(dir_file(work, "target_labels.npy"));
  std::printf("\n%-48s %24s %15s\n", "agreement of the T x N score matrices", "row correlation",
              "top-10");
  std::printf("%-48s %24s %15s\n", "", "(median / min)", "overlap");
  const auto row = [](const char* what, const Agreement& a) {
    std::printf("%-48s %14.4f / %7.4f %15.3f\n", what, a.median_correlation, a.min_correlation,
                a.top_overlap);
  };
  row("  ours vs the reference", agreement(s_ours, s_ref));
  row("  ours vs ours --seed 1 (another projection)", agreement(s_ours, s_seed1));
  std::printf("top-20 same-label rate: ours %.1f%%, ours --seed 1 %.1f%%, reference %.1f%%\n",
              100 * same_label_rate(s_ours, train_labels, target_labels),
              100 * same_label_rate(s_seed1, train_labels, target_labels),
              100 * same_label_rate(s_ref, train_labels, target_labels));

  const NdArray d_ours = read_npy(dir_file(work, "subset_ours_dense.npy"));
  const NdArray d_ref = read_npy(dir_file(work, "subset_reference_dense.npy"));
  ConstRowMapF da(d_ours.data_as<float>(), d_ours.dim(0), d_ours.dim(1)),
      db(d_ref.data_as<float>(), d_ref.dim(0), d_ref.dim(1));
  const Agreement exact = agreement(d_ours, d_ref);
  std::printf(
      "same projection (ours --projection dense vs the reference given our Rademacher "
      "matrices;\n  %lld x %lld examples, %d checkpoints, k = %d): max |difference| / max "
      "|score| = %.2e, min row correlation %.6f\n",
      static_cast<long long>(sub_t), static_cast<long long>(sub_n), sub_m, sub_k,
      static_cast<double>((da - db).cwiseAbs().maxCoeff() / db.cwiseAbs().maxCoeff()),
      exact.min_correlation);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--only")
      args.only = v;
    else if (a == "--model")
      args.model = v;
    else if (a == "--input")
      args.input = v;
    else if (a == "--examples")
      args.examples = std::stoll(v);
    else if (a == "--baseline-examples")
      args.baseline_examples = std::stoll(v);
    else if (a == "--proj-dim")
      args.proj_dim = std::stoi(v);
    else if (a == "--batch")
      args.batch = std::stoi(v);
    else if (a == "--threads")
      args.threads = std::stoi(v);
    else if (a == "--reps")
      args.reps = std::max(1, std::stoi(v));
    else if (a == "--device")
      args.device = v;
    else if (a == "--checkpoints")
      args.checkpoints = std::max(1, std::stoi(v));
    else if (a == "--epochs")
      args.epochs = std::max(1, std::stoi(v));
    else if (a == "--train")
      args.train = std::stoll(v);
    else if (a == "--targets")
      args.targets = std::stoll(v);
    else if (a == "--workdir")
      args.workdir = v;
    else if (a == "--modeldiff")
      args.modeldiff = v;
    else if (a == "--python")
      args.python = v;
    else {
      std::fprintf(stderr, "bench_trak: unknown option %s (see the header of bench_trak.cpp)\n",
                   a.c_str());
      return 2;
    }
  }
  if (args.only != "end-to-end" && featurization(args) != 0) return 1;
  if (args.only != "featurization") return end_to_end(args);
  return 0;
}
