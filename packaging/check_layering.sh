#!/usr/bin/env bash
# Enforces the dependency direction of docs/ARCHITECTURE.md: core <- ui <- app/gui and
# core <- app/cli.
#  - core/ includes no Qt or QCustomPlot header and links no Qt target (it builds without Qt);
#  - core/ and app/cli/ include nothing from ui/;
#  - no header (*.h) under core/ or ui/ includes torch/torch.h: it is huge, and a header
#    that includes it makes every file including that header slow to compile. Include the
#    narrower torch/ headers there, or keep LibTorch in the .cpp.
# Prints every offending line and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failed=0
# check DESCRIPTION REGEX PATH... : report lines of C++ files under PATHs matching REGEX.
check() {
  local what=$1 regex=$2
  shift 2
  local dirs=()
  for d in "$@"; do [[ -d $d ]] && dirs+=("$d"); done
  ((${#dirs[@]})) || return 0
  local hits
  hits=$(grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' \
    --include='*.inl' "$regex" "${dirs[@]}" || true)
  if [[ -n $hits ]]; then
    echo "check_layering.sh: $what:"
    sed 's/^/  /' <<<"$hits"
    failed=1
  fi
}

inc='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]'
check "core/ includes a Qt header" "${inc}(Qt[A-Za-z]*/)?Q[A-Za-z0-9_]*(\\.h)?[>\"]" core
check "core/ includes QCustomPlot" "${inc}([^>\"]*/)?qcustomplot\\.h[>\"]" core
check "core/ or app/cli/ includes a ui/ header" "${inc}(\\.\\./)*ui/" core app/cli

hits=$(find core ui -type f \( -name '*.h' -o -name '*.hpp' \) -print0 2>/dev/null |
  xargs -0 -r grep -nHE "${inc}torch/torch\\.h[>\"]" || true)
if [[ -n $hits ]]; then
  echo "check_layering.sh: a header under core/ or ui/ includes torch/torch.h:"
  sed 's/^/  /' <<<"$hits"
  failed=1
fi

if [[ -f core/CMakeLists.txt ]] && grep -nE 'Qt[56]?::|find_package\(Qt|QCustomPlot' \
  core/CMakeLists.txt >/dev/null; then
  echo "check_layering.sh: core/CMakeLists.txt refers to Qt:"
  grep -nHE 'Qt[56]?::|find_package\(Qt|QCustomPlot' core/CMakeLists.txt | sed 's/^/  /'
  failed=1
fi

if ((failed)); then
  exit 1
fi
echo "check_layering.sh: layering OK"
