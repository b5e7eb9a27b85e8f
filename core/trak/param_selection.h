// Which parameters TRAK attributes (no LibTorch here): all trainable parameters by default,
// or those whose dotted names match glob patterns, optionally without normalisation layers'
// parameters (as kronfluence and LoGra leave them out).
#pragma once

#include <string>
#include <vector>

namespace modeldiff::core {

struct ParamSelection {
  // Glob patterns over dotted parameter names ('*' any run of characters, '?' one
  // character), e.g. {"layer4.*", "fc.*"}; empty selects every trainable parameter.
  std::vector<std::string> patterns;
  // Leave out the parameters of batch_norm and layer_norm ops.
  bool skip_normalization = false;
};

// "layer4.*,fc.*" -> {"layer4.*", "fc.*"} (spaces around the commas ignored). Throws
// InputError for an empty pattern.
ParamSelection parse_param_patterns(const std::string& text, bool skip_normalization);

// Whole-name glob match.
bool glob_match(const std::string& pattern, const std::string& name);

// Whether `name` is selected by the patterns (not looking at normalisation).
bool selected_by_patterns(const ParamSelection& s, const std::string& name);

// One line for logs, e.g. "parameters: layer4.*, fc.* (normalisation left out)".
std::string describe(const ParamSelection& s);

}  // namespace modeldiff::core
