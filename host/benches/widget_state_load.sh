#!/usr/bin/env bash
# GET /v1/widget/state under constant-rate load on loopback, with the loyalty, rfm and
# rules plugins installed on a seeded demo shop (issue 5: target p99 <= 10 ms at 500 req/s).
#
#   host/benches/widget_state_load.sh
#
# Everything happens in a fresh temp dir (removed at the end) against 127.0.0.1 only;
# oha stops by itself after DURATION. Needs `oha` (`cargo install oha --root /tmp/oha-root`,
# then OHA=/tmp/oha-root/bin/oha, or on PATH) and python3 (customer tokens, URL file).
# Knobs (environment):
#   RATE=500  DURATION=30s  CONNECTIONS=50  CUSTOMERS=10000  MEMBERS=10000  ANON_PERCENT=10
#   PORT=18181  DATABASE_URL (default: SQLite in the temp dir)  PATRON_BIN (default: the release build)
#
# Shoppers: MEMBERS distinct member customers (demo-1 … spread evenly over the shop's
# CUSTOMERS), each with a valid customer token, plus ANON_PERCENT % anonymous requests;
# oha picks a URL uniformly at random per request. The server caches a shopper's state for
# 3 s, so the script also prints the fraction of requests that could be served from that
# cache under this mix (a request hits when the same shopper was computed < 3 s before).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

RATE=${RATE:-500}
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-50}
CUSTOMERS=${CUSTOMERS:-10000}
MEMBERS=${MEMBERS:-10000}
ANON_PERCENT=${ANON_PERCENT:-10}
PORT=${PORT:-18181}

bench_require "${OHA:-oha}" python3 curl
bench_build loyalty rules rfm
bench_tmp widget-load
bench_database
bench_seed "$CUSTOMERS"
bench_install loyalty '{"currency": "USD", "points-expiry-days": 365}'
bench_install rfm '{}'
bench_install rules "$(cat host/benches/rules.json)"
patron plugin list --shop "$SHOP"
patron segments recompute --shop "$SHOP" | grep ' over '

URL="http://127.0.0.1:$PORT/v1/widget/state?key=$PUBLISHABLE"
bench_members "$CUSTOMERS" "$MEMBERS" | sed "s|^|$URL\&|" >"$TMP/urls.txt"
FIRST_MEMBER=$(head -n 1 "$TMP/urls.txt")
# Anonymous requests: one URL repeated so that ANON_PERCENT % of uniform picks are anonymous.
ANONYMOUS=$(( (MEMBERS * ANON_PERCENT + (100 - ANON_PERCENT) / 2) / (100 - ANON_PERCENT) ))
seq "$ANONYMOUS" | sed "s|.*|$URL|" >>"$TMP/urls.txt"

bench_serve "$PORT"
# Sanity: a member gets their state, a forged token gets none.
curl -fs "$FIRST_MEMBER" | python3 -c 'import json,sys; m=json.load(sys.stdin)["member"]; assert m, "no member state"; print("member state ok: tier", (m.get("tier") or {}).get("name"), "balance", m["points"]["balance"])'
curl -fs "${FIRST_MEMBER%customer_token=*}customer_token=$(printf '0%.0s' $(seq 64))" \
  | python3 -c 'import json,sys; assert json.load(sys.stdin)["member"] is None; print("forged token: anonymous state ok")'

echo "== $MEMBERS members + $ANON_PERCENT % anonymous"
bench_oha "$RATE" "$DURATION" "$CONNECTIONS" "$TMP/urls.txt"

python3 - "$RATE" "$MEMBERS" "$ANON_PERCENT" <<'PY'
import sys
rate, members, anon = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 100
# A shopper requested at rate l (Poisson) is computed, then served from cache for 3 s:
# l*3 hits per miss on average, so a fraction 3l / (1 + 3l) of their requests can hit.
def hit(l): return 3 * l / (1 + 3 * l)
member_rate = rate * (1 - anon) / members
could_hit = (1 - anon) * hit(member_rate) + anon * hit(rate * anon)
print(f"cache: member requests could hit {hit(member_rate):.1%} (each member ~{member_rate:.3f} req/s); "
      f"anonymous {hit(rate * anon):.1%}; all requests {could_hit:.1%}")
PY
