// ModelDiff against the reference package's outputs (../shared/fixtures/modeldiff_ref_seed0,
// made by `modeldiff` 1.0.1 residual_pca with sklearn's exact solver, raw rows, 3 components)
// and against invariants on synthetic data.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/base/error.h"
#include "core/diff/model_diff.h"
#include "core/diff/rotation.h"
#include "core/io/npy.h"
#include "core/test_paths.h"

using namespace modeldiff::core;
using modeldiff::test::shared_fixture;

namespace {

NdArray reference(const std::string& name) {
  return read_npy(shared_fixture("modeldiff_ref_seed0/" + name + ".npy")).to_float32();
}

Eigen::MatrixXd as_matrix(const NdArray& a) {
  const Eigen::Index rows = a.dim(0);
  const Eigen::Index cols = a.ndim() == 1 ? 1 : a.dim(1);
  return ConstRowMapF(a.data_as<float>(), rows, cols).cast<double>();
}

ScoreInput input(const std::string& label, const std::string& source, NdArray scores) {
  return ScoreInput{label, source, std::move(scores)};
}

double max_rel(const Eigen::MatrixXd& got, const Eigen::MatrixXd& want) {
  return (got - want).cwiseAbs().maxCoeff() / want.cwiseAbs().maxCoeff();
}

// Compares one direction set with the reference files of `group` ("A_minus_B"/"B_minus_A").
// first_var/second_var: our variances of the reference's first and second argument.
void expect_matches_reference(const DirectionSet& got, const std::string& group,
                              const Eigen::VectorXd& first_var, const Eigen::VectorXd& second_var) {
  const Eigen::MatrixXd dirs = as_matrix(reference(group + "_directions"));   // 3 x N
  const Eigen::MatrixXd proj = as_matrix(reference(group + "_projections"));  // T x 3
  const Eigen::MatrixXd vf = as_matrix(reference(group + "_variance_first"));
  const Eigen::MatrixXd vs = as_matrix(reference(group + "_variance_second"));
  ASSERT_EQ(got.directions.rows(), 3);
  for (int c = 0; c < 3; ++c) {
    const Eigen::VectorXd d = got.directions.row(c).cast<double>().transpose();
    const double cosine = d.dot(dirs.row(c).transpose()) / (d.norm() * dirs.row(c).norm());
    EXPECT_GT(std::abs(cosine), 0.999) << group << " direction " << c;
    const double sign = cosine < 0 ? -1.0 : 1.0;
    EXPECT_LT(max_rel(sign * got.projections.col(c).cast<double>(), proj.col(c)), 1e-3)
        << group << " projections " << c;
    EXPECT_NEAR(first_var(c), vf(c, 0), 1e-3 * vf(c, 0)) << group << " variance_first " << c;
    EXPECT_NEAR(second_var(c), vs(c, 0), 1e-3 * vs(c, 0)) << group << " variance_second " << c;
  }
}

}  // namespace

TEST(Residual, RawRowsMatchReferenceWithin1e5) {
  const NdArray a = reference("scores_A"), b = reference("scores_B");
  ConstRowMapF ma(a.data_as<float>(), a.dim(0), a.dim(1)),
      mb(b.data_as<float>(), b.dim(0), b.dim(1));
  const RowStats s = compute_row_stats(ma, mb);
  auto [ab1, ab2] = residual_coefficients(s.aa, s.bb, s.ab, false);
  auto [ba1, ba2] = residual_coefficients(s.bb, s.aa, s.ab, false);
  const Eigen::MatrixXd r_ab = materialize_residual(ma, mb, {ab1, ab2}).cast<double>();
  const Eigen::MatrixXd r_ba = materialize_residual(ma, mb, {ba2, ba1}).cast<double>();
  EXPECT_LT((r_ab - as_matrix(reference("A_minus_B_residual"))).cwiseAbs().maxCoeff(), 1e-5);
  EXPECT_LT((r_ba - as_matrix(reference("B_minus_A_residual"))).cwiseAbs().maxCoeff(), 1e-5);
}

