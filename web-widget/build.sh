#!/usr/bin/env bash
# Builds the storefront widget into web-widget/dist/ (or $1):
#   patron.js        the loader a merchant embeds (served as /widget/patron.js)
#   patron_widget.js the wasm-bindgen glue (ES module, imported by the loader)
#   patron_bg.wasm   the widget, size-optimized with wasm-opt -Oz
# and a .gz beside each, which the host serves to browsers that accept gzip.
# Needs: the wasm32-unknown-unknown target, wasm-bindgen-cli of the exact version
# in Cargo.lock, and wasm-opt (Debian: binaryen).
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
command -v wasm-opt >/dev/null || { echo "build.sh: need wasm-opt: apt-get install -y binaryen" >&2; exit 1; }

cargo build --manifest-path "$root/Cargo.toml" -p patron-widget \
  --target wasm32-unknown-unknown --profile widget
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wasm-bindgen --target web --no-typescript --out-name patron_widget --out-dir "$tmp" \
  "$target_dir/wasm32-unknown-unknown/widget/patron_widget.wasm"
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  --strip-debug --strip-producers "$tmp/patron_widget_bg.wasm" -o "$out/patron_bg.wasm"
cp "$tmp/patron_widget.js" "$out/patron_widget.js"
# The loader ships minus its comment block, importing the other two by content hash so
# that the host can let browsers cache them for good.
version="$(cat "$out/patron_widget.js" "$out/patron_bg.wasm" | sha256sum | cut -c1-12)"
sed -e '/^\/\*/,/\*\/$/d' \
    -e "s/\"patron_widget.js\"/\"patron_widget.js?v=$version\"/" \
    -e "s/\"patron_bg.wasm\"/\"patron_bg.wasm?v=$version\"/" \
  "$here/loader/patron.js" > "$out/patron.js"
for f in patron.js patron_widget.js patron_bg.wasm; do
  gzip -9 -n -c "$out/$f" > "$out/$f.gz"
done
ls -l "$out"
