#!/usr/bin/env bash
# Installs the Debian package into a clean Debian 12 root and uses it as a new user would:
#   packaging/test_install.sh [PACKAGE.deb]
# (default: the newest build/package/modeldiff-studio_*.deb, which packaging/check_package.sh
# makes). Needs root, debootstrap (installed with apt when missing) and the Debian mirror.
#
#  1. debootstrap a minimal bookworm root in a temporary folder (minbase: only what every
#     Debian system has, so missing dependencies show);
#  2. `apt-get install ./modeldiff-studio_*.deb` there: apt resolves Depends and Recommends
#     (dataset-fashion-mnist) from Debian;
#  3. as a normal user, from / (not writable, like a desktop launcher's folder):
#     `modeldiff --version`, `--help`, `modeldiff demo --quick` (must write to the user's XDG
#     data folder), `QT_QPA_PLATFORM=offscreen modeldiff-gui --screenshot` on that run;
#  4. appstreamcli validate and desktop-file-validate on the installed files;
#  5. `apt-get purge`, then nothing of ours may be left under /usr;
#  6. removes the root (also on failure: a trap unmounts and deletes it).
# Each step prints its duration. Too slow for CI (several minutes, mostly downloads); CI runs
# packaging/check_package.sh instead.
#
# Environment:
#   MODELDIFF_DEBIAN_MIRROR   mirror for debootstrap and apt (default http://deb.debian.org/debian)
#   MODELDIFF_TEST_OUT        folder that receives the screenshot and the log of the demo
#                             (default: build/package/test_install)
#   TMPDIR                    where the temporary root goes (default /var/tmp; needs ~2.5 GB)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MIRROR=${MODELDIFF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
OUT=${MODELDIFF_TEST_OUT:-build/package/test_install}
USER_NAME=researcher
started=$SECONDS

fail() {
  echo "test_install.sh: FAILED: $*" >&2
  exit 1
}
step_start=$SECONDS
step() {
  echo "==> $* (+$((SECONDS - started))s)"
  step_start=$SECONDS
}
done_step() { echo "    done in $((SECONDS - step_start))s"; }

[[ $(id -u) -eq 0 ]] || fail "must run as root (debootstrap, chroot)"
if (($#)); then
  deb=$(realpath "$1")
else
  deb=$(ls -t build/package/modeldiff-studio_*.deb 2>/dev/null | head -n 1 || true)
  [[ -n $deb ]] || fail "no build/package/modeldiff-studio_*.deb: run packaging/check_package.sh first or pass the .deb"
  deb=$(realpath "$deb")
fi
[[ -f $deb ]] || fail "$deb: no such package"
package=$(dpkg-deb -f "$deb" Package)
echo "package: $deb ($(du -h "$deb" | cut -f1), $package $(dpkg-deb -f "$deb" Version))"
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

if ! command -v debootstrap >/dev/null; then
  step "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/modeldiff-test-root.XXXXXX")
root=$work/root
mounts=()
cleanup() {
  local rc=$? i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -R -l "${mounts[i]}" 2>/dev/null ||
      echo "test_install.sh: could not unmount ${mounts[i]}" >&2
  done
  # Only delete the root once nothing is mounted in it (rm -rf must never reach the host's /dev).
  if ! grep -q " $work/" /proc/mounts; then
    rm -rf "$work"
  else
    echo "test_install.sh: $work still has mounts; left in place" >&2
  fi
  echo "total: $((SECONDS - started))s (exit $rc)"
}
trap cleanup EXIT
mount_in_root() {  # mount_in_root ARGS... TARGET
  mkdir -p "${*: -1}"
  mount "$@"
  mounts+=("${*: -1}")
}
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

step "debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log"; fail "debootstrap"; }
done_step

mount_in_root -t proc proc "$root/proc"
mount_in_root -t sysfs sysfs "$root/sys"
# The host's /dev with its sub-mounts (pts, shm), as a slave: nothing mounted or unmounted in
# the root propagates back to the host.
mount_in_root --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF

step "apt-get update, the validators (appstream, desktop-file-utils)"
in_root apt-get update -q >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; fail "apt-get update"; }
in_root apt-get install -y -q --no-install-recommends appstream desktop-file-utils \
  >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; fail "installing the validators"; }
done_step
# What is under /usr before our package: the purge check compares with it.
in_root find /usr -xdev -not -type d | LC_ALL=C sort >"$work/usr-before.txt"

step "apt-get install ./$(basename "$deb")"
cp "$deb" "$root/tmp/"
in_root apt-get install -y -q "/tmp/$(basename "$deb")" >"$work/install.log" 2>&1 ||
  { tail -n 40 "$work/install.log"; fail "apt-get install of the package"; }
done_step
grep -E '^(Need to get|After this operation)' "$work/install.log" | sed 's/^/    /' || true
echo "    $(grep -c '^Setting up' "$work/install.log") packages set up"
in_root dpkg-query -W -f='${db:Status-Status}\n' dataset-fashion-mnist | grep -qx installed ||
  fail "the Recommends dataset-fashion-mnist was not installed"
in_root dpkg -L "$package" | LC_ALL=C sort >"$work/ours.txt"

