// Benchmark: `modeldiff diff` against a straightforward baseline, in the same run.
//
//   bench_diff [--targets T] [--train N] [--components C] [--modeldiff PATH] [--workdir DIR]
//
// Writes synthetic T x N float32 score matrices (shared low-rank structure, an A-only
// planted part, noise) as .npy, then runs, each in its own child process so that peak RSS is
// measured per method (getrusage of the child):
//   ours:     the real `modeldiff diff` executable (implicit residual, randomised PCA)
//   baseline: both matrices read into memory, the full residual materialised (T x N float32),
//             centred, and an exact SVD by LAPACK sgesdd, for A-B and for B-A, as a
//             straightforward port of the reference package would do.
// Prints wall time, peak RSS (also relative to one input matrix) and the agreement of the
// leading directions (|cosine| between ours and the baseline's).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/Dense>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/base/threads.h"
#include "core/diff/model_diff.h"
#include "core/io/hdf5_dataset.h"
#include "core/io/npy.h"

extern "C" void sgesdd_(const char* jobz, const int* m, const int* n, float* a, const int* lda,
                        float* s, float* u, const int* ldu, float* vt, const int* ldvt, float* work,
                        const int* lwork, int* iwork, int* info);

namespace {

using namespace modeldiff::core;
using Clock = std::chrono::steady_clock;

struct Args {
  std::int64_t t = 5000, n = 20000;
  int components = 10;
  std::string modeldiff = "modeldiff";
  std::string workdir = "bench_diff_work";
};

void write_inputs(const Args& args) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> g(0.0f, 1.0f);
  auto gaussian = [&](std::int64_t r, std::int64_t c) {
    return RowMatrixF(RowMatrixF::NullaryExpr(r, c, [&] { return g(rng); }));
  };
  const RowMatrixF su = gaussian(args.t, 16), sv = gaussian(16, args.n);
  const RowMatrixF pu = gaussian(args.t, 3), pv = gaussian(3, args.n);
  for (int which = 0; which < 2; ++which) {
    NdArray m = NdArray::allocate(DType::kFloat32, {args.t, args.n});
    Eigen::Map<RowMatrixF> map(m.mutable_data_as<float>(), args.t, args.n);
    map = su * sv;
    if (which == 0) map += 0.8f * pu * pv;  // A-only structure
    map += 2.0f * gaussian(args.t, args.n);
    write_npy(args.workdir + (which == 0 ? "/a.npy" : "/b.npy"), m);
  }
}

// The baseline, run in a child: returns the top directions of both residuals in `out`.
int run_baseline(const Args& args) {
  std::vector<RowMatrixF> m(2);
  for (int which = 0; which < 2; ++which) {
    const NdArray loaded = read_npy(args.workdir + (which == 0 ? "/a.npy" : "/b.npy"));
    m[which] = ConstRowMapF(loaded.data_as<float>(), args.t, args.n);  // copy into RAM
  }
  RowMatrixF dirs(2 * args.components, args.n);
  for (int k = 0; k < 2; ++k) {
    const RowMatrixF& first = m[k];
    const RowMatrixF& second = m[1 - k];
    // Residual with unit-norm rows, materialised in full.
    RowMatrixF r(args.t, args.n);
    for (std::int64_t i = 0; i < args.t; ++i) {
      const double nf = first.row(i).cast<double>().norm(),
                   ns = second.row(i).cast<double>().norm();
      const double dot = first.row(i).cast<double>().dot(second.row(i).cast<double>());
      r.row(i) =
          (first.row(i).cast<double>() / nf - (dot / (nf * ns * ns)) * second.row(i).cast<double>())
              .cast<float>();
    }
    r.rowwise() -= r.colwise().mean();
    // LAPACK is column-major: the row-major T x N residual is the column-major N x T matrix.
    int mm = static_cast<int>(args.n), nn = static_cast<int>(args.t), lda = mm;
    const int kk = std::min(mm, nn);
    std::vector<float> s(static_cast<std::size_t>(kk));
    std::vector<float> u(static_cast<std::size_t>(mm) * kk), vt(static_cast<std::size_t>(kk) * nn);
    std::vector<int> iwork(8 * static_cast<std::size_t>(kk));
    int lwork = -1, info = 0, ldu = mm, ldvt = kk;
    float query = 0;
    sgesdd_("S", &mm, &nn, r.data(), &lda, s.data(), u.data(), &ldu, vt.data(), &ldvt, &query,
            &lwork, iwork.data(), &info);
    lwork = static_cast<int>(query);
    std::vector<float> work(static_cast<std::size_t>(lwork));
    sgesdd_("S", &mm, &nn, r.data(), &lda, s.data(), u.data(), &ldu, vt.data(), &ldvt, work.data(),
            &lwork, iwork.data(), &info);
    if (info != 0) {
      std::fprintf(stderr, "sgesdd failed: info = %d\n", info);
      return 1;
    }
    // Columns of U (N x k, column-major) are the directions in training-set space.
    for (int c = 0; c < args.components; ++c)
      for (std::int64_t j = 0; j < args.n; ++j)
        dirs(k * args.components + c, j) = u[static_cast<std::size_t>(c) * mm + j];
  }
  NdArray out = NdArray::allocate(DType::kFloat32, {2 * args.components, args.n});
  std::copy_n(dirs.data(), dirs.size(), out.mutable_data_as<float>());
  write_npy(args.workdir + "/baseline_directions.npy", out);
  return 0;
}

