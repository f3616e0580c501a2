#!/usr/bin/env bash
# kill -9 under load (issue 16): `patron serve` on 127.0.0.1 with a shop whose first-party
# `loyalty` plugin is installed and enabled; a steady rate of writes (event batches,
# paid orders that earn points, pairs of concurrent partial refunds); the server
# SIGKILLed KILLS times mid-load and restarted each time; then, once the jobs have
# drained, every acknowledged event, order, refund and point is checked to be stored
# exactly once and the points ledger to balance (see crash_load.py for the checks).
# With JOURNEYS=1 (the default) the first-party `journeys` plugin is enabled too, its
# `email` channel a webhook to a sink in the driver: each customer's `customer.created`
# trigger must queue its welcome message at most once, and every message sent must have
# arrived (twice only across a kill). Exits non-zero on any violation.
#
#   host/benches/crash_recovery.sh                        # SQLite, then PostgreSQL
#   BACKEND=sqlite host/benches/crash_recovery.sh          # one backend
#   BACKEND=postgres RATE=60 KILLS=8 host/benches/crash_recovery.sh
#   PATRON_BIN=target/debug/patron host/benches/crash_recovery.sh   # a debug build
#
# Knobs: RATE=40 (write operations/s: 50 % event batches of 5, 40 % orders, 10 % refund
# pairs)  DURATION=60 (s of load)  KILLS=5  PORT=18191  WORKERS=32 (client threads)
# CUSTOMERS=200  JOURNEYS=1  plus lib.sh's (PATRON_BIN, BACKEND, POSTGRES_ADMIN_URL, KEEP). PostgreSQL:
# a fresh database on POSTGRES_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# dropped at the end. A run takes DURATION plus up to ~2 minutes: orders whose request
# died with the server are finished by the scheduler once their 60-s inline lease runs
# out. Needs python3 (stdlib only) and curl; psql for PostgreSQL.
set -euo pipefail

if [[ -z "${BACKEND:-}" && -z "${DATABASE_URL:-}" ]]; then
  status=0
  for backend in sqlite postgres; do
    BACKEND=$backend "$0" "$@" || status=1
  done
  exit "$status"
fi

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

RATE=${RATE:-40}
DURATION=${DURATION:-60}
KILLS=${KILLS:-5}
PORT=${PORT:-18191}
WORKERS=${WORKERS:-32}
CUSTOMERS=${CUSTOMERS:-200}

bench_require python3 curl
bench_build
bench_tmp crash
bench_database
echo "== $BACKEND_NAME, $(basename "$(dirname "$PATRON_BIN")") build ($PATRON_BIN):" \
  "$RATE writes/s for $DURATION s, $KILLS SIGKILLs"
bench_crash_load crash "Crash Shop" "$PORT" --kills "$KILLS"
