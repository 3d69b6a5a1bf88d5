#!/usr/bin/env bash
# Bulk import benchmark (not a test). On a private PostgreSQL it measures
#   1. linli-registry import-volunteers: N generated volunteers (CSV) through
#      the whole job — parse, check, seal, stage by COPY, one transaction into
#      accounts, volunteers and the outbox with their indexes and keys;
#      accounts, volunteers and their volunteers.imported events, with their
#      indexes kept up to date row by row (the mode that runs beside traffic);
#   2. the same file with --bulk into a fresh database: indexes dropped and
#      built again after the load (a city's migration: tables locked);
#   3. raw COPY of the same CSV into a bare table of the same nine text
#      columns (psql \copy), the machine's ceiling for moving those bytes;
#   4. seed-demo loading the demo city's volunteers into a fresh database.
# and prints rows/s of each and the ratios import / raw COPY.
# Usage: tests/bench/bench_import.sh [rows, default 1000000] [demo volunteers, default 200000]
#   BUILD=path  a RelWithDebInfo build (default build-v1-rel, else build)
#   PG_TUNE=0   run PostgreSQL with its stock settings instead of the tuned ones below
#   PG_COLLATE=C  databases collated "C" (byte order) instead of C.UTF-8, to compare
#               (text keys: the keyed hashes, event ids and area codes)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build="${BUILD:-$root/build-v1-rel}"
[ -x "$build/linli-registry" ] || build="$root/build"
rows="${1:-1000000}"
demo="${2:-200000}"
work=$(mktemp -d /tmp/linli-bench-import-XXXXXX)
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
pg_port=$(free_port)
cleanup() {
    as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# A server set up as a city would run it: room for the indexes being written
# (shared_buffers) and for the WAL of a big transaction between checkpoints.
tune=(-c shared_buffers=1GB -c wal_buffers=64MB -c max_wal_size=8GB -c checkpoint_timeout=30min)
[ "${PG_TUNE:-1}" = 0 ] && tune=()
mkdir -p "$work/pg"; [ "$(id -u)" -eq 0 ] && chown postgres "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U linli --auth=trust -E UTF8 --locale=C.UTF-8 \
    --lc-collate="${PG_COLLATE:-C.UTF-8}" >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o "-p $pg_port \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/pg ${tune[*]}" start >/dev/null
psql_() { psql -h 127.0.0.1 -p "$pg_port" -U linli -v ON_ERROR_STOP=1 "$@"; }
psql_ -d postgres -qc "CREATE DATABASE linli" -c "CREATE DATABASE demo" -c "CREATE DATABASE bulk"

export LINLI_PG_DSN="host=127.0.0.1 port=$pg_port dbname=linli user=linli" LINLI_LOG_LEVEL=warn
export LINLI_PII_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export LINLI_BOOTSTRAP_ADMIN_PHONE=13800000000 LINLI_BOOTSTRAP_ADMIN_PASSWORD=bench-admin-1
export LINLI_DEMO_PASSWORD=bench-demo-1 LINLI_IMPORT_MAX_ROWS=$((rows + 1))
reg="$build/linli-registry"

# The city's areas, then the file.
LINLI_DEMO_VOLUNTEERS=0 "$reg" seed-demo 2>"$work/seed.log"
"$reg" demo-csv "$rows" "$work/volunteers.csv" 2>>"$work/seed.log"
size=$(du -m "$work/volunteers.csv" | cut -f1)

# 1. The import, end to end (process start to exit).
t0=$(now)
out=$("$reg" import-volunteers "$work/volunteers.csv" --as-city-admin 2>"$work/import.log")
t1=$(now)
imported=$(echo "$out" | sed -n 's/.* \([0-9]*\) imported.*/\1/p')
[ "$imported" = "$rows" ] || { echo "import failed: $out"; tail -5 "$work/import.log"; exit 1; }

# 3. Raw COPY of the same file into a bare table.
psql_ -d linli -qc "CREATE TABLE bare (name text, id_number text, phone text, community text,
    gender text, political_status text, skills text, free_slots text, status text)"
t2=$(now)
psql_ -d linli -qc "\\copy bare FROM '$work/volunteers.csv' WITH (FORMAT csv, HEADER true)"
t3=$(now)

# 2. The same file in bulk mode, into a fresh database.
LINLI_PG_DSN="host=127.0.0.1 port=$pg_port dbname=bulk user=linli" LINLI_DEMO_VOLUNTEERS=0 \
    "$reg" seed-demo 2>>"$work/seed.log"
t6=$(now)
outb=$(LINLI_PG_DSN="host=127.0.0.1 port=$pg_port dbname=bulk user=linli" \
    "$reg" import-volunteers "$work/volunteers.csv" --as-city-admin --bulk 2>"$work/bulk.log")
t7=$(now)
echo "$outb" | grep -q " $rows imported" || { echo "bulk import failed: $outb"; tail -5 "$work/bulk.log"; exit 1; }

# 4. The demo city in a fresh database, as `make up` loads it.
t4=$(now)
LINLI_PG_DSN="host=127.0.0.1 port=$pg_port dbname=demo user=linli" LINLI_DEMO_VOLUNTEERS=$demo \
    "$reg" seed-demo >"$work/demo.out" 2>"$work/demo.log"
t5=$(now)

echo "commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, PostgreSQL $(psql_ -d linli -Atc 'SHOW server_version' | cut -d' ' -f1), collation ${PG_COLLATE:-C.UTF-8}, ${tune[*]:-stock settings}"
echo "file: $rows volunteers, ${size} MB of CSV"
awk -v n="$rows" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" -v m="$demo" \
    -v g="$t6" -v h="$t7" 'BEGIN {
    imp = n / (b - a); raw = n / (d - c); blk = n / (h - g)
    printf "%-34s %8.1f s %10.0f rows/s\n", "import-volunteers (end to end)", b - a, imp
    printf "%-34s %8.1f s %10.0f rows/s\n", "import-volunteers --bulk", h - g, blk
    printf "%-34s %8.1f s %10.0f rows/s\n", "raw COPY into a bare table", d - c, raw
    printf "%-34s %10.2f   (target >= 0.50)\n", "import / raw COPY", imp / raw
    printf "%-34s %10.2f   (target >= 0.50)\n", "bulk import / raw COPY", blk / raw
    printf "%-34s %8.1f s   (3.4 million at this rate; target < 120 s)\n", "3.4 million projected", 3400000 / imp
    printf "%-34s %8.1f s   (3.4 million at this rate; target < 120 s)\n", "3.4 million projected, bulk", 3400000 / blk
    printf "%-34s %8.1f s   (and the organisations, residents)\n", "seed-demo, " m " volunteers", f - e
}'
echo "job: $out" | head -1
