#!/usr/bin/env bash
# Schemathesis against Patron's OpenAPI document (issue 16): every operation of
# GET /v1/openapi.json fuzzed with the checks `not_a_server_error` (no 5xx) and
# `response_schema_conformance` (every answer matches the document), on a `patron serve
# --demo` shop (seeded, every first-party plugin installed).
#
#   host/benches/schemathesis.sh                         # SQLite in a temp dir
#   MAX_EXAMPLES=100 SEED=7 host/benches/schemathesis.sh
#   BACKEND=postgres host/benches/schemathesis.sh        # a fresh database, dropped after
#
# The server and the fuzzer run in a network namespace of their own with only a loopback
# interface (`unshare -n`, as root): whatever a fuzzed request configures (a webhook URL,
# an SMTP host), nothing leaves the machine. PostgreSQL is reached there through its unix
# socket (PG_SOCKET_DIR, default /var/run/postgresql). The server is a debug build by
# default, where integer overflow panics, so arithmetic mistakes show as 500s
# (PATRON_BIN picks another binary). The public endpoints' rate limits are raised for the
# run (a 429 is documented, but would starve the fuzzer).
#
# Two runs: every operation but `POST /v1/shop/rotate-key`, then that one alone (a
# rotation with `grace_hours: 0` ends the secret key every other operation uses). Each
# stops by itself: MAX_EXAMPLES test cases per operation and phase, SEED fixed.
# First the document is checked with openapi-spec-validator. Installs schemathesis and
# openapi-spec-validator from PyPI when they are missing (`schemathesis` on PATH). Knobs:
#   CUSTOMERS=300  MAX_EXAMPLES=50  SEED=16  PORT=18190  WORKERS=2  PHASES=examples,coverage,fuzzing
#   DATABASE_URL or BACKEND=postgres (default: SQLite in the temp dir)  PATRON_BIN  KEEP=1
# The reports (JUnit XML, NDJSON events) and the server's log stay in the temp dir with KEEP=1.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

CUSTOMERS=${CUSTOMERS:-300}
MAX_EXAMPLES=${MAX_EXAMPLES:-50}
SEED=${SEED:-16}
PORT=${PORT:-18190}
WORKERS=${WORKERS:-2}
PHASES=${PHASES:-examples,coverage,fuzzing}
PG_SOCKET_DIR=${PG_SOCKET_DIR:-/var/run/postgresql}

if [[ -z "${PATRONS_NETNS:-}" ]]; then
  # Outside the namespace: what needs the network or a build.
  bench_require python3 curl unshare ip
  command -v schemathesis >/dev/null || python3 -m pip install -q schemathesis
  python3 -c 'import openapi_spec_validator' 2>/dev/null || python3 -m pip install -q openapi-spec-validator
  if [[ -z "${PATRON_BIN:-}" ]]; then
    cargo build -q --workspace --bins
    PATRON_BIN=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)/debug/patron
  fi
  bench_tmp schemathesis
  bench_database
  if [[ -n "${DATABASE_URL:-}" && -n "$DB_NAME" ]]; then
    # The database bench_database made, through the socket (the namespace has no TCP route to it).
    SOCKET_URL="postgres://${ADMIN_URL#postgres://}"
    SOCKET_URL="${SOCKET_URL%%@*}@localhost/$DB_NAME?host=$PG_SOCKET_DIR"
    export DATABASE_URL=$SOCKET_URL
  fi
  # The temp dir and the database are this (outer) process's to remove; kept after failures.
  status=0
  PATRONS_NETNS=1 PATRONS_TMP=$TMP PATRON_BIN=$PATRON_BIN BACKEND_NAME=$BACKEND_NAME \
    unshare -n bash "$0" "$@" || status=$?
  if (( status != 0 )); then KEEP=1; fi
  exit "$status"
fi

# Inside the namespace.
trap - EXIT
TMP=${PATRONS_TMP:?}
export PATRON_DATA_DIR=$TMP
ip link set lo up
SERVER_PID=
stop_server() { if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap stop_server EXIT

BASE=http://127.0.0.1:$PORT
echo "== $BACKEND_NAME: patron serve --demo ($CUSTOMERS customers) on 127.0.0.1:$PORT, loopback-only namespace"
PATRON_RATE_LIMIT_PER_KEY=100000 PATRON_RATE_LIMIT_PER_IP=100000 \
  "$PATRON_BIN" --listen "127.0.0.1:$PORT" serve --demo --demo-customers "$CUSTOMERS" >"$TMP/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
  curl -fs "$BASE/ready" >/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$TMP/serve.log" >&2; exit 1; }
  sleep 0.5
done
curl -fs "$BASE/ready" >/dev/null || { echo "the server did not get ready" >&2; tail -n 30 "$TMP/serve.log" >&2; exit 1; }
SECRET=$(grep -o 'sk_[A-Za-z0-9_]*' "$TMP/serve.log" | head -n 1)
PUBLISHABLE=$(grep -o 'pk_[A-Za-z0-9_]*' "$TMP/serve.log" | head -n 1)
[[ -n "$SECRET" && -n "$PUBLISHABLE" ]] || { echo "no keys in the server's output" >&2; exit 1; }
curl -fs "$BASE/v1/openapi.json" >"$TMP/openapi.json"
python3 -c 'import sys; from openapi_spec_validator import validate; from openapi_spec_validator.readers import read_from_filename
validate(read_from_filename(sys.argv[1])[0]); print("openapi-spec-validator: a valid OpenAPI 3.1 document")' "$TMP/openapi.json"
echo "document: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len([m for m in i if m in ("get","post","put","patch","delete")]) for i in d["paths"].values()), "operations,", len(d["components"]["schemas"]), "schemas")' "$TMP/openapi.json")"
echo "$(schemathesis --version)"

# One run; its summary lines are printed, its reports kept in $TMP/report-$1.
fuzz() {
  local name=$1
  shift
  local command=(schemathesis run "$BASE/v1/openapi.json"
    --checks not_a_server_error,response_schema_conformance
    --header "Authorization: Bearer $SECRET" --header "X-Patron-Key: $PUBLISHABLE"
    --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers "$WORKERS" --phases "$PHASES"
    --request-timeout 40 --suppress-health-check all --continue-on-failure
    --report junit,ndjson --report-dir "$TMP/report-$name" "$@")
  echo "== $name: ${command[*]//$SECRET/sk_…}" | sed "s/$PUBLISHABLE/pk_…/"
  local status=0
  "${command[@]}" >"$TMP/schemathesis-$name.log" 2>&1 || status=$?
  sed -n '/SUMMARY/,$p' "$TMP/schemathesis-$name.log" | sed "s/$SECRET/sk_…/g; s/$PUBLISHABLE/pk_…/g"
  return "$status"
}

status=0
fuzz all --exclude-path /v1/shop/rotate-key || status=$?
fuzz rotate-key --include-path /v1/shop/rotate-key || status=$?
errors=$(grep -c 'request failed' "$TMP/serve.log" || true)
echo "server log: $errors internal errors logged ('request failed')"
if (( status != 0 )); then echo "schemathesis found failures: the logs and reports in $TMP are kept"; fi
exit "$status"
