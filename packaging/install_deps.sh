#!/usr/bin/env bash
# Installs every Debian 12 package needed to build ModelDiff Studio, run its tests (core, CLI,
# GUI offscreen, sanitizers), its fuzzers and its demo. Idempotent: when everything is
# already installed it only checks, which takes well under a second.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git dpkg-dev file
  clang libclang-rt-14-dev libomp-14-dev clang-format  # fuzzers (libFuzzer) and format check
  # core
  libeigen3-dev libhdf5-dev libzip-dev zlib1g-dev nlohmann-json3-dev
  libtomlplusplus-dev libtorch-dev libopencv-dev
  libopenblas0-pthread  # fast BLAS behind libblas.so.3 (see docs/DATA.md)
  # applications
  libcli11-dev qt6-base-dev qt6-svg-dev libqcustomplot-dev qt6-qpa-plugins
  pybind11-dev python3-dev  # the Python package modeldiff (python/)
  python3-tqdm  # its progress bars (the Python tests run through them)
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev xvfb xauth
  python3 python3-numpy python3-torch python3-torchvision python3-h5py  # torchvision: resnet18 fixtures
  python3-sklearn  # bench_diff: the reference package's residual_pca uses scikit-learn's PCA
  # packaging metadata checks, the Debian package's checks (packaging/check_package.sh)
  appstream desktop-file-utils libxml2-utils lintian bash-completion
  # demo data
  dataset-fashion-mnist
)

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "install_deps.sh: must run as root (or with sudo available): $*" >&2
    exit 1
  fi
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "install_deps.sh: installing ${missing[*]}"
  as_root apt-get update
  # Only the missing ones: installed packages are left at their versions (no surprise upgrades).
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The build links libblas.so (SONAME libblas.so.3); at run time that name must resolve to
# OpenBLAS, not the netlib reference BLAS, which is several times slower. Installing
# libopenblas0-pthread selects it in auto mode; repair a manual selection of another BLAS.
blas_alt=libblas.so.3-x86_64-linux-gnu
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
current=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
if [[ $current != "$openblas" ]]; then
  echo "install_deps.sh: libblas.so.3 resolves to '${current:-nothing}'; selecting OpenBLAS"
  as_root update-alternatives --set "$blas_alt" "$openblas"
fi
