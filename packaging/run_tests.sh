#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run):
#   1. install the Debian packages (fast when already there),
#   2. static checks: clang-format, layering, desktop/AppStream metadata,
#   3. Release build with warnings as errors in build/, all tests (GUI tests offscreen),
#      the Debian package from that build (cpack) and its checks (lintian without errors,
#      control fields, contents, desktop/AppStream files): packaging/check_package.sh,
#   4. the LibTorch-only configuration of a GPU machine (packaging/README-gpu.md) in build-gpu/,
#      built and run on the CPU by its prepared check, packaging/gpu_check.sh,
#   5. ASan + UBSan build (no GUI, no benchmarks) in build-asan/, its tests with leak checks.
# Each stage prints "==> stage (Ns)". The last line is "N passed, N failed" over both test
# runs. Exits non-zero if any stage failed; later stages still run where they can, so one
# run reports every problem.
#
# Environment:
#   MODELDIFF_SHARED_FIXTURES   reference fixture folder (default: ../shared/fixtures)
#   MODELDIFF_BUILD_DIR         Release build folder (default: build)
#   MODELDIFF_ASAN_BUILD_DIR    sanitizer build folder (default: build-asan)
#   MODELDIFF_SKIP_ASAN=1       skip stage 5 (quick local runs; CI does not set it)
#   MODELDIFF_JOBS              parallel build/test jobs (default: nproc)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${MODELDIFF_BUILD_DIR:-build}
ASAN_DIR=${MODELDIFF_ASAN_BUILD_DIR:-build-asan}
JOBS=${MODELDIFF_JOBS:-$(nproc)}
export QT_QPA_PLATFORM=offscreen

failed_stages=()
tests_passed=0
tests_failed=0

# stage NAME COMMAND...: runs COMMAND, prints its duration, records a failure.
stage() {
  local name=$1 start=$SECONDS rc=0
  shift
  echo "::: $name"
  "$@" || rc=$?
  if ((rc == 0)); then
    echo "==> $name ($((SECONDS - start))s)"
  else
    echo "==> $name ($((SECONDS - start))s) FAILED (exit $rc)"
    failed_stages+=("$name")
  fi
  return "$rc"
}

# configure DIR CMAKE_ARGS...: Ninja for a new build folder; an existing one keeps its generator.
configure() {
  local dir=$1
  shift
  local args=(-S . -B "$dir" "$@")
  [[ -f $dir/CMakeCache.txt ]] || args+=(-G Ninja)
  [[ -n ${MODELDIFF_SHARED_FIXTURES:-} ]] &&
    args+=("-DMODELDIFF_SHARED_FIXTURES=$(realpath -m "$MODELDIFF_SHARED_FIXTURES")")
  cmake "${args[@]}"
}

# run_ctest DIR: runs every test of DIR and adds its counts to the totals.
run_ctest() {
  local dir=$1 log=$1/ctest-output.log rc=0
  ctest --test-dir "$dir" --output-on-failure --parallel "$JOBS" --timeout 1200 2>&1 |
    tee "$log" || rc=$?
  local counts
  counts=$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -n $counts ]]; then
    local failed total
    read -r failed _ _ _ _ total <<<"$counts"
    tests_failed=$((tests_failed + failed))
    tests_passed=$((tests_passed + total - failed))
  elif ! grep -q 'No tests were found' "$log"; then
    ((rc != 0)) || rc=1  # ctest stopped before its summary
  fi
  return "$rc"
}

# Stages run in a "||" list, where set -e does not apply: collect failures explicitly.
check_metadata() {
  local rc=0
  appstreamcli validate --no-net --pedantic packaging/io.modeldiff.Studio.metainfo.xml || rc=1
  desktop-file-validate resources/io.modeldiff.Studio.desktop || rc=1
  xmllint --noout resources/icons/modeldiff.svg resources/resources.qrc || rc=1
  return "$rc"
}

# The LibTorch-only build with the system's headers in the layout README-gpu.md gives them, and
# the GPU check's benchmark on the CPU at a small size (a minute or two on 2 cores).
torch_only() {
  local headers=build-gpu/headers
  mkdir -p "$headers/include"
  ln -sfn /usr/include/eigen3 "$headers/eigen3"
  ln -sfn /usr/include/CLI "$headers/include/CLI"
  ln -sfn /usr/include/nlohmann "$headers/include/nlohmann"
  HEADERS=$PWD/$headers TORCH_PREFIX=/usr DEVICE=cpu EXAMPLES=128 BATCH=64 WIDTH=4 \
    bash packaging/gpu_check.sh build-gpu/check
}

stage install_deps bash packaging/install_deps.sh || exit 1
stage check_format bash packaging/check_format.sh || true
stage check_layering bash packaging/check_layering.sh || true
stage check_metadata check_metadata || true

if stage configure configure "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DMODELDIFF_WARNINGS_AS_ERRORS=ON &&
  stage build cmake --build "$BUILD_DIR" -j "$JOBS"; then
  stage test run_ctest "$BUILD_DIR" || true
  stage package bash packaging/check_package.sh "$BUILD_DIR" || true
fi

stage torch_only torch_only || true

if [[ ${MODELDIFF_SKIP_ASAN:-0} != 1 ]]; then
  # -O1: Eigen at -O0 makes the numeric tests crawl; assertions stay on (no NDEBUG).
  # -g1 (line tables) is all the sanitizers' stack traces need, and compiles ~30% faster.
  if stage configure_asan configure "$ASAN_DIR" -DCMAKE_BUILD_TYPE=Debug \
    "-DCMAKE_C_FLAGS_DEBUG=-g1 -O1" "-DCMAKE_CXX_FLAGS_DEBUG=-g1 -O1" \
    -DMODELDIFF_SANITIZE=ON -DMODELDIFF_BUILD_GUI=OFF -DMODELDIFF_BUILD_BENCHMARKS=OFF &&
    stage build_asan cmake --build "$ASAN_DIR" -j "$JOBS"; then
    # The GUI is off in this build, so all its tests are core and CLI tests.
    ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      stage test_asan run_ctest "$ASAN_DIR" || true
  fi
fi

if ((${#failed_stages[@]})); then
  echo "FAILED stages: ${failed_stages[*]}"
fi
echo "$tests_passed passed, $tests_failed failed"
((${#failed_stages[@]} == 0))
