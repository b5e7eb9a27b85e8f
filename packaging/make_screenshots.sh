#!/usr/bin/env bash
# Makes the README's screenshots of the transformation panel, the Job panel, an image grid as a
# figure and a selection from the full augmentation study (`modeldiff demo augmentation`),
# without a display:
#   packaging/make_screenshots.sh [BUILD_DIR] [RUN_DIR]      (defaults: build, out/augmentation)
# The study runs first when RUN_DIR holds no results (about 11 minutes on 2 cores); a run that
# exists is reused (the `--run` shot reruns it: models and TRAK features are kept).
set -euo pipefail

build=${1:-build}
run=${2:-out/augmentation}
docs=$(cd "$(dirname "$0")/.." && pwd)/docs
cli=$build/app/modeldiff
gui=$build/app/modeldiff-gui
export QT_QPA_PLATFORM=offscreen

[[ -f $run/run.json ]] || "$cli" demo augmentation -o "$run"
run=$(cd "$run" && pwd)
project=$(mktemp --suffix=.json)
trap 'rm -f "$project"' EXIT
# The study's project with its output where the run is (a project's relative paths resolve
# against its file).
"$cli" demo augmentation --print-project -o "$run" >"$project"
# The sneakers' direction, named as the study's finding names it (b_minus_a:class=7): the first
# of "not augmented minus augmented" whose top validation images are mostly sneakers (its number
# depends on the CPU the models were trained on). The GUI resolves it and says which it showed.
sneakers=B-A:class=7
# The panel mirrors the direction's top validation images (the study's finding).
shown=$("$gui" --screenshot "$docs/gui_counterfactual.png" --comparison 1 --direction $sneakers \
  --test flip:alpha=1 --test-target 7 --test-strengths 0,0.5,1 --test-images direction "$run")
echo "$shown"
k=$(sed -n 's/.*B-A direction \([0-9]*\)$/\1/p' <<<"$shown")
"$gui" --screenshot "$docs/gui_grid_figure.png" --grid top-val --comparison 1 \
  --direction $sneakers "$run"
"$gui" --screenshot "$docs/gui_job.png" --run --comparison 1 --direction $sneakers "$project"
# The selection: the validation examples projecting above 0.1 on that direction (mostly sneakers)
# on the Projections tab, whose axes are directions 1 and 2. It is kept in the run folder
# (diff/selection-N): the one made here is removed.
case $k in
  1) region=0.1,-1,1,1 ;;
  2) region=-1,0.1,1,1 ;;
  *) echo "make_screenshots.sh: the sneakers are direction $k, not on the Projections tab" >&2
     exit 1 ;;
esac
before=$(ls -d "$run"/diff/selection-* 2>/dev/null || true)
"$gui" --screenshot "$docs/gui_selection.png" --comparison 1 --direction $sneakers \
  --select "$region" "$run"
for d in "$run"/diff/selection-*; do
  if [[ -d $d ]] && ! grep -qxF "$d" <<<"$before"; then rm -r "$d"; fi
done
