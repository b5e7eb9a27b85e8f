// Significance of ModelDiff directions (core/diff/significance.h) on synthetic ensembles whose
// answer is known: per-checkpoint score matrices = a shared attribution structure + seed noise,
// with or without a planted low-rank difference in A; the half-ensemble arithmetic against
// TrakEnsemble recomputed over each half; and the result files' round trip.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cstdio>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "common/temp_dir.h"
#include "core/attribution/trak_ensemble.h"
#include "core/base/error.h"
#include "core/base/output_directory.h"
#include "core/diff/diff_output.h"
#include "core/diff/diff_summary.h"
#include "core/diff/model_diff.h"
#include "core/diff/significance.h"
#include "core/io/hdf5_dataset.h"

using namespace modeldiff::core;

namespace {

constexpr int kT = 60, kN = 200, kM = 8, kC = 5;

RowMatrixF gaussian(std::mt19937_64& rng, Eigen::Index rows, Eigen::Index cols, float sd) {
  std::normal_distribution<float> g(0.0f, sd);
  RowMatrixF m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = g(rng);
  return m;
}

NdArray as_array(const RowMatrixF& m) {
  NdArray a = NdArray::allocate(DType::kFloat32, {m.rows(), m.cols()});
  Eigen::Map<RowMatrixF>(a.mutable_data_as<float>(), m.rows(), m.cols()) = m;
  return a;
}

// Per-checkpoint scores of two algorithms: a shared structure (rank 6 plus a sparse-ish
// background) plus i.i.d. seed noise per checkpoint; with `planted` > 0, A's checkpoints also
// carry a rank-2 difference on targets 0-19 and training examples 0-29 (what only A learns).
struct Case {
  std::vector<RowMatrixF> a, b;  // kM checkpoints each, T x N
};

Case make_case(std::uint64_t seed, float planted) {
  std::mt19937_64 rng(seed);
  const RowMatrixF base =
      gaussian(rng, kT, 6, 1.0f) * gaussian(rng, 6, kN, 1.0f) + gaussian(rng, kT, kN, 0.5f);
  RowMatrixF extra = RowMatrixF::Zero(kT, kN);
  extra.topLeftCorner(20, 30) = planted * (gaussian(rng, 20, 2, 1.0f) * gaussian(rng, 2, 30, 1.0f));
  Case c;
  for (int m = 0; m < kM; ++m) {
    c.a.push_back(base + extra + gaussian(rng, kT, kN, 1.0f));
    c.b.push_back(base + gaussian(rng, kT, kN, 1.0f));
  }
  return c;
}

RowMatrixF sum_matrix(const std::vector<RowMatrixF>& ckpts, const std::vector<int>& which) {
  RowMatrixF s = RowMatrixF::Zero(ckpts[0].rows(), ckpts[0].cols());
  for (int m : which) s += ckpts[static_cast<std::size_t>(m)];
  return s;
}

NdArray sum_of(const std::vector<RowMatrixF>& ckpts, const std::vector<int>& which) {
  return as_array(sum_matrix(ckpts, which));
}

NdArray mean_of(const std::vector<RowMatrixF>& ckpts, const std::vector<int>& which) {
  return as_array(sum_matrix(ckpts, which) / static_cast<float>(which.size()));
}

// A random split of 0..kM-1 into two halves of kM / 2.
std::pair<std::vector<int>, std::vector<int>> random_halves(std::mt19937_64& rng) {
  std::vector<int> p(kM);
  std::iota(p.begin(), p.end(), 0);
  std::shuffle(p.begin(), p.end(), rng);
  return {{p.begin(), p.begin() + kM / 2}, {p.begin() + kM / 2, p.end()}};
}

struct Analysed {
  DiffResult result;
  DiffOptions options;
};

// splits > 0: that many random splits into halves; splits == 0: the pipeline's three splits of
// four consecutive blocks (block_halves).
Analysed analyse(const Case& c, int splits, std::uint64_t split_seed) {
  std::vector<int> all(kM);
  std::iota(all.begin(), all.end(), 0);
  Analysed out;
  out.options.components = kC;
  NullProgress progress;
  out.result = run_model_diff(ScoreInput{"A", "a.npy", mean_of(c.a, all)},
                              ScoreInput{"B", "b.npy", mean_of(c.b, all)}, out.options, progress);
  std::mt19937_64 rng(split_seed);
  std::vector<HalfSplit> hs;
  for (int s = 0; s < splits; ++s) {
    HalfSplit h;
    const auto [a1, a2] = random_halves(rng);
    const auto [b1, b2] = random_halves(rng);
    h.a[0] = mean_of(c.a, a1);
    h.a[1] = mean_of(c.a, a2);
    h.b[0] = mean_of(c.b, b1);
    h.b[1] = mean_of(c.b, b2);
    for (int k = 0; k < 2; ++k) {
      h.source_a[k] = "A half " + std::to_string(k + 1);
      h.source_b[k] = "B half " + std::to_string(k + 1);
      h.checkpoints_a[k] = h.checkpoints_b[k] = kM / 2;
    }
    hs.push_back(std::move(h));
  }
  if (splits == 0) {
    const std::array<int, 5> cuts = block_cuts(kM);
    BlockHalves bh[2];
    for (int x = 0; x < 2; ++x) {
      std::array<NdArray, 4> sums;
      for (std::size_t k = 0; k < 4; ++k) {
        std::vector<int> block(static_cast<std::size_t>(cuts[k + 1] - cuts[k]));
        std::iota(block.begin(), block.end(), cuts[k]);
        sums[k] = sum_of(x == 0 ? c.a : c.b, block);
      }
      bh[x] = block_halves(sums, cuts);
    }
    for (int s = 0; s < 3; ++s) {
      HalfSplit h;
      for (int k = 0; k < 2; ++k) {
        h.a[k] = bh[0].halves[s][k];
        h.b[k] = bh[1].halves[s][k];
        h.source_a[k] = "A block half";
        h.source_b[k] = "B block half";
      }
      hs.push_back(std::move(h));
    }
  }
  out.result.significance = compute_significance(out.result, hs, out.options, progress);
  return out;
}

int count_above(const DirectionSignificance& d) {
  return static_cast<int>(std::count(d.above_floor.begin(), d.above_floor.end(), true));
}

}  // namespace

