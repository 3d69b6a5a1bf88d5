//  linli_ratelimit: sliding-window rate limits kept in Redis, shared by every
//  process that talks to the same Redis (login tries per phone, requests per
//  client address).
//
//  A bucket allows at most `limit` hits in any `window_s` seconds (a sliding
//  log: one sorted-set member per counted hit, scored by Redis's own clock, so
//  the clocks of many gateways never disagree). Refused hits are not counted.
//  Each call is one Lua script, atomic in Redis. Keys are linli_redis_key
//  "rl:<bucket>"; a bucket name must not hold personal data in clear: use
//  linli_pii_hash for a phone ("login:phone:<hash>").
//
//  When Redis cannot be reached every call returns -1 with *allowed false:
//  the limiter fails CLOSED. Login must answer 503 then, never let the try
//  through: knocking Redis over must not buy unlimited password guesses. A
//  caller guarding something harmless may choose to fail open by ignoring -1,
//  and says so where it does.
//
//  Login uses it so: peek "login:phone:<hash>" (refused: 429 with
//  Retry-After), verify the password, hit that bucket on a wrong password and
//  reset it on success; hit "login:addr:<address>" on every try.
#ifndef LINLI_RATELIMIT_H
#define LINLI_RATELIMIT_H

#include "linli_redis.h"

#include <stdbool.h>

//  Count one hit if the bucket has room. *allowed tells whether it had (and
//  the hit was counted); when not, *retry_after_s (1..window_s) is when the
//  next hit would be allowed, else 0. retry_after_s may be NULL. limit >= 1,
//  window_s >= 1. 0, or -1 (with *allowed false) when Redis cannot be reached
//  or the arguments are wrong.
int linli_ratelimit_hit(linli_redis_t *redis, const char *bucket, int limit, int window_s,
                        bool *allowed, int *retry_after_s);

//  The same question without counting a hit: would one be allowed now?
int linli_ratelimit_peek(linli_redis_t *redis, const char *bucket, int limit, int window_s,
                         bool *allowed, int *retry_after_s);

//  Forget every hit of the bucket (a successful login). 0 or -1.
int linli_ratelimit_reset(linli_redis_t *redis, const char *bucket);

#endif