// Plain tests rather than TEST_P: CTest cannot attach properties to the names gtest gives
// value-parameterised tests (they embed GetParam()'s bytes).
void check_reference_parity(PcaSolver solver) {
  DiffOptions options;
  options.components = 3;
  options.normalize_rows = false;  // the package's behaviour
  options.solver = solver;
  NullProgress progress;
  const DiffResult r =
      run_model_diff(input("A", "scores_A.npy", reference("scores_A")),
                     input("B", "scores_B.npy", reference("scores_B")), options, progress);
  EXPECT_FALSE(r.normalized_rows);
  // A minus B: the reference's first argument is A.
  expect_matches_reference(r.a_minus_b, "A_minus_B", r.a_minus_b.variance_a,
                           r.a_minus_b.variance_b);
  // B minus A: the reference swaps its arguments; our labels stay with the user's A and B.
  expect_matches_reference(r.b_minus_a, "B_minus_A", r.b_minus_a.variance_b,
                           r.b_minus_a.variance_a);
  EXPECT_EQ(r.b_minus_a.first, "B");
  EXPECT_EQ(r.b_minus_a.second, "A");
}

TEST(ReferenceParity, ExactSolverMatchesReference) {
  check_reference_parity(PcaSolver::kExact);
}

TEST(ReferenceParity, RandomizedSolverMatchesReference) {
  check_reference_parity(PcaSolver::kRandomized);
}

TEST(PlantedSubpopulations, EachRecoveredByOneOfTheFirstThreeDirections) {
  std::ifstream in(shared_fixture("modeldiff_ref_seed0/planted.json"));
  ASSERT_TRUE(in) << "missing planted.json";
  const nlohmann::json planted = nlohmann::json::parse(in);
  for (bool normalize : {true, false}) {
    DiffOptions options;
    options.components = 3;
    options.normalize_rows = normalize;
    NullProgress progress;
    const DiffResult r = run_model_diff(input("A", "a", reference("scores_A")),
                                        input("B", "b", reference("scores_B")), options, progress);
    for (const auto& group : planted["planted_A_only"]) {
      const std::set<std::int64_t> train = group["train_idx"].get<std::set<std::int64_t>>();
      int best = 0;
      for (int c = 0; c < 3; ++c) {
        const Eigen::VectorXf magnitude = r.a_minus_b.directions.row(c).cwiseAbs().transpose();
        int hits = 0;
        for (std::int64_t i : top_k_indices(magnitude.data(), magnitude.size(), 25, true))
          hits += static_cast<int>(train.count(i));
        best = std::max(best, hits);
      }
      EXPECT_GE(best, 24) << "normalize_rows=" << normalize;
    }
  }
}

namespace {

// T x N scores with a shared low-rank part and an A-only planted part, plus noise.
std::pair<NdArray, NdArray> synthetic_pair(std::int64_t t, std::int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  NdArray a = NdArray::allocate(DType::kFloat32, {t, n});
  NdArray b = NdArray::allocate(DType::kFloat32, {t, n});
  Eigen::Map<RowMatrixF> ma(a.mutable_data_as<float>(), t, n), mb(b.mutable_data_as<float>(), t, n);
  const RowMatrixF shared_u = RowMatrixF::NullaryExpr(t, 4, [&] { return g(rng); });
  const RowMatrixF shared_v = RowMatrixF::NullaryExpr(4, n, [&] { return g(rng); });
  const RowMatrixF planted_u = RowMatrixF::NullaryExpr(t, 2, [&] { return g(rng); });
  const RowMatrixF planted_v = RowMatrixF::NullaryExpr(2, n, [&] { return g(rng); });
  ma = shared_u * shared_v + 3.0f * planted_u * planted_v;
  mb = shared_u * shared_v;
  ma += RowMatrixF::NullaryExpr(t, n, [&] { return 0.3f * g(rng); });
  mb += RowMatrixF::NullaryExpr(t, n, [&] { return 0.3f * g(rng); });
  return {a, b};
}

}  // namespace