// Halves as the pipeline makes them (one pass over the checkpoints, the blocks' sums as the
// ensemble records them, halves as pairs of blocks weighted by their own out-to-loss weights)
// against TrakEnsemble recomputed over each half.
TEST(Significance, HalfEnsemblesEqualRecomputationOverEachHalf) {
  constexpr std::int64_t n = 50, t = 12, k = 8;
  constexpr int m = 7;  // blocks of 1, 2, 2, 2
  const std::array<int, 5> cuts = block_cuts(m);
  EXPECT_EQ(cuts, (std::array<int, 5>{0, 1, 3, 5, 7}));
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> weight(0.05f, 0.95f);
  std::vector<RowMatrixF> phi, g;
  std::vector<Eigen::VectorXf> q;
  for (int i = 0; i < m; ++i) {
    phi.push_back(gaussian(rng, n, k, 1.0f));
    g.push_back(gaussian(rng, t, k, 1.0f));
    q.emplace_back(n);
    for (Eigen::Index j = 0; j < n; ++j) q.back()(j) = weight(rng);
  }
  const auto ensemble = [&](const std::vector<int>& which) {
    TrakEnsemble e(t, n, 0.0);
    for (int i : which) e.add_checkpoint(phi[i], g[i], q[i], "checkpoint " + std::to_string(i));
    return e.scores(true);
  };
  TrakEnsemble all(t, n, 0.0);
  all.record_blocks(std::vector<int>(cuts.begin(), cuts.end()));
  for (int i = 0; i < m; ++i)
    all.add_checkpoint(phi[i], g[i], q[i], "checkpoint " + std::to_string(i));
  TrakEnsemble::BlockSums blocks = all.take_blocks();
  ASSERT_EQ(blocks.score_sums.size(), 4u);
  ASSERT_EQ(blocks.out_to_loss.size(), 4u);
  std::array<NdArray, 4> sums;
  std::array<std::vector<double>, 4> q_sums;
  for (std::size_t b = 0; b < 4; ++b) {
    sums[b] = std::move(blocks.score_sums[b]);
    q_sums[b] = std::move(blocks.out_to_loss[b]);
  }
  const NdArray full_unweighted = all.scores(false);
  const BlockHalves bh = block_halves(sums, cuts, &q_sums);
  const std::vector<int> want[3][2] = {
      {{0, 1, 2}, {3, 4, 5, 6}}, {{0, 3, 4}, {1, 2, 5, 6}}, {{0, 5, 6}, {1, 2, 3, 4}}};
  for (int sp = 0; sp < 3; ++sp)
    for (int h = 0; h < 2; ++h) {
      EXPECT_EQ(bh.sizes[sp][h], static_cast<int>(want[sp][h].size()));
      const NdArray r = ensemble(want[sp][h]);
      const ConstRowMapF got(bh.halves[sp][h].data_as<float>(), t, n),
          ref(r.data_as<float>(), t, n);
      EXPECT_LT((got - ref).cwiseAbs().maxCoeff(), 1e-5f * ref.cwiseAbs().maxCoeff())
          << "split " << sp << " half " << h;
    }
  // Bookkeeping: the blocks add up to the full ensemble (Q off).
  RowMatrixF total = RowMatrixF::Zero(t, n);
  for (const NdArray& b : sums) total += ConstRowMapF(b.data_as<float>(), t, n);
  const ConstRowMapF full(full_unweighted.data_as<float>(), t, n);
  EXPECT_LT((total / static_cast<float>(m) - full).cwiseAbs().maxCoeff(),
            1e-5f * full.cwiseAbs().maxCoeff());
}

