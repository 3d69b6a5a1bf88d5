# Shared by up.sh, down.sh and status.sh: where things live and run locally.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
var="$root/var"
build="${BUILD:-$root/build}"
export LINLI_REDIS_PORT="${LINLI_REDIS_PORT:-6390}"
export LINLI_PG_PORT_LOCAL="${LINLI_PG_PORT_LOCAL:-5440}"
export LINLI_HTTP_PORT="${LINLI_HTTP_PORT:-8080}"
export LINLI_BROKER_PORT_LOCAL="${LINLI_BROKER_PORT_LOCAL:-5555}"

# On one host the services reach Redis, PostgreSQL and the broker over Unix
# sockets in var/ (the usual same-host transport: no TCP/IP stack); the
# TCP ports stay open beside them for redis-cli, psql and other hosts. A
# socket path holds at most 107 bytes: with a longer var/ everything is TCP.
redis_socket="$var/redis/redis.sock"
pg_socket_dir="$var/pg"
broker_socket="$var/broker.sock"
unix_sockets=1
for path in "$redis_socket" "$pg_socket_dir/.s.PGSQL.$LINLI_PG_PORT_LOCAL" "$broker_socket"; do
    [ ${#path} -le 107 ] || unix_sockets=0
done
# Which defaults below are ours (up.sh falls back to TCP only for those).
default_redis_socket=0 default_pg_dsn=0 default_broker_endpoints=0
if [ "$unix_sockets" = 1 ]; then
    # Set but empty (LINLI_REDIS_SOCKET=) means TCP, as for the services.
    if [ -z "${LINLI_REDIS_SOCKET+set}" ]; then
        export LINLI_REDIS_SOCKET="$redis_socket"
        default_redis_socket=1
    fi
    if [ -z "${LINLI_PG_DSN:-}" ]; then
        export LINLI_PG_DSN="host=$pg_socket_dir port=$LINLI_PG_PORT_LOCAL dbname=linli user=linli"
        default_pg_dsn=1
    fi
    if [ -z "${LINLI_BROKER_BIND:-}" ]; then
        export LINLI_BROKER_BIND="tcp://127.0.0.1:$LINLI_BROKER_PORT_LOCAL,ipc://$broker_socket"
        if [ -z "${LINLI_BROKER_ENDPOINTS:-}" ]; then
            export LINLI_BROKER_ENDPOINTS="ipc://$broker_socket"
            default_broker_endpoints=1
        fi
    fi
fi
export LINLI_PG_DSN="${LINLI_PG_DSN:-host=127.0.0.1 port=$LINLI_PG_PORT_LOCAL dbname=linli user=linli}"
export LINLI_BROKER_BIND="${LINLI_BROKER_BIND:-tcp://127.0.0.1:$LINLI_BROKER_PORT_LOCAL}"
export LINLI_BROKER_ENDPOINTS="${LINLI_BROKER_ENDPOINTS:-$LINLI_BROKER_BIND}"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
services=(registry)
replicas_registry="${LINLI_REGISTRY_REPLICAS:-2}"

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
