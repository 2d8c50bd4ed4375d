#!/usr/bin/env bash
# Redemptions over HTTP through the signed open API (each request a
# different code, pre-signed), 64 concurrent connections, on SQLite
# (synchronous=FULL) and on PostgreSQL with two `kaquan serve` nodes. Beside
# them in the same run: the same server's GET /healthz, the bare floor
# (kaquan-bench floor-redeem-*: the guarded update + ledger insert straight
# to the database), and on PostgreSQL the machine's pgbench tpcb-like TPS.
# Needs wrk and pgbench (Debian: wrk, postgresql-client) and PostgreSQL on
# 127.0.0.1:5432.   Usage: bench/redemptions.sh [SECONDS]
# BEFORE=<git revision> also builds that revision's kaquan and measures its
# redemptions over HTTP in the same run (e.g. BEFORE=0993106, the last
# commit without the outbox, shows what recording events costs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-10}"
# Enough pre-signed requests that none repeats at 60,000 redemptions/s (a
# faster server used up 40,000/s worth, and the repeats, refused for their
# used nonces, counted as not 201).
CODES="${CODES:-$((SECONDS_RUN * 60000))}"
# Redemptions per floor and store-only run.
FLOOR_N=100000
PG="${KAQUAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench is needed: apt-get install postgresql-client" >&2; exit 1; }
WORK=$(mktemp -d /tmp/kaquan-redemptions.XXXXXX)
if [ -n "${BEFORE:-}" ]; then
  git worktree add -q --detach "$WORK/before-src" "$BEFORE"
  (cd "$WORK/before-src" && cargo build --release -q -p kaquan)
  cp "$CARGO_TARGET_DIR/release/kaquan" "$WORK/kaquan-before"
  git worktree remove --force "$WORK/before-src"
fi
cargo build --release -q -p kaquan -p kaquan-bench
# KAQUAN_BIN measures another build of kaquan (e.g. an older revision) with
# the same floor and requests.
KAQUAN="${KAQUAN_BIN:-$CARGO_TARGET_DIR/release/kaquan}"
FLOOR="$CARGO_TARGET_DIR/release/kaquan-bench"
export KAQUAN_LOG=warn
. bench/servers.sh

prepare() { # $1 = label, $2 = database URL: a key, CODES codes, pre-signed requests
  local label=$1 k=(--database-url "$2" --key-file "$WORK/$1.key")
  "$KAQUAN" "${k[@]}" migrate 2>/dev/null
  "$KAQUAN" "${k[@]}" merchant create --name bench --json >/dev/null
  "$KAQUAN" "${k[@]}" api-key create --json >"$WORK/key.json"
  # A batch holds at most 100,000 codes: as many batches as CODES needs.
  local left=$CODES template
  : >"$WORK/codes.csv"
  while [ "$left" -gt 0 ]; do
    local quantity=$((left < 100000 ? left : 100000))
    "$KAQUAN" "${k[@]}" codes generate --name bench --face-value 50 --quantity "$quantity" --json >"$WORK/template.json"
    template=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["template_id"])' "$WORK/template.json")
    "$KAQUAN" "${k[@]}" codes export --template "$template" --output "$WORK/batch.csv" 2>/dev/null
    tail -n +2 "$WORK/batch.csv" >>"$WORK/codes.csv"
    left=$((left - quantity))
  done
  KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_id"])' "$WORK/key.json")
  export KEY_ID
  python3 - "$WORK/key.json" "$WORK/codes.csv" "$WORK/requests.txt" <<'PY'
import hashlib, hmac, json, os, sys, time
key = json.load(open(sys.argv[1]))
codes = [line.split(",")[0] for line in open(sys.argv[2], encoding="utf-8").read().splitlines()]
ts = str(int(time.time()))
with open(sys.argv[3], "w") as out:
    for i, code in enumerate(codes):
        body = json.dumps({"customer_id": f"c{i % 1000}", "code": code}, separators=(",", ":"))
        nonce = os.urandom(16).hex()
        canonical = f"POST\n/open/v1/redemptions\n\n{ts}\n{nonce}\n{hashlib.sha256(body.encode()).hexdigest()}"
        signature = hmac.new(key["secret"].encode(), canonical.encode(), hashlib.sha256).hexdigest()
        out.write(f"{ts}\t{nonce}\t{signature}\tr-{i}\t{body}\n")
PY
}

report() { # $1 = label, $2 = floor JSON, then wrk outputs (redemptions..., healthz)
  python3 - "$@" <<'PY'
import json, re, sys
label, floor, *files = sys.argv[1:]
texts = [open(f).read() for f in files]
*redeems, healthz = texts
def rps(t): return float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
def pct(t, p):
    m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)\b" % p, t)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
def seconds(t):
    m = re.search(r"requests in ([\d.]+)(ms|s|m)\b", t)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "ms" else v * 60 if unit == "m" else v
def created(t): # only answers 201 count as redemptions
    return int(re.search(r"(\d+) requests in", t).group(1)) - int(re.search(r"NON201 (\d+)", t).group(1))
total_rps = sum(created(t) / seconds(t) for t in redeems)
non201 = sum(int(re.search(r"NON201 (\d+)", t).group(1)) for t in redeems)
requests = sum(int(re.search(r"(\d+) requests in", t).group(1)) for t in redeems)
p50 = max(pct(t, 50) for t in redeems); p99 = max(pct(t, 99) for t in redeems)
floor_rps = json.loads(floor)["per_second"]
print(f"{label}: redemptions {total_rps:,.0f}/s p50 {p50:.2f} ms p99 {p99:.2f} ms ({requests} requests, {non201} not 201) | "
      f"healthz {rps(healthz):,.0f}/s ratio {total_rps/rps(healthz):.3f} | floor {floor_rps:,.0f}/s ratio {total_rps/floor_rps:.2f}")
