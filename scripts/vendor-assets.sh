#!/usr/bin/env bash
# Puts the browser libraries the pages load into portal/static/vendor/ (gitignored): pages never
# load them from a CDN, since plants' networks and the tests have no internet beyond package
# registries. The tarball comes from the npm registry (NPM_CONFIG_REGISTRY picks a mirror, e.g.
# https://registry.npmmirror.com inside China) and must match the integrity pinned here, so a
# mirror cannot hand us anything else. Idempotent: an installed copy of the right version stays.
set -euo pipefail

LEAFLET_VERSION="1.9.4"
# The registry's dist.integrity for leaflet@1.9.4 (`npm view leaflet@1.9.4 dist.integrity`).
LEAFLET_INTEGRITY="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/portal/static/vendor/leaflet"
stamp="$dest/VERSION"

if [ -f "$dest/leaflet.js" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$LEAFLET_VERSION" ]; then
  # Newer than this script, so make does not ask again.
  touch "$dest/leaflet.js"
  exit 0
fi

registry="${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}"
registry="${registry%/}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetching leaflet@$LEAFLET_VERSION from $registry"
curl --fail --silent --show-error --location --retry 3 \
  --output "$work/leaflet.tgz" "$registry/leaflet/-/leaflet-$LEAFLET_VERSION.tgz"

actual="sha512-$(openssl dgst -sha512 -binary "$work/leaflet.tgz" | base64 | tr -d '\n')"
if [ "$actual" != "$LEAFLET_INTEGRITY" ]; then
  echo "leaflet-$LEAFLET_VERSION.tgz does not match its pinned integrity:" >&2
  echo "  expected $LEAFLET_INTEGRITY" >&2
  echo "  got      $actual" >&2
  exit 1
fi

tar -xzf "$work/leaflet.tgz" -C "$work" package/dist/leaflet.js package/dist/leaflet.css \
  package/dist/images
# Built next to the destination and swapped in, so an interrupted run leaves no half copy.
staging="$dest.new"
rm -rf "$staging"
mkdir -p "$staging/images"
cp "$work/package/dist/leaflet.js" "$work/package/dist/leaflet.css" "$staging/"
cp "$work/package/dist/images/"* "$staging/images/"
echo "$LEAFLET_VERSION" > "$staging/VERSION"
rm -rf "$dest"
mv "$staging" "$dest"
touch "$dest/leaflet.js"
echo "installed leaflet@$LEAFLET_VERSION in ${dest#"$root"/}"
