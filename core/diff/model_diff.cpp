#include "core/diff/model_diff.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/base/error.h"
#include "core/diff/rotation.h"

namespace modeldiff::core {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

// The first non-finite entry of a row, for the error message.
std::string describe_non_finite(ConstRowMapF m, Eigen::Index row) {
  for (Eigen::Index j = 0; j < m.cols(); ++j) {
    const float v = m(row, j);
    if (!std::isfinite(v))
      return "column " + std::to_string(j) + " holds " + (std::isnan(v) ? "NaN" : "Inf");
  }
  return "the row's squared norm overflows";
}

void validate_inputs(const ScoreInput& a, const ScoreInput& b, const DiffOptions& options) {
  for (const ScoreInput* s : {&a, &b}) {
    if (s->scores.ndim() != 2)
      throw InputError(s->source, "scores are not a matrix")
          .expected("2 dimensions (T targets x N training examples)")
          .found(std::to_string(s->scores.ndim()) + " (" + shape_to_string(s->scores.shape()) +
                 ")");
    if (s->scores.dtype() != DType::kFloat32)
      throw InputError(s->source, "scores must be converted to float32 before the diff")
          .found(dtype_name(s->scores.dtype()));
    if (s->scores.dim(0) == 0 || s->scores.dim(1) == 0)
      throw InputError(s->source, "scores are empty").found(shape_to_string(s->scores.shape()));
  }
  if (a.scores.shape() != b.scores.shape())
    throw InputError(b.source, "scores of " + b.label + " and " + a.label + " differ in shape")
        .expected(shape_to_string(a.scores.shape()) + " like " + a.source)
        .found(shape_to_string(b.scores.shape()));
  const std::int64_t t = a.scores.dim(0);
  std::int64_t previous = -1;
  for (std::int64_t r : options.target_rows) {
    if (r < 0 || r >= t)
      throw InputError("", "target row " + std::to_string(r) + " is out of range")
          .expected("0 to " + std::to_string(t - 1));
    if (r <= previous)
      throw InputError("", "target rows must be ascending and unique")
          .found(std::to_string(previous) + " before " + std::to_string(r));
    previous = r;
  }
  const std::int64_t rows =
      options.target_rows.empty() ? t : static_cast<std::int64_t>(options.target_rows.size());
  if (rows < 2)
    throw InputError("", "at least 2 target rows are needed for PCA").found(std::to_string(rows));
  const std::int64_t max_c = std::min(rows, a.scores.dim(1));
  if (options.components < 1 || options.components > max_c)
    throw InputError("", "number of components is out of range")
        .expected("1 to " + std::to_string(max_c) +
                  " (min of analysed targets and training examples)")
        .found(std::to_string(options.components));
  if (options.top_k < 0) throw InputError("", "top-k must not be negative");
}

void check_rows(const ScoreInput& s, ConstRowMapF m, const VectorXd& squared_norms,
                const std::vector<std::int64_t>& rows) {
  for (Eigen::Index i = 0; i < squared_norms.size(); ++i) {
    const std::int64_t original = rows[static_cast<std::size_t>(i)];
    if (!std::isfinite(squared_norms(i)))
      throw InputError(s.source, "row " + std::to_string(original) +
                                     " is not finite: " + describe_non_finite(m, i))
          .expected("finite scores");
    if (squared_norms(i) == 0)
      throw InputError(s.source, "row " + std::to_string(original) +
                                     " is all zero, so the residual against it is undefined")
          .expected("every target row to attribute weight to some training example");
  }
}

// var_c = mean_i ((x_i - mean x) . d_c)^2 with x_i = row i scaled to unit norm, for every
// direction d_c at once, from the products m d_c (T x K).
VectorXd variance_along(const Eigen::MatrixXf& products, const VectorXd& squared_norms) {
  MatrixXd x = products.cast<double>();
  x.array().colwise() /= squared_norms.array().sqrt();
  x.rowwise() -= x.colwise().mean();
  return x.colwise().squaredNorm().transpose() / static_cast<double>(products.rows());
}

}  // namespace