struct Measured {
  double seconds = 0;
  double peak_rss_mb = 0;
  int status = -1;
};

Measured measure_child(const std::vector<std::string>& argv) {
  std::fflush(stdout);  // or the child would print the parent's buffered lines again
  const auto start = Clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    // The child's report would interleave with the table; its exit status is checked.
    if (std::FILE* null = std::freopen("/dev/null", "w", stdout)) (void)null;
    std::vector<char*> cargs;
    for (const auto& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
    cargs.push_back(nullptr);
    execvp(cargs[0], cargs.data());
    std::perror("exec");
    std::_Exit(127);
  }
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  Measured m;
  m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  m.peak_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
  m.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  bool baseline_child = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--targets")
      args.t = std::stoll(next());
    else if (a == "--train")
      args.n = std::stoll(next());
    else if (a == "--components")
      args.components = std::stoi(next());
    else if (a == "--modeldiff")
      args.modeldiff = next();
    else if (a == "--workdir")
      args.workdir = next();
    else if (a == "--baseline-child")
      baseline_child = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_diff [--targets T] [--train N] [--components C] "
                   "[--modeldiff PATH] [--workdir DIR]\n");
      return 2;
    }
  }
  set_compute_threads(0);
  if (baseline_child) return run_baseline(args);

  std::filesystem::create_directories(args.workdir);
  std::printf("bench_diff: T = %lld targets x N = %lld training examples, C = %d, %d threads\n",
              static_cast<long long>(args.t), static_cast<long long>(args.n), args.components,
              compute_threads());
  write_inputs(args);
  const double input_mb = static_cast<double>(args.t * args.n * 4) / (1 << 20);

  std::filesystem::remove_all(args.workdir + "/out");
  const Measured ours =
      measure_child({args.modeldiff, "diff", "--scores-a", args.workdir + "/a.npy", "--scores-b",
                     args.workdir + "/b.npy", "--components", std::to_string(args.components),
                     "--out", args.workdir + "/out"});
  const Measured base =
      measure_child({argv[0], "--baseline-child", "--targets", std::to_string(args.t), "--train",
                     std::to_string(args.n), "--components", std::to_string(args.components),
                     "--workdir", args.workdir});
  if (ours.status != 0 || base.status != 0) {
    std::fprintf(stderr, "a run failed (ours %d, baseline %d)\n", ours.status, base.status);
    return 1;
  }

  // Agreement of the leading directions.
  const NdArray b_dirs = read_npy(args.workdir + "/baseline_directions.npy");
  double worst[2] = {1, 1};
  const char* groups[2] = {"a_minus_b", "b_minus_a"};
  for (int k = 0; k < 2; ++k) {
    const NdArray o =
        read_hdf5_dataset(args.workdir + "/out/diff.h5", std::string(groups[k]) + "/directions");
    ConstRowMapF od(o.data_as<float>(), args.components, args.n);
    ConstRowMapF bd(b_dirs.data_as<float>() + k * args.components * args.n, args.components,
                    args.n);
    for (int c = 0; c < 3 && c < args.components; ++c)
      worst[k] = std::min(worst[k], std::abs(static_cast<double>(od.row(c).dot(bd.row(c)))));
  }

  std::printf("\n%-34s %12s %14s %12s\n", "method", "wall [s]", "peak RSS [MB]", "RSS / input");
  std::printf("%-34s %12.2f %14.0f %12.2f\n", "baseline (full residual, sgesdd)", base.seconds,
              base.peak_rss_mb, base.peak_rss_mb / input_mb);
  std::printf("%-34s %12.2f %14.0f %12.2f\n", "modeldiff diff (implicit, rand.)", ours.seconds,
              ours.peak_rss_mb, ours.peak_rss_mb / input_mb);
  std::printf("\nspeed-up: %.1fx   one input matrix: %.0f MB\n", base.seconds / ours.seconds,
              input_mb);
  std::printf("agreement of the 3 leading directions (min |cos|): A-B %.6f, B-A %.6f\n", worst[0],
              worst[1]);
  return 0;
}
