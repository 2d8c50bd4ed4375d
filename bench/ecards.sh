#!/usr/bin/env bash
# 电子卡密: paid marketplace orders delivered over HTTP through the signed
# open API (each request a new order: the line, one secret taken from
# stock, the delivery record, audit and outbox event in one transaction),
# 64 connections, on SQLite (synchronous=FULL) and on PostgreSQL with two
# `kaquan serve` nodes; beside them in the same run, the same server's
# GET /healthz. Then the time `kaquan ecards import` takes for IMPORT
# secrets (default 1,000,000: read, checked, sealed, de-duplicated,
# stored), beside its floor: a bare insert of as many rows into a minimal
# table (SQLite, one transaction) and a bare COPY (PostgreSQL).
# Needs wrk, python3 and PostgreSQL on 127.0.0.1:5432.
# Usage: bench/ecards.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-10}"
IMPORT="${IMPORT:-1000000}"
N_SQLITE="${N:-$((SECONDS_RUN * 20000))}"
N_POSTGRES="${N:-$((SECONDS_RUN * 4000))}"
PG="${KAQUAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
WORK=$(mktemp -d /tmp/kaquan-ecards.XXXXXX)
cargo build --release -q -p kaquan
KAQUAN="$CARGO_TARGET_DIR/release/kaquan"
export KAQUAN_LOG=warn
. bench/servers.sh

python3 - "$WORK/stock.csv" "$IMPORT" <<'PY'
import sys
with open(sys.argv[1], "w") as out:
    out.write("卡号,卡密\n")
    for i in range(int(sys.argv[2])):
        out.write(f",CODE{i:012d}\n")
PY

prepare() { # $1 = label, $2 = database URL, $3 = requests: a product, its stock, pre-signed orders
  local label=$1 k=(--database-url "$2" --key-file "$WORK/$1.key")
  "$KAQUAN" "${k[@]}" migrate 2>/dev/null
  "$KAQUAN" "${k[@]}" merchant create --name bench --json >/dev/null
  "$KAQUAN" "${k[@]}" api-key create --json >"$WORK/key.json"
  printf 'bench1234\n' | "$KAQUAN" "${k[@]}" user create --username boss --role owner --password-stdin >/dev/null
  start_server "$label-prepare" "${k[@]}"
  PRODUCT=$(python3 bench/ecards_prepare.py "$ADDRESS" "$WORK" "$3")
  stop_servers
  local started ended
  started=$(date +%s.%N)
  "$KAQUAN" "${k[@]}" ecards import --product "$PRODUCT" --file "$WORK/stock.csv" --json >"$WORK/$label-import.json" 2>/dev/null
  ended=$(date +%s.%N)
  IMPORT_SECONDS=$(python3 -c "print(f'{$ended - $started:.2f}')")
  KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_id"])' "$WORK/key.json")
  export KEY_ID
}

run() { # $1 = label, then addresses
  local label=$1; shift
  local addresses=("$@") n=${#addresses[@]} pids=() i=0
  for address in "${addresses[@]}"; do
    awk -v n="$n" -v i="$i" 'NR % n == i' "$WORK/paid.txt" >"$WORK/paid-$i.txt"
    REQUESTS_FILE="$WORK/paid-$i.txt" REQUEST_PATH=/open/v1/marketplace-orders WRK_THREADS=1 \
      wrk -t1 -c$((64 / n)) -d"${SECONDS_RUN}s" --latency -s bench/redeem.lua "$address" >"$WORK/$label-paid-$i.txt" &
    pids+=($!); i=$((i + 1))
  done
  wait "${pids[@]}"
  wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency "${addresses[0]}/healthz" >"$WORK/$label-healthz.txt"
  python3 - "$label" "$WORK" "$n" "$IMPORT_SECONDS" "$FLOOR_SECONDS" "$IMPORT" <<'PY'
import re, sys
label, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
imported, floor, rows = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
def read(name): return open(f"{work}/{label}-{name}.txt").read()
def seconds(t):
    m = re.search(r"requests in ([\d.]+)(ms|s|m)\b", t)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "ms" else v * 60 if unit == "m" else v
def created(t): return int(re.search(r"(\d+) requests in", t).group(1)) - int(re.search(r"NON201 (\d+)", t).group(1))
texts = [read(f"paid-{i}") for i in range(n)]
rate = sum(created(t) / seconds(t) for t in texts)
failed = sum(int(re.search(r"NON201 (\d+)", t).group(1)) for t in texts)
healthz = float(re.search(r"Requests/sec:\s+([\d.]+)", read("healthz")).group(1))
print(f"{label}: healthz {healthz:,.0f}/s")
print(f"{label}: paid orders delivered {rate:,.0f}/s ({failed} not 201), ratio to healthz {rate / healthz:.3f}")
print(f"{label}: import of {rows:,} secrets {imported:.2f} s; bare load of as many rows {floor:.2f} s; ratio {imported / floor:.1f}")
PY
}

if [ "${ONLY:-}" != postgres ]; then
  echo "== SQLite (synchronous=FULL) =="
  python3 - "$WORK/floor.db" "$IMPORT" >"$WORK/floor.txt" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, secret TEXT NOT NULL)")
started = time.time()
with db:
    db.executemany("INSERT INTO t (secret) VALUES (?)", ((f"CODE{i:012d}",) for i in range(int(sys.argv[2]))))
print(f"{time.time() - started:.2f}")
PY
  FLOOR_SECONDS=$(cat "$WORK/floor.txt")
  prepare sqlite "sqlite://$WORK/bench.db" "$N_SQLITE"
  start_server sqlite --database-url "sqlite://$WORK/bench.db" --key-file "$WORK/sqlite.key"
  sync
  run sqlite "$ADDRESS"
  stop_servers
fi
[ "${ONLY:-}" = sqlite ] && exit 0

echo "== PostgreSQL, two kaquan serve nodes =="
db="kaquan_bench_ecards_$$"
psql "$PG/postgres" -qc "create database $db"
tail -n +2 "$WORK/stock.csv" | cut -d, -f2 >"$WORK/secrets.txt"
psql "$PG/$db" -qc "create table floor (id bigserial primary key, secret text not null)"
started=$(date +%s.%N)
psql "$PG/$db" -qc "\\copy floor (secret) from '$WORK/secrets.txt'"
ended=$(date +%s.%N)
FLOOR_SECONDS=$(python3 -c "print(f'{$ended - $started:.2f}')")
prepare postgres "$PG/$db" "$N_POSTGRES"
psql "$PG/$db" -qc ANALYZE
start_server pg1 --database-url "$PG/$db" --key-file "$WORK/postgres.key"; first=$ADDRESS
start_server pg2 --database-url "$PG/$db" --key-file "$WORK/postgres.key"; second=$ADDRESS
run postgres "$first" "$second"
stop_servers
psql "$PG/postgres" -qc "drop database $db"
