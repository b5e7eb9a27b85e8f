// Benchmark: `modeldiff diff` against what users run instead, in the same run.
//
//   bench_diff [--targets T] [--train N] [--components C] [--modeldiff PATH] [--workdir DIR]
//              [--python PATH] [--no-exact]
//
// Writes synthetic T x N float32 score matrices (shared low-rank structure, an A-only
// planted part, noise) as .npy, then runs, each in its own child process so that peak RSS is
// measured per method (getrusage of the child):
//   ours:      the real `modeldiff diff` executable (implicit residual, randomised PCA), on
//              raw rows (--raw-rows, the reference package's math) and on unit-norm rows
//   reference: the reference package's residual_pca as its users run it (numpy residual,
//              scikit-learn's PCA with its default solver, torch variances): the script
//              reference_residual_pca.py beside this file, on Debian's python3; its own
//              timing of the two calls (loading excluded) is the number compared
//   exact:     both matrices read into memory, the full residual materialised (T x N float32),
//              centred, and an exact SVD by LAPACK sgesdd, for A-B and for B-A (--no-exact
//              leaves it out: it takes minutes at the default size).
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

#include "core/base/mapped_file.h"
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
  std::string python = "/usr/bin/python3";
  bool exact = true;
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

Measured measure_child(const std::vector<std::string>& argv, bool keep_stdout = false) {
  std::fflush(stdout);  // or the child would print the parent's buffered lines again
  const auto start = Clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    // The child's report would interleave with the table; its exit status is checked.
    if (!keep_stdout)
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
    else if (a == "--python")
      args.python = next();
    else if (a == "--no-exact")
      args.exact = false;
    else if (a == "--baseline-child")
      baseline_child = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_diff [--targets T] [--train N] [--components C] "
                   "[--modeldiff PATH] [--workdir DIR] [--python PATH] [--no-exact]\n");
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

  const auto diff_args = [&](const std::string& out, bool raw) {
    std::vector<std::string> v = {args.modeldiff, "diff", "--scores-a", args.workdir + "/a.npy",
                                  "--scores-b", args.workdir + "/b.npy", "--components",
                                  std::to_string(args.components), "--out", args.workdir + out,
                                  // The principal directions, as the reference and the exact
                                  // solution give them: the default varimax rotation turns
                                  // them within their span, and no direction would match.
                                  "--rotation", "none"};
    if (raw) v.push_back("--raw-rows");
    return v;
  };
  std::filesystem::remove_all(args.workdir + "/out_raw");
  std::filesystem::remove_all(args.workdir + "/out");
  const Measured ours_raw = measure_child(diff_args("/out_raw", true));
  const Measured ours = measure_child(diff_args("/out", false));
  // The reference prints its own timing of the two calls as JSON on stdout.
  const std::string script =
      (std::filesystem::path(MODELDIFF_BENCHMARK_DIR) / "reference_residual_pca.py").string();
  const std::string ref_json = args.workdir + "/reference.json";
  const Measured ref_run =
      measure_child({"/bin/sh", "-c",
                     "'" + args.python + "' '" + script + "' '" + args.workdir + "/a.npy' '" +
                         args.workdir + "/b.npy' " + std::to_string(args.components) + " '" +
                         args.workdir + "' > '" + ref_json + "'"},
                    /*keep_stdout=*/true);
  Measured base;
  if (args.exact)
    base = measure_child({argv[0], "--baseline-child", "--targets", std::to_string(args.t),
                          "--train", std::to_string(args.n), "--components",
                          std::to_string(args.components), "--workdir", args.workdir});
  if (ours.status != 0 || ours_raw.status != 0 || ref_run.status != 0 ||
      (args.exact && base.status != 0)) {
    std::fprintf(stderr, "a run failed (ours %d, ours raw %d, reference %d, exact %d)\n",
                 ours.status, ours_raw.status, ref_run.status, base.status);
    return 1;
  }
  double ref_seconds = 0;
  {
    const std::string text = read_text_file(ref_json);
    const auto at = text.find("\"seconds\": ");
    if (at == std::string::npos) {
      std::fprintf(stderr, "no timing from the reference: %s\n", text.c_str());
      return 1;
    }
    ref_seconds = std::stod(text.substr(at + 11));
  }

  // Agreement of the leading directions of each run with another's (|cos| per direction).
  const char* groups[2] = {"a_minus_b", "b_minus_a"};
  const auto agreement = [&](const std::string& out_dir, const std::string& dirs_npy) {
    const NdArray other = read_npy(args.workdir + dirs_npy);
    double worst = 1;
    for (int k = 0; k < 2; ++k) {
      const NdArray o = read_hdf5_dataset(args.workdir + out_dir + "/diff.h5",
                                          std::string(groups[k]) + "/directions");
      ConstRowMapF od(o.data_as<float>(), args.components, args.n);
      ConstRowMapF bd(other.data_as<float>() + k * args.components * args.n, args.components,
                      args.n);
      for (int c = 0; c < 3 && c < args.components; ++c)
        worst = std::min(worst, std::abs(static_cast<double>(od.row(c).dot(bd.row(c)))));
    }
    return worst;
  };

  std::printf("\n%-40s %12s %14s %12s\n", "method", "wall [s]", "peak RSS [MB]", "RSS / input");
  std::printf("%-40s %12.2f %14.0f %12.2f\n", "reference residual_pca (sklearn), raw rows",
              ref_seconds, ref_run.peak_rss_mb, ref_run.peak_rss_mb / input_mb);
  std::printf("%-40s %12.2f %14.0f %12.2f\n", "modeldiff diff --raw-rows", ours_raw.seconds,
              ours_raw.peak_rss_mb, ours_raw.peak_rss_mb / input_mb);
  std::printf("%-40s %12.2f %14.0f %12.2f\n", "modeldiff diff (unit-norm rows)", ours.seconds,
              ours.peak_rss_mb, ours.peak_rss_mb / input_mb);
  if (args.exact)
    std::printf("%-40s %12.2f %14.0f %12.2f\n", "exact (full residual, sgesdd), unit rows",
                base.seconds, base.peak_rss_mb, base.peak_rss_mb / input_mb);
  std::printf(
      "\nspeed-up of modeldiff diff --raw-rows (end to end, reading and hashing included)"
      "\nover the reference's two residual_pca calls (loading excluded): %.2fx\n",
      ref_seconds / ours_raw.seconds);
  if (args.exact) std::printf("over the exact solution: %.1fx\n", base.seconds / ours.seconds);
  std::printf("one input matrix: %.0f MB\n", input_mb);
  std::printf("agreement of the 3 leading directions (min |cos| over A-B and B-A):\n");
  std::printf("  --raw-rows vs the reference's: %.6f\n",
              agreement("/out_raw", "/reference_directions.npy"));
  if (args.exact)
    std::printf("  unit-norm rows vs exact:       %.6f\n",
                agreement("/out", "/baseline_directions.npy"));
  return 0;
}
