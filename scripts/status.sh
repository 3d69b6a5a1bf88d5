#!/usr/bin/env bash
# make status: each process of the local suite, running or not.
set -uo pipefail
source "$(dirname "$0")/env.sh"
printf '%-14s %s\n' redis "$(redis-cli -p "$LINLI_REDIS_PORT" ping 2>/dev/null || echo down)"
printf '%-14s %s\n' postgresql "$("$pgbin/pg_isready" -h 127.0.0.1 -p "$LINLI_PG_PORT_LOCAL" >/dev/null 2>&1 && echo up || echo down)"
sockets=""
for f in "$redis_socket" "$pg_socket_dir/.s.PGSQL.$LINLI_PG_PORT_LOCAL" "$broker_socket"; do
    [ -S "$f" ] && sockets+="$f "
done
printf '%-14s %s\n' "unix sockets" "${sockets:-none}"
for pidfile in "$var"/run/*.pid; do
    [ -e "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    [ "$name" = redis ] && continue
    if alive "$pidfile"; then state="up (pid $(cat "$pidfile"))"; else state=down; fi
    printf '%-14s %s\n' "$name" "$state"
done
curl -fs "http://127.0.0.1:$LINLI_HTTP_PORT/healthz" 2>/dev/null && echo || echo "gateway: no answer on :$LINLI_HTTP_PORT"
