#!/usr/bin/env bash
# make up: Redis, PostgreSQL, every service and the gateway, locally in var/,
# with the demo city loaded. A second run finds what runs and starts the rest.
set -euo pipefail
source "$(dirname "$0")/env.sh"
mkdir -p "$var/log" "$var/run" "$var/redis"

# Secrets are generated once, kept in var/ (git-ignored), never printed but the demo login.
if [ ! -f "$var/secrets.env" ]; then
    umask 077
    {
        echo "LINLI_PII_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
        echo "LINLI_BOOTSTRAP_ADMIN_PHONE=13800000000"
        echo "LINLI_BOOTSTRAP_ADMIN_PASSWORD=demo-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
    } > "$var/secrets.env"
    umask 022
fi
# The demo volunteers' shared password (added to secrets made before it existed).
grep -q '^LINLI_DEMO_PASSWORD=' "$var/secrets.env" ||
    echo "LINLI_DEMO_PASSWORD=vol-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')" >> "$var/secrets.env"
set -a; source "$var/secrets.env"; set +a

[ "$unix_sockets" = 1 ] ||
    echo "note: $var is too long for Unix socket paths (107 bytes at most): everything uses TCP loopback"

# Redis, append-only (everysec), on loopback and on its Unix socket in var/redis.
redis_ready() { [ "$(redis-cli -p "$LINLI_REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
if ! redis-cli -p "$LINLI_REDIS_PORT" ping >/dev/null 2>&1; then
    redis_unix=()
    [ "$unix_sockets" = 1 ] && redis_unix=(--unixsocket "$redis_socket" --unixsocketperm 700)
    redis-server --port "$LINLI_REDIS_PORT" --bind 127.0.0.1 --dir "$var/redis" \
        --appendonly yes --appendfsync everysec --daemonize yes \
        --pidfile "$var/run/redis.pid" --logfile "$var/log/redis.log" "${redis_unix[@]}"
fi
# Started, or still loading its append-only file: wait until it answers PONG.
for _ in $(seq 600); do redis_ready && break; sleep 0.1; done
# A Redis started by an earlier version of this script has no socket.
if [ "$default_redis_socket" = 1 ] && [ ! -S "$redis_socket" ]; then
    echo "note: the running Redis has no $redis_socket: services use TCP ('make down; make up' to switch)"
    export LINLI_REDIS_SOCKET=
fi
echo "redis       127.0.0.1:$LINLI_REDIS_PORT${LINLI_REDIS_SOCKET:+, services over unix:$LINLI_REDIS_SOCKET}"

# PostgreSQL in var/pg (initdb refuses root: it runs as postgres then).
if [ ! -d "$var/pg/data" ]; then
    mkdir -p "$var/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$var/pg"
    as_pg "$pgbin/initdb" -D "$var/pg/data" -U linli --auth=trust -E UTF8 --locale=C.UTF-8 >"$var/log/initdb.log"
fi
# Its socket goes in var/pg (owned by postgres when we are root); none when
# the path would be too long (PostgreSQL refuses to start without one it asked for).
pg_sockets="''"
[ "$unix_sockets" = 1 ] && pg_sockets="$pg_socket_dir"
if ! "$pgbin/pg_isready" -h 127.0.0.1 -p "$LINLI_PG_PORT_LOCAL" >/dev/null 2>&1; then
    as_pg "$pgbin/pg_ctl" -D "$var/pg/data" -l "$var/pg/postgres.log" -w \
        -o "-p $LINLI_PG_PORT_LOCAL -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pg_sockets" start >/dev/null
fi
psql -h 127.0.0.1 -p "$LINLI_PG_PORT_LOCAL" -U linli -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'linli'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$LINLI_PG_PORT_LOCAL" -U linli -d postgres -qc "CREATE DATABASE linli"
pg_where="the DSN in LINLI_PG_DSN"
if [ "$default_pg_dsn" = 1 ]; then
    pg_where="unix:$pg_socket_dir"
    if [ ! -S "$pg_socket_dir/.s.PGSQL.$LINLI_PG_PORT_LOCAL" ]; then
        echo "note: the running PostgreSQL has no socket in $pg_socket_dir: services use TCP"
        export LINLI_PG_DSN="host=127.0.0.1 port=$LINLI_PG_PORT_LOCAL dbname=linli user=linli"
        pg_where="TCP"
    fi
fi
echo "postgresql  127.0.0.1:$LINLI_PG_PORT_LOCAL (database linli), services over $pg_where"

# Migrations and the demo city (idempotent): areas, then LINLI_DEMO_VOLUNTEERS
# volunteers (200,000 unless set; raise it later to add more). It prints
# three demo volunteer logins on stdout.
"$build/linli-registry" seed-demo >"$var/run/demo-logins.txt" 2>>"$var/log/seed.log" || {
    echo "loading the demo city failed: see $var/log/seed.log"; exit 1; }

start() { # name, pidfile, command...
    local name=$1 pidfile=$2; shift 2
    if alive "$pidfile"; then return; fi
    nohup "$@" >>"$var/log/$name.log" 2>&1 &
    echo $! >"$pidfile"
}
# A gateway that died leaves its ipc socket file: gone before a new one starts.
alive "$var/run/gateway.pid" || rm -f "$broker_socket"
start gateway "$var/run/gateway.pid" "$build/linli-gateway"
# The gateway creates the broker's ipc socket; workers connect to it once it
# is there (a gateway started by an earlier version of this script has none).
if [ "$default_broker_endpoints" = 1 ]; then
    for _ in $(seq 50); do [ -S "$broker_socket" ] && break; sleep 0.1; done
    if [ ! -S "$broker_socket" ]; then
        echo "note: the gateway has no $broker_socket: workers use TCP (see $var/log/gateway.log)"
        export LINLI_BROKER_ENDPOINTS="tcp://127.0.0.1:$LINLI_BROKER_PORT_LOCAL"
    fi
fi
echo "broker      $LINLI_BROKER_BIND, workers connect to $LINLI_BROKER_ENDPOINTS"
for svc in "${services[@]}"; do
    n_var="replicas_$svc"
    for i in $(seq 1 "${!n_var}"); do
        start "$svc-$i" "$var/run/$svc-$i.pid" "$build/linli-$svc"
    done
done

url="http://127.0.0.1:$LINLI_HTTP_PORT"
for _ in $(seq 100); do
    curl -fs "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
echo
echo "Linli is up: $url   (health: $url/healthz, metrics: $url/metrics)"
echo "Demo city admin: phone $LINLI_BOOTSTRAP_ADMIN_PHONE, password $LINLI_BOOTSTRAP_ADMIN_PASSWORD"
sed 's/^demo volunteer: /Demo volunteer:  /' "$var/run/demo-logins.txt"
echo "Logs in $var/log; stop with 'make down', look with 'make status'."
