#include "core/trak/trak_settings.h"

namespace modeldiff::core {

std::string describe(const TrakSettings& s) {
  return std::string("TRAK: ") +
         (s.projection == ProjectionKind::kDense ? "dense" : "structured (Kronecker per layer)") +
         " Rademacher projection, k = " + std::to_string(s.proj_dim) +
         ", seed = " + std::to_string(s.seed) + ", lambda = " + std::to_string(s.lambda) +
         (s.out_to_loss ? ", out-to-loss weights 1 - p_y" : ", no out-to-loss weights (Q = 1)") +
         ", " + describe(s.params);
}

}  // namespace modeldiff::core
