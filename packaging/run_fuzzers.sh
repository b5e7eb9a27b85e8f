#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_<name>.cpp -> fuzz_<name>) with clang, ASan
# and UBSan in build-fuzz/, then fuzzes each for SECONDS_PER_TARGET, one at a time.
#   packaging/run_fuzzers.sh [SECONDS_PER_TARGET (default 300)] [TARGET...]   (default: all)
# Each target starts from a scratch copy of tests/fuzz/corpus/<name> (when present), so the
# checked-in corpus is never modified; the grown corpus and any crashing input are kept in
# build-fuzz/fuzz-runs/<name>/. Exits non-zero if any target crashed, leaked or timed out.
# Not part of CI (too long); run it after changing a reader.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_TARGET=${1:-300}
shift || true
if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
BUILD_DIR=${MODELDIFF_FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${MODELDIFF_JOBS:-$(nproc)}

targets=("$@")
if ((${#targets[@]} == 0)); then
  for src in tests/fuzz/fuzz_*.cpp; do
    [[ -e $src ]] && targets+=("$(basename "$src" .cpp)")
  done
fi
if ((${#targets[@]} == 0)); then
  echo "run_fuzzers.sh: no fuzz targets (tests/fuzz/fuzz_*.cpp)"
  exit 0
fi

echo "==> configuring $BUILD_DIR"
args=(-S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODELDIFF_FUZZ=ON
  -DMODELDIFF_BUILD_GUI=OFF -DMODELDIFF_BUILD_BENCHMARKS=OFF)
[[ -f $BUILD_DIR/CMakeCache.txt ]] || args+=(-G Ninja)
CC=clang CXX=clang++ cmake "${args[@]}"
if ! grep -qE '^CMAKE_CXX_COMPILER:[A-Z]+=.*clang' "$BUILD_DIR/CMakeCache.txt"; then
  echo "run_fuzzers.sh: $BUILD_DIR was configured with another compiler; delete it" >&2
  exit 2
fi

echo "==> building ${targets[*]}"
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}"

# The readers under test are single-threaded; extra threads only slow each execution.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

failures=0
results=()
for name in "${targets[@]}"; do
  exe=$(find "$BUILD_DIR" -type f -name "$name" -perm -u+x | head -n 1)
  if [[ -z $exe ]]; then
    echo "run_fuzzers.sh: no executable $name in $BUILD_DIR" >&2
    results+=("$name: MISSING")
    failures=$((failures + 1))
    continue
  fi
  work=$BUILD_DIR/fuzz-runs/$name
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  [[ -d tests/fuzz/corpus/$name ]] && cp -a "tests/fuzz/corpus/$name/." "$work/corpus/"

  echo "==> fuzzing $name for ${SECONDS_PER_TARGET}s ($(find "$work/corpus" -type f | wc -l) seed inputs)"
  start=$SECONDS
  rc=0
  "$exe" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" \
    >"$work/log" 2>&1 || rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$work/log" | grep -oE '[0-9]+$' |
    tail -n 1 || true)
  [[ -n $execs ]] ||
    execs=$(grep -oE '^#[0-9]+' "$work/log" | tail -n 1 | tr -d '#' || true)
  line="$name: ${execs:-0} executions in $((SECONDS - start))s,"
  line+=" corpus $(find "$work/corpus" -type f | wc -l) inputs:"
  if ((rc == 0)); then
    results+=("$line ok")
  else
    failures=$((failures + 1))
    artifacts=$(find "$work/artifacts" -type f | tr '\n' ' ')
    results+=("$line FAILED (exit $rc) ${artifacts:+input: $artifacts}log: $work/log")
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$work/log" | head -n 20 || true
  fi
  echo "${results[-1]}"
done

echo "==> results"
printf '  %s\n' "${results[@]}"
if ((failures)); then
  echo "$failures of ${#targets[@]} fuzz targets failed; reproduce with: <exe> <input>"
  exit 1
fi
echo "all ${#targets[@]} fuzz targets ok"
