#!/usr/bin/env bash
# Makes the README's screenshots without a display: the main view, the Projections tab and the
# example inspector from the full planted demo (`modeldiff demo`), and the transformation panel,
# the Job panel, an image grid as a figure and a selection from the full augmentation study
# (`modeldiff demo augmentation`):
#   packaging/make_screenshots.sh [BUILD_DIR] [RUN_DIR] [DEMO_DIR]
#   (defaults: build, out/augmentation, out/demo)
# Each runs first when its folder holds no results (about 5 and 11 minutes on 2 cores); a run
# that exists is reused (the `--run` shot reruns the study: models and TRAK features are kept).
# The set-up dialog's screenshot comes from the GUI tests (MODELDIFF_SCREENSHOT_DIR).
set -euo pipefail

build=${1:-build}
run=${2:-out/augmentation}
demo=${3:-out/demo}
docs=$(cd "$(dirname "$0")/.." && pwd)/docs
cli=$build/app/modeldiff
gui=$build/app/modeldiff-gui
export QT_QPA_PLATFORM=offscreen

# The demo: class Shirt (where the patch is planted), direction 1 of A minus B; over all
# validation examples on the Projections tab; a patched validation shirt in the inspector.
[[ -f $demo/run.json ]] || "$cli" demo -o "$demo"
"$gui" --screenshot "$docs/gui_run.png" --comparison Shirt --direction A-B:1 "$demo"
"$gui" --screenshot "$docs/gui_projections.png" --direction A-B:1 --tab projections "$demo"
"$gui" --screenshot "$docs/gui_inspector.png" --comparison Shirt --direction A-B:1 \
  --inspect 1817 "$demo"

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
