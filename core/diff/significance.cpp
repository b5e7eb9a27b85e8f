#include "core/diff/significance.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/base/error.h"
#include "core/diff/model_diff.h"

namespace modeldiff::core {
namespace {

using Eigen::VectorXd;

void check_half_shape(const NdArray& half, const std::string& source, const DiffResult& full) {
  const std::vector<std::int64_t> expected = {full.num_targets, full.num_train};
  if (half.ndim() != 2 || half.shape() != expected)
    throw InputError(source, "half-ensemble scores differ in shape from the full ensemble's")
        .expected(shape_to_string(expected) + " (T targets x N training examples)")
        .found(shape_to_string(half.shape()));
}

// Accumulates the numbers of one direction set over the half pairs and null residuals.
struct SetAccumulator {
  explicit SetAccumulator(int c)
      : half_ev(VectorXd::Constant(c, std::numeric_limits<double>::infinity())),
        null_ev(VectorXd::Zero(c)),
        full_match(VectorXd::Zero(c)) {}
  VectorXd half_ev, null_ev, full_match;
  std::vector<VectorXd> best_cos;  // per match (2 per split), C values
  std::vector<std::vector<bool>> same_rank;
  int pairs = 0;

  void add_null(const DirectionSet& s) { null_ev = null_ev.cwiseMax(s.explained_variance); }
  void add_observed(const DirectionSet& s, const RowMatrixF& full_directions) {
    half_ev = half_ev.cwiseMin(s.explained_variance);
    const Eigen::MatrixXf cos = (full_directions * s.directions.transpose()).cwiseAbs();
    full_match += cos.rowwise().maxCoeff().cast<double>();
    ++pairs;
  }
  // Direction c of `one` against every direction of `other` (the other half pair of a split).
  void add_match(const DirectionSet& one, const DirectionSet& other) {
    const Eigen::MatrixXf cos = (one.directions * other.directions.transpose()).cwiseAbs();
    const auto c = cos.rows();
    VectorXd best(c);
    std::vector<bool> same(static_cast<std::size_t>(c));
    for (Eigen::Index i = 0; i < c; ++i) {
      Eigen::Index j = 0;
      best(i) = cos.row(i).maxCoeff(&j);
      same[static_cast<std::size_t>(i)] = j == i;
    }
    best_cos.push_back(best);
    same_rank.push_back(same);
  }