TEST(ResidualPca, RandomizedAgreesWithExactOnSyntheticData) {
  auto [a, b] = synthetic_pair(300, 2000, 7);
  NullProgress progress;
  DiffOptions exact_options;
  exact_options.components = 2;
  exact_options.solver = PcaSolver::kExact;
  DiffOptions randomized_options = exact_options;
  randomized_options.solver = PcaSolver::kRandomized;
  const DiffResult e =
      run_model_diff(input("A", "a", a), input("B", "b", b), exact_options, progress);
  const DiffResult r =
      run_model_diff(input("A", "a", a), input("B", "b", b), randomized_options, progress);
  EXPECT_EQ(e.a_minus_b.solver, "exact");
  EXPECT_EQ(r.a_minus_b.solver, "randomized");
  for (int c = 0; c < 2; ++c) {
    // Same deterministic sign convention, so the directions agree without sign fixing.
    const double cosine = e.a_minus_b.directions.row(c).cast<double>().dot(
        r.a_minus_b.directions.row(c).cast<double>());
    EXPECT_GT(cosine, 0.9999) << c;
    EXPECT_NEAR(r.a_minus_b.explained_variance(c), e.a_minus_b.explained_variance(c),
                1e-4 * e.a_minus_b.explained_variance(c));
    EXPECT_NEAR(r.a_minus_b.explained_variance_ratio(c), e.a_minus_b.explained_variance_ratio(c),
                1e-4);
  }
  // The planted part exists only in A: A's variance along A-minus-B directions dominates.
  for (int c = 0; c < 2; ++c) EXPECT_GT(e.a_minus_b.variance_a(c), 5 * e.a_minus_b.variance_b(c));
}

