#!/usr/bin/env bash
# 会员卡 payments over HTTP through the signed open API, 64 concurrent
# connections, each request a different order of one of MEMBERS members
# (default 10,000; consecutive ones of different members): 买单 with the
# member discount, spending balance and earning points in one call (two
# ledger transactions, the member's counters, the operation record, the
# audit record and the merged member.changed event), on SQLite
# (synchronous=FULL) and on PostgreSQL with two `kaquan serve` nodes.
# Beside them in the same run: the same server's GET /healthz and its code
# redemptions, against which payments are held (target ≥ 0.7).
# Each kind runs SECONDS in all, in ROUNDS turns (default 2) with the others;
# rates are the rounds' medians. Rounds under about 20 s favour whichever
# kind touches fewer pages right after PostgreSQL's checkpoint (run with 40).
# Needs wrk and PostgreSQL on 127.0.0.1:5432.   Usage: bench/members.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-10}"
ROUNDS="${ROUNDS:-2}"
# Enough pre-signed requests that none repeats within a run (SQLite's
# redemptions reach about 20,000/s here, PostgreSQL's a few thousand).
N_SQLITE="${N:-$((SECONDS_RUN * 25000))}"
N_POSTGRES="${N:-$((SECONDS_RUN * 5000))}"
PG="${KAQUAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
WORK=$(mktemp -d /tmp/kaquan-members.XXXXXX)
cargo build --release -q -p kaquan
KAQUAN="$CARGO_TARGET_DIR/release/kaquan"
export KAQUAN_LOG=warn
. bench/servers.sh

prepare() { # $1 = label, $2 = database URL: a key, codes, a program, coupons, pre-signed requests
  local label=$1 k=(--database-url "$2" --key-file "$WORK/$1.key")
  "$KAQUAN" "${k[@]}" migrate 2>/dev/null
  "$KAQUAN" "${k[@]}" merchant create --name bench --json >/dev/null
  "$KAQUAN" "${k[@]}" api-key create --json >"$WORK/key.json"
  printf 'bench1234\n' | "$KAQUAN" "${k[@]}" user create --username boss --role owner --password-stdin >/dev/null
  local left=$N template
  : >"$WORK/codes.csv"
  while [ "$left" -gt 0 ]; do
    local quantity=$((left < 100000 ? left : 100000))
    "$KAQUAN" "${k[@]}" codes generate --name bench --face-value 50 --quantity "$quantity" --json >"$WORK/template.json"
    template=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["template_id"])' "$WORK/template.json")
    "$KAQUAN" "${k[@]}" codes export --template "$template" --output "$WORK/batch.csv" 2>/dev/null
    tail -n +2 "$WORK/batch.csv" >>"$WORK/codes.csv"
    left=$((left - quantity))
  done
  start_server "$label-prepare" "${k[@]}"
  python3 bench/members_prepare.py "$ADDRESS" "$WORK" "$N" "${MEMBERS:-10000}"
  stop_servers
  KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_id"])' "$WORK/key.json")
  export KEY_ID
}