TEST(Significance, PlantedLowRankDifferenceIsAboveTheFloor) {
  const Analysed an = analyse(make_case(1, 1.5f), 0, 11);
  const Significance& s = an.result.significance;
  ASSERT_TRUE(s.computed);
  EXPECT_EQ(s.splits, 3);
  const DirectionSignificance& ab = s.a_minus_b;
  ASSERT_EQ(ab.above_floor.size(), static_cast<std::size_t>(kC));
  // The two planted directions stand above the floor, well reproduced and matched by the full
  // ensemble's; the noise directions after them do not.
  for (int c = 0; c < 2; ++c) {
    EXPECT_TRUE(ab.above_floor[c]) << "direction " << c << " ratio " << ab.floor_ratio(c);
    EXPECT_GT(ab.floor_ratio(c), 1.5) << c;
    EXPECT_GT(ab.reproducibility(c), 0.8) << c;
    EXPECT_GT(ab.full_match(c), 0.9) << c;
  }
  for (int c = 2; c < kC; ++c) EXPECT_FALSE(ab.above_floor[c]) << "direction " << c;
  // Deflation: the signal directions and the first noise direction are compared with the
  // null's top level, the next noise direction with its second.
  EXPECT_DOUBLE_EQ(ab.noise_floor(0), ab.null_explained_variance(0));
  EXPECT_DOUBLE_EQ(ab.noise_floor(2), ab.null_explained_variance(0));
  EXPECT_DOUBLE_EQ(ab.noise_floor(3), ab.null_explained_variance(1));
  // B minus A: a difference added to A's scores also shows in B's residual against A (with the
  // opposite sign: removing A's projection from B's row subtracts part of the planted term),
  // so B minus A may carry the same directions above the floor; then they are A's feature,
  // seen from B: aligned with an A-minus-B planted direction.
  const DirectionSet& ba = an.result.b_minus_a;
  for (int c = 0; c < kC; ++c) {
    if (!s.b_minus_a.above_floor[c]) continue;
    const Eigen::VectorXf cos =
        (an.result.a_minus_b.directions.topRows(2) * ba.directions.row(c).transpose()).cwiseAbs();
    EXPECT_GT(cos.maxCoeff(), 0.9) << "B minus A " << c;
  }
  EXPECT_NEAR(ab.floor_ratio(0), ab.half_explained_variance(0) / ab.noise_floor(0), 1e-12);
  // The null residuals are the same for both sets: one floor.
  EXPECT_EQ(ab.null_explained_variance, s.b_minus_a.null_explained_variance);
}

