// The parts of the significance of directions that TRAK needs, apart from ModelDiff itself:
// in the LibTorch-only build too (`modeldiff trak --halves`), which has no residual PCA.
#include <Eigen/Core>
#include <string>

#include "core/base/error.h"
#include "core/diff/residual_pca.h"
#include "core/diff/significance.h"

namespace modeldiff::core {

std::string significance_absence(const std::string& label, int checkpoints) {
  if (checkpoints >= kMinCheckpointsForSignificance) return "";
  return "not computed: " + label + " has " + std::to_string(checkpoints) +
         (checkpoints == 1 ? " checkpoint" : " checkpoints") + "; significance needs at least " +
         std::to_string(kMinCheckpointsForSignificance) +
         " per algorithm to split into two halves of two or more";
}

std::array<int, 5> block_cuts(int m) {
  MD_ASSERT(m >= kMinCheckpointsForSignificance);
  std::array<int, 5> cuts{};
  for (int k = 0; k <= 4; ++k) cuts[static_cast<std::size_t>(k)] = k * m / 4;
  return cuts;
}

BlockHalves block_halves(const std::array<NdArray, 4>& block_sums, const std::array<int, 5>& cuts,
                         const std::array<std::vector<double>, 4>* out_to_loss_sums) {
  MD_ASSERT(block_sums[0].ndim() == 2 && block_sums[0].dtype() == DType::kFloat32);
  const std::int64_t t = block_sums[0].dim(0), n = block_sums[0].dim(1);
  for (const NdArray& b : block_sums)
    MD_ASSERT(b.shape() == block_sums[0].shape() && b.dtype() == DType::kFloat32);
  if (out_to_loss_sums != nullptr)
    for (const auto& q : *out_to_loss_sums) MD_ASSERT(static_cast<std::int64_t>(q.size()) == n);
  static constexpr int kPairs[3][2][2] = {{{0, 1}, {2, 3}}, {{0, 2}, {1, 3}}, {{0, 3}, {1, 2}}};
  BlockHalves out;
  for (int s = 0; s < 3; ++s)
    for (int h = 0; h < 2; ++h) {
      const auto x = static_cast<std::size_t>(kPairs[s][h][0]),
                 y = static_cast<std::size_t>(kPairs[s][h][1]);
      const int size = cuts[x + 1] - cuts[x] + cuts[y + 1] - cuts[y];
      out.sizes[s][h] = size;
      out.halves[s][h] = NdArray::allocate(DType::kFloat32, {t, n});
      Eigen::Map<RowMatrixF> half(out.halves[s][h].mutable_data_as<float>(), t, n);
      half = (ConstRowMapF(block_sums[x].data_as<float>(), t, n) +
              ConstRowMapF(block_sums[y].data_as<float>(), t, n)) /
             static_cast<float>(size);
      if (out_to_loss_sums != nullptr) {
        const Eigen::Map<const Eigen::VectorXd> qx((*out_to_loss_sums)[x].data(), n),
            qy((*out_to_loss_sums)[y].data(), n);
        half = half * ((qx + qy) / size).cast<float>().asDiagonal();
      }
    }
  return out;
}

}  // namespace modeldiff::core