const char* rotation_name(Rotation r) {
  return r == Rotation::kVarimax ? "varimax" : "none";
}

Rotation parse_rotation(const std::string& name) {
  if (name == "none") return Rotation::kNone;
  if (name == "varimax") return Rotation::kVarimax;
  throw InputError("", "unknown rotation of the directions")
      .expected("none or varimax")
      .found(name);
}

std::pair<VectorXd, VectorXd> residual_coefficients(const VectorXd& ff, const VectorXd& ss,
                                                    const VectorXd& fs, bool normalize_rows) {
  if (normalize_rows) {
    const VectorXd nf = ff.cwiseSqrt(), ns = ss.cwiseSqrt();
    VectorXd coef_first = nf.cwiseInverse();
    VectorXd coef_second = -(fs.array() / (nf.array() * ns.array() * ns.array())).matrix();
    return {coef_first, coef_second};
  }
  return {VectorXd::Ones(ff.size()), -(fs.array() / ss.array()).matrix()};
}

DiffResult run_model_diff(const ScoreInput& a, const ScoreInput& b, const DiffOptions& options,
                          Progress& progress) {
  validate_inputs(a, b, options);
  const std::int64_t t = a.scores.dim(0), n = a.scores.dim(1);
  ConstRowMapF full_a(a.scores.data_as<float>(), t, n);
  ConstRowMapF full_b(b.scores.data_as<float>(), t, n);

  DiffResult result;
  result.label_a = a.label;
  result.label_b = b.label;
  result.source_a = a.source;
  result.source_b = b.source;
  result.normalized_rows = options.normalize_rows;
  result.num_targets = t;
  result.num_train = n;
  if (options.target_rows.empty()) {
    result.target_rows.resize(static_cast<std::size_t>(t));
    std::iota(result.target_rows.begin(), result.target_rows.end(), 0);
  } else {
    result.target_rows = options.target_rows;
  }

  // Restricting to a subset of targets copies only those rows; all rows are used in place.
  RowMatrixF subset_a, subset_b;
  const float* pa = full_a.data();
  const float* pb = full_b.data();
  const auto rows = static_cast<Eigen::Index>(result.target_rows.size());
  if (!options.target_rows.empty()) {
    subset_a.resize(rows, n);
    subset_b.resize(rows, n);
    for (Eigen::Index i = 0; i < rows; ++i) {
      subset_a.row(i) = full_a.row(result.target_rows[static_cast<std::size_t>(i)]);
      subset_b.row(i) = full_b.row(result.target_rows[static_cast<std::size_t>(i)]);
    }
    pa = subset_a.data();
    pb = subset_b.data();
  }
  ConstRowMapF ma(pa, rows, n), mb(pb, rows, n);

  progress.report(0.0, "checking scores");
  const RowStats stats = compute_row_stats(ma, mb);
  check_rows(a, ma, stats.aa, result.target_rows);
  check_rows(b, mb, stats.bb, result.target_rows);
  progress.throw_if_cancelled();
  result.cosine_ab =
      (stats.ab.array() / (stats.aa.array() * stats.bb.array()).sqrt()).cast<float>().matrix();

  auto [ab_first, ab_second] =
      residual_coefficients(stats.aa, stats.bb, stats.ab, options.normalize_rows);
  auto [ba_first, ba_second] =
      residual_coefficients(stats.bb, stats.aa, stats.ab, options.normalize_rows);
  const std::vector<ResidualCoefficients> residuals = {{ab_first, ab_second},
                                                       {ba_second, ba_first}};
  PcaSettings settings;
  settings.components = options.components;
  settings.solver = options.solver;
  settings.seed = options.seed;
  SubProgress pca_progress(progress, 0.05, 0.9, "PCA of residuals");
  std::vector<PcaResult> pcas = residual_pca(ma, mb, stats, residuals, settings, pca_progress);

  if (options.rotation == Rotation::kVarimax) {
    // The rotated directions are fixed combinations of the principal ones (transform W), so
    // every product with them is the same combination of the products already computed.
    for (PcaResult& pca : pcas) {
      const RotatedDirections rot = varimax(pca.directions, pca.explained_variance);
      const Eigen::MatrixXd wt = rot.transform.transpose();
      pca.directions = rot.directions;
      pca.projections = (pca.projections.cast<double>() * wt).cast<float>();
      for (RowMatrixF* m : {&pca.a_times_directions, &pca.b_times_directions})
        if (m->cols() == wt.rows()) *m = (m->cast<double>() * wt).cast<float>();
      const double dof = std::max<double>(1.0, static_cast<double>(pca.projections.rows()) - 1);
      pca.explained_variance =
          pca.projections.cast<double>().colwise().squaredNorm().transpose() / dof;
    }
  }

  progress.report(0.9, "variance of A and B along the directions");
  const int c = options.components;
  RowMatrixF all_directions(2 * c, n);
  all_directions << pcas[0].directions, pcas[1].directions;
  // A D^T and B D^T: from the solver when it has them, else one more pass over A and B.
  const auto product = [&](ConstRowMapF m, bool of_a) {
    const RowMatrixF& first = of_a ? pcas[0].a_times_directions : pcas[0].b_times_directions;
    const RowMatrixF& second = of_a ? pcas[1].a_times_directions : pcas[1].b_times_directions;
    Eigen::MatrixXf md(rows, 2 * c);
    if (first.cols() == c && second.cols() == c)
      md << first, second;
    else
      md.noalias() = m * all_directions.transpose();
    return md;
  };
  const VectorXd var_a = variance_along(product(ma, true), stats.aa);
  const VectorXd var_b = variance_along(product(mb, false), stats.bb);

  DirectionSet* sets[2] = {&result.a_minus_b, &result.b_minus_a};
  for (int k = 0; k < 2; ++k) {
    DirectionSet& set = *sets[k];
    PcaResult& pca = pcas[static_cast<std::size_t>(k)];
    set.first = k == 0 ? a.label : b.label;
    set.second = k == 0 ? b.label : a.label;
    set.directions = std::move(pca.directions);
    set.projections = std::move(pca.projections);
    set.explained_variance = pca.explained_variance;
    set.explained_variance_ratio = pca.total_variance > 0
                                       ? VectorXd(pca.explained_variance / pca.total_variance)
                                       : VectorXd::Zero(c);
    set.variance_a = var_a.segment(k * c, c);
    set.variance_b = var_b.segment(k * c, c);
    set.solver = pca.solver;
    set.iterations = pca.iterations;
    set.converged = pca.converged;
    const Eigen::MatrixXf proj_cols = set.projections;  // column-major: contiguous per component
    for (int comp = 0; comp < c; ++comp) {
      const float* loadings = set.directions.row(comp).data();  // row-major: contiguous
      set.top_train.push_back(top_k_indices(loadings, n, options.top_k, true));
      set.bottom_train.push_back(top_k_indices(loadings, n, options.top_k, false));
      std::vector<std::int64_t> top =
          top_k_indices(proj_cols.col(comp).data(), rows, options.top_k, true);
      std::vector<std::int64_t> bottom =
          top_k_indices(proj_cols.col(comp).data(), rows, options.top_k, false);
      for (auto& i : top) i = result.target_rows[static_cast<std::size_t>(i)];
      for (auto& i : bottom) i = result.target_rows[static_cast<std::size_t>(i)];
      set.top_target.push_back(std::move(top));
      set.bottom_target.push_back(std::move(bottom));
    }
  }
  progress.report(1.0, "diff done");
  return result;
}

}  // namespace modeldiff::core