run() { # $1 = label, then addresses: issues, verifications, redemptions, healthz
  local label=$1; shift
  local addresses=("$@") n=${#addresses[@]} t=$((2 / ${#addresses[@]}))
  # The kinds take turns, ROUNDS times, each round with its own share of
  # the pre-signed requests: what the machine does meanwhile (this VM's
  # disk and neighbours drift by tens of percent within a minute) reaches
  # both kinds of a round alike, and the ratio is the median of the rounds'.
  local round per=$((SECONDS_RUN / ROUNDS > 0 ? SECONDS_RUN / ROUNDS : 1))
  # Statistics of the tables prepare() just filled, as autovacuum would
  # have them in a while (without, PostgreSQL planned the verifications of
  # a 200,000-coupon run on the empty tables' and ran 40x slower).
  if [ -n "${CHECKPOINT_URL:-}" ]; then psql "$CHECKPOINT_URL" -qc ANALYZE; fi
  for round in $(seq 0 $((ROUNDS - 1))); do
    for kind in redeem pay; do
      local path
      case $kind in
        redeem) path=/open/v1/redemptions ;;
        pay) path=/open/v1/payments ;;
      esac
      # Each kind starts right after a checkpoint, so that none of them pays
      # for one that the bulk loads of prepare() or the kind before left due
      # (its full-page writes tripled the WAL of whichever ran into it).
      if [ -n "${CHECKPOINT_URL:-}" ]; then psql "$CHECKPOINT_URL" -qc CHECKPOINT; fi
      local pids=() i=0 share=$((N / ROUNDS))
      for address in "${addresses[@]}"; do
        sed -n "$((round * share + 1)),$(((round + 1) * share))p" "$WORK/$kind.txt" |
          awk -v n="$n" -v i="$i" 'NR % n == i' >"$WORK/$kind-$i.txt"
        REQUESTS_FILE="$WORK/$kind-$i.txt" REQUEST_PATH=$path WRK_THREADS=$((t > 0 ? t : 1)) \
          wrk -t$((t > 0 ? t : 1)) -c$((64 / n)) -d"${per}s" --latency -s bench/redeem.lua "$address" >"$WORK/$label-$kind-$round-$i.txt" &
        pids+=($!); i=$((i + 1))
      done
      wait "${pids[@]}"
    done
  done
  wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency "${addresses[0]}/healthz" >"$WORK/$label-healthz.txt"
  python3 - "$label" "$WORK" "$n" "$ROUNDS" <<'PY'
import re, statistics, sys
label, work, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def read(name): return open(f"{work}/{label}-{name}.txt").read()
def seconds(t):
    m = re.search(r"requests in ([\d.]+)(ms|s|m)\b", t)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "ms" else v * 60 if unit == "m" else v
def created(t): return int(re.search(r"(\d+) requests in", t).group(1)) - int(re.search(r"NON201 (\d+)", t).group(1))
def p99(t):
    m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", t)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
def rate(kind, r):
    texts = [read(f"{kind}-{r}-{i}") for i in range(n)]
    return sum(created(t) / seconds(t) for t in texts), max(p99(t) for t in texts), sum(int(re.search(r"NON201 (\d+)", t).group(1)) for t in texts)
def over_rounds(kind):
    each = [rate(kind, r) for r in range(rounds)]
    return statistics.median(e[0] for e in each), max(e[1] for e in each), sum(e[2] for e in each), [e[0] for e in each]
healthz = float(re.search(r"Requests/sec:\s+([\d.]+)", read("healthz")).group(1))
redeem, pay = over_rounds("redeem"), over_rounds("pay")
ratios = [p / r for p, r in zip(pay[3], redeem[3])]
print(f"{label}: healthz {healthz:,.0f}/s")
print(f"{label}: code redemptions {redeem[0]:,.0f}/s p99 {redeem[1]:.2f} ms ({redeem[2]} not 201), ratio to healthz {redeem[0]/healthz:.3f}")
print(f"{label}: member payments {pay[0]:,.0f}/s p99 {pay[1]:.2f} ms ({pay[2]} not 201), ratio to healthz {pay[0]/healthz:.3f}")
print(f"{label}: payments / redemptions by round: {', '.join(f'{r:.2f}' for r in ratios)}; "
      f"median {statistics.median(ratios):.2f} (target >= 0.7)")
PY
}

if [ "${ONLY:-}" != postgres ]; then
  echo "== SQLite (synchronous=FULL) =="
  N=$N_SQLITE prepare sqlite "sqlite://$WORK/bench.db"
  start_server sqlite --database-url "sqlite://$WORK/bench.db" --key-file "$WORK/sqlite.key"
  sync
  N=$N_SQLITE run sqlite "$ADDRESS"
  stop_servers
fi
[ "${ONLY:-}" = sqlite ] && exit 0

echo "== PostgreSQL, two kaquan serve nodes =="
db="kaquan_bench_members_$$"
psql "$PG/postgres" -qc "create database $db"
N=$N_POSTGRES prepare postgres "$PG/$db"
start_server pg1 --database-url "$PG/$db" --key-file "$WORK/postgres.key"; first=$ADDRESS
start_server pg2 --database-url "$PG/$db" --key-file "$WORK/postgres.key"; second=$ADDRESS
N=$N_POSTGRES CHECKPOINT_URL="$PG/$db" run postgres "$first" "$second"
stop_servers
psql "$PG/postgres" -qc "drop database $db"
