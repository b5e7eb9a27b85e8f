#include "core/diff/residual_pca.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "core/base/error.h"

namespace modeldiff::core {
namespace {

using Eigen::MatrixXd;
using Eigen::MatrixXf;
using Eigen::VectorXd;

// Standard normal numbers from a seeded 64-bit Mersenne Twister via Box-Muller: the same
// sequence on every standard library (std::normal_distribution is implementation-defined).
MatrixXf gaussian_block(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  MatrixXf out(rows, cols);
  const double two_pi = 6.283185307179586476925;
  float* p = out.data();
  const std::int64_t n = rows * cols;
  for (std::int64_t i = 0; i < n; i += 2) {
    const double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;          // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    p[i] = static_cast<float>(r * std::cos(two_pi * u2));
    if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(two_pi * u2));
  }
  return out;
}

MatrixXd orthonormalize(const MatrixXd& y) {
  Eigen::HouseholderQR<MatrixXd> qr(y);
  return qr.householderQ() * MatrixXd::Identity(y.rows(), y.cols());
}

// Flips component c (a column of `projections`, a row of `directions`) so that its projection
// of largest magnitude is positive.
void apply_sign_convention(RowMatrixF& directions, RowMatrixF& projections) {
  for (Eigen::Index c = 0; c < projections.cols(); ++c) {
    Eigen::Index arg = 0;
    projections.col(c).cwiseAbs().maxCoeff(&arg);
    if (projections(arg, c) < 0) {
      projections.col(c) *= -1.0f;
      directions.row(c) *= -1.0f;
    }
  }
}

// Column means of a residual: mu = (A^T coef_a + B^T coef_b) / T, for every residual at once.
MatrixXd residual_means(ConstRowMapF a, ConstRowMapF b,
                        const std::vector<ResidualCoefficients>& residuals) {
  const Eigen::Index t = a.rows(), p = static_cast<Eigen::Index>(residuals.size());
  MatrixXf ca(t, p), cb(t, p);
  for (Eigen::Index k = 0; k < p; ++k) {
    ca.col(k) = residuals[static_cast<std::size_t>(k)].coef_a.cast<float>();
    cb.col(k) = residuals[static_cast<std::size_t>(k)].coef_b.cast<float>();
  }
  MatrixXf mu(a.cols(), p);
  mu.noalias() = a.transpose() * ca;
  mu.noalias() += b.transpose() * cb;
  return mu.cast<double>() / static_cast<double>(t);
}

// ||R||_F^2 - T ||mu||^2 from the row statistics: no pass over A or B is needed.
double total_variance(const RowStats& s, const ResidualCoefficients& r, const VectorXd& mu) {
  const Eigen::Index t = s.aa.size();
  double sum = 0;
  for (Eigen::Index i = 0; i < t; ++i) {
    const double x = r.coef_a(i), y = r.coef_b(i);
    sum += x * x * s.aa(i) + 2 * x * y * s.ab(i) + y * y * s.bb(i);
  }
  return (sum - static_cast<double>(t) * mu.squaredNorm()) / static_cast<double>(t - 1);
}

PcaResult exact_pca(ConstRowMapF a, ConstRowMapF b, const ResidualCoefficients& coef,
                    int components) {
  const Eigen::Index t = a.rows(), n = a.cols();
  MatrixXd r = coef.coef_a.asDiagonal() * a.cast<double>();
  r.noalias() += coef.coef_b.asDiagonal() * b.cast<double>();
  const Eigen::RowVectorXd mean = r.colwise().mean();
  r.rowwise() -= mean;

  PcaResult out;
  out.solver = "exact";
  out.total_variance = r.squaredNorm() / static_cast<double>(t - 1);
  MatrixXd v;  // N x C right singular vectors
  if (t <= n) {
    const MatrixXd gram = r * r.transpose();  // T x T
    Eigen::SelfAdjointEigenSolver<MatrixXd> eig(gram);
    v.resize(n, components);
    for (int c = 0; c < components; ++c) {
      const Eigen::Index k = t - 1 - c;  // eigenvalues ascend
      const double s = std::sqrt(std::max(eig.eigenvalues()(k), 0.0));
      v.col(c) = r.transpose() * eig.eigenvectors().col(k);
      if (s > 0) v.col(c) /= s;
    }
  } else {
    const MatrixXd gram = r.transpose() * r;  // N x N
    Eigen::SelfAdjointEigenSolver<MatrixXd> eig(gram);
    v.resize(n, components);
    for (int c = 0; c < components; ++c) v.col(c) = eig.eigenvectors().col(n - 1 - c);
  }
  for (int c = 0; c < components; ++c) {
    const double norm = v.col(c).norm();
    if (norm > 0) v.col(c) /= norm;
  }
  const MatrixXd proj = r * v;  // T x C
  out.directions = v.transpose().cast<float>();
  out.projections = proj.cast<float>();
  return out;
}

// Randomised subspace iteration on all residuals together (mu: N x residuals, column means). Per
// iteration: one forward pass (A X, B X) and one adjoint pass (A^T Y, B^T Y) with the blocks of
// every residual side by side, then a Rayleigh-Ritz step per residual in double precision.
std::vector<PcaResult> randomized_pca(ConstRowMapF a, ConstRowMapF b,
                                      const std::vector<ResidualCoefficients>& residuals,
                                      const MatrixXd& mu, const PcaSettings& settings,
                                      Progress& progress) {
  const Eigen::Index t = a.rows(), n = a.cols();
  const int p = static_cast<int>(residuals.size());
  const int c_wanted = settings.components;
  const Eigen::Index l = std::min<Eigen::Index>(c_wanted + std::max(10, c_wanted), std::min(t, n));

  // R_k X - 1 (mu_k^T X) for every residual k, from the shared products A X and B X.
  MatrixXf xa(n, l * p), fa(t, l * p), fb(t, l * p);
  auto forward = [&](std::vector<MatrixXd>& y) {
    fa.noalias() = a * xa;
    fb.noalias() = b * xa;
    for (int k = 0; k < p; ++k) {
      const auto& r = residuals[static_cast<std::size_t>(k)];
      const auto cols = Eigen::seqN(k * l, l);
      y[static_cast<std::size_t>(k)] = r.coef_a.asDiagonal() * fa(Eigen::all, cols).cast<double>() +
                                       r.coef_b.asDiagonal() * fb(Eigen::all, cols).cast<double>();
      const Eigen::RowVectorXd shift = mu.col(k).transpose() * xa(Eigen::all, cols).cast<double>();
      y[static_cast<std::size_t>(k)].rowwise() -= shift;
    }
  };
  // R_k^T Q - mu_k (1^T Q), stored into xa (the next forward pass's input) and returned.
  MatrixXf ya(t, l * p), yb(t, l * p);
  auto adjoint = [&](const std::vector<MatrixXd>& q, std::vector<MatrixXd>& z) {
    for (int k = 0; k < p; ++k) {
      const auto& r = residuals[static_cast<std::size_t>(k)];
      const auto cols = Eigen::seqN(k * l, l);
      ya(Eigen::all, cols) = (r.coef_a.asDiagonal() * q[static_cast<std::size_t>(k)]).cast<float>();
      yb(Eigen::all, cols) = (r.coef_b.asDiagonal() * q[static_cast<std::size_t>(k)]).cast<float>();
    }
    xa.noalias() = a.transpose() * ya;
    xa.noalias() += b.transpose() * yb;
    for (int k = 0; k < p; ++k) {
      const auto cols = Eigen::seqN(k * l, l);
      const Eigen::RowVectorXd col_sums = q[static_cast<std::size_t>(k)].colwise().sum();
      MatrixXd zk = xa(Eigen::all, cols).cast<double>();
      zk.noalias() -= mu.col(k) * col_sums;
      xa(Eigen::all, cols) = zk.cast<float>();
      z[static_cast<std::size_t>(k)] = std::move(zk);
    }
  };

  for (int k = 0; k < p; ++k)
    xa(Eigen::all, Eigen::seqN(k * l, l)) =
        gaussian_block(n, l, settings.seed + static_cast<std::uint64_t>(k) * 0x9e3779b97f4a7c15ull);
  std::vector<MatrixXd> y(static_cast<std::size_t>(p)), q(static_cast<std::size_t>(p)),
      z(static_cast<std::size_t>(p));
  forward(y);
  for (int k = 0; k < p; ++k)
    q[static_cast<std::size_t>(k)] = orthonormalize(y[static_cast<std::size_t>(k)]);

  std::vector<PcaResult> out(static_cast<std::size_t>(p));
  std::vector<VectorXd> previous_sigma(static_cast<std::size_t>(p));
  std::vector<MatrixXd> w(static_cast<std::size_t>(p));
  std::vector<VectorXd> sigma(static_cast<std::size_t>(p));
  constexpr double kResidualTolerance = 1e-4;    // ||R v - s u|| / s_1
  constexpr double kStagnationTolerance = 1e-6;  // relative change of every s_c in one step
  int iteration = 0;
  for (;;) {
    progress.throw_if_cancelled();
    ++iteration;
    adjoint(q, z);
    for (int k = 0; k < p; ++k) {
      const auto ks = static_cast<std::size_t>(k);
      Eigen::SelfAdjointEigenSolver<MatrixXd> eig(z[ks].transpose() * z[ks]);  // l x l
      w[ks] = eig.eigenvectors().rowwise().reverse();
      sigma[ks] = eig.eigenvalues().reverse().cwiseMax(0.0).cwiseSqrt();
    }
    forward(y);  // y_k = R_k Z_k, so R_k V_k = y_k W_k diag(1 / s)
    bool all_converged = true;
    for (int k = 0; k < p; ++k) {
      const auto ks = static_cast<std::size_t>(k);
      const VectorXd& s = sigma[ks];
      const MatrixXd rv = y[ks] * w[ks].leftCols(c_wanted);
      const MatrixXd u = q[ks] * w[ks].leftCols(c_wanted);
      double max_res = 0;
      bool stagnated = previous_sigma[ks].size() == s.size();
      for (int c = 0; c < c_wanted; ++c) {
        const double sc = s(c) > 0 ? s(c) : 1.0;
        max_res = std::max(max_res, (rv.col(c) / sc - s(c) * u.col(c)).norm());
        if (stagnated && std::abs(s(c) - previous_sigma[ks](c)) > kStagnationTolerance * s(0))
          stagnated = false;
      }
      const double rel = s(0) > 0 ? max_res / s(0) : 0.0;
      out[ks].max_relative_residual = rel;
      out[ks].converged = rel <= kResidualTolerance || (stagnated && iteration >= 3);
      all_converged = all_converged && out[ks].converged;
      previous_sigma[ks] = s;
    }
    progress.report(std::min(1.0, static_cast<double>(iteration) / settings.max_iterations),
                    "subspace iteration " + std::to_string(iteration));
    if (all_converged || iteration >= settings.max_iterations) break;
    for (int k = 0; k < p; ++k)
      q[static_cast<std::size_t>(k)] = orthonormalize(y[static_cast<std::size_t>(k)]);
  }

  for (int k = 0; k < p; ++k) {
    const auto ks = static_cast<std::size_t>(k);
    const VectorXd& s = sigma[ks];
    MatrixXd v = z[ks] * w[ks].leftCols(c_wanted);     // N x C
    MatrixXd proj = y[ks] * w[ks].leftCols(c_wanted);  // T x C
    for (int c = 0; c < c_wanted; ++c) {
      const double sc = s(c) > 0 ? s(c) : 1.0;
      v.col(c) /= sc;
      proj.col(c) /= sc;
      // Re-normalise against float rounding in the products; the projection scales with it.
      const double norm = v.col(c).norm();
      if (norm > 0) {
        v.col(c) /= norm;
        proj.col(c) /= norm;
      }
    }
    PcaResult& r = out[ks];
    r.solver = "randomized";
    r.iterations = iteration;
    r.directions = v.transpose().cast<float>();
    r.projections = proj.cast<float>();
  }
  return out;
}

}  // namespace