// The randomised solver's documented accuracy (residual_pca.h), against the exact solver, on a
// residual with a graded spectrum (ten A-only components of decaying strength over noise):
// singular values within 1e-4 s_1; per direction sin(angle) <= 1e-4 s_1 / gap (the distance
// to the nearest other singular value), where that bound means anything; the subspace of the
// first c directions within sin(angle) <= 1e-4 s_1 / (s_c - s_{c+1}); and the variances of A
// and B along the directions (from the solver's own products) equal to a direct computation.
TEST(ResidualPca, RandomizedMeetsItsDocumentedAccuracy) {
  constexpr std::int64_t t = 400, n = 3000;
  constexpr int c = 10;
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  NdArray a = NdArray::allocate(DType::kFloat32, {t, n});
  NdArray b = NdArray::allocate(DType::kFloat32, {t, n});
  Eigen::Map<RowMatrixF> ma(a.mutable_data_as<float>(), t, n), mb(b.mutable_data_as<float>(), t, n);
  const RowMatrixF shared = RowMatrixF::NullaryExpr(t, 3, [&] { return g(rng); }) *
                            RowMatrixF::NullaryExpr(3, n, [&] { return g(rng); });
  ma = shared;
  mb = shared;
  for (int k = 0; k < c; ++k) {
    const Eigen::VectorXf u = Eigen::VectorXf::NullaryExpr(t, [&] { return g(rng); });
    const Eigen::RowVectorXf v = Eigen::RowVectorXf::NullaryExpr(n, [&] { return g(rng); });
    ma += (2.0f * std::pow(0.8f, static_cast<float>(k))) * u * v;
  }
  ma += RowMatrixF::NullaryExpr(t, n, [&] { return 0.2f * g(rng); });
  mb += RowMatrixF::NullaryExpr(t, n, [&] { return 0.2f * g(rng); });

  NullProgress progress;
  DiffOptions options;
  options.components = c + 1;  // the exact s_{c+1} for the subspace bound
  options.solver = PcaSolver::kExact;
  const DiffResult e = run_model_diff(input("A", "a", a), input("B", "b", b), options, progress);
  options.components = c;
  options.solver = PcaSolver::kRandomized;
  const DiffResult r = run_model_diff(input("A", "a", a), input("B", "b", b), options, progress);
  for (const auto& [exact, got] :
       {std::pair{&e.a_minus_b, &r.a_minus_b}, std::pair{&e.b_minus_a, &r.b_minus_a}}) {
    ASSERT_TRUE(got->converged);
    std::printf("[ krylov   ] %s: %d blocks\n", got->first.c_str(), got->iterations);
    Eigen::VectorXd s = (exact->explained_variance * static_cast<double>(t - 1)).cwiseSqrt();
    const Eigen::VectorXd sr = (got->explained_variance * static_cast<double>(t - 1)).cwiseSqrt();
    const double s1 = s(0), bound = 1e-4 * s1;
    for (int k = 0; k < c; ++k) {
      EXPECT_NEAR(sr(k), s(k), bound) << "singular value " << k;
      const double cosine = std::abs(
          exact->directions.row(k).cast<double>().dot(got->directions.row(k).cast<double>()));
      const double gap = std::min(k > 0 ? s(k - 1) - s(k) : 1e300, s(k) - s(k + 1));
      if (gap > 100 * bound) {
        const double sine = std::sqrt(std::max(0.0, 1 - cosine * cosine));
        EXPECT_LE(sine, 2 * bound / gap + 1e-5) << "direction " << k << ", gap " << gap / s1;
      }
      // Subspace of the first k + 1 directions: the largest principal angle.
      const Eigen::MatrixXd overlap = exact->directions.topRows(k + 1).cast<double>() *
                                      got->directions.topRows(k + 1).cast<double>().transpose();
      const double smallest_cos =
          Eigen::JacobiSVD<Eigen::MatrixXd>(overlap).singularValues().minCoeff();
      const double sine = std::sqrt(std::max(0.0, 1 - smallest_cos * smallest_cos));
      EXPECT_LE(sine, 2 * bound / (s(k) - s(k + 1)) + 1e-5) << "first " << k + 1 << " directions";
      EXPECT_NEAR(got->variance_a(k), exact->variance_a(k), 1e-4 * exact->variance_a(0));
      EXPECT_NEAR(got->variance_b(k), exact->variance_b(k), 1e-4 * exact->variance_a(0));
    }
    EXPECT_NEAR(got->explained_variance_ratio(0), exact->explained_variance_ratio(0), 1e-5);
  }
  // The variances of A and B along the randomised directions, computed directly.
  for (int k = 0; k < c; ++k) {
    Eigen::VectorXd x(t);
    for (std::int64_t i = 0; i < t; ++i)
      x(i) = ma.row(i).cast<double>().dot(r.a_minus_b.directions.row(k).cast<double>()) /
             ma.row(i).cast<double>().norm();
    const double var = (x.array() - x.mean()).square().sum() / static_cast<double>(t);
    EXPECT_NEAR(r.a_minus_b.variance_a(k), var, 1e-5 * var) << k;
  }
}

TEST(ResidualPca, DirectionsAreUnitAndSignConventionHolds) {
  auto [a, b] = synthetic_pair(120, 500, 3);
  DiffOptions options;
  options.components = 4;
  NullProgress progress;
  const DiffResult r = run_model_diff(input("A", "a", a), input("B", "b", b), options, progress);
  for (const DirectionSet* set : {&r.a_minus_b, &r.b_minus_a}) {
    for (int c = 0; c < 4; ++c) {
      EXPECT_NEAR(set->directions.row(c).norm(), 1.0, 1e-5);
      Eigen::Index arg = 0;
      set->projections.col(c).cwiseAbs().maxCoeff(&arg);
      EXPECT_GT(set->projections(arg, c), 0.0f);
      if (c > 0) {
        EXPECT_GE(set->explained_variance(c - 1), set->explained_variance(c));
      }
      // The top target by projection is the argmax above.
      EXPECT_EQ(set->top_target[static_cast<std::size_t>(c)][0], arg);
    }
  }
}