  DirectionSignificance finish() const {
    DirectionSignificance d;
    const auto c = half_ev.size();
    d.half_explained_variance = half_ev;
    d.null_explained_variance = null_ev;
    d.noise_floor.resize(c);
    d.floor_ratio.resize(c);
    Eigen::Index noise = 0;  // directions judged noise so far: the null level to compare with
    for (Eigen::Index i = 0; i < c; ++i) {
      d.noise_floor(i) = null_ev(noise);
      d.floor_ratio(i) = d.noise_floor(i) > 0 ? half_ev(i) / d.noise_floor(i)
                                              : std::numeric_limits<double>::infinity();
      d.above_floor.push_back(half_ev(i) > d.noise_floor(i));
      if (!d.above_floor.back()) ++noise;
    }
    d.full_match = full_match / pairs;
    d.reproducibility = VectorXd::Zero(c);
    d.rank_stable = VectorXd::Zero(c);
    for (std::size_t m = 0; m < best_cos.size(); ++m) {
      d.reproducibility += best_cos[m];
      for (Eigen::Index i = 0; i < c; ++i)
        d.rank_stable(i) += same_rank[m][static_cast<std::size_t>(i)];
    }
    const double n = static_cast<double>(best_cos.size());
    d.reproducibility /= n;
    d.rank_stable /= n;
    d.reproducibility_std = VectorXd::Zero(c);
    for (const VectorXd& b : best_cos) d.reproducibility_std += (b - d.reproducibility).cwiseAbs2();
    d.reproducibility_std =
        n > 1 ? VectorXd((d.reproducibility_std / (n - 1)).cwiseSqrt()) : VectorXd::Zero(c);
    return d;
  }
};

}  // namespace

const char* const kSignificanceRule =
    "direction c of X minus Y is above the noise floor when its half-ensemble explained "
    "variance (the smallest over the observed half pairs: half h of X against half h of Y, "
    "h = 1, 2, every split) exceeds the null level L_j, where L_j is the largest explained "
    "variance of component j over the null residuals (half 1 against half 2 of the same "
    "algorithm, both orders, both algorithms, every split) and j is the number of directions "
    "before c judged noise (parallel analysis with deflation)";

const char* significance_verdict(bool above_floor) {
  return above_floor ? "above the noise floor" : "not distinguishable from seed noise";
}

Significance compute_significance(const DiffResult& full, const std::vector<HalfSplit>& splits,
                                  const DiffOptions& options_in, Progress& progress) {
  MD_ASSERT(!splits.empty());
  DiffOptions options = options_in;
  options.top_k = 0;  // only directions and explained variances are needed
  const int c = static_cast<int>(full.a_minus_b.explained_variance.size());
  SetAccumulator sets[2] = {SetAccumulator(c), SetAccumulator(c)};
  Significance out;
  out.splits = static_cast<int>(splits.size());
  for (int h = 0; h < 2; ++h) {
    out.checkpoints_a[h] = splits.front().checkpoints_a[h];
    out.checkpoints_b[h] = splits.front().checkpoints_b[h];
  }
  const double step = 1.0 / (4.0 * static_cast<double>(splits.size()));
  double at = 0;
  const auto diff = [&](const NdArray& x, const std::string& label_x, const std::string& source_x,
                        const NdArray& y, const std::string& label_y, const std::string& source_y) {
    SubProgress sub(progress, at, at + step, "significance: " + label_x + " vs " + label_y);
    at += step;
    return run_model_diff(ScoreInput{label_x, source_x, x}, ScoreInput{label_y, source_y, y},
                          options, sub);
  };
  for (const HalfSplit& split : splits) {
    for (int h = 0; h < 2; ++h) {
      check_half_shape(split.a[h], split.source_a[h], full);
      check_half_shape(split.b[h], split.source_b[h], full);
    }
    DiffResult observed[2];
    for (int h = 0; h < 2; ++h) {
      observed[h] = diff(split.a[h], full.label_a, split.source_a[h], split.b[h], full.label_b,
                         split.source_b[h]);
      sets[0].add_observed(observed[h].a_minus_b, full.a_minus_b.directions);
      sets[1].add_observed(observed[h].b_minus_a, full.b_minus_a.directions);
    }
    for (int h = 0; h < 2; ++h) {
      sets[0].add_match(observed[h].a_minus_b, observed[1 - h].a_minus_b);
      sets[1].add_match(observed[h].b_minus_a, observed[1 - h].b_minus_a);
    }
    const DiffResult null_a = diff(split.a[0], full.label_a, split.source_a[0], split.a[1],
                                   full.label_a, split.source_a[1]);
    const DiffResult null_b = diff(split.b[0], full.label_b, split.source_b[0], split.b[1],
                                   full.label_b, split.source_b[1]);
    for (SetAccumulator& s : sets)
      for (const DiffResult* r : {&null_a, &null_b}) {
        s.add_null(r->a_minus_b);
        s.add_null(r->b_minus_a);
      }
  }
  out.a_minus_b = sets[0].finish();
  out.b_minus_a = sets[1].finish();
  out.computed = true;
  progress.report(1.0, "significance done");
  return out;
}

std::string format_direction_table(const DiffResult& result) {
  std::string out;
  char line[512];
  const Significance& sig = result.significance;
  for (const DirectionSet* set : {&result.a_minus_b, &result.b_minus_a}) {
    const DirectionSignificance& ds = set == &result.a_minus_b ? sig.a_minus_b : sig.b_minus_a;
    std::snprintf(line, sizeof line, "%s minus %s (%s)%s\n", set->first.c_str(),
                  set->second.c_str(), result.normalized_rows ? "unit-norm rows" : "raw rows",
                  sig.computed ? "" : ":");
    out += line;
    if (sig.computed) {
      std::snprintf(line, sizeof line,
                    "  significance from half ensembles of %d+%d and %d+%d checkpoints, %d "
                    "split%s:\n",
                    sig.checkpoints_a[0], sig.checkpoints_a[1], sig.checkpoints_b[0],
                    sig.checkpoints_b[1], sig.splits, sig.splits == 1 ? "" : "s");
      out += line;
    }
    for (Eigen::Index c = 0; c < set->explained_variance.size(); ++c) {
      std::snprintf(line, sizeof line,
                    "  direction %2ld  explained var %.4g (%.1f%%)  var %s %.4g  var %s %.4g",
                    static_cast<long>(c), set->explained_variance(c),
                    100.0 * set->explained_variance_ratio(c), result.label_a.c_str(),
                    set->variance_a(c), result.label_b.c_str(), set->variance_b(c));
      out += line;
      if (sig.computed) {
        std::snprintf(line, sizeof line,
                      "  half-ensemble var %.4g = %.2f x floor %.4g  reproduced |cos| %.2f +- "
                      "%.2f  rank stable %.0f%%  %s",
                      ds.half_explained_variance(c), ds.floor_ratio(c), ds.noise_floor(c),
                      ds.reproducibility(c), ds.reproducibility_std(c), 100.0 * ds.rank_stable(c),
                      significance_verdict(ds.above_floor[static_cast<std::size_t>(c)]));
        out += line;
      }
      out += "\n";
    }
  }
  if (!sig.computed) out += "significance " + sig.reason + "\n";
  return out;
}

}  // namespace modeldiff::core
