#!/usr/bin/env bash
# Two replicas (issue 16): two `patron serve` processes on one PostgreSQL database
# (127.0.0.1:PORT and PORT+1), the client round-robining its writes between them (event
# batches, paid orders earning loyalty points, pairs of concurrent partial refunds of one
# order, one to each replica); replica 1 is SIGKILLed at 40 % of the run (and, with
# RESTART=1, the default, started again at 70 %). At the end, once the jobs have drained
# (the survivor takes over the dead replica's jobs when their leases run out): no
# acknowledged write lost, none stored twice, each order's points awarded once, each
# order change heard once by the loyalty plugin, the ledger balanced, every job done
# (see crash_load.py for the checks). With JOURNEYS=1 (the default) the `journeys` plugin
# is enabled too and both replicas' schedulers run its trigger jobs and both delivery
# workers drain the outbox to a webhook sink in the driver: no trigger applied twice (one
# welcome message per customer at most), no message delivered twice but across the kill.
# Exits non-zero on any violation.
#
#   host/benches/two_replicas.sh
#   RATE=80 DURATION=90 RESTART=0 host/benches/two_replicas.sh
#
# Knobs: RATE=40  DURATION=60  PORT=18193 (and PORT+1)  WORKERS=32  CUSTOMERS=200
# RESTART=1  JOURNEYS=1  plus lib.sh's (PATRON_BIN, POSTGRES_ADMIN_URL, KEEP). A fresh database on
# POSTGRES_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres), dropped at
# the end. Needs python3 (stdlib only), curl and psql.
set -euo pipefail
export BACKEND=postgres

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

RATE=${RATE:-40}
DURATION=${DURATION:-60}
PORT=${PORT:-18193}
WORKERS=${WORKERS:-32}
CUSTOMERS=${CUSTOMERS:-200}
RESTART=${RESTART:-1}

bench_require python3 curl psql
bench_build
bench_tmp replicas
bench_database
restart=()
if [[ "$RESTART" == 1 ]]; then restart=(--restart); fi
echo "== $BACKEND_NAME, two replicas, $(basename "$(dirname "$PATRON_BIN")") build ($PATRON_BIN):" \
  "$RATE writes/s for $DURATION s, replica 1 killed$([[ "$RESTART" == 1 ]] && echo ' and restarted')"
bench_crash_load replicas "Replica Shop" "$PORT,$((PORT + 1))" --kills 1 "${restart[@]}"
