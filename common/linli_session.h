//  linli_session: bearer-token sessions in Redis. The key
//  <prefix>session:<hash of token> holds the packed Linli__Caller with a TTL;
//  the token itself is never stored; the caller records when the session
//  ends (expires_at_ms); <prefix>sessions:<user id> lists the
//  hashes of a user's sessions, so all of them can be ended at once.
//  Created by the registry at login,
//  resolved by the gateway on every authenticated request (asynchronously:
//  services/gateway/gateway_sessions.c).
#ifndef LINLI_SESSION_H
#define LINLI_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "linli_redis.h"
#include "linli/envelope.pb-c.h"

//  Store caller (borrowed) under a new random token valid for ttl_s seconds,
//  listed under caller->user_id (<prefix>sessions:<user id>) for revocation.
//  Writes the token (caller shows it once) and its expiry. 0 or -1 (Redis down).
int linli_session_create(linli_redis_t *redis, const Linli__Caller *caller, int ttl_s, char *token,
                         size_t cap, int64_t *expires_at_ms);

//  The Redis key of the session whose token hash is given (the gateway looks
//  it up asynchronously, gateway_sessions.c).
void linli_session_key(const char *prefix, const char *hash, char *out, size_t cap);

//  The channel on which every ended session's hash is published (by
//  linli_session_delete and linli_session_revoke_user, in the same script as
//  the deletion): gateways that cache sessions drop the ones named there.
void linli_session_channel(const char *prefix, char *out, size_t cap);

//  End every session of user_id (a password changed, an account closed):
//  create lists each session under its account. How many were listed
//  (ended, or already expired), or -1.
int linli_session_revoke_user(linli_redis_t *redis, const char *user_id);

//  End user_id's session whose token hash is given (and take it off the
//  account's list). 0 or -1.
int linli_session_delete(linli_redis_t *redis, const char *user_id, const char *hash);

#endif
