#include "core/diff/residual_pca.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "core/base/error.h"
#include "core/diff/skinny_product.h"

namespace modeldiff::core {
namespace {

// Columns beyond the wanted components in each Krylov block (at least), and the most blocks.
// The stopping rule, not the oversampling, sets the accuracy; the block width is rounded up so
// that the thin-matrix kernels' 16-float vectors are full (bench_diff: 5 blocks of 30 or 32
// columns, where oversampling 10 took 4 blocks of 40: fewer columns multiplied in all).
constexpr int kOversampling = 5;
constexpr int kMaxBlocks = 16;

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

// Flips component c (a column of the projections, a row of the directions) so that its
// projection of largest magnitude is positive.
void apply_sign_convention(PcaResult& r) {
  for (Eigen::Index c = 0; c < r.projections.cols(); ++c) {
    Eigen::Index arg = 0;
    r.projections.col(c).cwiseAbs().maxCoeff(&arg);
    if (r.projections(arg, c) < 0) {
      r.projections.col(c) *= -1.0f;
      r.directions.row(c) *= -1.0f;
      if (r.a_times_directions.cols() > c) r.a_times_directions.col(c) *= -1.0f;
      if (r.b_times_directions.cols() > c) r.b_times_directions.col(c) *= -1.0f;
    }
  }
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

// Randomised block Krylov iteration (Musco & Musco, NeurIPS 2015) on all residuals together.
// For a centred residual R (T x N) and a Gaussian start X (N x l), the Krylov space
// span[R X, (R R^T) R X, (R R^T)^2 R X, ...] is built block by block: Q_i (T x l) orthonormal
// against every earlier block, Z_i = R^T Q_i, and the next block from R Z_i = R R^T Q_i. The
// Rayleigh-Ritz step over all blocks so far is the eigendecomposition of G = Z^T Z (K x K,
// K = l x blocks), since Z^T = Q^T R. Per block: one adjoint pass (A^T Y, B^T Y) and one
// forward pass (A X, B X) over the scores, with the blocks of every residual side by side, as
// for subspace iteration; Krylov's Ritz vectors converge much faster per pass. The products
// read A and B in place (skinny_product.h: no BLAS packing of the scores on every call).
//
// The Ritz residual costs nothing extra: with v_c = Z w_c / s_c and u_c = Q w_c,
// R v_c - s_c u_c = (I - Q Q^T) (R Z_i) w_{c,i} / s_c, the part of the next block outside the
// space (w_{c,i}: the entries of w_c for the newest block), which orthogonalisation computes
// anyway. The iteration stops when max_c ||R v_c - s_c u_c|| / s_1 <= 1e-4 for the wanted
// components (or the Ritz values stagnate, or the space is exhausted).
//
// Centring is implicit: each new block is centred (its column sums are 0), so 1^T Q = 0 and
// R_c^T Q = R^T Q; the column means mu only enter the total variance, R^T 1 / T, computed in the
// first adjoint pass beside the first block. A V and B V (for the variances of A and B along
// the directions) follow from the stored products A Z_i and B Z_i: no pass after the last.
std::vector<PcaResult> randomized_pca(ConstRowMapF a, ConstRowMapF b,
                                      const std::vector<ResidualCoefficients>& residuals,
                                      const RowStats& stats, const PcaSettings& settings,
                                      Progress& progress) {
  const Eigen::Index t = a.rows(), n = a.cols();
  const int p = static_cast<int>(residuals.size());
  const int c_wanted = settings.components;
  const Eigen::Index rank_bound = std::min(t, n);
  // Block width: the wanted components plus oversampling, rounded up so that the blocks of all
  // residuals side by side fill whole 16-float vectors of the thin-matrix kernels, either with
  // the p columns of the first adjoint pass (the column means) beside them or without: for
  // C = 10 and p = 2, l = 15 makes that pass 32 columns wide like the others, where l = 16 made
  // it 34 (a third vector, 50% more work in that pass).
  Eigen::Index l = c_wanted + kOversampling;
  while ((l * p) % 16 != 0 && (l * p + p) % 16 != 0) ++l;
  l = std::min(l, rank_bound);
  // The space is at most kMaxBlocks blocks (memory: N x K doubles per residual).
  const int max_blocks = std::min(settings.max_iterations, kMaxBlocks);

  struct State {
    MatrixXd q, z;    // T x K and N x K: the blocks so far
    MatrixXf az, bz;  // T x K: A Z and B Z, block by block
    MatrixXd next;    // T x l: the newest R Z_i, then its part outside span(q)
    VectorXd mu;      // N: column means of the residual
    MatrixXd w;       // K x K Ritz vectors of G, by descending Ritz value
    VectorXd s;       // Ritz (singular) values, descending
    VectorXd previous_s;
    bool done = false;
    bool exhausted = false;
  };
  std::vector<State> st(static_cast<std::size_t>(p));

  // Row-major, as the thin-matrix kernels take them.
  RowMatrixF x(n, l * p);
  RowMatrixF fa(t, l * p), fb(t, l * p);
  // y_k = R_k X_k for every residual from the shared products A X and B X, centred.
  const auto forward = [&](std::vector<MatrixXd>& y) {
    skinny_multiply(a, x, fa);
    skinny_multiply(b, x, fb);
    for (int k = 0; k < p; ++k) {
      const auto& r = residuals[static_cast<std::size_t>(k)];
      const auto cols = Eigen::seqN(k * l, l);
      MatrixXd yk = r.coef_a.asDiagonal() * fa(Eigen::all, cols).cast<double>();
      yk.noalias() += r.coef_b.asDiagonal() * fb(Eigen::all, cols).cast<double>();
      yk.rowwise() -= yk.colwise().mean();
      y[static_cast<std::size_t>(k)] = std::move(yk);
    }
  };
  // Z_k = R_k^T Q_k (x holds them, as float, for the next forward pass); with `means`, also
  // mu_k = R_k^T 1 / T from p extra columns.
  const auto adjoint = [&](const std::vector<MatrixXd>& q, bool means) {
    const Eigen::Index extra = means ? p : 0;
    RowMatrixF ya(t, l * p + extra), yb(t, l * p + extra);
    for (int k = 0; k < p; ++k) {
      const auto& r = residuals[static_cast<std::size_t>(k)];
      const auto cols = Eigen::seqN(k * l, l);
      ya(Eigen::all, cols) = (r.coef_a.asDiagonal() * q[static_cast<std::size_t>(k)]).cast<float>();
      yb(Eigen::all, cols) = (r.coef_b.asDiagonal() * q[static_cast<std::size_t>(k)]).cast<float>();
      if (means) {
        ya.col(l * p + k) = r.coef_a.cast<float>();
        yb.col(l * p + k) = r.coef_b.cast<float>();
      }
    }
    RowMatrixF xz;
    skinny_multiply_transposed(a, ya, xz, false);
    skinny_multiply_transposed(b, yb, xz, true);
    for (int k = 0; k < p; ++k) {
      State& s = st[static_cast<std::size_t>(k)];
      if (means) s.mu = xz.col(l * p + k).cast<double>() / static_cast<double>(t);
      // Exactly centred: R_c^T Q = R^T Q - mu (1^T Q), where 1^T Q is only rounding.
      const auto cols = Eigen::seqN(k * l, l);
      MatrixXd zk = xz(Eigen::all, cols).cast<double>();
      zk.noalias() -= s.mu * q[static_cast<std::size_t>(k)].colwise().sum();
      x(Eigen::all, cols) = zk.cast<float>();
    }
  };
  // Appends the columns of `block` to `m` (rows fixed).
  const auto append = [](auto& m, const auto& block) {
    const Eigen::Index old = m.cols();
    m.conservativeResize(block.rows(), old + block.cols());
    m.rightCols(block.cols()) = block;
  };

  for (int k = 0; k < p; ++k)
    x(Eigen::all, Eigen::seqN(k * l, l)) =
        gaussian_block(n, l, settings.seed + static_cast<std::uint64_t>(k) * 0x9e3779b97f4a7c15ull);
  std::vector<MatrixXd> y(static_cast<std::size_t>(p)), q(static_cast<std::size_t>(p));
  forward(y);
  for (int k = 0; k < p; ++k) {
    State& s = st[static_cast<std::size_t>(k)];
    s.q.resize(t, 0);
    s.z.resize(n, 0);
    s.az.resize(t, 0);
    s.bz.resize(t, 0);
    q[static_cast<std::size_t>(k)] = orthonormalize(y[static_cast<std::size_t>(k)]);
  }

  std::vector<PcaResult> out(static_cast<std::size_t>(p));
  constexpr double kResidualTolerance = 1e-4;    // ||R v - s u|| / s_1
  constexpr double kStagnationTolerance = 1e-6;  // relative change of every s_c in one step
  int iteration = 0;
  for (;;) {
    progress.throw_if_cancelled();
    ++iteration;
    adjoint(q, iteration == 1);
    for (int k = 0; k < p; ++k) {
      State& s = st[static_cast<std::size_t>(k)];
      append(s.q, q[static_cast<std::size_t>(k)]);
      append(s.z, x(Eigen::all, Eigen::seqN(k * l, l)).cast<double>());
      Eigen::SelfAdjointEigenSolver<MatrixXd> eig(s.z.transpose() * s.z);  // K x K
      s.w = eig.eigenvectors().rowwise().reverse();
      s.s = eig.eigenvalues().reverse().cwiseMax(0.0).cwiseSqrt();
    }
    forward(y);  // R Z_i: the next block, before orthogonalisation
    bool all_done = true;
    for (int k = 0; k < p; ++k) {
      State& s = st[static_cast<std::size_t>(k)];
      const auto cols = Eigen::seqN(k * l, l);
      append(s.az, fa(Eigen::all, cols));
      append(s.bz, fb(Eigen::all, cols));
      // The part of R Z_i outside the space so far (block Gram-Schmidt, twice).
      MatrixXd& next = y[static_cast<std::size_t>(k)];
      for (int pass = 0; pass < 2; ++pass) next.noalias() -= s.q * (s.q.transpose() * next);
      s.next = next;
      const Eigen::Index kdim = s.q.cols();
      const MatrixXd newest = s.w.block(kdim - l, 0, l, c_wanted);  // w_{c,i}
      double max_res = 0;
      bool stagnated = s.previous_s.size() >= c_wanted;
      for (int c = 0; c < c_wanted; ++c) {
        const double sc = s.s(c) > 0 ? s.s(c) : 1.0;
        max_res = std::max(max_res, (next * newest.col(c)).norm() / sc);
        if (stagnated && std::abs(s.s(c) - s.previous_s(c)) > kStagnationTolerance * s.s(0))
          stagnated = false;
      }
      const double rel = s.s(0) > 0 ? max_res / s.s(0) : 0.0;
      out[static_cast<std::size_t>(k)].max_relative_residual = rel;
      // No room for another block, or the space holds R's whole range: nothing left to find.
      s.exhausted = kdim + l > rank_bound || next.norm() <= 1e-12 * std::max(s.s(0), 1e-300);
      s.done = rel <= kResidualTolerance || (stagnated && iteration >= 3) || s.exhausted;
      out[static_cast<std::size_t>(k)].converged =
          rel <= kResidualTolerance || stagnated || s.exhausted;
      s.previous_s = s.s.head(c_wanted);
      all_done = all_done && s.done;
    }
    progress.report(std::min(1.0, static_cast<double>(iteration) / max_blocks),
                    "Krylov block " + std::to_string(iteration));
    if (all_done || iteration >= max_blocks) break;
    // Every residual gets its next block, also those already converged: the passes are shared,
    // and a larger space only sharpens them.
    for (int k = 0; k < p; ++k) {
      State& s = st[static_cast<std::size_t>(k)];
      MatrixXd nq = orthonormalize(s.next);
      nq.noalias() -= s.q * (s.q.transpose() * nq);  // against rounding
      q[static_cast<std::size_t>(k)] = orthonormalize(nq);
    }
  }

  for (int k = 0; k < p; ++k) {
    const auto ks = static_cast<std::size_t>(k);
    State& s = st[ks];
    const Eigen::Index kdim = s.q.cols();
    const MatrixXd wc = s.w.leftCols(c_wanted);
    VectorXd inv(c_wanted);
    for (int c = 0; c < c_wanted; ++c) inv(c) = s.s(c) > 0 ? 1.0 / s.s(c) : 0.0;
    MatrixXd v = s.z * wc * inv.asDiagonal();  // N x C
    // R V = Q W S + (outside part of the newest block) W_i S^-1: exact, without another pass.
    MatrixXd proj = s.q * wc * s.s.head(c_wanted).asDiagonal();
    proj.noalias() += s.next * s.w.block(kdim - l, 0, l, c_wanted) * inv.asDiagonal();
    MatrixXd av = s.az.cast<double>() * wc * inv.asDiagonal();
    MatrixXd bv = s.bz.cast<double>() * wc * inv.asDiagonal();
    for (int c = 0; c < c_wanted; ++c) {
      // Unit directions against rounding; every product with them scales alike.
      const double norm = v.col(c).norm();
      if (norm > 0) {
        v.col(c) /= norm;
        proj.col(c) /= norm;
        av.col(c) /= norm;
        bv.col(c) /= norm;
      }
    }
    PcaResult& r = out[ks];
    r.solver = "randomized";
    r.iterations = iteration;
    r.directions = v.transpose().cast<float>();
    r.projections = proj.cast<float>();
    r.a_times_directions = av.cast<float>();
    r.b_times_directions = bv.cast<float>();
    r.total_variance = total_variance(stats, residuals[ks], s.mu);
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
  // Dynamic: a core shared with other work (hashing the inputs) takes a smaller share.
#pragma omp parallel for schedule(dynamic, 16)
  for (Eigen::Index i = 0; i < t; ++i) {
    double aa = 0, bb = 0, ab = 0;
    row_products(a.row(i).data(), b.row(i).data(), a.cols(), aa, bb, ab);
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
    out = randomized_pca(a, b, residuals, stats, settings, progress);
  }
  for (auto& r : out) {
    apply_sign_convention(r);
    r.explained_variance = r.projections.cast<double>().colwise().squaredNorm().transpose() /
                           static_cast<double>(t - 1);
  }
  progress.report(1.0, "PCA done");
  return out;
}

}  // namespace modeldiff::core