PcaSolver choose_solver(std::int64_t rows, std::int64_t cols) {
  // The exact path costs ~ T N min(T, N) flops and 8 T N bytes; beyond these bounds the
  // randomised path is both faster and within the memory budget of the inputs.
  const double work = static_cast<double>(rows) * static_cast<double>(cols) *
                      static_cast<double>(std::min(rows, cols));
  const double bytes = 8.0 * static_cast<double>(rows) * static_cast<double>(cols);
  return (work <= 5e8 && bytes <= 256.0 * (1 << 20)) ? PcaSolver::kExact : PcaSolver::kRandomized;
}

RowMatrixF materialize_residual(ConstRowMapF a, ConstRowMapF b, const ResidualCoefficients& coef) {
  MD_ASSERT(a.rows() == b.rows() && a.cols() == b.cols());
  RowMatrixF r(a.rows(), a.cols());
  for (Eigen::Index i = 0; i < a.rows(); ++i)
    r.row(i) = (coef.coef_a(i) * a.row(i).cast<double>() + coef.coef_b(i) * b.row(i).cast<double>())
                   .cast<float>();
  return r;
}

RowStats compute_row_stats(ConstRowMapF a, ConstRowMapF b) {
  MD_ASSERT(a.rows() == b.rows() && a.cols() == b.cols());
  const Eigen::Index t = a.rows();
  RowStats s{VectorXd(t), VectorXd(t), VectorXd(t)};
#pragma omp parallel for schedule(static)
  for (Eigen::Index i = 0; i < t; ++i) {
    double aa = 0, bb = 0, ab = 0;
    const float* pa = a.row(i).data();
    const float* pb = b.row(i).data();
    for (Eigen::Index j = 0; j < a.cols(); ++j) {
      const double x = pa[j], y = pb[j];
      aa += x * x;
      bb += y * y;
      ab += x * y;
    }
    s.aa(i) = aa;
    s.bb(i) = bb;
    s.ab(i) = ab;
  }
  return s;
}

