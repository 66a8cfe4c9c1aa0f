#!/usr/bin/env bash
# Refreshes the Apache ECharts build the analytics dashboard embeds
# (services/analytics/assets/echarts-<version>.min.js, served by analytics
# itself: no CDN, the dashboard works offline). Takes the minified file
# from the npm package and checks it against the sha256 in
# services/analytics/assets/README.md.
#   scripts/vendor-echarts.sh            # verify the committed file
#   scripts/vendor-echarts.sh --fetch    # fetch it again from npm and verify
set -euo pipefail
cd "$(dirname "$0")/.."
version=5.6.0
sha256=bf4a223524e40b77c304bec67e1222cf551f14880cf42c69dc046558e11c07b1
target=services/analytics/assets/echarts-$version.min.js
if [ "${1:-}" = "--fetch" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "echarts@$version" >/dev/null)
  tar -xzf "$work/echarts-$version.tgz" -C "$work" package/dist/echarts.min.js package/LICENSE package/NOTICE
  cp "$work/package/dist/echarts.min.js" "$target"
  cp "$work/package/LICENSE" services/analytics/assets/ECHARTS-LICENSE
  cp "$work/package/NOTICE" services/analytics/assets/ECHARTS-NOTICE
fi
echo "$sha256  $target" | sha256sum --check --quiet
echo "echarts $version: $target verified"
