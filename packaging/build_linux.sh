#!/usr/bin/env bash
# Build DPSOM Studio for Linux: the PyInstaller folder, a .tar.gz of it and a .deb.
#
# Usage: packaging/build_linux.sh [--python PATH] [--fresh-venv] [--skip-bundle] [--no-deb]
#
#   --python PATH   the Python whose packages are frozen (default: .venv/bin/python when it
#                   has PyInstaller, otherwise a build venv is made, as with --fresh-venv)
#   --fresh-venv    make build/venv with packaging/install_env.py (the pinned PyTorch, CPU
#                   build unless TORCH=cuda; the package with its `parquet` extra) plus
#                   packaging/requirements-build.txt (see packaging/README.md)
#   --skip-bundle   reuse dist/dpsom-studio from an earlier run (only re-package)
#   --no-deb        stop after the .tar.gz
#
# Environment: TORCH=cpu|cuda (for --fresh-venv, default cpu), TORCH_INDEX_URL and
# TORCH_CUDA_INDEX_URL (see packaging/install_env.py), DEB_MAINTAINER,
# DEB_COMPRESSION: zstd (default; dpkg >= 1.21.18: Debian 12, Ubuntu 22.04), xz (20 % smaller,
# ~25x slower to build, any dpkg) or gzip.
#
# Outputs, all under dist/:
#   dist/dpsom-studio/                                the bundle (run ./dpsom-studio, ./dpsom)
#   dist/dpsom-studio-VERSION-linux-ARCH.tar.gz       the bundle in a dpsom-studio-VERSION/ folder
#   dist/dpsom-studio_VERSION_DEBARCH.deb             installs to /opt/dpsom-studio
# Work files go to build/ (build/pyinstaller, build/deb).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/packaging/build_linux.sh"
cd "$ROOT"
PYTHON="" FRESH=0 SKIP_BUNDLE=0 DEB=1
TORCH="${TORCH:-cpu}"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYTHON="$2"; shift 2 ;;
    --fresh-venv) FRESH=1; shift ;;
    --skip-bundle) SKIP_BUNDLE=1; shift ;;
    --no-deb) DEB=0; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {print}' "$SELF"; exit 0 ;;
    *) echo "build_linux: unknown option $1" >&2; exit 2 ;;
  esac
done

say() { echo "== $*"; }
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
T0=$(date +%s)

# ----------------------------------------------------------------------------- environment
if [ -z "$PYTHON" ] && [ "$FRESH" = 0 ] && [ -x .venv/bin/python ] \
   && .venv/bin/python -c "import PyInstaller, torch, PySide6" 2>/dev/null; then
  PYTHON=.venv/bin/python
fi
if [ -z "$PYTHON" ]; then
  say "making build/venv (TORCH=$TORCH)"
  python3 packaging/install_env.py build/venv --torch "$TORCH" --extras parquet --skip-gpu-check
  build/venv/bin/python -m pip install --quiet -r packaging/requirements-build.txt
  PYTHON=build/venv/bin/python
fi
# The version line of pyproject.toml (read as text: tomllib is Python 3.11+, 3.10 is supported).
VERSION=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' pyproject.toml | head -1)
[ -n "$VERSION" ] || { echo "build_linux: no version line in pyproject.toml" >&2; exit 1; }
TORCH_BUILD=$("$PYTHON" -c 'import torch; print(torch.__version__)')
if [ "$TORCH" = cpu ] && "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)'; then
  echo "build_linux: $PYTHON has CUDA PyTorch ($TORCH_BUILD); use TORCH=cuda to freeze it on purpose" >&2
  exit 2
fi
# The installers read Parquet files: pyarrow (the `parquet` extra) must be frozen with them.
"$PYTHON" -c 'import pyarrow.parquet' 2>/dev/null || {
  echo "build_linux: $PYTHON has no pyarrow; install the package with its parquet extra: pip install -e '.[parquet]'" >&2
  exit 2
}
ARCH=$(uname -m)
say "DPSOM Studio $VERSION, PyTorch $TORCH_BUILD, $ARCH, Python $("$PYTHON" -c 'import platform; print(platform.python_version())')"

# ----------------------------------------------------------------------------- bundle
BUNDLE=dist/dpsom-studio
if [ "$SKIP_BUNDLE" = 0 ]; then
  say "PyInstaller (a few minutes)"
  T=$(date +%s)
  "$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
    packaging/dpsom_studio.spec
  say "bundle built in $(elapsed "$T")"
fi
[ -x "$BUNDLE/dpsom-studio" ] && [ -x "$BUNDLE/dpsom" ] || { echo "build_linux: $BUNDLE is incomplete" >&2; exit 1; }
say "bundle: $(du -sh "$BUNDLE" | cut -f1) in $BUNDLE"

