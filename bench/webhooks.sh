#!/usr/bin/env bash
# Webhook deliveries per second: EVENTS events put in the outbox (with SQL,
# as the stores write them) and sent by one `kaquan serve` (64 deliveries at
# once, each signed, leased and recorded with its attempt) to a bare local
# receiver (kaquan-bench receive-webhooks), beside the floor: wrk POSTing a
# body of the same size with 64 connections straight to that receiver. On
# SQLite and on PostgreSQL. Needs wrk and psql.
# Usage: bench/webhooks.sh [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-20000}"
PG="${KAQUAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p kaquan -p kaquan-bench
KAQUAN="$CARGO_TARGET_DIR/release/kaquan"
BENCH="$CARGO_TARGET_DIR/release/kaquan-bench"
WORK=$(mktemp -d /tmp/kaquan-webhooks.XXXXXX)
export KAQUAN_LOG=warn KAQUAN__WEBHOOKS__ALLOW_PRIVATE_ADDRESSES=true
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

# One event's data, as a balance change carries it.
DATA='{"transaction_id":1,"customer_id":"u1001","kind":"redeem","amount_fen":5000,"balance_after_fen":5000,"reference":"ABCD-EFGH-JKMN-PQRS","channel":"open_api"}'
export BODY="{\"type\":\"balance.changed\",\"timestamp\":\"2026-12-06T08:00:00Z\",\"data\":$DATA}"

wait_for_file() { for _ in $(seq 1 100); do [ -s "$1" ] && return; sleep 0.1; done; echo "no $1" >&2; exit 1; }

run() { # $1 = label, $2 = database URL, $3 = SQL runner for the events
  local label=$1 url=$2 k=(--database-url "$2" --key-file "$WORK/$1.key")
  "$KAQUAN" "${k[@]}" migrate 2>/dev/null
  "$KAQUAN" "${k[@]}" merchant create --name bench --json >/dev/null
  echo 'bench12345' | "$KAQUAN" "${k[@]}" user create --username boss --role owner --password-stdin >/dev/null
  "$BENCH" receive-webhooks "$EVENTS" "$WORK/$label.receiver" >"$WORK/$label.result" &
  local receiver=$!
  PIDS+=("$receiver")
  wait_for_file "$WORK/$label.receiver"
  "$KAQUAN" "${k[@]}" serve --listen 127.0.0.1:0 2>"$WORK/$label.log" &
  PIDS+=($!)
  local address=""
  for _ in $(seq 1 100); do
    address=$(grep -o 'http://[0-9.:]*' "$WORK/$label.log" | head -n 1 || true)
    [ -n "$address" ] && break
    sleep 0.1
  done
  curl -sf -c "$WORK/jar" -H 'content-type: application/json' \
    -d '{"username":"boss","password":"bench12345"}' "$address/api/v1/sessions" >"$WORK/me.json"
  local csrf
  csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$WORK/me.json")
  curl -sf -b "$WORK/jar" -H "X-CSRF-Token: $csrf" -H 'content-type: application/json' \
    -d "{\"url\":\"$(cat "$WORK/$label.receiver")\"}" "$address/api/v1/webhook-endpoints" >/dev/null
  $3 "INSERT INTO events (merchant_id, event_type, data, created_at) SELECT 1, 'balance.changed', '$DATA', 1765000000 FROM ($4) AS g"
  wait "$receiver"
  # The floor: the same receiver, the same POST, straight from wrk.
  "$BENCH" receive-webhooks 1000000000000 "$WORK/$label.floor" >/dev/null &
  PIDS+=($!)
  wait_for_file "$WORK/$label.floor"
  wrk -t2 -c64 -d5s -s bench/webhook.lua "$(cat "$WORK/$label.floor")" >"$WORK/$label.wrk"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  PIDS=()
  python3 - "$label" "$WORK/$label.result" "$WORK/$label.wrk" <<'PY'
import json, re, sys
label, result, floor = sys.argv[1:]
r = json.loads(open(result).read().strip().splitlines()[-1])
f = float(re.search(r"Requests/sec:\s+([\d.]+)", open(floor).read()).group(1))
print(f"{label}: {r['n']} events delivered in {r['seconds']:.2f} s, {r['per_second']:,.0f}/s | "
      f"floor (wrk POST to the receiver, 64 connections) {f:,.0f}/s | ratio {r['per_second'] / f:.3f}")
PY
}

sqlite_sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=30); c.execute(sys.argv[2]); c.commit()' "$WORK/bench.db" "$1"; }
run sqlite "sqlite://$WORK/bench.db" sqlite_sql \
  "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $EVENTS) SELECT n FROM s"

db="kaquan_bench_webhooks_$$"
psql "$PG/postgres" -qc "create database $db"
pg_sql() { psql "$PG/$db" -qc "$1"; }
run postgres "$PG/$db" pg_sql "SELECT generate_series(1, $EVENTS)"
psql "$PG/postgres" -qc "drop database $db"
