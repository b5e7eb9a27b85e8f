#!/usr/bin/env bash
# Enforces the dependency direction of docs/ARCHITECTURE.md: core <- ui <- app/gui and
# core <- app/cli.
#  - core/ includes no Qt or QCustomPlot header and links no Qt target (it builds without Qt);
#  - core/ and app/cli/ include nothing from ui/;
#  - LibTorch stays out of widely included headers: no header (*.h) under core/ or ui/
#    includes torch/torch.h, except private implementation headers in a detail/ folder,
#    which only files of their own module (the folder above detail/) may include;
#  - nothing that ui/ or app/gui/ includes, directly or through project headers, includes
#    a LibTorch header (torch/, ATen/, c10/): they clash with Qt's `slots` macro.
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

hits=$(find core ui -type f \( -name '*.h' -o -name '*.hpp' \) -not -path '*/detail/*' -print0 \
  2>/dev/null | xargs -0 -r grep -nHE "${inc}torch/torch\\.h[>\"]" || true)
if [[ -n $hits ]]; then
  echo "check_layering.sh: a header under core/ or ui/ includes torch/torch.h:"
  sed 's/^/  /' <<<"$hits"
  failed=1
fi

# The include graph checks, in Debian's python3 (always installed with the build deps).
/usr/bin/python3 - <<'PY' || failed=1
import os, re, sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
TORCH = re.compile(r'^(torch|ATen|c10)/')
EXTS = ('.h', '.hpp', '.cpp', '.cc', '.inl')
files = {}
for top in ('core', 'ui', 'app'):
    for root, dirs, names in os.walk(top):
        for n in names:
            if n.endswith(EXTS):
                path = os.path.join(root, n)
                with open(path, encoding='utf-8', errors='replace') as f:
                    files[path] = INCLUDE.findall(f.read())

def resolve(src, name):
    """The project file a quoted include names (same folder, repository root, ui/), or None."""
    for base in (os.path.dirname(src), '.', 'ui'):
        p = os.path.normpath(os.path.join(base, name))
        if p in files:
            return p
    return None

bad = []
for src, incs in sorted(files.items()):
    for kind, name in incs:
        target = resolve(src, name) if kind == '"' else None
        if target and '/detail/' in target:
            module = target.split('/detail/')[0] + '/'
            if not src.startswith(module):
                bad.append(f'{src}: includes {target}, private to {module}')

def torch_path(start):
    """A chain of includes from start to a LibTorch header, or None."""
    seen, stack = {start}, [(start, [start])]
    while stack:
        cur, chain = stack.pop()
        for kind, name in files.get(cur, []):
            if TORCH.match(name):
                return chain + [name]
            nxt = resolve(cur, name) if kind == '"' else None
            if nxt and nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, chain + [nxt]))
    return None

for src in sorted(files):
    if src.startswith(('ui/', 'app/gui/')):
        chain = torch_path(src)
        if chain:
            bad.append(f'{src}: reaches a LibTorch header: ' + ' -> '.join(chain))

for line in bad:
    print(f'check_layering.sh: {line}')
sys.exit(1 if bad else 0)
PY

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
