#!/usr/bin/env bash
# Wrap "dist/DPSOM Studio.app" (made by PyInstaller from packaging/dpsom_studio.spec on macOS)
# into a compressed disk image with a link to /Applications.
#
# Usage: packaging/macos/build_dmg.sh VERSION   ->  dist/DPSOM-Studio-VERSION-macos-ARCH.dmg
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
VERSION="${1:?usage: build_dmg.sh VERSION}"
APP="dist/DPSOM Studio.app"
[ -d "$APP" ] || { echo "build_dmg: $APP not found; run PyInstaller first" >&2; exit 1; }
DMG="dist/DPSOM-Studio-$VERSION-macos-$(uname -m).dmg"
STAGE=build/dmg
rm -rf "$STAGE" "$DMG" && mkdir -p "$STAGE"
# ditto keeps the bundle's symlinks, extended attributes and (ad-hoc) code signatures intact.
ditto "$APP" "$STAGE/DPSOM Studio.app"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "DPSOM Studio $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
rm -rf "$STAGE"
hdiutil verify "$DMG"
echo "dmg: $(du -h "$DMG" | cut -f1) $DMG"
