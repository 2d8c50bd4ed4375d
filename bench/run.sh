#!/usr/bin/env bash
# Benchmarks for the foundation issue, each beside its floor in one run:
#   1. `kaquan batch generate` of ROWS cards (random 12-digit numbers,
#      12-digit passwords) on SQLite and PostgreSQL, against a bare program
#      inserting the same precomputed rows with the same driver
#      (SQLite: one transaction, prepared statement; PostgreSQL: COPY), into
#      a minimal table (the number UNIQUE, nothing else: the floor the
#      targets name) and into kaquan's full `cards` schema.
#   2. `kaquan export cards --with-secrets --format xlsx` of those cards:
#      seconds and peak RSS, against a bare rust_xlsxwriter write of the
#      same cells.
# Usage: bench/run.sh [ROWS]   (default 1000000; needs PostgreSQL on 127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000000}"
PG="${KAQUAN_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p kaquan -p kaquan-bench
KAQUAN="$CARGO_TARGET_DIR/release/kaquan"
FLOOR="$CARGO_TARGET_DIR/release/kaquan-bench"
WORK=$(mktemp -d /tmp/kaquan-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export KAQUAN_LOG=warn

seconds_of() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["seconds"])'; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
rate() { python3 -c "print(f'{$ROWS/$1:,.0f}')"; }
peak_rss_mb() { python3 -c "import re,sys; t=open(sys.argv[1]).read(); print(int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', t).group(1))//1024)" "$1"; }

echo "== batch generate, $ROWS cards =="
# SQLite
DB="sqlite://$WORK/gen.db"
"$KAQUAN" --database-url "$DB" migrate 2>/dev/null
"$KAQUAN" --database-url "$DB" merchant create --name bench --json >/dev/null
sync
gen_sqlite=$("$KAQUAN" --database-url "$DB" batch generate --quantity "$ROWS" --numbering random --number-length 12 \
  --password-length 12 --password-charset digits --json 2>/dev/null | seconds_of)
sync
floor_sqlite=$("$FLOOR" floor-sqlite "$ROWS" "$WORK/floor.db" | seconds_of)
sync
minimal_sqlite=$("$FLOOR" floor-sqlite-minimal "$ROWS" "$WORK/minimal.db" | seconds_of)
echo "sqlite:   kaquan $gen_sqlite s ($(rate "$gen_sqlite") cards/s)   minimal floor $minimal_sqlite s ($(rate "$minimal_sqlite") cards/s)   ratio $(ratio "$gen_sqlite" "$minimal_sqlite")x (target <= 1.3x)"
echo "          full-schema floor $floor_sqlite s ($(rate "$floor_sqlite") cards/s)   ratio $(ratio "$gen_sqlite" "$floor_sqlite")x"
rm -f "$WORK"/minimal.db*

echo "== export $ROWS cards with passwords to xlsx =="
# Let the writes above reach the disk first, so write-back does not compete.
sync
start=$(date +%s.%N)
/usr/bin/time -v -o "$WORK/export.time" "$KAQUAN" --database-url "$DB" export cards --batch 1 --format xlsx --with-secrets \
  --output "$WORK/export.xlsx" 2>/dev/null
export_s=$(python3 -c "import time; print(f'{time.time()-$start:.3f}')")
sync
start=$(date +%s.%N)
/usr/bin/time -v -o "$WORK/floor-xlsx.time" "$FLOOR" floor-xlsx "$ROWS" "$WORK/floor.xlsx" >/dev/null
floor_xlsx_s=$(python3 -c "import time; print(f'{time.time()-$start:.3f}')")
echo "export:   kaquan $export_s s, peak RSS $(peak_rss_mb "$WORK/export.time") MB   floor $floor_xlsx_s s, peak RSS $(peak_rss_mb "$WORK/floor-xlsx.time") MB   ratio $(ratio "$export_s" "$floor_xlsx_s")x (target <= 1.5x, RSS <= 64 MB)"

# PostgreSQL after the export: its background vacuum of a million fresh rows
# would otherwise compete with the export for the two cores.
# Fresh databases for both sides.
suffix=$$
psql "$PG/postgres" -qc "create database kaquan_bench_gen_$suffix" -qc "create database kaquan_bench_floor_$suffix" \
  -qc "create database kaquan_bench_minimal_$suffix"
PGGEN="$PG/kaquan_bench_gen_$suffix"
"$KAQUAN" --database-url "$PGGEN" --key-file "$WORK/pg.key" migrate 2>/dev/null
"$KAQUAN" --database-url "$PGGEN" --key-file "$WORK/pg.key" merchant create --name bench --json >/dev/null
sync
gen_pg=$("$KAQUAN" --database-url "$PGGEN" --key-file "$WORK/pg.key" batch generate --quantity "$ROWS" --numbering random \
  --number-length 12 --password-length 12 --password-charset digits --json 2>/dev/null | seconds_of)
sync
floor_pg=$("$FLOOR" floor-postgres "$ROWS" "$PG/kaquan_bench_floor_$suffix" | seconds_of)
sync
minimal_pg=$("$FLOOR" floor-postgres-minimal "$ROWS" "$PG/kaquan_bench_minimal_$suffix" | seconds_of)
echo "postgres: kaquan $gen_pg s ($(rate "$gen_pg") cards/s)   minimal floor $minimal_pg s ($(rate "$minimal_pg") cards/s)   ratio $(ratio "$gen_pg" "$minimal_pg")x (target <= 2x)"
echo "          full-schema floor $floor_pg s ($(rate "$floor_pg") cards/s)   ratio $(ratio "$gen_pg" "$floor_pg")x"
psql "$PG/postgres" -qc "drop database kaquan_bench_gen_$suffix" -qc "drop database kaquan_bench_floor_$suffix" \
  -qc "drop database kaquan_bench_minimal_$suffix"

