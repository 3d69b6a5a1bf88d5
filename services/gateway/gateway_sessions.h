//  gateway_sessions: bearer-token look-ups without blocking the event loop.
//  One asynchronous Redis connection (hiredis async on the gateway's libevent
//  base) carries every look-up, pipelined; a look-up unanswered within the
//  timeout drops the connection, which answers every outstanding one with
//  "unavailable" at once. Same keys as common/linli_session.
#ifndef GATEWAY_SESSIONS_H
#define GATEWAY_SESSIONS_H

#include <event2/event.h>

#include "linli/envelope.pb-c.h"

typedef struct gateway_sessions_t gateway_sessions_t;

//  Answer to one look-up: rc 0 with caller (the callee owns it; free with
//  linli__caller__free_unpacked) or NULL when the token is unknown or
//  expired; rc -1 when Redis cannot be asked. hash is the session hash.
//  May be called before gateway_sessions_lookup returns.
typedef void(gateway_session_fn)(void *arg, int rc, Linli__Caller *caller, const char *hash);

//  New look-up service on base (borrowed). Connects lazily. Caller owns.
gateway_sessions_t *gateway_sessions_new(struct event_base *base, const char *host, int port,
                                         const char *prefix, int timeout_ms);

//  Drop the connection (outstanding look-ups are answered -1) and free.
void gateway_sessions_destroy(gateway_sessions_t **self_p);

//  Look token up; fn is called exactly once.
void gateway_sessions_lookup(gateway_sessions_t *self, const char *token, gateway_session_fn *fn,
                             void *arg);

//  Enforce the timeout (call from a periodic timer).
void gateway_sessions_tick(gateway_sessions_t *self);

#endif
