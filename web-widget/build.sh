#!/usr/bin/env bash
# Builds the storefront widget into web-widget/dist/ (or $1):
#   patron.js        the loader a merchant embeds (served as /widget/patron.js)
#   patron_widget.js the wasm-bindgen glue (ES module, imported by the loader)
#   patron_bg.wasm   the widget, size-optimized with wasm-opt -Os (inlines a little more
#                    than -Oz: a few bytes more raw, 0.3 KB less gzipped)
# and a .gz beside each, which the host serves to browsers that accept gzip.
# Needs: the wasm32-unknown-unknown target, wasm-bindgen-cli of the exact version
# in Cargo.lock, and wasm-opt >= 116 ($WASM_OPT, or on PATH). Debian 12's binaryen (108)
# corrupts wasm-bindgen's externref table, so with an older one this script installs
# binaryen from npm into target/widget-tools and uses that. Node runs tools/rename-bindings.mjs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${1:-$here/dist}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

want="$(grep -A1 '^name = "wasm-bindgen"$' "$root/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have" != "$want" ]; then
  echo "build.sh: need wasm-bindgen-cli $want (found '${have:-none}'): cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
wasm_opt_version() { "$1" --version 2>/dev/null | sed -n 's/^wasm-opt version \([0-9]*\).*/\1/p'; }
wasm_opt="${WASM_OPT:-$(command -v wasm-opt || true)}"
if [ -z "$wasm_opt" ] || [ "$(wasm_opt_version "$wasm_opt")" -lt 116 ] 2>/dev/null || [ -z "$(wasm_opt_version "$wasm_opt")" ]; then
  tools="$target_dir/widget-tools"
  wasm_opt="$tools/node_modules/.bin/wasm-opt"
fi
# esbuild (from npm, into target/widget-tools) minifies the loader and the glue.
tools="$target_dir/widget-tools"
esbuild="$tools/node_modules/.bin/esbuild"
if [ ! -x "$esbuild" ] || { [ "$wasm_opt" = "$tools/node_modules/.bin/wasm-opt" ] && [ -z "$(wasm_opt_version "$wasm_opt")" ]; }; then
  echo "build.sh: installing esbuild and binaryen from npm into $tools" >&2
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-save --no-audit --no-fund esbuild@0.25 binaryen@132 >&2
fi

cargo build --manifest-path "$root/Cargo.toml" -p patron-widget \
  --target wasm32-unknown-unknown --profile widget
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wasm-bindgen --target web --no-typescript --out-name patron_widget --out-dir "$tmp" \
  "$target_dir/wasm32-unknown-unknown/widget/patron_widget.wasm"
"$wasm_opt" -Os --converge --gufa --zero-filled-memory -Os --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  --strip-debug --strip-producers "$tmp/patron_widget_bg.wasm" -o "$out/patron_bg.wasm"
# Short import, export and module names (wasm-bindgen's carry hashes, which do not
# compress) in the module, then the same renaming in the glue. A pass of its own:
# under --converge it would rename twice.
"$wasm_opt" --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  --minify-imports-and-exports-and-modules "$out/patron_bg.wasm" -o "$out/patron_bg.wasm" > "$tmp/names.json"
node "$here/tools/rename-bindings.mjs" "$tmp/names.json" "$out/patron_bg.wasm" "$tmp/patron_widget.js"
"$esbuild" "$tmp/patron_widget.js" --minify --format=esm --target=es2020 --log-level=warning \
  --outfile="$out/patron_widget.js"
# The loader ships minified, importing the other two by content hash so that the host
# can let browsers cache them for good.
version="$(cat "$out/patron_widget.js" "$out/patron_bg.wasm" | sha256sum | cut -c1-12)"
sed -e "s/\"patron_widget.js\"/\"patron_widget.js?v=$version\"/" \
    -e "s/\"patron_bg.wasm\"/\"patron_bg.wasm?v=$version\"/" \
  "$here/loader/patron.js" | "$esbuild" --minify --target=es2017 --log-level=warning > "$out/patron.js"
for f in patron.js patron_widget.js patron_bg.wasm; do
  gzip -9 -n -c "$out/$f" > "$out/$f.gz"
done
ls -l "$out"
