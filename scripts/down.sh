#!/usr/bin/env bash
# make down: stop every service, the gateway, PostgreSQL and Redis started by make up.
set -uo pipefail
source "$(dirname "$0")/env.sh"
for pidfile in "$var"/run/*.pid; do
    [ -e "$pidfile" ] || continue
    [ "$(basename "$pidfile")" = redis.pid ] && continue
    if alive "$pidfile"; then kill "$(cat "$pidfile")" 2>/dev/null; fi
    rm -f "$pidfile"
done
if [ -d "$var/pg/data" ]; then
    as_pg "$pgbin/pg_ctl" -D "$var/pg/data" -m fast -w stop >/dev/null 2>&1 || true
fi
redis-cli -p "$LINLI_REDIS_PORT" shutdown >/dev/null 2>&1 || true
# Redis and PostgreSQL remove their Unix sockets; the broker's ipc one stays behind.
rm -f "$var/run/redis.pid" "$broker_socket"
echo "stopped"
