//  linli_session: bearer-token sessions in Redis. The key
//  <prefix>session:<hash of token> holds the packed Linli__Caller with a TTL;
//  the token itself is never stored. Created by the registry at login,
//  resolved by the gateway on every authenticated request.
#ifndef LINLI_SESSION_H
#define LINLI_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "linli_redis.h"
#include "linli/envelope.pb-c.h"

//  Store caller (borrowed) under a new random token valid for ttl_s seconds.
//  Writes the token (caller shows it once) and its expiry. 0 or -1 (Redis down).
int linli_session_create(linli_redis_t *redis, const Linli__Caller *caller, int ttl_s, char *token,
                         size_t cap, int64_t *expires_at_ms);

//  Look token up. 0 with *caller set (caller frees with
//  linli__caller__free_unpacked) and its session hash written to hash (65
//  bytes), or 0 with *caller NULL when unknown or expired; -1 when Redis
//  cannot be reached.
int linli_session_resolve(linli_redis_t *redis, const char *token, Linli__Caller **caller,
                          char hash[65]);

//  End the session whose token hash is given. 0 or -1.
int linli_session_delete(linli_redis_t *redis, const char *hash);

#endif
