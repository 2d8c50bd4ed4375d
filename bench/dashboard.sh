#!/usr/bin/env bash
# 概况 on a large shop: CARDS cards (default 10,000,000) of every state,
# ORDERS pickup orders (1,000,000), LEDGER ledger transactions (1,000,000)
# for CUSTOMERS customers, EVENTS business events over 30 days (1,000,000,
# tallied by the outbox's trigger as real writes are). The owner's 概况 for
# 30 days (every figure, its columns, what is owed, failed deliveries,
# orders to ship) is fetched by one client, one request at a time, beside
# the same server's GET /healthz, on SQLite and on PostgreSQL.
# Needs wrk, python3, psql and PostgreSQL on 127.0.0.1:5432.
# Usage: bench/dashboard.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-10}"
PG="${KAQUAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
WORK=$(mktemp -d /tmp/kaquan-dashboard.XXXXXX)
cargo build --release -q -p kaquan
KAQUAN="$CARGO_TARGET_DIR/release/kaquan"
export KAQUAN_LOG=warn
. bench/servers.sh

prepare() { # $1 = label, $2 = database URL, then the seed's dialect and target
  local label=$1 k=(--database-url "$2" --key-file "$WORK/$1.key")
  "$KAQUAN" "${k[@]}" migrate 2>/dev/null
  "$KAQUAN" "${k[@]}" merchant create --name bench --json >/dev/null
  printf 'bench1234\n' | "$KAQUAN" "${k[@]}" user create --username boss --role owner --password-stdin >/dev/null
  "$KAQUAN" "${k[@]}" batch generate --quantity 1 >/dev/null 2>&1
  start_server "$label-goods" "${k[@]}"
  python3 - "$ADDRESS" <<'PY'
import http.cookiejar, json, sys, urllib.request
base = sys.argv[1]
jar = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def call(method, path, body):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), method=method,
                                     headers={"content-type": "application/json", "x-csrf-token": csrf})
    return json.load(jar.open(request))
csrf = ""
csrf = call("POST", "/api/v1/sessions", {"username": "boss", "password": "bench1234"})["csrf_token"]
call("POST", "/api/v1/goods", {"name": "bench goods"})
PY
  stop_servers
  local started
  started=$(date +%s)
  python3 bench/dashboard_seed.py "$3" "$4"
  echo "$label: seeded in $(( $(date +%s) - started )) s" >&2
  start_server "$label" "${k[@]}"
  COOKIE=$(python3 - "$ADDRESS" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/api/v1/sessions",
    json.dumps({"username": "boss", "password": "bench1234"}).encode(), method="POST",
    headers={"content-type": "application/json"})
answer = urllib.request.urlopen(request)
print(answer.headers["set-cookie"].split(";")[0])
PY
)
}

run() { # $1 = label
  local label=$1
  curl -sf -H "cookie: $COOKIE" "$ADDRESS/?period=30d" -o "$WORK/$label-page.html"
  grep -q 'id="figure-cards_activated"' "$WORK/$label-page.html" || { echo "$label: 概况 did not render" >&2; exit 1; }
  wrk -t1 -c1 -d"${SECONDS_RUN}s" --latency -H "cookie: $COOKIE" "$ADDRESS/?period=30d" >"$WORK/$label-dashboard.txt"
  wrk -t1 -c1 -d"${SECONDS_RUN}s" --latency "$ADDRESS/healthz" >"$WORK/$label-healthz.txt"
  python3 - "$label" "$WORK" <<'PY'
import re, sys
label, work = sys.argv[1], sys.argv[2]
def latency(name):
    text = open(f"{work}/{label}-{name}.txt").read()
    def ms(p):
        v, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", text).groups()
        return float(v) / 1000 if unit == "us" else float(v) * 1000 if unit == "s" else float(v)
    return ms(50), ms(99)
d50, d99 = latency("dashboard")
h50, h99 = latency("healthz")
print(f"{label}: 概况 (30 days) p50 {d50:.2f} ms, p99 {d99:.2f} ms; /healthz p50 {h50:.3f} ms; ratio p50 {d50 / h50:.0f}x")
PY
  stop_servers
}

prepare sqlite "sqlite://$WORK/kaquan.db" sqlite "$WORK/kaquan.db"
run sqlite

DB="kaquan_bench_dashboard_$$"
psql "$PG/postgres" -qc "CREATE DATABASE $DB" >/dev/null
trap 'cleanup; psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null' EXIT
prepare postgres "$PG/$DB" postgres "$PG/$DB"
run postgres
