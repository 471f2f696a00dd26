#!/usr/bin/env bash
# Install the .deb into a clean Debian 12 (bookworm) root and run the smoke test there.
#
# Usage (as root): packaging/test_deb_chroot.sh DEB [--dir DIR] [--keep] [--mirror URL] [--no-gui]
#
# 1. debootstrap --variant=minbase bookworm DIR (needs the Debian mirror; installs
#    debootstrap with apt-get when it is missing). DIR defaults to a new folder in $TMPDIR.
# 2. apt-get install ./DEB inside it, so only the package's declared Depends are present.
# 3. Every ELF file in /opt/dpsom-studio is checked with ldd: a library that is neither
#    bundled nor installed fails the test, except for the optional Qt plugins (Wayland,
#    EGLFS, GLX) whose libraries the package only Recommends.
# 4. packaging/smoke_test.sh runs there through /usr/bin/dpsom and /usr/bin/dpsom-studio
#    (the app offscreen, as no display exists), then the package is removed again and
#    nothing may be left in /opt/dpsom-studio or /usr/bin.
# The root is unmounted and deleted at the end unless --keep is given.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEB="" DIR="" KEEP=0 GUI_OPT=""
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --mirror) MIRROR="$2"; shift 2 ;;
    --no-gui) GUI_OPT="--no-gui"; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {print}' "$0"; exit 0 ;;
    -*) echo "test_deb_chroot: unknown option $1" >&2; exit 2 ;;
    *) DEB="$1"; shift ;;
  esac
done
[ -f "$DEB" ] || { echo "test_deb_chroot: give the .deb to test" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "test_deb_chroot: run as root (debootstrap and chroot need it)" >&2; exit 2; }
say() { echo "== $*"; }
T0=$(date +%s)

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null
fi
DIR="${DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dpsom-deb-chroot.XXXXXX")}"
DIR="$(cd "$DIR" && pwd)"

mounted() { grep -q " $1 " /proc/mounts; }
cleanup() {
  local status=$?
  for m in "$DIR/dev" "$DIR/proc" "$DIR/sys"; do
    mounted "$m" && umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then
    say "kept the root in $DIR"
  elif grep -q " $DIR/" /proc/mounts; then
    echo "test_deb_chroot: something is still mounted under $DIR; NOT deleting it" >&2
  else
    rm -rf --one-file-system "$DIR"
  fi
  exit $status
}
trap cleanup EXIT

say "debootstrap bookworm (minbase) into $DIR from $MIRROR"
T=$(date +%s)
if ! debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" >"$DIR.debootstrap.log" 2>&1; then
  tail -20 "$DIR.debootstrap.log" >&2
  echo "test_deb_chroot: debootstrap failed (is $MIRROR reachable? set DEBIAN_MIRROR)" >&2
  rm -f "$DIR.debootstrap.log"
  exit 1
fi
rm -f "$DIR.debootstrap.log"
say "root made in $(( $(date +%s) - T )) s: $(du -sh --one-file-system "$DIR" | cut -f1)"

mount -t proc proc "$DIR/proc"        # the bootloader finds its folder through /proc/self/exe
mount --bind /dev "$DIR/dev"
mount -t sysfs sysfs "$DIR/sys" 2>/dev/null || true   # CPU topology for PyTorch, if allowed
cp /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$DIR" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

say "installing $(basename "$DEB") with apt (pulls the declared Depends only)"
cp "$DEB" "$DIR/tmp/dpsom-studio.deb"
in_root apt-get -q update >"$DIR/tmp/apt-update.log" 2>&1 || { tail -20 "$DIR/tmp/apt-update.log"; exit 1; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  /tmp/dpsom-studio.deb >"$DIR/tmp/apt.log" 2>&1 || { tail -30 "$DIR/tmp/apt.log"; exit 1; }
echo "   $(grep -c '^Setting up' "$DIR/tmp/apt.log") packages installed:"
grep '^Setting up' "$DIR/tmp/apt.log" | awk '{print $3}' | sed 's/:amd64$//' | sort -u | tr '\n' ' ' \
  | fold -w 96 -s | sed 's/^/     /'
echo
rm "$DIR/tmp/dpsom-studio.deb"

say "checking shared libraries of every bundled ELF file"
cat >"$DIR/tmp/ldd-check.sh" <<'EOF'
#!/bin/sh
# Lists "FILE: LIBRARY" for each library ldd cannot find, with the bundle's folders on the
# library path as the PyInstaller bootloader and Qt's RPATHs arrange at run time.
B=/opt/dpsom-studio/_internal
LIBPATH=$(find "$B" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
find /opt/dpsom-studio -type f \( -name '*.so*' -o -perm -u+x \) | while read -r f; do
  head -c 4 "$f" | grep -q 'ELF' || continue
  LD_LIBRARY_PATH="$LIBPATH" ldd "$f" 2>/dev/null | awk -v f="$f" '/not found/ {print f ": " $1}'
done
EOF
in_root sh /tmp/ldd-check.sh >"$DIR/tmp/missing.txt"
# Optional Qt plugins: Wayland, EGLFS/KMS, Vulkan display and GLX (their libraries are Recommends).
OPTIONAL='/(wayland-[a-z-]*|egldeviceintegrations)/|/platforms/lib(qwayland|qeglfs|qminimalegl|qvkkhrdisplay)|libQt6(WaylandClient|WlShellIntegration|EglFS)|qxcb-glx-integration'
if [ -s "$DIR/tmp/missing.txt" ]; then
  echo "libraries missing only for optional plugins:"
  grep -E "$OPTIONAL" "$DIR/tmp/missing.txt" | awk '{print $2}' | sort | uniq -c | sed 's/^/   /' || true
fi
if grep -vE "$OPTIONAL" "$DIR/tmp/missing.txt" >"$DIR/tmp/missing-required.txt"; then
  echo "test_deb_chroot: FAIL: libraries neither bundled nor in the package's Depends:" >&2
  sed 's/^/   /' "$DIR/tmp/missing-required.txt" >&2
  exit 1
fi
echo "   every library the app and the X11/offscreen Qt plugins need is bundled or installed"

say "smoke test inside the root"
mkdir -p "$DIR/tmp/smoke"
cp "$HERE/smoke_test.sh" "$DIR/tmp/smoke/"
cp -r "$HERE/smoke" "$DIR/tmp/smoke/smoke"
in_root bash /tmp/smoke/smoke_test.sh --cli /usr/bin/dpsom --gui /usr/bin/dpsom-studio \
  --out /tmp/smoke-out $GUI_OPT

say "desktop integration and removal"
for f in /usr/share/applications/dpsom-studio.desktop /usr/share/icons/hicolor/scalable/apps/dpsom-studio.svg \
         /usr/share/doc/dpsom-studio/copyright; do
  [ -f "$DIR$f" ] || { echo "test_deb_chroot: FAIL: $f not installed" >&2; exit 1; }
done
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q dpsom-studio >"$DIR/tmp/purge.log" 2>&1 \
  || { tail -20 "$DIR/tmp/purge.log"; exit 1; }
for f in /opt/dpsom-studio /usr/bin/dpsom /usr/bin/dpsom-studio /usr/share/applications/dpsom-studio.desktop; do
  if [ -e "$DIR$f" ] || [ -L "$DIR$f" ]; then echo "test_deb_chroot: FAIL: $f left after purge" >&2; exit 1; fi
done
echo "   installed files present; nothing left after purge"
say "chroot test passed in $(( $(date +%s) - T0 )) s"
