#!/usr/bin/env bash
# GET /v1/widget/state under constant-rate load on loopback, with the loyalty, rfm and
# rules plugins installed on a seeded demo shop (issue 5: target p99 <= 10 ms at 500 req/s).
#
#   host/benches/widget_state_load.sh
#
# Everything happens in a fresh temp dir (removed at the end) against 127.0.0.1 only;
# oha stops by itself after DURATION. Needs `oha` on PATH (`cargo install oha`) and
# python3 (customer tokens, URL file). Knobs (environment):
#   RATE=500  DURATION=30s  CONNECTIONS=50  CUSTOMERS=10000  MEMBERS=10000  ANON_PERCENT=10
#   PORT=18181  DATABASE_URL (default: SQLite in the temp dir)  PATRON_BIN (default: the release build)
#
# Shoppers: MEMBERS distinct member customers (demo-1 … spread evenly over the shop's
# CUSTOMERS), each with a valid customer token, plus ANON_PERCENT % anonymous requests;
# oha picks a URL uniformly at random per request. The server caches a shopper's state for
# 3 s, so the script also prints the fraction of requests that could be served from that
# cache under this mix (a request hits when the same shopper was computed < 3 s before).
set -euo pipefail

RATE=${RATE:-500}
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-50}
CUSTOMERS=${CUSTOMERS:-10000}
MEMBERS=${MEMBERS:-10000}
ANON_PERCENT=${ANON_PERCENT:-10}
PORT=${PORT:-18181}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OHA=${OHA:-oha}

command -v "$OHA" >/dev/null || { echo "oha not found: cargo install oha" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }

cd "$ROOT"
if [[ -z "${PATRON_BIN:-}" ]]; then
  cargo build --release -q -p patron
  PATRON_BIN=$ROOT/target/release/patron
fi
cargo build --release -q --target wasm32-wasip2 -p loyalty -p rules -p rfm
WASM=$ROOT/target/wasm32-wasip2/release

TMP=$(mktemp -d -t patron-widget-load.XXXXXX)
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
export PATRON_DATA_DIR=$TMP
patron() { "$PATRON_BIN" "$@"; }

echo "== seeding $CUSTOMERS demo customers in $TMP ($([[ -n "${DATABASE_URL:-}" ]] && echo PostgreSQL || echo SQLite))"
patron demo seed --customers "$CUSTOMERS" | tee "$TMP/seed.log" | tail -n 2
SECRET=$(grep -o 'sk_[A-Za-z0-9_]*' "$TMP/seed.log" | head -n 1)
PUBLISHABLE=$(grep -o 'pk_[A-Za-z0-9_]*' "$TMP/seed.log" | head -n 1)
[[ -n "$SECRET" && -n "$PUBLISHABLE" ]] || { echo "no keys in the seed output" >&2; exit 1; }

echo '{"currency": "USD", "points-expiry-days": 365}' >"$TMP/loyalty.json"
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
patron plugin install "$WASM/loyalty.wasm" --manifest plugins/loyalty/patron.toml --shop "$SHOP" \
  --grant clock --grant config --enable >/dev/null
patron plugin config loyalty "$TMP/loyalty.json" --shop "$SHOP" >/dev/null
patron plugin install "$WASM/rfm.wasm" --manifest plugins/rfm/patron.toml --shop "$SHOP" \
  --grant log --grant clock --grant config --grant kv --enable >/dev/null
patron plugin config rfm "$TMP/rfm.json" --shop "$SHOP" >/dev/null
patron plugin install "$WASM/rules.wasm" --manifest plugins/rules/patron.toml --shop "$SHOP" \
  --grant clock --grant config --enable >/dev/null
patron plugin config rules "$TMP/rules.json" --shop "$SHOP" >/dev/null
patron plugin list --shop "$SHOP"
patron segments recompute --shop "$SHOP" | grep ' over '

URL="http://127.0.0.1:$PORT/v1/widget/state?key=$PUBLISHABLE"
python3 - "$SECRET" "$URL" "$CUSTOMERS" "$MEMBERS" "$ANON_PERCENT" "$TMP/urls.txt" <<'PY'
import hashlib, hmac, sys
secret, url, customers, members, anon_percent, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
key = hashlib.sha256(secret.encode()).digest()  # the stored secret hash is the HMAC key
lines = []
for i in range(members):
    external_id = f"demo-{i * customers // members + 1}"
    token = hmac.new(key, external_id.encode(), hashlib.sha256).hexdigest()
    lines.append(f"{url}&customer_id={external_id}&customer_token={token}")
# Anonymous requests: one URL repeated so that ANON_PERCENT % of uniform picks are anonymous.
anonymous = round(members * anon_percent / (100 - anon_percent))
lines += [url] * anonymous
open(out, "w").write("\n".join(lines) + "\n")
PY

FIRST_MEMBER=$(head -n 1 "$TMP/urls.txt")

echo "== serving on 127.0.0.1:$PORT"
"$PATRON_BIN" --listen "127.0.0.1:$PORT" serve >"$TMP/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.1
done
# Sanity: a member gets their state, a forged token gets none.
curl -fs "$FIRST_MEMBER" | python3 -c 'import json,sys; m=json.load(sys.stdin)["member"]; assert m, "no member state"; print("member state ok: tier", (m.get("tier") or {}).get("name"), "balance", m["points"]["balance"])'
curl -fs "${FIRST_MEMBER%customer_token=*}customer_token=$(printf '0%.0s' $(seq 64))" \
  | python3 -c 'import json,sys; assert json.load(sys.stdin)["member"] is None; print("forged token: anonymous state ok")'

echo "== oha: $RATE req/s for $DURATION, $CONNECTIONS connections, latency-corrected; $MEMBERS members + $ANON_PERCENT % anonymous"
"$OHA" --no-tui -q "$RATE" -z "$DURATION" -c "$CONNECTIONS" --latency-correction \
  --urls-from-file "$TMP/urls.txt" --output-format json >"$TMP/oha.json"

python3 - "$TMP/oha.json" "$RATE" "$MEMBERS" "$ANON_PERCENT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rate, members, anon = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) / 100
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
errors = r.get("errorDistribution", {})
ms = lambda v: f"{v * 1000:.2f}" if v is not None else "-"
print(f"requests/s {s['requestsPerSec']:.1f}, success rate {s['successRate']:.4f}, status codes {codes}, errors {errors}")
print(f"latency ms: p50 {ms(p.get('p50'))}  p90 {ms(p.get('p90'))}  p99 {ms(p.get('p99'))}  p99.9 {ms(p.get('p99.9'))}  max {ms(s['slowest'])}  mean {ms(s['average'])}")
# A shopper requested at rate l (Poisson) is computed, then served from cache for 3 s:
# l*3 hits per miss on average, so a fraction 3l / (1 + 3l) of their requests can hit.
def hit(l): return 3 * l / (1 + 3 * l)
member_rate = rate * (1 - anon) / members
could_hit = (1 - anon) * hit(member_rate) + anon * hit(rate * anon)
print(f"cache: member requests could hit {hit(member_rate):.1%} (each member ~{member_rate:.3f} req/s); "
      f"anonymous {hit(rate * anon):.1%}; all requests {could_hit:.1%}")
PY