in_root useradd --create-home --shell /bin/bash "$USER_NAME"
uid=$(in_root id -u "$USER_NAME")
home=/home/$USER_NAME
# as_user CMD...: the user's environment as a login would set it, started in / (read-only to
# the user, so a default output relative to the working directory would fail).
as_user() {
  chroot --userspec="$uid:$uid" "$root" /usr/bin/env -i HOME="$home" USER="$USER_NAME" \
    LOGNAME="$USER_NAME" PATH=/usr/local/bin:/usr/bin:/bin LC_ALL=C.UTF-8 "$@"
}

step "modeldiff --version, --help"
version=$(as_user modeldiff --version) || fail "modeldiff --version"
echo "    $version"
[[ $version == "modeldiff $(dpkg-deb -f "$deb" Version | cut -d- -f1)" ]] ||
  fail "modeldiff --version says '$version'"
as_user modeldiff --help | grep -q '^Subcommands:' || fail "modeldiff --help lists no subcommands"
as_user env QT_QPA_PLATFORM=offscreen modeldiff-gui --version >/dev/null 2>&1 ||
  fail "modeldiff-gui --version"
done_step

step "modeldiff demo --quick (as $USER_NAME, from /)"
demo=$home/.local/share/modeldiff-studio/demo
touch "$work/before-demo"
as_user modeldiff demo --quick --threads 2 >"$OUT/demo.log" 2>&1 ||
  { tail -n 30 "$OUT/demo.log"; fail "modeldiff demo --quick"; }
done_step
tail -n 3 "$OUT/demo.log" | sed 's/^/    /'
[[ -f $root$demo/run.json ]] || fail "the demo wrote no $demo/run.json (its default output folder)"
[[ -f $root$demo/report/index.html ]] || fail "the demo wrote no report in $demo"
owner=$(stat -c %u "$root$demo/run.json")
((owner == uid)) || fail "$demo/run.json belongs to uid $owner, not the user"
written_in_usr=$(find "$root/usr" -xdev -newer "$work/before-demo" -not -type d | head -n 5)
[[ -z $written_in_usr ]] || fail "the demo wrote under /usr: $written_in_usr"

step "QT_QPA_PLATFORM=offscreen modeldiff-gui --screenshot on the demo's run"
as_user env QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp/runtime-$USER_NAME \
  modeldiff-gui --screenshot "$home/demo.png" --comparison Shirt --direction A-B:1 "$demo" \
  >"$OUT/gui.log" 2>&1 || { cat "$OUT/gui.log"; fail "modeldiff-gui --screenshot"; }
done_step
cp "$root$home/demo.png" "$OUT/demo.png"
# Width and height from the PNG header (bytes 16-23, big-endian).
read -r width height < <(od -An -tu1 -j16 -N8 "$OUT/demo.png" |
  awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}')
bytes=$(stat -c %s "$OUT/demo.png")
echo "    screenshot: ${width}x${height} pixels, $bytes bytes ($OUT/demo.png)"
[[ $(head -c 8 "$OUT/demo.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
  fail "the screenshot is not a PNG"
((width == 1600 && height == 1000)) || fail "the screenshot is ${width}x$height, not 1600x1000"
((bytes > 20000)) || fail "the screenshot is only $bytes bytes: an empty window?"

step "appstreamcli validate, desktop-file-validate (installed files)"
in_root appstreamcli validate --no-net /usr/share/metainfo/io.modeldiff.Studio.metainfo.xml ||
  fail "appstreamcli validate"
in_root desktop-file-validate /usr/share/applications/io.modeldiff.Studio.desktop ||
  fail "desktop-file-validate"
done_step

if in_root test -d /usr/lib/python3/dist-packages/modeldiff; then
  as_user python3 -c 'from modeldiff import ModelDiff' || fail "python3: from modeldiff import ModelDiff"
else
  echo "    (the package has no Python module: no import check)"
fi

step "apt-get purge $package"
in_root apt-get purge -y -q "$package" >"$work/purge.log" 2>&1 ||
  { tail -n 30 "$work/purge.log"; fail "apt-get purge"; }
done_step
left=()
while read -r path; do
  [[ $path == /usr/* ]] || continue
  if [[ -L $root$path || -f $root$path ]]; then
    left+=("$path")
  elif [[ -d $root$path ]] && ! in_root dpkg -S "$path" >/dev/null 2>&1; then
    left+=("$path/")  # a folder of ours that no other package owns
  fi
done <"$work/ours.txt"
while read -r path; do left+=("$path"); done < <(in_root find /usr -xdev -iname '*modeldiff*')
((${#left[@]} == 0)) || fail "left under /usr after the purge: ${left[*]}"
# Files that appeared under /usr and stayed must belong to the dependencies apt installed
# (dpkg's file lists; with the merged /usr, dpkg's /bin/x is /usr/bin/x).
in_root find /usr -xdev -not -type d | LC_ALL=C sort >"$work/usr-after.txt"
cat "$root"/var/lib/dpkg/info/*.list | sed -E 's#^/(bin|sbin|lib|lib64)/#/usr/\1/#' |
  LC_ALL=C sort -u >"$work/owned.txt"
stray=$(LC_ALL=C comm -13 "$work/usr-before.txt" "$work/usr-after.txt" |
  LC_ALL=C comm -23 - "$work/owned.txt" | grep -vE '\.(pyc|cache)$|/__pycache__/' | head -n 20 || true)
[[ -z $stray ]] || echo "    under /usr, owned by no package (not ours): "$stray
echo "    nothing of $package left under /usr ($(wc -l <"$work/ours.txt") paths checked)"

echo "test_install.sh: OK"