std::vector<PcaResult> residual_pca(ConstRowMapF a, ConstRowMapF b, const RowStats& stats,
                                    const std::vector<ResidualCoefficients>& residuals,
                                    const PcaSettings& settings, Progress& progress) {
  const Eigen::Index t = a.rows(), n = a.cols();
  MD_ASSERT(b.rows() == t && b.cols() == n);
  MD_ASSERT(t >= 2 && settings.components >= 1 && settings.components <= std::min(t, n));
  for (const auto& r : residuals) MD_ASSERT(r.coef_a.size() == t && r.coef_b.size() == t);

  PcaSolver solver = settings.solver;
  if (solver == PcaSolver::kAuto) solver = choose_solver(t, n);

  std::vector<PcaResult> out;
  if (solver == PcaSolver::kExact) {
    for (std::size_t k = 0; k < residuals.size(); ++k) {
      progress.throw_if_cancelled();
      progress.report(static_cast<double>(k) / static_cast<double>(residuals.size()),
                      "exact PCA of residual " + std::to_string(k + 1));
      out.push_back(exact_pca(a, b, residuals[k], settings.components));
    }
  } else {
    const MatrixXd mu = residual_means(a, b, residuals);  // N x residuals
    out = randomized_pca(a, b, residuals, mu, settings, progress);
    // Total variance from the row statistics: no extra pass over A and B.
    for (std::size_t k = 0; k < residuals.size(); ++k)
      out[k].total_variance =
          total_variance(stats, residuals[k], mu.col(static_cast<Eigen::Index>(k)));
  }
  for (auto& r : out) {
    apply_sign_convention(r.directions, r.projections);
    r.explained_variance = r.projections.cast<double>().colwise().squaredNorm().transpose() /
                           static_cast<double>(t - 1);
  }
  progress.report(1.0, "PCA done");
  return out;
}

}  // namespace modeldiff::core
