# Shared by up.sh, down.sh and status.sh: where things live and run locally.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
var="$root/var"
build="${BUILD:-$root/build}"
export LINLI_REDIS_PORT="${LINLI_REDIS_PORT:-6390}"
export LINLI_PG_PORT_LOCAL="${LINLI_PG_PORT_LOCAL:-5440}"
export LINLI_HTTP_PORT="${LINLI_HTTP_PORT:-8080}"
export LINLI_BROKER_PORT_LOCAL="${LINLI_BROKER_PORT_LOCAL:-5555}"
export LINLI_PG_DSN="${LINLI_PG_DSN:-host=127.0.0.1 port=$LINLI_PG_PORT_LOCAL dbname=linli user=linli}"
export LINLI_BROKER_BIND="${LINLI_BROKER_BIND:-tcp://127.0.0.1:$LINLI_BROKER_PORT_LOCAL}"
export LINLI_BROKER_ENDPOINTS="${LINLI_BROKER_ENDPOINTS:-$LINLI_BROKER_BIND}"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
services=(registry)
replicas_registry="${LINLI_REGISTRY_REPLICAS:-2}"

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