PY
}

if [ "${ONLY:-}" != postgres ]; then
  echo "== SQLite (synchronous=FULL) =="
  if [ -n "${BEFORE:-}" ]; then
    ours=$KAQUAN KAQUAN="$WORK/kaquan-before"
    prepare before "sqlite://$WORK/before.db"
    start_server before --database-url "sqlite://$WORK/before.db" --key-file "$WORK/before.key"
    sync
    REQUESTS_FILE="$WORK/requests.txt" WRK_THREADS=2 \
      wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency -s bench/redeem.lua "$ADDRESS" >"$WORK/redeem-before.txt"
    stop_servers
    KAQUAN=$ours
  fi
  prepare sqlite "sqlite://$WORK/bench.db"
  start_server sqlite --database-url "sqlite://$WORK/bench.db" --key-file "$WORK/sqlite.key"
  sync
  REQUESTS_FILE="$WORK/requests.txt" WRK_THREADS=2 \
    wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency -s bench/redeem.lua "$ADDRESS" >"$WORK/redeem.txt"
  wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency "$ADDRESS/healthz" >"$WORK/healthz.txt"
  stop_servers
  if [ -n "${BEFORE:-}" ]; then
    python3 - "$WORK/redeem-before.txt" "$WORK/redeem.txt" "$BEFORE" <<'PY'
import re, sys
def created(path):
    t = open(path).read()
    n = int(re.search(r"(\d+) requests in", t).group(1)) - int(re.search(r"NON201 (\d+)", t).group(1))
    m = re.search(r"requests in ([\d.]+)(ms|s|m)\b", t)
    v, unit = float(m.group(1)), m.group(2)
    return n / (v / 1000 if unit == "ms" else v * 60 if unit == "m" else v)
before, after = created(sys.argv[1]), created(sys.argv[2])
print(f"sqlite before ({sys.argv[3]}): redemptions {before:,.0f}/s; now {after:,.0f}/s, ratio now/before {after / before:.3f}")
PY
  fi
  sync
  floor=$("$FLOOR" floor-redeem-sqlite "$FLOOR_N" "$WORK/floor.db" | tail -n 1)
  report sqlite "$floor" "$WORK/redeem.txt" "$WORK/healthz.txt"
  # Diagnosis: the same store without HTTP, with and without nonce + Idempotency-Key,
  # and the floor's own work done set-wise (one statement per table per group).
  for variant in store-redeem-sqlite store-redeem-sqlite-unguarded set-wise-redeem-sqlite; do
    store=$("$FLOOR" "$variant" "$FLOOR_N" "$WORK/$variant.db" | tail -n 1)
    python3 -c 'import json,sys; s,f=(json.loads(a)["per_second"] for a in sys.argv[1:3]); print(f"{sys.argv[3]} (no HTTP): {s:,.0f}/s, ratio to the floor {s/f:.2f}")' "$store" "$floor" "$variant"
  done
fi
[ "${ONLY:-}" = sqlite ] && exit 0

# The machine's pgbench tpcb-like TPS, measured before and after the
# redemptions (a neighbour's load on a shared VM drifts within a run).
pgbench_tps() {
  local pgbench_db="kaquan_bench_pgbench_$$"
  psql "$PG/postgres" -qc "create database $pgbench_db"
  pgbench -q -i -s 10 "$PG/$pgbench_db" >/dev/null 2>&1
  pgbench -c 16 -j 2 -T "$SECONDS_RUN" -b tpcb-like "$PG/$pgbench_db" 2>/dev/null | grep -o 'tps = [0-9.]*' | head -n 1 | cut -d' ' -f3
  psql "$PG/postgres" -qc "drop database $pgbench_db"
}

echo "== PostgreSQL, two kaquan serve nodes =="
tps_before=$(pgbench_tps)
db="kaquan_bench_redeem_$$"
psql "$PG/postgres" -qc "create database $db"
prepare postgres "$PG/$db"
start_server pg1 --database-url "$PG/$db" --key-file "$WORK/postgres.key"; first=$ADDRESS
start_server pg2 --database-url "$PG/$db" --key-file "$WORK/postgres.key"; second=$ADDRESS
# Each node gets half of the requests and 32 of the 64 connections.
awk 'NR % 2 == 1' "$WORK/requests.txt" >"$WORK/requests1.txt"
awk 'NR % 2 == 0' "$WORK/requests.txt" >"$WORK/requests2.txt"
REQUESTS_FILE="$WORK/requests1.txt" WRK_THREADS=1 \
  wrk -t1 -c32 -d"${SECONDS_RUN}s" --latency -s bench/redeem.lua "$first" >"$WORK/redeem1.txt" &
first_wrk=$!
REQUESTS_FILE="$WORK/requests2.txt" WRK_THREADS=1 \
  wrk -t1 -c32 -d"${SECONDS_RUN}s" --latency -s bench/redeem.lua "$second" >"$WORK/redeem2.txt"
wait "$first_wrk"
wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency "$first/healthz" >"$WORK/healthz.txt"
stop_servers
psql "$PG/postgres" -qc "drop database $db"
floor_db="kaquan_bench_floor_$$"
psql "$PG/postgres" -qc "create database $floor_db"
floor=$("$FLOOR" floor-redeem-postgres 50000 "$PG/$floor_db" | tail -n 1)
psql "$PG/postgres" -qc "drop database $floor_db"
report postgres "$floor" "$WORK/redeem1.txt" "$WORK/redeem2.txt" "$WORK/healthz.txt"
echo "pgbench tpcb-like (scale 10, 16 clients): $tps_before TPS before, $(pgbench_tps) TPS after (the redemptions ran between)"
