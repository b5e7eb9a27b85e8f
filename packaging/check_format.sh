#!/usr/bin/env bash
# Checks every C++ source of the project against .clang-format (Debian's clang-format 14).
# Lists the files that need formatting and exits 1 if there are any. To fix them:
#   clang-format -i <files>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLANG_FORMAT=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [[ -z $CLANG_FORMAT ]]; then
  echo "check_format.sh: clang-format not found (run packaging/install_deps.sh)" >&2
  exit 2
fi

mapfile -d '' files < <(
  find core ui app tests benchmarks \
    -type d \( -path tests/fuzz/corpus -o -name 'build*' -o -name '.*' \) -prune -o \
    -type f \( -name '*.h' -o -name '*.cpp' \) -print0 2>/dev/null | sort -z)

bad=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done

if ((${#bad[@]})); then
  echo "check_format.sh: ${#bad[@]} of ${#files[@]} files are not clang-formatted:"
  printf '  %s\n' "${bad[@]}"
  echo "fix with: $CLANG_FORMAT -i ${bad[*]}"
  exit 1
fi
echo "check_format.sh: ${#files[@]} files formatted"
