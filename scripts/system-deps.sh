#!/usr/bin/env bash
# Installs the Debian packages a profile needs, only those missing. Profiles:
#   demo  - what `portal demo` needs
#   test  - what the test suite needs (headless Chromium for browser tests, a CJK font)
#   bench - what the tests need, and wrk, the HTTP load generator of the API benchmarks
# Both fetch the pages' browser libraries (scripts/vendor-assets.sh) with curl and check them
# with openssl.
# PDFs need HarfBuzz's subsetter (without it WeasyPrint subsets CJK fonts with fontTools, which
# takes seconds per page) and fonts-hanazono for the CJK Extension B-F characters Noto lacks.
set -euo pipefail

profile="${1:-demo}"
case "$profile" in
  demo) packages=(curl ca-certificates openssl fonts-noto-cjk fonts-hanazono libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0) ;;
  test) packages=(curl ca-certificates openssl fonts-noto-cjk fonts-hanazono libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 chromium) ;;
  bench) packages=(curl ca-certificates openssl fonts-noto-cjk fonts-hanazono libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 chromium wrk) ;;
  *) echo "unknown profile: $profile" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
else
  sudo_cmd=()
fi
echo "installing Debian packages: ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