# ----------------------------------------------------------------------------- tar.gz
T=$(date +%s)
TARBALL="dist/dpsom-studio-$VERSION-linux-$ARCH.tar.gz"
STAGE=build/tar/dpsom-studio-$VERSION
rm -rf build/tar && mkdir -p "$STAGE"
cp -a "$BUNDLE"/. "$STAGE"/
cp packaging/linux/dpsom-studio.desktop "$STAGE"/
cp resources/icons/app.svg "$STAGE"/dpsom-studio.svg
cp packaging/linux/INSTALL.txt "$STAGE"/
tar -C build/tar --owner=0 --group=0 -czf "$TARBALL" "dpsom-studio-$VERSION"
rm -rf build/tar
say "tar.gz: $(du -h "$TARBALL" | cut -f1) in $(elapsed "$T"): $TARBALL"
[ "$DEB" = 1 ] || exit 0

# ----------------------------------------------------------------------------- .deb
command -v dpkg-deb >/dev/null || { echo "build_linux: dpkg-deb is needed for the .deb" >&2; exit 1; }
T=$(date +%s)
DEBARCH=$(dpkg --print-architecture)
PKG=build/deb/dpsom-studio_${VERSION}_$DEBARCH
rm -rf build/deb && mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
  "$PKG/usr/share/icons/hicolor/scalable/apps" "$PKG/usr/share/doc/dpsom-studio"
cp -a "$BUNDLE" "$PKG/opt/dpsom-studio"
# The bootloader finds its _internal folder through /proc/self/exe, so plain links work.
ln -s /opt/dpsom-studio/dpsom-studio "$PKG/usr/bin/dpsom-studio"
ln -s /opt/dpsom-studio/dpsom "$PKG/usr/bin/dpsom"
if command -v desktop-file-validate >/dev/null; then desktop-file-validate packaging/linux/dpsom-studio.desktop; fi
install -m 644 packaging/linux/dpsom-studio.desktop "$PKG/usr/share/applications/"
install -m 644 resources/icons/app.svg "$PKG/usr/share/icons/hicolor/scalable/apps/dpsom-studio.svg"
install -m 644 packaging/linux/copyright "$PKG/usr/share/doc/dpsom-studio/copyright"
install -m 755 packaging/linux/postinst "$PKG/DEBIAN/postinst"
install -m 755 packaging/linux/postrm "$PKG/DEBIAN/postrm"
# Debian wants group/other read on everything and no write bits beyond the owner.
chmod -R u+rwX,go+rX,go-w "$PKG"

# The newest glibc symbol version any bundled program or library asks for.
GLIBC=$({ find "$PKG/opt" -type f \( -name '*.so*' -o -perm -u+x \) -print0 \
          | xargs -0 objdump -T 2>/dev/null || true; } | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
GLIBC=${GLIBC:-2.36}
# Libraries PyInstaller never bundles (OpenGL/EGL drivers, libxcb) and the X11/xcb set the
# Qt xcb platform plugin loads: named here so the package does not depend on which of them
# happened to be installed (and bundled) on the build machine. Checked in a bare Debian 12
# root by packaging/test_deb_chroot.sh.
DEPENDS="libc6 (>= $GLIBC), libgl1, libegl1, libfontconfig1, libfreetype6, libdbus-1-3, libglib2.0-0,
 libx11-6, libx11-xcb1, libxkbcommon0, libxkbcommon-x11-0, libxcb1, libxcb-cursor0, libxcb-icccm4,
 libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render0, libxcb-render-util0, libxcb-shape0,
 libxcb-shm0, libxcb-sync1, libxcb-util1, libxcb-xfixes0, libxcb-xkb1"
RECOMMENDS="libxcb-glx0, libwayland-client0, libwayland-cursor0, libwayland-egl1, shared-mime-info,
 desktop-file-utils"
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat >"$PKG/DEBIAN/control" <<EOF
Package: dpsom-studio
Version: $VERSION
Section: science
Priority: optional
Architecture: $DEBARCH
Maintainer: ${DEB_MAINTAINER:-DPSOM Studio maintainers <maintainers@dpsom-studio.invalid>}
Installed-Size: $INSTALLED_KB
Depends: $(echo $DEPENDS)
Recommends: $(echo $RECOMMENDS)
Description: learn and explore patient health states with deep probabilistic SOMs
 DPSOM Studio trains DPSOM and T-DPSOM (deep probabilistic self-organising
 maps, static and temporal) on clinical tables and patient time series, shows
 the map, loss curves and patient trajectories while training, saves HDF5
 projects and exports cluster assignments to CSV. Runs offline.
 .
 Self-contained: Python, Qt and PyTorch ($TORCH_BUILD) are bundled in
 /opt/dpsom-studio. Commands: dpsom-studio (desktop app), dpsom (command line).
EOF
DEBFILE="dist/dpsom-studio_${VERSION}_$DEBARCH.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-zstd}" --build "$PKG" "$DEBFILE" >/dev/null
rm -rf build/deb
say ".deb: $(du -h "$DEBFILE" | cut -f1) in $(elapsed "$T"): $DEBFILE (Installed-Size ${INSTALLED_KB} KiB, glibc >= $GLIBC)"
say "done in $(elapsed "$T0")"
