#!/usr/bin/env bash
# The packaging step (CI runs it from packaging/run_tests.sh, after the Release build):
#   packaging/check_package.sh [BUILD_DIR]      (default: $MODELDIFF_BUILD_DIR or build)
# builds BUILD_DIR/package/modeldiff-studio_<version>_<arch>.deb with cpack, then checks it:
#   - lintian: no errors (warnings and notes are printed);
#   - control fields: Maintainer "Name <address>", Depends from dpkg-shlibdeps plus OpenBLAS,
#     Recommends dataset-fashion-mnist, Version = the latest entry of packaging/changelog;
#   - contents: executables, the LibTorch subcommands' module, desktop entry, hicolor icon,
#     AppStream metainfo, demo architecture, man pages, bash completion, copyright,
#     changelog.Debian.gz;
#   - the packaged files: appstreamcli validate, desktop-file-validate, man pages without groff
#     warnings, the bash completion completes;
#   - the packaged modeldiff, run from the unpacked tree: it links no LibTorch, loads its
#     LibTorch subcommands from the installed module, `demo` finds the installed architecture
#     and writes to the XDG data folder by default.
# packaging/test_install.sh (slow, not in CI) installs the package into a clean Debian root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${1:-${MODELDIFF_BUILD_DIR:-build}}
OUT=$BUILD_DIR/package
errors=0
check() {  # check DESCRIPTION COMMAND...: runs COMMAND, reports a failure and carries on.
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
  else
    echo "FAILED: $what"
    errors=$((errors + 1))
  fi
}

[[ -f $BUILD_DIR/CPackConfig.cmake ]] || {
  echo "check_package.sh: no $BUILD_DIR/CPackConfig.cmake: configure and build $BUILD_DIR first" >&2
  exit 1
}
rm -f "$OUT"/modeldiff-studio_*.deb
cpack --config "$BUILD_DIR/CPackConfig.cmake" -G DEB -B "$OUT" >"$OUT.log" 2>&1 || {
  cat "$OUT.log"
  echo "check_package.sh: cpack failed" >&2
  exit 1
}
deb=$(ls "$OUT"/modeldiff-studio_*.deb)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb -I "$deb" control | sed 's/^/  /'

# --- lintian
lintian_log=$OUT/lintian.log
lintian_rc=0
lintian --fail-on error --tag-display-limit 0 --display-info --pedantic --show-overrides \
  "$deb" >"$lintian_log" 2>&1 || lintian_rc=$?
grep -v '^running with root privileges' "$lintian_log" | sed 's/^/  lintian: /' || true
echo "lintian: $(grep -c '^E: ' "$lintian_log" || true) errors, $(grep -c '^W: ' "$lintian_log" || true) warnings"
# Exit status 0: ran and found no error (a tag of error level, or a failure of lintian itself).
check "lintian: no errors" test "$lintian_rc" -eq 0

# --- control fields
field() { dpkg-deb -f "$deb" "$1"; }
maintainer_ok() { [[ $(field Maintainer) =~ ^[^\<\>]+\ \<[^@\ ]+@[^@\ ]+\>$ ]]; }
check "Maintainer is 'Name <address>'" maintainer_ok
depends=$(field Depends)
from_shlibdeps() {
  grep -qE 'libc6 \(>= ' <<<"$depends" && grep -qE 'libtorch[0-9.]+ \(>= ' <<<"$depends" &&
    grep -qE 'libqt6widgets6 \(>= ' <<<"$depends"
}
check "Depends comes from dpkg-shlibdeps (libc6, libtorch, Qt, with versions)" from_shlibdeps
check "Depends on OpenBLAS (libopenblas0-pthread)" grep -qw libopenblas0-pthread <<<"$depends"
check "Recommends dataset-fashion-mnist" grep -qx dataset-fashion-mnist <<<"$(field Recommends)"
changelog_version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' packaging/changelog)
check "Version $(field Version) is the latest entry of packaging/changelog ($changelog_version)" \
  test "$(field Version)" = "$changelog_version"

# --- contents
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for path in /usr/bin/modeldiff /usr/bin/modeldiff-gui \
  /usr/share/applications/io.modeldiff.Studio.desktop \
  /usr/share/icons/hicolor/scalable/apps/io.modeldiff.Studio.svg \
  /usr/share/metainfo/io.modeldiff.Studio.metainfo.xml /usr/share/modeldiff/demo_cnn.pt \
  /usr/share/man/man1/modeldiff.1.gz /usr/share/man/man1/modeldiff-gui.1.gz \
  /usr/share/bash-completion/completions/modeldiff \
  /usr/share/doc/modeldiff-studio/copyright /usr/share/doc/modeldiff-studio/changelog.Debian.gz; do
  check "contains $path" grep -qx "$path" <<<"$contents"
done
# The LibTorch subcommands' module, private to modeldiff: /usr/lib/<multiarch>/modeldiff.
check "contains the LibTorch subcommands' module (/usr/lib/*/modeldiff/modeldiff-torch-commands.so)" \
  grep -qE '^/usr/lib/([^/]+/)?modeldiff/modeldiff-torch-commands\.so$' <<<"$contents"