// A and B from the same distribution: over many seeds, the share of direction sets with any
// direction above the floor, with the pipeline's three block splits (README: at most 5%) and
// with one split (`modeldiff diff` given one pair of half files per algorithm: README, 30%).
struct NullRates {
  double sets = 0, directions = 0;
};
NullRates null_rates(int splits, int seeds) {
  int sets_with_any = 0, directions_above = 0;
  for (int seed = 0; seed < seeds; ++seed) {
    const Analysed an = analyse(make_case(1000 + seed, 0.0f), splits, 5000 + seed);
    for (const DirectionSignificance* d :
         {&an.result.significance.a_minus_b, &an.result.significance.b_minus_a}) {
      const int above = count_above(*d);
      directions_above += above;
      sets_with_any += above > 0;
    }
  }
  NullRates r{static_cast<double>(sets_with_any) / (2 * seeds),
              static_cast<double>(directions_above) / (2 * seeds * kC)};
  std::printf(
      "null, %s: %d of %d direction sets with a direction above the floor (%.1f%%), "
      "%d of %d directions (%.2f%%)\n",
      splits == 0 ? "3 block splits" : (std::to_string(splits) + " random split(s)").c_str(),
      sets_with_any, 2 * seeds, 100 * r.sets, directions_above, 2 * seeds * kC, 100 * r.directions);
  return r;
}

TEST(Significance, SameDistributionIsNotDistinguishableAtTheStatedRate) {
  const NullRates blocks = null_rates(0, 150);
  EXPECT_LE(blocks.sets, 0.05);
  EXPECT_LE(blocks.directions, 0.01);
  const NullRates one = null_rates(1, 150);
  EXPECT_LE(one.sets, 0.35);
  EXPECT_LE(one.directions, 0.08);
}

TEST(Significance, SeveralSplitsGiveMeanAndSpread) {
  const Analysed one = analyse(make_case(2, 1.5f), 1, 21);
  const Analysed five = analyse(make_case(2, 1.5f), 5, 21);
  const DirectionSignificance& d = five.result.significance.a_minus_b;
  EXPECT_EQ(five.result.significance.splits, 5);
  for (int c = 0; c < kC; ++c) {
    EXPECT_GE(d.rank_stable(c), 0.0);
    EXPECT_LE(d.rank_stable(c), 1.0);
    EXPECT_GE(d.reproducibility_std(c), 0.0);
    EXPECT_LE(d.reproducibility(c), 1.0 + 1e-6);
    // More null samples can only raise the floor's maximum; more observed pairs only lower
    // the minimum (split 1 is the same in both).
    EXPECT_LE(d.half_explained_variance(c),
              one.result.significance.a_minus_b.half_explained_variance(c) + 1e-12);
  }
  EXPECT_GE(d.null_explained_variance(0),
            one.result.significance.a_minus_b.null_explained_variance(0));
  // The planted pair is stable in rank in most matches; noise directions are not reproduced.
  EXPECT_GE(d.rank_stable(0), 0.8);
  EXPECT_GT(d.reproducibility(0), 0.9);
  EXPECT_LT(d.reproducibility(kC - 1), 0.8);
  EXPECT_GT(d.reproducibility_std(kC - 1), 0.0);
}

