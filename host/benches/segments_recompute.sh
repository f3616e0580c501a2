#!/usr/bin/env bash
# Batch RFM + rules recompute over a seeded demo shop (issue 4: 1,000,000 customers in
# under 60 s), on SQLite (default) or PostgreSQL.
#
#   CUSTOMERS=1000000 host/benches/segments_recompute.sh             # SQLite in a temp dir
#   BACKEND=postgres CUSTOMERS=100000 host/benches/segments_recompute.sh
#
# Seeds `patron demo seed --customers $CUSTOMERS` into a fresh temp dir (SQLite) or a
# fresh database `patron_bench_<pid>` on $POSTGRES_ADMIN_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), installs and enables rfm and rules, then
# runs `patron segments recompute` twice (RFM learns its quintiles in the first pass; the
# second is the steady nightly case) and prints each plugin's elapsed time. The temp dir
# and the database are removed at the end (KEEP=1 keeps them and prints where).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

CUSTOMERS=${CUSTOMERS:-100000}
BACKEND=${BACKEND:-sqlite}
PASSES=${PASSES:-2}

bench_build rules rfm
bench_tmp segments
bench_database
bench_seed "$CUSTOMERS"
bench_install rfm '{}'
bench_install rules "$(cat host/benches/rules.json)"

for pass in $(seq "$PASSES"); do
  echo "== recompute pass $pass"
  bench_timed patron segments recompute --shop "$SHOP"
  echo "pass $pass: $ELAPSED s wall (process included), $((CUSTOMERS * 1000 / ELAPSED_MS)) customers/s"
done
