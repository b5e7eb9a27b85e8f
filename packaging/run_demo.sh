#!/usr/bin/env bash
# First thing to run on a fresh checkout: installs the Debian packages, builds the
# `modeldiff` command-line tool (Release) and runs the demo job, main_job() below.
#
# Environment:
#   MODELDIFF_SHARED_FIXTURES   reference fixture folder for the tests (default: ../shared/fixtures)
#   MODELDIFF_BUILD_DIR         build folder (default: build, shared with run_tests.sh)
#   MODELDIFF_JOBS              parallel build jobs (default: nproc)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${MODELDIFF_BUILD_DIR:-build}
JOBS=${MODELDIFF_JOBS:-$(nproc)}
FIXTURES=${MODELDIFF_SHARED_FIXTURES:-../shared/fixtures}
MODELDIFF=$BUILD_DIR/app/modeldiff

# ---------------------------------------------------------------------------------------
# The demo job. Runs from the repository root with $MODELDIFF built.
main_job() {
  # The built-in Fashion-MNIST project: trains 2 x 8 small CNNs (A sees a planted patch on
  # 30% of the shirts, B has the patch region blanked), TRAK for both, ModelDiff overall and
  # per class, HTML report. About 5 minutes on 2 cores. Passive OpenMP waiting keeps LibTorch's
  # and OpenBLAS's threads from spinning against each other on small machines.
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} "$MODELDIFF" demo --out out/demo
  echo "report: $(realpath out/demo/report/index.html)"
}
# ---------------------------------------------------------------------------------------

step() { echo "==> $*"; }

step "installing dependencies"
bash packaging/install_deps.sh

step "configuring $BUILD_DIR"
args=(-S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMODELDIFF_BUILD_GUI=ON)
[[ -f $BUILD_DIR/CMakeCache.txt ]] || args+=(-G Ninja)  # an existing folder keeps its generator
[[ -n ${MODELDIFF_SHARED_FIXTURES:-} ]] &&
  args+=("-DMODELDIFF_SHARED_FIXTURES=$(realpath -m "$MODELDIFF_SHARED_FIXTURES")")
cmake "${args[@]}"

step "building modeldiff"
targets=$(cmake --build "$BUILD_DIR" --target help)
if ! grep -qE '^(\.\.\. )?modeldiff(: |$)' <<<"$targets"; then
  echo "run_demo.sh: this checkout has no 'modeldiff' target (app/CMakeLists.txt)" >&2
  exit 1
fi
# The Python package too where it is configured (python/): afterwards
# `PYTHONPATH=$BUILD_DIR/python /usr/bin/python3 -c 'from modeldiff import ModelDiff'` works.
build_targets=(modeldiff)
grep -qE '^(\.\.\. )?modeldiff_python(: |$)' <<<"$targets" && build_targets+=(modeldiff_python)
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${build_targets[@]}"

step "running the demo"
main_job