TEST(Significance, HalvesOfAnotherShapeAreAnInputErrorNamingTheFile) {
  Analysed an = analyse(make_case(3, 1.0f), 1, 31);
  HalfSplit h;
  h.a[0] = h.a[1] = h.b[0] = h.b[1] = as_array(RowMatrixF::Ones(kT, kN));
  h.a[1] = as_array(RowMatrixF::Ones(kT, kN - 1));
  h.source_a[0] = "a1.npy";
  h.source_a[1] = "a2.npy";
  h.source_b[0] = "b1.npy";
  h.source_b[1] = "b2.npy";
  NullProgress progress;
  try {
    compute_significance(an.result, {h}, an.options, progress);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("a2.npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("60 x 200"), std::string::npos) << e.what();
  }
}

TEST(Significance, FewCheckpointsExplainTheAbsence) {
  EXPECT_EQ(significance_absence("A", 4), "");
  const std::string why = significance_absence("augmented", 3);
  EXPECT_NE(why.find("augmented has 3 checkpoints"), std::string::npos) << why;
  EXPECT_NE(why.find("at least 4"), std::string::npos) << why;
}

TEST(Significance, ResultFilesRoundTrip) {
  modeldiff::test::TempDir tmp("significance");
  const Analysed an = analyse(make_case(4, 1.5f), 2, 41);
  const Significance& s = an.result.significance;
  {
    OutputDirectory out(tmp.path() + "/with");
    write_diff_output(out, an.result, an.options, DiffProvenance{});
    out.commit();
  }
  const DiffSummary back = read_diff_summary(tmp.path() + "/with");
  ASSERT_TRUE(back.significance.computed);
  EXPECT_EQ(back.significance.splits, 2);
  EXPECT_EQ(back.significance.rule, kSignificanceRule);
  for (const auto& [got, want] : {std::pair{&back.significance.a_minus_b, &s.a_minus_b},
                                  std::pair{&back.significance.b_minus_a, &s.b_minus_a}}) {
    ASSERT_EQ(got->half_explained_variance.size(), static_cast<std::size_t>(kC));
    for (int c = 0; c < kC; ++c) {
      EXPECT_DOUBLE_EQ(got->half_explained_variance[c], want->half_explained_variance(c));
      EXPECT_DOUBLE_EQ(got->noise_floor[c], want->noise_floor(c));
      EXPECT_DOUBLE_EQ(got->reproducibility[c], want->reproducibility(c));
      EXPECT_DOUBLE_EQ(got->rank_stable[c], want->rank_stable(c));
      EXPECT_EQ(got->above_noise_floor[c], want->above_floor[c]);
    }
  }
  const std::string h5 = tmp.path() + "/with/diff.h5";
  const NdArray above = read_hdf5_dataset(h5, "significance/a_minus_b/above_noise_floor");
  ASSERT_EQ(above.numel(), kC);
  for (int c = 0; c < kC; ++c)
    EXPECT_EQ(above.data_as<std::int64_t>()[c], s.a_minus_b.above_floor[c] ? 1 : 0);
  const NdArray floor = read_hdf5_dataset(h5, "significance/b_minus_a/noise_floor");
  ASSERT_EQ(floor.numel(), kC);
  EXPECT_DOUBLE_EQ(floor.data_as<double>()[3], s.b_minus_a.noise_floor(3));
  const NdArray ratio = read_hdf5_dataset(h5, "significance/a_minus_b/floor_ratio");
  EXPECT_DOUBLE_EQ(ratio.data_as<double>()[1], s.a_minus_b.floor_ratio(1));

  // Absent: the reason travels, no numbers.
  DiffResult without = an.result;
  without.significance = Significance{};
  without.significance.reason = significance_absence("A", 2);
  {
    OutputDirectory out(tmp.path() + "/without");
    write_diff_output(out, without, an.options, DiffProvenance{});
    out.commit();
  }
  const DiffSummary none = read_diff_summary(tmp.path() + "/without");
  EXPECT_FALSE(none.significance.computed);
  EXPECT_EQ(none.significance.reason, without.significance.reason);
  EXPECT_NE(format_direction_table(without).find("significance not computed: A has 2"),
            std::string::npos);
  EXPECT_NE(format_direction_table(an.result).find("above the noise floor"), std::string::npos);
}
