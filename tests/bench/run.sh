#!/usr/bin/env bash
# Benchmarks (not tests): start a private suite on free ports, measure with wrk
#   GET /healthz              the gateway alone
#   GET /v1/areas/{code}      through the broker to a registry worker (public)
#   GET /v1/volunteers/{id}   with a session, read from PostgreSQL
#   POST /v1/volunteers       sign-up, bound by one argon2id hash
# and print requests/s, p50 and p99 of each, their ratios to healthz, and this
# machine's raw Redis (redis-benchmark GET) and PostgreSQL (pgbench
# select-only) figures.
# As `make up` runs them, the services reach Redis, PostgreSQL and the broker
# over Unix sockets (the raw figures use the same); LINLI_BENCH_TCP=1 makes
# all of it TCP loopback instead.
# Usage: tests/bench/run.sh [seconds per run, default 10] [connections, default 32]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build="${BUILD:-$root/build}"
secs="${1:-10}"
conns="${2:-32}"
work=$(mktemp -d /tmp/linli-bench-XXXXXX)
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(free_port); pg_port=$(free_port); http_port=$(free_port); broker_port=$(free_port)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --daemonize yes \
    --appendonly yes --appendfsync everysec --logfile "$work/redis.log" \
    --unixsocket "$work/redis.sock" --unixsocketperm 700 >/dev/null
mkdir -p "$work/pg"; [ "$(id -u)" -eq 0 ] && chown postgres "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U linli --auth=trust >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/pg" start >/dev/null
psql -h 127.0.0.1 -p "$pg_port" -U linli -d postgres -qc "CREATE DATABASE linli"

export LINLI_REDIS_PORT=$redis_port LINLI_HTTP_PORT=$http_port LINLI_LOG_LEVEL=warn
if [ "${LINLI_BENCH_TCP:-0}" = 1 ]; then
    transports="tcp loopback (redis 127.0.0.1:$redis_port, postgresql 127.0.0.1:$pg_port, broker tcp)"
    export LINLI_REDIS_SOCKET=
    export LINLI_PG_DSN="host=127.0.0.1 port=$pg_port dbname=linli user=linli"
    export LINLI_BROKER_BIND="tcp://127.0.0.1:$broker_port" LINLI_BROKER_ENDPOINTS="tcp://127.0.0.1:$broker_port"
    redis_addr=(-p "$redis_port"); pg_host=127.0.0.1
else
    transports="unix sockets (redis unix socket, postgresql socket directory, broker ipc://); LINLI_BENCH_TCP=1 for tcp"
    export LINLI_REDIS_SOCKET="$work/redis.sock"
    export LINLI_PG_DSN="host=$work/pg port=$pg_port dbname=linli user=linli"
    export LINLI_BROKER_BIND="ipc://$work/broker.sock" LINLI_BROKER_ENDPOINTS="ipc://$work/broker.sock"
    redis_addr=(-s "$work/redis.sock"); pg_host="$work/pg"
fi
export LINLI_PII_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export LINLI_BOOTSTRAP_ADMIN_PHONE=13800000000 LINLI_BOOTSTRAP_ADMIN_PASSWORD=bench-admin-1
export LINLI_SIGNUP_PER_ADDR=1000000
# Steady state: no demo volunteers (their 200k events would be draining meanwhile).
export LINLI_DEMO_VOLUNTEERS=0
"$build/linli-registry" seed-demo 2>"$work/seed.log"
"$build/linli-gateway" 2>"$work/gateway.log" & pids+=($!)
# Registry workers, as `make up` runs them (LINLI_BENCH_WORKERS, default 2).
for i in $(seq 1 "${LINLI_BENCH_WORKERS:-2}"); do
    "$build/linli-registry" 2>"$work/registry-$i.log" & pids+=($!)
done
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$http_port/v1/areas/420102" >/dev/null 2>&1 && break; sleep 0.1
done

# wrk --latency prints "50%  1.23ms" lines; normalise to milliseconds.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f", v}'; }
run_wrk() { # path [token] -> "rps p50 p99"
    local auth=(); [ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
    local out; out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "${auth[@]}" "http://127.0.0.1:$http_port$1")
    echo "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}') \
$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms) $(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)"
}

