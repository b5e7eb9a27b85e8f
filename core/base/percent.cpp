#include "core/base/percent.h"

#include <cmath>
#include <cstdio>

namespace modeldiff::core {

std::string format_percent(double share, int decimals, const std::string& missing) {
  if (!std::isfinite(share)) return missing;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%%", decimals < 0 ? 0 : decimals, 100.0 * share);
  return buf;
}

}  // namespace modeldiff::core
