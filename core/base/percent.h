// A share (0.388) as the percentage people read ("38.8%"), one way for the CLI, the report, the
// log and the GUI.
#pragma once

#include <string>

namespace modeldiff::core {

// `share` * 100 with `decimals` digits after the point and a '%' ("38.8%", "-1.2%"). NaN and
// infinities (how the core marks a share that was not measured, e.g. the accuracy of an
// algorithm given by its scores) give `missing`.
std::string format_percent(double share, int decimals = 1, const std::string& missing = "n/a");

}  // namespace modeldiff::core
