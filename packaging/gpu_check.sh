#!/usr/bin/env bash
# The GPU line of the TRAK benchmark, as one prepared run on a machine with a CUDA PyTorch
# (packaging/README-gpu.md): builds the LibTorch-only configuration against python3's torch,
# then runs bench_trak's featurization section on the paper's ResNet-9 (width 64, 3 x 32 x 32
# inputs, k = 2048) on the GPU, and writes what it printed to OUT_DIR/gpu_check.log.
#
#   packaging/gpu_check.sh [OUT_DIR]      (default: $OUT, else /tmp)
#
# The headers of Eigen, CLI11 and nlohmann_json travel in build-gpu-headers/ (made on the
# development machine as README-gpu.md says; a device run carries it). For comparison: traker
# 0.3.2 featurizes that ResNet-9 at about 2,400 examples/s on an H100 with its fastest
# projector. DEVICE=cpu runs the same on the CPU (to try the script without a GPU);
# EXAMPLES, BATCH and WIDTH change the sizes, HEADERS the headers' folder, TORCH_PREFIX where
# CMake finds LibTorch (default: python3's torch). CI runs it that way on the CPU, so the
# LibTorch-only build and this script keep working between GPU runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp}}
mkdir -p "$out"
log=$out/gpu_check.log
device=${DEVICE:-cuda}
examples=${EXAMPLES:-16384}
batch=${BATCH:-512}
width=${WIDTH:-64}
headers=${HEADERS:-$PWD/build-gpu-headers}
jobs=$(nproc)
exec > >(tee "$log") 2>&1

[[ -d $headers/eigen3 && -d $headers/include/CLI && -d $headers/include/nlohmann ]] || {
  echo "gpu_check.sh: $headers lacks eigen3/, include/CLI/ or include/nlohmann/ (README-gpu.md)"
  exit 2
}
prefix=${TORCH_PREFIX:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')}
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' || true
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader || true

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
start=$(date +%s)
cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMODELDIFF_TORCH_ONLY=ON \
  -DCMAKE_PREFIX_PATH="$prefix" -DEIGEN3_INCLUDE_DIR="$headers/eigen3" \
  -DCLI11_INCLUDE_DIR="$headers/include" -DNLOHMANN_JSON_INCLUDE_DIR="$headers/include"
cmake --build build-gpu -j "$jobs" --target bench_trak
echo "built in $(($(date +%s) - start)) s"

build-gpu/benchmarks/bench_trak --only featurization --device "$device" \
  --model "resnet9:width=$width" --input 3x32x32 --proj-dim 2048 --examples "$examples" \
  --batch "$batch" --baseline-examples 256 --reps 3 --workdir build-gpu/bench_work
