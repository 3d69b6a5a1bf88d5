//  gateway_sessions: bearer-token look-ups without blocking the event loop.
//  One asynchronous Redis connection (hiredis async on the gateway's libevent
//  base) carries every look-up, pipelined; a look-up unanswered within the
//  timeout drops the connection, which answers every outstanding one with
//  "unavailable" at once. Same keys as common/linli_session.
//
//  Sessions found are cached for cache_ms (never past their own end) in a
//  table of cache_entries slots, but only while a second connection is
//  subscribed to the ended-sessions channel (linli_session_channel): every
//  logout and every revocation names the hashes ended there and the gateway
//  drops them; losing the subscription empties the cache, and a session read
//  while an end was announced is not kept. See docs/sessions.md.
#ifndef GATEWAY_SESSIONS_H
#define GATEWAY_SESSIONS_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/envelope.pb-c.h"

typedef struct gateway_sessions_t gateway_sessions_t;

//  Answer to one look-up: rc 0 with caller (the callee owns it; free with
//  linli__caller__free_unpacked) or NULL when the token is unknown or
//  expired; rc -1 when Redis cannot be asked. hash is the session hash.
//  May be called before gateway_sessions_lookup returns.
typedef void(gateway_session_fn)(void *arg, int rc, Linli__Caller *caller, const char *hash);

typedef struct {
    const char *host;     //  Redis host (with port) ...
    int port;             //
    const char *socket;   //  ... or its Unix socket, when set and not ""
    const char *prefix;   //  key prefix
    int timeout_ms;       //  per look-up
    int cache_ms;         //  how long a session found is trusted; 0: no cache
    size_t cache_entries; //  cache slots (rounded up to a power of two)
} gateway_sessions_opts_t;

typedef struct {
    uint64_t hits, misses; //  look-ups answered from the cache, from Redis
    uint64_t ended;        //  ended sessions announced
    size_t entries;        //  sessions cached now
} gateway_sessions_stats_t;

//  New look-up service on base (borrowed); opts' strings are borrowed and
//  must outlive it. Connects lazily. Caller owns.
gateway_sessions_t *gateway_sessions_new(struct event_base *base,
                                         const gateway_sessions_opts_t *opts);

//  Drop the connection (outstanding look-ups are answered -1) and free.
void gateway_sessions_destroy(gateway_sessions_t **self_p);

//  Look token up; fn is called exactly once.
void gateway_sessions_lookup(gateway_sessions_t *self, const char *token, gateway_session_fn *fn,
                             void *arg);

//  The counters since start.
void gateway_sessions_stats(const gateway_sessions_t *self, gateway_sessions_stats_t *out);

//  Enforce the timeout and open the subscription the cache needs, again
//  after a loss (call from a periodic timer; look-ups do not open it).
void gateway_sessions_tick(gateway_sessions_t *self);

#endif