TEST(ModelDiff, TargetSubsetEqualsDiffOfSlicedRowsWithOriginalRowNumbers) {
  auto [a, b] = synthetic_pair(100, 400, 11);
  std::vector<std::int64_t> rows;
  for (std::int64_t i = 3; i < 100; i += 3) rows.push_back(i);
  NdArray sa = NdArray::allocate(DType::kFloat32, {static_cast<std::int64_t>(rows.size()), 400});
  NdArray sb = NdArray::allocate(DType::kFloat32, {static_cast<std::int64_t>(rows.size()), 400});
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(a.data_as<float>() + rows[i] * 400, 400, sa.mutable_data_as<float>() + i * 400);
    std::copy_n(b.data_as<float>() + rows[i] * 400, 400, sb.mutable_data_as<float>() + i * 400);
  }
  NullProgress progress;
  DiffOptions options;
  options.components = 2;
  const DiffResult sliced =
      run_model_diff(input("A", "a", sa), input("B", "b", sb), options, progress);
  options.target_rows = rows;
  const DiffResult subset =
      run_model_diff(input("A", "a", a), input("B", "b", b), options, progress);
  EXPECT_EQ(subset.target_rows, rows);
  EXPECT_LT((subset.a_minus_b.directions - sliced.a_minus_b.directions).cwiseAbs().maxCoeff(),
            1e-5);
  EXPECT_LT((subset.a_minus_b.projections - sliced.a_minus_b.projections).cwiseAbs().maxCoeff(),
            1e-4);
  for (int c = 0; c < 2; ++c)
    for (std::size_t i = 0; i < subset.a_minus_b.top_target[c].size(); ++i)
      EXPECT_EQ(subset.a_minus_b.top_target[c][i],
                rows[static_cast<std::size_t>(sliced.a_minus_b.top_target[c][i])]);
}

