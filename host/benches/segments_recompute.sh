#!/usr/bin/env bash
# Batch RFM + rules recompute over a seeded demo shop (issue 4: 1,000,000 customers in
# under 60 s), on SQLite (default) or PostgreSQL.
#
#   CUSTOMERS=1000000 host/benches/segments_recompute.sh             # SQLite in a temp dir
#   BACKEND=postgres CUSTOMERS=100000 host/benches/segments_recompute.sh
#
# Seeds `patron demo seed --customers $CUSTOMERS` into a fresh temp dir (SQLite) or a
# fresh database `patron_bench_seg_<pid>` on $POSTGRES_ADMIN_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), installs and enables rfm and rules, then
# runs `patron segments recompute` twice (RFM learns its quintiles in the first pass; the
# second is the steady nightly case) and prints each plugin's elapsed time. The temp dir
# and the database are removed at the end (KEEP=1 keeps them and prints where).
set -euo pipefail

CUSTOMERS=${CUSTOMERS:-100000}
BACKEND=${BACKEND:-sqlite}
PASSES=${PASSES:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
if [[ -z "${PATRON_BIN:-}" ]]; then
  cargo build --release -q -p patron
  PATRON_BIN=$ROOT/target/release/patron
fi
cargo build --release -q --target wasm32-wasip2 -p rules -p rfm
WASM=$ROOT/target/wasm32-wasip2/release

TMP=$(mktemp -d -t patron-segments.XXXXXX)
export PATRON_DATA_DIR=$TMP
DB_NAME=
ADMIN_URL=${POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [[ "$BACKEND" == postgres ]]; then
  DB_NAME=patron_bench_seg_$$
  psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB_NAME"
  export DATABASE_URL=${ADMIN_URL%/*}/$DB_NAME
else
  unset DATABASE_URL
fi
cleanup() {
  if [[ -n "${KEEP:-}" ]]; then echo "kept: $TMP ${DB_NAME:+database $DB_NAME}"; return; fi
  [[ -n "$DB_NAME" ]] && psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" || true
  rm -rf "$TMP"
}
trap cleanup EXIT
patron() { "$PATRON_BIN" "$@"; }

echo "== $BACKEND: seeding $CUSTOMERS demo customers"
start=$(date +%s.%N)
patron demo seed --customers "$CUSTOMERS" | tail -n 1
echo "seeded in $(echo "$(date +%s.%N) - $start" | bc) s"

cat >"$TMP/rules.json" <<'JSON'
{"rules": [
  {"name": "super", "group": "membership", "when": {"all": [
    {"days-since-last-order": {"lte": 365}}, {"orders-per-year": {"gte": 5}}, {"spent-per-year": {"gte": 100000}}]}},
  {"name": "core", "group": "membership", "when": {"all": [
    {"days-since-last-order": {"lte": 365}},
    {"any": [{"orders-per-year": {"gte": 3}}, {"spent-per-year": {"gte": 50000}}]}]}},
  {"name": "regular", "group": "membership"},
  {"name": "dormant", "when": {"days-since-last-order": {"gt": 90}}},
  {"name": "one-and-done", "when": {"all": [{"order-count": {"eq": 1}}, {"days-since-last-order": {"gt": 60}}]}},
  {"name": "big-spenders", "when": {"all": [{"total-spent": {"gte": 200000}}, {"not": {"has-tag": "wholesale"}}]}}
]}
JSON
echo '{}' >"$TMP/rfm.json"
SHOP="Demo Store"
patron plugin install "$WASM/rfm.wasm" --manifest plugins/rfm/patron.toml --shop "$SHOP" \
  --grant log --grant clock --grant config --grant kv --enable >/dev/null
patron plugin config rfm "$TMP/rfm.json" --shop "$SHOP" >/dev/null
patron plugin install "$WASM/rules.wasm" --manifest plugins/rules/patron.toml --shop "$SHOP" \
  --grant clock --grant config --enable >/dev/null
patron plugin config rules "$TMP/rules.json" --shop "$SHOP" >/dev/null

for pass in $(seq "$PASSES"); do
  echo "== recompute pass $pass"
  start=$(date +%s.%N)
  patron segments recompute --shop "$SHOP"
  elapsed=$(echo "$(date +%s.%N) - $start" | bc)
  echo "pass $pass: $elapsed s wall (process included), $(echo "$CUSTOMERS / $elapsed" | bc) customers/s"
done
