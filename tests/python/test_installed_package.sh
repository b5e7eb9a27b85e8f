#!/usr/bin/env bash
# `cmake --install` puts the package where Debian's python3 finds it:
#   test_installed_package.sh BUILD_DIR PYTHON
# Installs the `python` component into a temporary prefix, then imports it from another folder
# with only <prefix>/lib/python3/dist-packages on the path (Debian's python3 has that folder
# under /usr on its default path) and runs a from-scores diff with it.
set -euo pipefail
build=$1 python=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" --component python >/dev/null
site=$prefix/lib/python3/dist-packages
[[ -f $site/modeldiff/__init__.py ]] || { echo "no $site/modeldiff/__init__.py" >&2; exit 1; }
cd "$prefix"
PYTHONPATH=$site "$python" - "$site" <<'PY'
import pathlib, sys
import numpy as np
import modeldiff
from modeldiff import ModelDiff
site = pathlib.Path(sys.argv[1]).resolve()
where = pathlib.Path(modeldiff.__file__).resolve()
assert site in where.parents, f"imported {where}, not the installed package under {site}"
rng = np.random.default_rng(0)
a = rng.standard_normal((40, 60)).astype(np.float32)
b = a + 0.1 * rng.standard_normal((40, 60)).astype(np.float32)
out = ModelDiff().get_A_minus_B_from_scores(a, b, num_pca_comps=2)
assert out["directions"].shape == (2, 60), out["directions"].shape
print(f"imported {where}; directions {out['directions'].shape}")
PY