namespace {

std::string error_of(const ScoreInput& a, const ScoreInput& b, DiffOptions options = {}) {
  NullProgress progress;
  try {
    run_model_diff(a, b, options, progress);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ModelDiffErrors, ShapeMismatchNamesBothShapes) {
  auto [a, b] = synthetic_pair(20, 50, 1);
  auto [c, d] = synthetic_pair(20, 51, 1);
  const std::string msg = error_of(input("A", "a.npy", a), input("B", "b.npy", d), {});
  EXPECT_NE(msg.find("b.npy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("20 x 50"), std::string::npos) << msg;
  EXPECT_NE(msg.find("20 x 51"), std::string::npos) << msg;
}

TEST(ModelDiffErrors, NaNIsLocatedByRowAndColumn) {
  auto [a, b] = synthetic_pair(20, 50, 2);
  b.mutable_data_as<float>()[7 * 50 + 13] = std::nanf("");
  const std::string msg = error_of(input("A", "a.npy", a), input("B", "b.npy", b));
  EXPECT_NE(msg.find("b.npy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("row 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("column 13 holds NaN"), std::string::npos) << msg;
}

TEST(ModelDiffErrors, AllZeroRowIsRefused) {
  for (bool normalize : {true, false}) {
    auto [a, b] = synthetic_pair(20, 50, 4);
    std::fill_n(b.mutable_data_as<float>() + 5 * 50, 50, 0.0f);
    DiffOptions options;
    options.normalize_rows = normalize;
    const std::string msg = error_of(input("A", "a.npy", a), input("B", "b.npy", b), options);
    EXPECT_NE(msg.find("b.npy: row 5 is all zero"), std::string::npos) << msg;
  }
}

TEST(ModelDiffErrors, ComponentsAndRowsOutOfRange) {
  auto [a, b] = synthetic_pair(20, 50, 5);
  DiffOptions options;
  options.components = 21;
  EXPECT_NE(error_of(input("A", "a", a), input("B", "b", b), options).find("components"),
            std::string::npos);
  options.components = 2;
  options.target_rows = {1, 20};
  EXPECT_NE(error_of(input("A", "a", a), input("B", "b", b), options).find("out of range"),
            std::string::npos);
  options.target_rows = {4, 2};
  EXPECT_NE(error_of(input("A", "a", a), input("B", "b", b), options).find("ascending"),
            std::string::npos);
}

TEST(TopK, OrdersByValueThenIndex) {
  const float v[] = {0.5f, 2.0f, -1.0f, 2.0f, 0.0f};
  EXPECT_EQ(top_k_indices(v, 5, 3, true), (std::vector<std::int64_t>{1, 3, 0}));
  EXPECT_EQ(top_k_indices(v, 5, 2, false), (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(top_k_indices(v, 5, 10, true).size(), 5u);
}

// Varimax output: the rotation of the principal directions (rotation.h), with projections that
// are the centred residual rows on the rotated directions, computed here from the inputs.
TEST(ModelDiff, VarimaxReportsTheRotatedDirectionsWithTheirOwnProjections) {
  constexpr Eigen::Index t = 40, n = 60;
  std::mt19937 rng(11);
  std::normal_distribution<float> g;
  NdArray a = NdArray::allocate(DType::kFloat32, {t, n});
  NdArray b = NdArray::allocate(DType::kFloat32, {t, n});
  for (Eigen::Index i = 0; i < t * n; ++i) {
    b.mutable_data_as<float>()[i] = g(rng);
    a.mutable_data_as<float>()[i] = b.data_as<float>()[i] + 0.7f * g(rng);
  }
  DiffOptions options;
  options.components = 4;
  options.top_k = 5;
  options.solver = PcaSolver::kExact;
  NullProgress progress;
  const DiffResult plain =
      run_model_diff(input("A", "a", a), input("B", "b", b), options, progress);
  options.rotation = Rotation::kVarimax;
  const DiffResult rot = run_model_diff(input("A", "a", a), input("B", "b", b), options, progress);
  const RotatedDirections want =
      varimax(plain.a_minus_b.directions, plain.a_minus_b.explained_variance);
  const DirectionSet& s = rot.a_minus_b;
  EXPECT_LT((s.directions - want.directions).cwiseAbs().maxCoeff(), 1e-5f);

  // Unit rows: R_i = a_i / |a_i| - (a_i . b_i / (|a_i| |b_i|)) b_i / |b_i|, centred.
  const Eigen::MatrixXd ma = as_matrix(a), mb = as_matrix(b);
  Eigen::MatrixXd r(t, n);
  for (Eigen::Index i = 0; i < t; ++i) {
    const Eigen::RowVectorXd ua = ma.row(i) / ma.row(i).norm();
    const Eigen::RowVectorXd ub = mb.row(i) / mb.row(i).norm();
    r.row(i) = ua - ua.dot(ub) * ub;
  }
  r.rowwise() -= r.colwise().mean();
  const Eigen::MatrixXd proj = r * s.directions.cast<double>().transpose();
  EXPECT_LT(max_rel(s.projections.cast<double>(), proj), 1e-4);
  for (int c = 0; c < 4; ++c) {
    EXPECT_NEAR(s.explained_variance(c), proj.col(c).squaredNorm() / (t - 1),
                1e-4 * s.explained_variance(c));
    const Eigen::VectorXf row = s.directions.row(c).transpose();
    EXPECT_EQ(s.top_train[static_cast<std::size_t>(c)], top_k_indices(row.data(), n, 5, true));
  }
  // The same subspace as the principal directions.
  const Eigen::MatrixXd p = plain.a_minus_b.directions.cast<double>();
  for (int c = 0; c < 4; ++c)
    EXPECT_NEAR((p * s.directions.row(c).cast<double>().transpose()).norm(), 1.0, 1e-4);
  EXPECT_THROW(parse_rotation("promax"), InputError);
}
