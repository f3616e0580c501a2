#!/usr/bin/env bash
# Recommendations on a seeded demo shop (issue 8): the model build time of
# `patron recs train`, then GET /v1/recommendations under constant-rate load on loopback
# over a mix of placements (target p99 <= 10 ms at 500 req/s).
#
#   host/benches/recommendations_load.sh                        # 100,000 customers, SQLite
#   CUSTOMERS=400000 LOAD=0 host/benches/recommendations_load.sh  # build time only
#   EVALUATE=1 LOAD=0 host/benches/recommendations_load.sh      # + patron recs evaluate
#   BACKEND=postgres host/benches/recommendations_load.sh       # a fresh database, dropped after
#
# Everything happens in a fresh temp dir (removed at the end) against 127.0.0.1 only;
# oha stops by itself after DURATION. Needs `oha` (`cargo install oha --root /tmp/oha-root`,
# then OHA=/tmp/oha-root/bin/oha, or on PATH), python3 and curl. Knobs (environment):
#   CUSTOMERS=100000  RATE=500  DURATION=30s  CONNECTIONS=50  PORT=18182  LOAD=1  EVALUATE=0
#   MIX=product:60,cart:15,home:10,for-you:15  (placements, by weight)
#   SIGNED_IN_PERCENT=30  (product, cart and home requests carrying a customer token)
#   MEMBERS=5000  (distinct signed-in shoppers, demo-1 … spread evenly over the shop)
#   DATABASE_URL or BACKEND=postgres (default: SQLite in the temp dir)  PATRON_BIN
#
# The URL file holds 20,000 requests drawn with a fixed seed: product pages over every
# product of the catalogue (uniformly), carts of 1–3 products, the home page, and "for
# you" for signed-in shoppers (always with a valid token: without one it is the home
# list); oha picks one uniformly at random per request. Every request asks for the
# default 8 items (the host asks the plugin for 16 and filters).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

CUSTOMERS=${CUSTOMERS:-100000}
RATE=${RATE:-500}
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-50}
PORT=${PORT:-18182}
LOAD=${LOAD:-1}
EVALUATE=${EVALUATE:-0}
MIX=${MIX:-product:60,cart:15,home:10,for-you:15}
SIGNED_IN_PERCENT=${SIGNED_IN_PERCENT:-30}
MEMBERS=${MEMBERS:-5000}

bench_require python3 curl
if [[ "$LOAD" == 1 ]]; then bench_require "${OHA:-oha}"; fi
bench_build recommender
bench_tmp recs-load
bench_database
bench_seed "$CUSTOMERS"
bench_install recommender '{}'
echo "in the database: $(bench_query "SELECT COUNT(*) FROM customers") customers," \
  "$(bench_query "SELECT COUNT(*) FROM orders") orders ($(bench_query \
  "SELECT COUNT(*) FROM orders WHERE status IN ('paid', 'fulfilled')") paid or fulfilled)," \
  "$(bench_query "SELECT COUNT(*) FROM order_lines") order lines"

echo "== model build: patron recs train"
bench_timed patron recs train --shop "$SHOP"
echo "recs train: $ELAPSED s wall (process included)"
if [[ "$EVALUATE" == 1 ]]; then
  echo "== offline evaluation: patron recs evaluate"
  bench_timed patron recs evaluate --shop "$SHOP"
  echo "recs evaluate: $ELAPSED s wall (process included)"
fi
[[ "$LOAD" == 1 ]] || exit 0

bench_query "SELECT id FROM products ORDER BY id" >"$TMP/products.txt"
bench_members "$CUSTOMERS" "$MEMBERS" >"$TMP/members.txt"
URL="http://127.0.0.1:$PORT/v1/recommendations?key=$PUBLISHABLE"
python3 - "$URL" "$MIX" "$SIGNED_IN_PERCENT" "$TMP/products.txt" "$TMP/members.txt" "$TMP/urls.txt" <<'PY'
import random, sys
url, mix, signed_in = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 100
products = open(sys.argv[4]).read().split()
members = open(sys.argv[5]).read().split()
weights = {name: int(weight) for name, weight in (part.split(":") for part in mix.split(","))}
rng = random.Random(8)
counts = dict.fromkeys(weights, 0)
lines = []
for _ in range(20_000):
    placement = rng.choices(list(weights), list(weights.values()))[0]
    counts[placement] += 1
    query = f"{url}&placement={placement}"
    if placement == "product":
        query += f"&product_id={rng.choice(products)}"
    elif placement == "cart":
        query += "&cart=" + ",".join(rng.sample(products, rng.randint(1, 3)))
    if placement == "for-you" or rng.random() < signed_in:
        query += "&" + rng.choice(members)
    lines.append(query)
open(sys.argv[6], "w").write("\n".join(lines) + "\n")
print(f"{len(products)} products, {len(members)} signed-in shoppers; requests per placement: {counts}")
PY

bench_serve "$PORT"
# Sanity: every placement answers 200 with a non-empty list (the shop has sales).
for placement in $(echo "$MIX" | tr ',' '\n' | cut -d: -f1); do
  curl -fs "$(grep -m 1 -E "placement=$placement(&|$)" "$TMP/urls.txt")" | python3 -c \
    'import json, sys; items = json.load(sys.stdin)["items"]; assert items, "empty list"; print(sys.argv[1], "ok:", len(items), "items, first by", items[0]["strategy"])' \
    "$placement"
done

bench_oha "$RATE" "$DURATION" "$CONNECTIONS" "$TMP/urls.txt"