# Volunteers: a staff token, one volunteer to read, then sign-ups (argon2id-bound).
admin_token=$(curl -fs -X POST "http://127.0.0.1:$http_port/v1/auth/login" \
    -d "{\"phone\":\"$LINLI_BOOTSTRAP_ADMIN_PHONE\",\"password\":\"$LINLI_BOOTSTRAP_ADMIN_PASSWORD\"}" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
vol_id=$(curl -fs -X POST "http://127.0.0.1:$http_port/v1/volunteers" -H "Authorization: Bearer $admin_token" \
    -d '{"name":"读者","id_number":"11010519491231002X","phone":"13600000000","community":"420102001001"}' |
    sed -n 's/.*"volunteer":{"id":"\([0-9]*\)".*/\1/p')

# This machine's speed drifts by tens of percent from minute to minute (a
# shared VM): healthz, areas and the volunteer read run back to back in each
# of LINLI_BENCH_ROUNDS rounds (default 3); each ratio is taken within a
# round, and the medians are printed (every round's figures too).
rounds="${LINLI_BENCH_ROUNDS:-3}"
h_all=() a_all=() v_all=() ra_all=() rv_all=()
for _ in $(seq 1 "$rounds"); do
    read -r h a_ v < <(echo "$(run_wrk /healthz | cut -d' ' -f1) \
$(run_wrk /v1/areas/420102 | cut -d' ' -f1) $(run_wrk "/v1/volunteers/$vol_id" "$admin_token" | cut -d' ' -f1)")
    if [ -z "$v" ] || [ "${h:-0}" = 0 ]; then
        echo "bench: a wrk run gave no figure (healthz '$h', areas '$a_', volunteer '$v')" >&2
        exit 1
    fi
    h_all+=("$h") a_all+=("$a_") v_all+=("$v")
    ra_all+=("$(awk -v a="$a_" -v h="$h" 'BEGIN {printf "%.2f", a/h}')")
    rv_all+=("$(awk -v a="$v" -v h="$h" 'BEGIN {printf "%.2f", a/h}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# Latency percentiles from one more run each (the throughput runs saturate).
read -r h_rps h_p50 h_p99 < <(run_wrk /healthz)
read -r a_rps a_p50 a_p99 < <(run_wrk /v1/areas/420102)
read -r v_rps v_p50 v_p99 < <(run_wrk "/v1/volunteers/$vol_id" "$admin_token")
h_all+=("$h_rps") a_all+=("$a_rps") v_all+=("$v_rps")
ra_all+=("$(awk -v a="$a_rps" -v h="$h_rps" 'BEGIN {printf "%.2f", a/h}')")
rv_all+=("$(awk -v a="$v_rps" -v h="$h_rps" 'BEGIN {printf "%.2f", a/h}')")
h_rps=$(printf '%.0f' "$(median "${h_all[@]}")"); a_rps=$(printf '%.0f' "$(median "${a_all[@]}")")
v_rps=$(printf '%.0f' "$(median "${v_all[@]}")")
ra=$(median "${ra_all[@]}"); rv=$(median "${rv_all[@]}")
s_out=$(wrk -t2 -c4 -d"${secs}s" --latency -s "$root/tests/bench/signup.lua" "http://127.0.0.1:$http_port")
s_rps=$(echo "$s_out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
s_p50=$(echo "$s_out" | awk '$1=="50%" {print $2}' | to_ms)
s_p99=$(echo "$s_out" | awk '$1=="99%" {print $2}' | to_ms)
s_non2xx=$(echo "$s_out" | sed -n 's/^sign-up answers besides 201: //p')
argon_ms=$("$build/tests/bench_argon2" "${LINLI_ARGON2_OPS:-2}" "${LINLI_ARGON2_MEM_KB:-65536}")
redis_rps=$(redis-benchmark "${redis_addr[@]}" -t get -n 200000 -c "$conns" -q | tr '\r' '\n' |
    awk '/^GET: [0-9]/ {v=$2} END {printf "%.0f", v}')
as_pg "$pgbin/pgbench" -h "$pg_host" -p "$pg_port" -U linli -i -q linli >/dev/null 2>&1
pg_tps=$(as_pg "$pgbin/pgbench" -h "$pg_host" -p "$pg_port" -U linli -S -c "$conns" -j 2 -T "$secs" linli 2>/dev/null |
    awk '/^tps/ {printf "%.0f", $3}')

echo "commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, ${secs}s per run, $conns connections, ${LINLI_BENCH_WORKERS:-2} registry workers, $((rounds + 1)) rounds (req/s: medians; p50/p99: the last round)"
echo "transports: $transports"
printf '%-24s %10s %9s %9s\n' "" "req/s" "p50 ms" "p99 ms"
printf '%-24s %10s %9s %9s\n' "GET /healthz" "$h_rps" "$h_p50" "$h_p99"
printf '%-24s %10s %9s %9s\n' "GET /v1/areas/420102" "$a_rps" "$a_p50" "$a_p99"
printf 'areas / healthz        %10.2f   (target >= 0.50; p99 target <= 5 ms; rounds: %s)\n' "$ra" "${ra_all[*]}"
printf '%-24s %10s %9s %9s\n' "GET /v1/volunteers/{id}" "$v_rps" "$v_p50" "$v_p99"
printf 'volunteer / healthz    %10.2f   (target >= 0.50; rounds: %s)\n' "$rv" "${rv_all[*]}"
printf '%-24s %10s %9s %9s   (non-2xx: %s)\n' "POST /v1/volunteers" "$s_rps" "$s_p50" "$s_p99" "${s_non2xx:-0}"
awk -v ms="$argon_ms" 'BEGIN {printf "one argon2id hash       %9.2f ms -> at most %.0f sign-ups/s per core\n", ms, 1000/ms}'
printf '%-24s %10s\n' "raw Redis GET" "$redis_rps"
printf '%-24s %10s\n' "raw PostgreSQL select" "$pg_tps"
awk -v a="$a_rps" -v r="$redis_rps" -v p="$pg_tps" 'BEGIN {printf "areas / raw Redis      %10.2f\nareas / raw PostgreSQL %10.2f\n", a/r, a/p}'
