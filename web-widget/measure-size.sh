#!/usr/bin/env bash
# Measures what a storefront downloads for the widget — the loader, the glue and the
# wasm, each `gzip -9` — beside the initial bundles of posthog-js and
# @segment/analytics-next, installed from npm into a temporary directory (deleted
# afterwards) and measured the same way in the same run. Prints a Markdown table.
#
# Usage: web-widget/measure-size.sh [dist-dir]   (default web-widget/dist, built by build.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dist="${1:-$here/dist}"
[ -f "$dist/patron_bg.wasm" ] || { echo "measure-size.sh: no widget in $dist: run web-widget/build.sh" >&2; exit 1; }

gz() { gzip -9 -n -c "$1" | wc -c | tr -d ' '; }
raw() { wc -c < "$1" | tr -d ' '; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

npm_dir="$(mktemp -d)"
trap 'rm -rf "$npm_dir"' EXIT
npm install --prefix "$npm_dir" --no-save --no-audit --no-fund --ignore-scripts \
  posthog-js @segment/analytics-next >/dev/null 2>&1
version() { node -p "require('$npm_dir/node_modules/$1/package.json').version"; }

row() { # name, files…
  local name="$1" r=0 g=0 f
  shift
  for f in "$@"; do r=$((r + $(raw "$f"))); g=$((g + $(gz "$f"))); done
  printf '| %s | %s | %s |\n' "$name" "$(kb "$r")" "$(kb "$g")"
}

echo "| what a page downloads | raw KB | gzip -9 KB |"
echo "|---|---:|---:|"
row "**Patron widget** (loader + glue + wasm, panel included)" "$dist/patron.js" "$dist/patron_widget.js" "$dist/patron_bg.wasm"
row "&nbsp;&nbsp;loader \`patron.js\`" "$dist/patron.js"
row "&nbsp;&nbsp;glue \`patron_widget.js\`" "$dist/patron_widget.js"
row "&nbsp;&nbsp;module \`patron_bg.wasm\`" "$dist/patron_bg.wasm"
ph="$npm_dir/node_modules/posthog-js/dist"
row "posthog-js $(version posthog-js) \`dist/array.js\` (snippet bundle; extensions load later)" "$ph/array.js"
row "posthog-js $(version posthog-js) \`dist/array.full.js\` (all extensions)" "$ph/array.full.js"
sg="$npm_dir/node_modules/@segment/analytics-next/dist/umd"
row "@segment/analytics-next $(version @segment/analytics-next) \`dist/umd/index.js\` (initial; destinations load later)" "$sg/index.js"
