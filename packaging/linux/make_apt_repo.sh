#!/usr/bin/env bash
# Make a signed apt repository holding the .deb files, for workstations that install and
# update DPSOM Studio with apt (apt checks the repository's signature, not the .deb's).
#
# Usage: packaging/linux/make_apt_repo.sh OUT_DIR DEB...
#
# Environment:
#   APT_SIGNING_KEY             the private OpenPGP key, ASCII-armoured (required)
#   APT_SIGNING_KEY_PASSPHRASE  its passphrase (when it has one)
#
# Result (publish OUT_DIR on any web server):
#   OUT_DIR/pool/main/*.deb
#   OUT_DIR/dists/stable/main/binary-ARCH/Packages(.gz)
#   OUT_DIR/dists/stable/Release, InRelease (signed inline), Release.gpg (detached)
#   OUT_DIR/dpsom-studio-archive-keyring.gpg     the public key, for /usr/share/keyrings
# On a workstation:
#   sudo install -m 644 dpsom-studio-archive-keyring.gpg /usr/share/keyrings/
#   echo "deb [signed-by=/usr/share/keyrings/dpsom-studio-archive-keyring.gpg] https://HOST/PATH stable main" \
#     | sudo tee /etc/apt/sources.list.d/dpsom-studio.list
#   sudo apt-get update && sudo apt-get install dpsom-studio
set -euo pipefail

OUT="${1:?usage: make_apt_repo.sh OUT_DIR DEB...}"
shift
[ $# -gt 0 ] || { echo "make_apt_repo: no .deb given" >&2; exit 2; }
[ -n "${APT_SIGNING_KEY:-}" ] || { echo "make_apt_repo: APT_SIGNING_KEY is not set" >&2; exit 2; }
for tool in dpkg-scanpackages gpg gzip sha256sum; do
  command -v "$tool" >/dev/null || { echo "make_apt_repo: $tool is needed (dpkg-dev, gnupg)" >&2; exit 2; }
done

rm -rf "$OUT" && mkdir -p "$OUT/pool/main"
cp "$@" "$OUT/pool/main/"
cd "$OUT"
ARCHES=""
for deb in pool/main/*.deb; do
  arch=$(dpkg-deb --field "$deb" Architecture)
  case " $ARCHES " in *" $arch "*) ;; *) ARCHES="$ARCHES $arch" ;; esac
done
ARCHES="${ARCHES# }"
for arch in $ARCHES; do
  dir="dists/stable/main/binary-$arch"
  mkdir -p "$dir"
  dpkg-scanpackages --arch "$arch" pool/main /dev/null 2>/dev/null >"$dir/Packages"
  gzip -9nk "$dir/Packages"
done

# The Release file lists every index with its size and SHA-256, which apt checks.
{
  echo "Origin: DPSOM Studio"
  echo "Label: DPSOM Studio"
  echo "Suite: stable"
  echo "Codename: stable"
  echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
  echo "Architectures: $ARCHES"
  echo "Components: main"
  echo "SHA256:"
  (cd dists/stable && for f in main/binary-*/Packages*; do
     printf ' %s %s %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(wc -c <"$f" | tr -d ' ')" "$f"
   done)
} >dists/stable/Release

# A private keyring, so the runner's own keys are never touched.
GNUPGHOME="$(mktemp -d)"
export GNUPGHOME
trap 'rm -rf "$GNUPGHOME"' EXIT
printf '%s\n' "$APT_SIGNING_KEY" | gpg --batch --quiet --import
KEY=$(gpg --batch --list-secret-keys --with-colons | awk -F: '$1 == "fpr" {print $10; exit}')
SIGN=(gpg --batch --yes --pinentry-mode loopback --local-user "$KEY" --digest-algo SHA512)
[ -n "${APT_SIGNING_KEY_PASSPHRASE:-}" ] && SIGN+=(--passphrase "$APT_SIGNING_KEY_PASSPHRASE")
"${SIGN[@]}" --clearsign -o dists/stable/InRelease dists/stable/Release
"${SIGN[@]}" --armor --detach-sign -o dists/stable/Release.gpg dists/stable/Release
gpg --batch --export "$KEY" >dpsom-studio-archive-keyring.gpg
gpg --batch --verify dists/stable/InRelease 2>/dev/null
echo "apt repository in $OUT (architectures: $ARCHES, key $KEY)"
