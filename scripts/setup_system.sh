#!/usr/bin/env bash
# System packages Hearth needs: Debian's emscripten (wasm link), chromium (browser tests)
# and a Vulkan driver Dawn accepts (mesa >= 25 lavapipe from bookworm-backports; bookworm's
# own mesa 22 is rejected by Dawn). Idempotent: does nothing when everything is present.
set -euo pipefail

need=()
command -v emcc >/dev/null 2>&1 || need+=(emscripten)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
lvp_ok() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -qE '^(2[5-9]|[3-9][0-9])\.'
}
lvp_ok || need+=(mesa-vulkan-drivers)
dpkg -s libvulkan1 >/dev/null 2>&1 || need+=(libvulkan1)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "hearth setup: missing system packages: ${need[*]}" >&2
  echo "  run 'sudo make setup' once, or install them yourself (mesa-vulkan-drivers >= 25 from bookworm-backports)." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
src=/etc/apt/sources.list.d/hearth-backports.sources
if [ ! -f "$src" ]; then
  cat > "$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
echo "hearth setup: apt-get install ${need[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends emscripten chromium libvulkan1 >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers >/dev/null
lvp_ok || { echo "hearth setup: mesa-vulkan-drivers >= 25 did not install" >&2; exit 1; }
