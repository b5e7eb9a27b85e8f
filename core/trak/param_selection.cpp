#include "core/trak/param_selection.h"

#include "core/base/error.h"

namespace modeldiff::core {

ParamSelection parse_param_patterns(const std::string& text, bool skip_normalization) {
  ParamSelection s;
  s.skip_normalization = skip_normalization;
  if (text.find_first_not_of(" ") == std::string::npos) return s;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    const std::string part = text.substr(begin, end - begin);
    const std::size_t a = part.find_first_not_of(' '), b = part.find_last_not_of(' ');
    if (a == std::string::npos)
      throw InputError("", "empty parameter pattern")
          .key("--params")
          .expected("comma-separated patterns such as 'layer4.*,fc.*'")
          .found("'" + text + "'");
    s.patterns.push_back(part.substr(a, b - a + 1));
    begin = end + 1;
  }
  return s;
}

bool glob_match(const std::string& pattern, const std::string& name) {
  // Iterative matching with backtracking to the last '*'.
  std::size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool selected_by_patterns(const ParamSelection& s, const std::string& name) {
  if (s.patterns.empty()) return true;
  for (const auto& p : s.patterns)
    if (glob_match(p, name)) return true;
  return false;
}

std::string describe(const ParamSelection& s) {
  std::string out = "parameters: ";
  if (s.patterns.empty()) out += "all trainable";
  for (std::size_t i = 0; i < s.patterns.size(); ++i) out += (i ? ", " : "") + s.patterns[i];
  if (s.skip_normalization) out += " (normalisation left out)";
  return out;
}

}  // namespace modeldiff::core
