#!/usr/bin/env bash
# Sign "dist/DPSOM Studio.app" with a Developer ID certificate (hardened runtime), before
# packaging/macos/build_dmg.sh wraps it; with --dmg FILE, sign that disk image, send it to
# Apple's notary service and staple the ticket to it, so Gatekeeper opens it without asking.
#
# Usage: packaging/macos/sign_app.sh            (the .app)
#        packaging/macos/sign_app.sh --dmg FILE (after build_dmg.sh)
#
# Environment (CI secrets):
#   MACOS_SIGN_IDENTITY   e.g. "Developer ID Application: Example Hospital (TEAMID1234)"
#   MACOS_CERT_P12_BASE64, MACOS_CERT_PASSWORD   the certificate and its private key (.p12,
#                         base64); imported into a temporary keychain
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD  an Apple ID with an app-specific password,
#                         for notarisation (--dmg only)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${MACOS_SIGN_IDENTITY:?MACOS_SIGN_IDENTITY is not set}"

KEYCHAIN="$PWD/build/signing.keychain-db"
if [ -n "${MACOS_CERT_P12_BASE64:-}" ] && [ ! -f "$KEYCHAIN" ]; then
  mkdir -p build
  KEYCHAIN_PASSWORD=$(openssl rand -hex 16)
  printf '%s' "$MACOS_CERT_P12_BASE64" | base64 --decode >build/signing.p12
  security create-keychain -p "$KEYCHAIN_PASSWORD" "$KEYCHAIN"
  security set-keychain-settings -lut 3600 "$KEYCHAIN"
  security unlock-keychain -p "$KEYCHAIN_PASSWORD" "$KEYCHAIN"
  security import build/signing.p12 -k "$KEYCHAIN" -P "${MACOS_CERT_PASSWORD:-}" -T /usr/bin/codesign
  security set-key-partition-list -S apple-tool:,apple: -s -k "$KEYCHAIN_PASSWORD" "$KEYCHAIN" >/dev/null
  security list-keychains -d user -s "$KEYCHAIN" $(security list-keychains -d user | tr -d '"')
  rm -f build/signing.p12
fi
SIGN=(codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY")

if [ "${1:-}" = --dmg ]; then
  DMG="${2:?usage: sign_app.sh --dmg FILE}"
  "${SIGN[@]}" "$DMG"
  : "${APPLE_ID:?APPLE_ID is not set}" "${APPLE_TEAM_ID:?APPLE_TEAM_ID is not set}" "${APPLE_APP_PASSWORD:?APPLE_APP_PASSWORD is not set}"
  xcrun notarytool submit "$DMG" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
    --password "$APPLE_APP_PASSWORD" --wait
  xcrun stapler staple "$DMG"
  spctl --assess --type open --context context:primary-signature --verbose "$DMG"
  exit 0
fi

APP="dist/DPSOM Studio.app"
[ -d "$APP" ] || { echo "sign_app: $APP not found; run PyInstaller first" >&2; exit 1; }
# Inside out: every library and program first, then the bundle itself.
find "$APP/Contents" -type f \( -name '*.dylib' -o -name '*.so' -o -perm -u+x \) -print0 |
  while IFS= read -r -d '' file; do
    if file "$file" | grep -q 'Mach-O'; then
      "${SIGN[@]}" --options runtime --entitlements packaging/macos/entitlements.plist "$file"
    fi
  done
"${SIGN[@]}" --options runtime --entitlements packaging/macos/entitlements.plist "$APP"
codesign --verify --deep --strict --verbose=2 "$APP"
