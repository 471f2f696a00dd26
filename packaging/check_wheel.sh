#!/usr/bin/env bash
# Check the wheel a user would install: build it, install it into a fresh virtual environment
# (CPU PyTorch, chosen as packaging/install_env.py chooses it; no optional extras), then run
# the installed programs from outside the checkout, so nothing can come from the source tree:
#   dpsom-studio --smoke-test   (offscreen: demo cohort, a 4x4 map trained 20 steps, a picture)
#   dpsom train demo:table      (then dpsom info on the project it wrote)
#
# Usage: packaging/check_wheel.sh [WORKDIR]     (default: a new temporary folder)
# Environment: PYTHON (default python3), TORCH_INDEX_URL (see packaging/install_env.py).
# Exit status: 0 when every check passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-$(mktemp -d "${TMPDIR:-/tmp}/dpsom-wheel.XXXXXX")}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
say() { echo "== $*"; }

say "building the wheel"
rm -rf "$WORK/wheel"
"$PYTHON" -m pip wheel --quiet --no-deps -w "$WORK/wheel" "$ROOT"
WHEEL=$(ls "$WORK"/wheel/dpsom_studio-*.whl)
say "wheel: $WHEEL"

say "installing it into a fresh environment"
rm -rf "$WORK/venv"
"$PYTHON" "$ROOT/packaging/install_env.py" "$WORK/venv" --torch cpu --package "$WHEEL"
BIN="$WORK/venv/bin"
[ -d "$BIN" ] || BIN="$WORK/venv/Scripts"   # Windows

# Run from the work folder with a clean path: the checkout must not be importable.
cd "$WORK"
unset PYTHONPATH
export QT_QPA_PLATFORM=offscreen
WHERE=$("$BIN/python" -c 'import dpsom_gui, core; print(dpsom_gui.__file__); print(core.__file__)')
case "$WHERE" in
  *"$ROOT"*) echo "check_wheel: the packages were imported from the checkout:"; echo "$WHERE"; exit 1 ;;
esac

say "dpsom-studio --smoke-test"
"$BIN/dpsom-studio" --settings "$WORK/gui/settings.ini" --smoke-test "$WORK/smoke.png"
[ -s "$WORK/smoke.png" ] || { echo "check_wheel: the smoke test wrote no picture"; exit 1; }

say "dpsom train demo:table"
"$BIN/dpsom" train demo:table --out "$WORK/table.h5" --grid 4x4 --max-steps 20 --quiet
"$BIN/dpsom" info "$WORK/table.h5" | tee "$WORK/info.txt"
grep -q "4x4" "$WORK/info.txt" || { echo "check_wheel: dpsom info does not show the 4x4 map"; exit 1; }

say "the installed wheel works (outputs in $WORK)"
