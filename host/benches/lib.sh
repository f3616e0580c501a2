# shellcheck shell=bash
# The setup the scripted benches in host/benches/ share; sourced, not run:
#
#   source "$(dirname "$0")/lib.sh"
#   bench_build rfm rules          # release `patron` + these plugins (wasm32-wasip2)
#   bench_tmp segments             # fresh temp dir = PATRON_DATA_DIR, removed on exit
#   bench_database                 # SQLite, DATABASE_URL, or BACKEND=postgres: a fresh database
#   bench_seed 10000 [ARGS…]       # demo shop (ARGS: more `demo seed` options); SEED_LOG, SECRET, PUBLISHABLE
#   bench_shop "Crash Shop"        # an empty shop; SHOP, SHOP_ID, SECRET, PUBLISHABLE
#   bench_crash_load crash 18191 … # crash_load.py on a new loyalty (+ journeys) shop
#   bench_timed CMD…               # ELAPSED (s) and ELAPSED_MS of a command
#   bench_query 'SELECT …'         # rows of one query on the bench's database
#   bench_install rfm '{}'         # install + enable with this config, granting what it imports
#   bench_serve 18181              # `patron serve` on 127.0.0.1, stopped on exit
#   bench_members 10000 2000       # customer_id=…&customer_token=… lines
#   bench_oha 500 30s 50 urls.txt  # constant-rate load; OHA_JSON, summary printed
#
# Everything stays on 127.0.0.1 and in the temp dir; the exit trap stops the server and
# removes the temp dir and any database it created (KEEP=1 keeps them and says where).
# Knobs: PATRON_BIN (default: the release build in the cargo target dir, which honours
# CARGO_TARGET_DIR), DATABASE_URL, BACKEND=postgres with POSTGRES_ADMIN_URL
# (default postgres://postgres@127.0.0.1:5432/postgres), OHA (default: `oha` on PATH).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SHOP="Demo Store"
TMP=
DB_NAME=
SERVER_PID=
ADMIN_URL=${POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}

bench_cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [[ -n "${KEEP:-}" ]]; then echo "kept: $TMP ${DB_NAME:+database $DB_NAME}"; return; fi
  if [[ -n "$DB_NAME" ]]; then psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" || true; fi
  if [[ -n "$TMP" ]]; then rm -rf "$TMP"; fi
}
trap bench_cleanup EXIT

# Fails with a hint unless each named command exists.
bench_require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool not found${BENCH_HINT[$tool]:+: ${BENCH_HINT[$tool]}}" >&2; exit 1; }
  done
}
declare -A BENCH_HINT=(
  [oha]="cargo install oha --root /tmp/oha-root, then OHA=/tmp/oha-root/bin/oha (or put it on PATH)"
  [psql]="the PostgreSQL client, for BACKEND=postgres"
)

