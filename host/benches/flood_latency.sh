#!/usr/bin/env bash
# An event flood from one key vs another shop's order latency (issue 16): `patron serve`
# on 127.0.0.1 with two shops; the quiet one has the first-party loyalty plugin, so each
# order goes the whole way to points. flood_latency.py posts orders to the quiet shop
# idle, then again while threads flood `POST /v1/events` with the other shop's
# publishable key, and prints both latency distributions, their ratio (target ≤ 2×) and
# the flood's statuses (the key's token bucket answers 429).
#
#   PATRON_BIN=target/debug/patron host/benches/flood_latency.sh            # SQLite
#   BACKEND=postgres PATRON_BIN=target/debug/patron host/benches/flood_latency.sh
#
# Knobs: ORDERS=300 (per phase)  FLOODERS=8 (threads)  PORT=18195, plus lib.sh's;
# SERVER_CPUS=0 CLIENT_CPUS=1 put the server and the client on cores of their own (taskset).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

bench_require python3 curl
bench_build
bench_tmp flood
bench_database
bench_shop "Flood Shop"
FLOOD_KEY=$PUBLISHABLE
bench_shop "Quiet Shop"
patron plugin install loyalty --shop "$SHOP" --enable >/dev/null
echo "== $BACKEND_NAME, $(basename "$(dirname "$PATRON_BIN")") build"
bench_serve "${PORT:-18195}"
client_pin=()
[[ -n "${CLIENT_CPUS:-}" ]] && client_pin=(taskset -c "$CLIENT_CPUS")
"${client_pin[@]}" python3 host/benches/flood_latency.py --port "${PORT:-18195}" --secret "$SECRET" --flood-key "$FLOOD_KEY" \
  --orders "${ORDERS:-300}" --flooders "${FLOODERS:-8}"
