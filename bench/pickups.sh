#!/usr/bin/env bash
# Pickups over HTTP (check card + create order) with 64 concurrent clients,
# each request a different card, on SQLite and on PostgreSQL, beside the
# same server's GET /healthz in the same run. Needs wrk (Debian package) and
# PostgreSQL on 127.0.0.1:5432.   Usage: bench/pickups.sh [CARDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
CARDS="${1:-60000}"
SECONDS_RUN="${2:-10}"
PG="${KAQUAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p kaquan
# KAQUAN_BIN measures another build of kaquan (e.g. an older revision).
KAQUAN="${KAQUAN_BIN:-$CARGO_TARGET_DIR/release/kaquan}"
WORK=$(mktemp -d /tmp/kaquan-pickups.XXXXXX)
export KAQUAN_LOG=warn
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

run() { # $1 = label, $2 = database URL
  local label=$1 url=$2 k=(--database-url "$2" --key-file "$WORK/$1.key")
  "$KAQUAN" "${k[@]}" migrate 2>/dev/null
  "$KAQUAN" "${k[@]}" merchant create --name bench --json >/dev/null
  echo "abc12345" | "$KAQUAN" "${k[@]}" user create --username boss --role owner --password-stdin >/dev/null
  "$KAQUAN" "${k[@]}" serve --listen 127.0.0.1:0 2>"$WORK/$label.log" &
  SERVER=$!
  local address=""
  for _ in $(seq 1 100); do
    address=$(grep -o 'http://[0-9.:]*' "$WORK/$label.log" | head -n 1 || true)
    [ -n "$address" ] && break
    sleep 0.1
  done
  curl -s -c "$WORK/jar" -H 'content-type: application/json' -d '{"username":"boss","password":"abc12345"}' "$address/api/v1/sessions" >"$WORK/me.json"
  local csrf; csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$WORK/me.json")
  local goods; goods=$(curl -s -b "$WORK/jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' -d '{"name":"苹果"}' "$address/api/v1/goods" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  "$KAQUAN" "${k[@]}" batch generate --quantity "$CARDS" --numbering random --number-length 12 --password-length 12 \
    --password-charset digits --activate --goods "$goods" >/dev/null 2>&1
  "$KAQUAN" "${k[@]}" export cards --batch 1 --format csv --with-secrets --output "$WORK/cards.csv" 2>/dev/null
  tail -n +2 "$WORK/cards.csv" | cut -d, -f2,3 >"$WORK/cards.txt"
  CARDS_FILE="$WORK/cards.txt" GOODS_ID="$goods" WRK_THREADS=2 \
    wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency -s bench/pickup.lua "$address" >"$WORK/pickups.txt"
  wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency "$address/healthz" >"$WORK/healthz.txt"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
  python3 - "$label" "$WORK/pickups.txt" "$WORK/healthz.txt" <<'PY'
import re, sys
label, pickups, healthz = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
def rps(t): return float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
def pct(t, p):
    m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)\b" % p, t)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
non200 = int(re.search(r"NON200 (\d+)", pickups).group(1))
total = int(re.search(r"(\d+) requests in", pickups).group(1))
print(f"{label}: pickups {rps(pickups):,.0f}/s p50 {pct(pickups, 50):.2f} ms p99 {pct(pickups, 99):.2f} ms "
      f"({total} requests, {non200} not 200) | healthz {rps(healthz):,.0f}/s | ratio {rps(pickups)/rps(healthz):.3f}")
PY
}

[ "${ONLY:-}" = postgres ] || run sqlite "sqlite://$WORK/bench.db"
[ "${ONLY:-}" = sqlite ] && exit 0
db="kaquan_bench_pickups_$$"
psql "$PG/postgres" -qc "create database $db"
run postgres "$PG/$db"
psql "$PG/postgres" -qc "drop database $db"