# Builds `patron` (release, unless PATRON_BIN is given) and the named plugins; sets
# PATRON_BIN and WASM (the plugins' directory).
bench_build() {
  local target
  target=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
  if [[ -z "${PATRON_BIN:-}" ]]; then
    cargo build --release -q -p patron
    PATRON_BIN=$target/release/patron
  fi
  local packages=()
  local plugin
  for plugin in "$@"; do packages+=(-p "$plugin"); done
  if (( ${#packages[@]} )); then cargo build --release -q --target wasm32-wasip2 "${packages[@]}"; fi
  WASM=$target/wasm32-wasip2/release
}

patron() { "$PATRON_BIN" "$@"; }

# A fresh temp dir named for the bench, used as Patron's data directory.
bench_tmp() {
  TMP=$(mktemp -d -t "patron-$1.XXXXXX")
  export PATRON_DATA_DIR=$TMP
}

# The database: BACKEND=postgres creates a fresh one (dropped on exit), BACKEND=sqlite is
# SQLite in the temp dir; without BACKEND, DATABASE_URL if set, else SQLite.
bench_database() {
  case "${BACKEND:-}" in
    postgres)
      bench_require psql
      DB_NAME=patron_bench_$$
      psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB_NAME"
      export DATABASE_URL=${ADMIN_URL%/*}/$DB_NAME
      ;;
    sqlite) unset DATABASE_URL ;;
    "") ;;
    *) echo "BACKEND is sqlite or postgres, not $BACKEND" >&2; exit 1 ;;
  esac
  if [[ -n "${DATABASE_URL:-}" ]]; then BACKEND_NAME=PostgreSQL; else BACKEND_NAME=SQLite; fi
}

# Runs a command; sets ELAPSED_MS to its wall time and ELAPSED to the same in seconds.
bench_timed() {
  local start
  start=$(date +%s%N)
  "$@"
  ELAPSED_MS=$(( ($(date +%s%N) - start) / 1000000 ))
  ELAPSED=$(printf '%d.%03d' $((ELAPSED_MS / 1000)) $((ELAPSED_MS % 1000)))
}

# One SQL query on the bench's database (SQLite in the temp dir, or DATABASE_URL), rows
# printed tab-separated.
bench_query() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    psql -qAtX -F $'\t' "$DATABASE_URL" -c "$1"
  else
    python3 -c 'import sqlite3, sys
for row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]): print("\t".join(map(str, row)))' "$TMP/patron.db" "$1"
  fi
}

# Seeds the demo shop with $1 customers; prints the summary and the wall time, keeps the
# output in SEED_LOG and the shop's keys in SECRET and PUBLISHABLE.
bench_seed() {
  echo "== $BACKEND_NAME: seeding $1 demo customers in $TMP"
  SEED_LOG=$TMP/seed.log
  bench_timed patron demo seed --customers "$1" "${@:2}" >"$SEED_LOG"
  tail -n 2 "$SEED_LOG"
  echo "seeded in $ELAPSED s (wall)"
  SECRET=$(grep -o 'sk_[A-Za-z0-9_]*' "$SEED_LOG" | head -n 1)
  PUBLISHABLE=$(grep -o 'pk_[A-Za-z0-9_]*' "$SEED_LOG" | head -n 1)
  [[ -n "$SECRET" && -n "$PUBLISHABLE" ]] || { echo "no keys in the seed output" >&2; exit 1; }
}

# Installs and enables plugin $1 (built by bench_build) on the demo shop with the JSON
# config $2, granting exactly the capabilities its manifest imports.
bench_install() {
  local name=$1 manifest=plugins/$1/patron.toml grants=() capability
  for capability in $(grep '^imports' "$manifest" | grep -o '"[a-z-]*"' | tr -d '"'); do
    grants+=(--grant "$capability")
  done
  printf '%s\n' "$2" >"$TMP/$name.json"
  patron plugin install "$WASM/$name.wasm" --manifest "$manifest" --shop "$SHOP" "${grants[@]}" \
    --plugin-config "$TMP/$name.json" --enable >/dev/null
}

# `patron serve` on 127.0.0.1:$1 in the background (log in $TMP/serve.log), once /ready answers.
bench_serve() {
  BASE=http://127.0.0.1:$1
  echo "== serving on 127.0.0.1:$1"
  # SERVER_CPUS (a taskset list, e.g. 0) pins the server, to keep a load client off its cores.
  local pin=()
  [[ -n "${SERVER_CPUS:-}" ]] && pin=(taskset -c "$SERVER_CPUS")
  # The binary itself, not the `patron` function: $! must be the server (taskset execs it).
  "${pin[@]}" "$PATRON_BIN" --listen "127.0.0.1:$1" serve >"$TMP/serve.log" 2>&1 &
  SERVER_PID=$!
  local _
  for _ in $(seq 100); do
    curl -fs "$BASE/ready" >/dev/null && return
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not get ready:" >&2
  tail -n 20 "$TMP/serve.log" >&2
  exit 1
}

# $2 member shoppers spread evenly over the shop's $1 customers (demo-1, …), one
# `customer_id=…&customer_token=…` line each: the token is hex HMAC-SHA256 of the id,
# keyed with the SHA-256 of the secret key (as the host stores it; same HMAC).
bench_members() {
  python3 - "$SECRET" "$1" "$2" <<'PY'
import hashlib, hmac, sys
secret, customers, members = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
key = hashlib.sha256(secret.encode()).digest()
for i in range(members):
    external_id = f"demo-{i * customers // members + 1}"
    print(f"customer_id={external_id}&customer_token={hmac.new(key, external_id.encode(), hashlib.sha256).hexdigest()}")
PY
}

# oha at a constant $1 req/s for $2 over $3 connections, one URL of file $4 picked at
# random per request; latencies counted from when each request was due
# (--latency-correction), so a stall is not hidden. Prints rate, errors and percentiles;
# the full report is in OHA_JSON.
bench_oha() {
  echo "== oha: $1 req/s for $2, $3 connections, latency-corrected, $(wc -l <"$4") URLs"
  OHA_JSON=$TMP/oha.json
  "${OHA:-oha}" --no-tui -q "$1" -z "$2" -c "$3" --latency-correction \
    --urls-from-file "$4" --output-format json >"$OHA_JSON"
  python3 - "$OHA_JSON" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, p = r["summary"], r["latencyPercentiles"]
ms = lambda v: f"{v * 1000:.2f}" if v is not None else "-"
print(f"requests/s {s['requestsPerSec']:.1f}, success rate {s['successRate']:.4f}, "
      f"status codes {r.get('statusCodeDistribution', {})}, errors {r.get('errorDistribution', {})}")
print(f"latency ms: p50 {ms(p.get('p50'))}  p90 {ms(p.get('p90'))}  p99 {ms(p.get('p99'))}  "
      f"p99.9 {ms(p.get('p99.9'))}  max {ms(s['slowest'])}  mean {ms(s['average'])}")
PY
}

# Creates shop $1 (SHOP) and keeps its id and keys in SHOP_ID, SECRET and PUBLISHABLE.
bench_shop() {
  SHOP=$1
  local out
  out=$(patron shop create "$SHOP")
  SHOP_ID=$(sed -n 's/^created shop .* (id \([0-9]*\))$/\1/p' <<<"$out")
  SECRET=$(grep -o 'sk_[A-Za-z0-9_]*' <<<"$out" | head -n 1)
  PUBLISHABLE=$(grep -o 'pk_[A-Za-z0-9_]*' <<<"$out" | head -n 1)
  [[ -n "$SHOP_ID" && -n "$SECRET" && -n "$PUBLISHABLE" ]] || { echo "no id or keys in: $out" >&2; exit 1; }
}

# For crash_recovery.sh and two_replicas.sh: a new shop $2 with the first-party loyalty
# plugin (one tier earning 1 point per currency unit, so each order's points are exactly
# total // 100) and, unless JOURNEYS=0, journeys; then host/benches/crash_load.py in mode
# $1 (crash or replicas) on the ports $3, with the remaining arguments and the knobs
# RATE, DURATION, WORKERS and CUSTOMERS.
bench_crash_load() {
  local mode=$1 ports=$3 journeys=()
  bench_shop "$2"
  shift 3
  printf '%s\n' '{"tiers": [{"name": "member", "threshold": 0, "points-multiplier": 1.0}], "tier-coupon": false}' \
    >"$TMP/loyalty.json"
  patron plugin install loyalty --shop "$SHOP" --plugin-config "$TMP/loyalty.json" --enable
  if [[ "${JOURNEYS:-1}" == 1 ]]; then
    patron plugin install journeys --shop "$SHOP" --enable
    journeys=(--journeys)
  fi
  python3 host/benches/crash_load.py --mode "$mode" --bin "$PATRON_BIN" --data-dir "$TMP" \
    --database-url "${DATABASE_URL:-}" --ports "$ports" --shop-id "$SHOP_ID" \
    --secret "$SECRET" --publishable "$PUBLISHABLE" --rate "$RATE" --duration "$DURATION" \
    --workers "$WORKERS" --customers "$CUSTOMERS" "${journeys[@]}" --report "$TMP/report.json" "$@"
}
