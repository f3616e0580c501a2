#!/usr/bin/env bash
# The console's figures (issue 15): latency of each /v1/analytics endpoint on a seeded
# demo shop, requests one after another (a merchant opening pages), p50/p95/max.
#
#   host/benches/analytics_load.sh                          # 200,000 customers, SQLite
#   BACKEND=postgres host/benches/analytics_load.sh         # a fresh database, dropped after
#   CUSTOMERS=20000 REQUESTS=20 host/benches/analytics_load.sh
#   ORDERS_PER_CUSTOMER=5 host/benches/analytics_load.sh    # 1,000,000 orders over 200,000 customers
#
# Knobs: CUSTOMERS=200000  ORDERS_PER_CUSTOMER (default: the demo's ~1.3)
# REQUESTS=50 (per endpoint, after 3 warm-up requests)  PORT=18183
# plus lib.sh's (PATRON_BIN, DATABASE_URL, BACKEND, KEEP). Needs python3 and curl.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

CUSTOMERS=${CUSTOMERS:-200000}
REQUESTS=${REQUESTS:-50}
ORDERS_PER_CUSTOMER=${ORDERS_PER_CUSTOMER:-}
PORT=${PORT:-18183}

bench_require python3 curl
bench_build
bench_tmp analytics
bench_database
bench_seed "$CUSTOMERS" ${ORDERS_PER_CUSTOMER:+--orders-per-customer "$ORDERS_PER_CUSTOMER"}
echo "in the database: $(bench_query "SELECT COUNT(*) FROM customers") customers," \
  "$(bench_query "SELECT COUNT(*) FROM orders") orders ($(bench_query \
  "SELECT COUNT(*) FROM orders WHERE status IN ('paid', 'fulfilled')") paid or fulfilled)," \
  "first $(bench_query "SELECT MIN(placed_at) FROM orders"), last $(bench_query "SELECT MAX(placed_at) FROM orders") (unix ms)"
LAST=$(bench_query "SELECT MAX(placed_at) + 1 FROM orders")
bench_serve "$PORT"

# One endpoint $2 (path and query) timed $REQUESTS times after 3 warm-ups, under label $1.
measure() {
  local label=$1 url=$BASE$2 i
  curl -fsS -o /dev/null -H "Authorization: Bearer $SECRET" "$url" || { echo "$label failed: $url" >&2; exit 1; }
  for i in 1 2; do curl -fsS -o /dev/null -H "Authorization: Bearer $SECRET" "$url"; done
  for i in $(seq "$REQUESTS"); do
    curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $SECRET" "$url"
  done | python3 -c '
import sys
label = sys.argv[1]
times = sorted(float(line) * 1000 for line in sys.stdin)
pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
print(f"{label:<34} n {len(times):>3}  p50 {pick(0.5):8.1f} ms  p95 {pick(0.95):8.1f} ms  max {times[-1]:8.1f} ms")
' "$label"
}

DAY=86400000
echo "== $BACKEND_NAME: $REQUESTS sequential requests per endpoint (periods end at the last order)"
measure "definitions" "/v1/analytics/definitions"
measure "overview 30 days, by day" "/v1/analytics/overview?since=$((LAST - 30 * DAY))&until=$LAST&bucket=day"
measure "overview 365 days, by week" "/v1/analytics/overview?since=$((LAST - 365 * DAY))&until=$LAST&bucket=week"
measure "cohorts 12 months" "/v1/analytics/cohorts?until=$LAST"
measure "rfm grid" "/v1/analytics/rfm"
measure "rfm cell 5/5, first page" "/v1/analytics/rfm/cells/5/5/customers"
measure "loyalty 30 days, by day" "/v1/analytics/loyalty?since=$((LAST - 30 * DAY))&until=$LAST&bucket=day"