# The Python package, where the build has it (python/): where Debian's python3 finds it.
if grep -q '^MODELDIFF_BUILD_PYTHON:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
  check "contains the Python package (/usr/lib/python3/dist-packages/modeldiff)" \
    grep -qE '^/usr/lib/python3/dist-packages/modeldiff/_modeldiff\..*\.so$' <<<"$contents"
  check "Depends on python3 (its extension modules' version)" \
    grep -q 'python3 (<< ' <<<"$(dpkg-deb -f "$deb" Depends)"
fi
only_usr() { ! grep -vE '^/(usr/.*)?$' <<<"$contents" | grep -q .; }
check "installs nothing outside /usr" only_usr

# --- the packaged files
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
check "appstreamcli validate (packaged metainfo)" \
  appstreamcli validate --no-net --pedantic "$root/usr/share/metainfo/io.modeldiff.Studio.metainfo.xml"
check "desktop-file-validate (packaged desktop entry)" \
  desktop-file-validate "$root/usr/share/applications/io.modeldiff.Studio.desktop"
for page in "$root"/usr/share/man/man1/*.1.gz; do
  # The check lintian makes, run here to show the messages.
  warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z \
    "$page" 2>&1 >/dev/null || echo "man failed")
  check "$(basename "$page") renders without warnings${warnings:+: $warnings}" test -z "$warnings"
done
# The subcommands the packaged modeldiff lists (on one line), or its --help's failure.
packaged_commands() {
  local help
  help=$("$root/usr/bin/modeldiff" --help) || return 1
  sed -n '/^Subcommands:/,$s/^  \([a-z]\+\) .*/\1/p' <<<"$help" | paste -sd ' '
}
every_command_documented() {
  local page command commands rc=0
  page=$(zcat "$root/usr/share/man/man1/modeldiff.1.gz")
  commands=$(packaged_commands) || return 1
  for command in $commands; do
    grep -q "^\.SS \"modeldiff $command " <<<"$page" || { echo "  no section for $command"; rc=1; }
  done
  return "$rc"
}
check "every modeldiff command has a section in modeldiff.1" every_command_documented
completion=$root/usr/share/bash-completion/completions/modeldiff
check "bash completion parses" bash -n "$completion"
if [[ -f /usr/share/bash-completion/bash_completion ]]; then
  complete_line() {
    bash -c 'source /usr/share/bash-completion/bash_completion; source "$1"; shift
      COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"
      COMP_POINT=${#COMP_LINE}; _modeldiff; echo "${COMPREPLY[*]}"' _ "$completion" "$@"
  }
  check "completion: 'modeldiff de' -> demo" test "$(complete_line modeldiff de)" = demo
  check "completion: 'modeldiff diff --so' -> --solver" \
    test "$(complete_line modeldiff diff --so)" = --solver
  check "completion: 'modeldiff diff --solver e' -> exact" \
    test "$(complete_line modeldiff diff --solver e)" = exact
else
  echo "FAILED: no /usr/share/bash-completion/bash_completion (install_deps.sh installs it)"
  errors=$((errors + 1))
fi

# --- the packaged modeldiff: installed layout and the demo's default output folder
modeldiff=$root/usr/bin/modeldiff
links_no_libtorch() { ! readelf -d "$modeldiff" | grep -E 'NEEDED.*libtorch'; }
check "modeldiff links no LibTorch (diff and inspect start without it)" links_no_libtorch
check "modeldiff loads its LibTorch subcommands from the installed module" \
  test "$(packaged_commands)" = "diff inspect trak train run demo counterfactual validate"
project_field() {  # project_field KEY ENV...: a field of `demo --print-project` under ENV
  local key=$1
  shift
  (cd / && env -u XDG_DATA_HOME -u MODELDIFF_DEMO_ARCHITECTURE "$@" "$modeldiff" demo \
    --print-project) | python3 -c "import json, sys; p = json.load(sys.stdin); print(eval('p' + sys.argv[1]))" "$key"
}
check "demo writes to \$XDG_DATA_HOME/modeldiff-studio/demo" test \
  "$(project_field '["output"]' XDG_DATA_HOME="$root/xdg")" = "$root/xdg/modeldiff-studio/demo"
check "demo writes to ~/.local/share/modeldiff-studio/demo without XDG_DATA_HOME" test \
  "$(project_field '["output"]' HOME="$root/home")" = "$root/home/.local/share/modeldiff-studio/demo"
check "demo uses the installed architecture (<prefix>/share/modeldiff/demo_cnn.pt)" test \
  "$(project_field '["A"]["architecture"]' HOME="$root/home")" = "$root/usr/share/modeldiff/demo_cnn.pt"

if ((errors)); then
  echo "check_package.sh: $errors check(s) failed"
  exit 1
fi
echo "check_package.sh: all checks passed"
