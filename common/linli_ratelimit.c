//  linli_ratelimit: sliding-window log in a Redis sorted set, one Lua script
//  per call.
#include "linli_ratelimit.h"
#include "linli_crypto.h"
#include "linli_log.h"

#include <string.h>

#define S_KEY_CAP 512

//  KEYS[1] bucket; ARGV limit, window in ms, a unique member. Drops hits that
//  left the window, then counts this one if there is room. Returns {allowed,
//  hits in the window, ms until the next hit would be allowed}. Redis's TIME:
//  one clock for every caller (scripts replicate their effects since Redis 5).
static const char *s_hit_script =
    "local key, limit, window = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)\n"
    "local n = redis.call('ZCARD', key)\n"
    "if n < limit then\n"
    "  redis.call('ZADD', key, now, ARGV[3])\n"
    "  redis.call('PEXPIRE', key, window)\n"
    "  return {1, n + 1, 0}\n"
    "end\n"
    //  The hit whose leaving makes room again (several if the limit was lowered).
    "local edge = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')\n"
    "return {0, n, tonumber(edge[2]) + window - now}\n";

//  The same question, read-only: nothing is dropped or added.
static const char *s_peek_script =
    "local key, limit, window = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local min = string.format('(%.0f', now - window)\n"
    "local n = redis.call('ZCOUNT', key, min, '+inf')\n"
    "if n < limit then\n"
    "  return {1, n, 0}\n"
    "end\n"
    "local edge = redis.call('ZRANGEBYSCORE', key, min, '+inf', 'WITHSCORES', 'LIMIT', n - limit, "
    "1)\n"
    "return {0, n, tonumber(edge[2]) + window - now}\n";

//  The bucket's key; -1 when the name is missing or would not fit whole
//  (a cut name could fold two buckets into one).
static int
s_key(linli_redis_t *redis, const char *bucket, char key[S_KEY_CAP])
{
    if (!redis || !bucket || !*bucket)
        return -1;
    if (strlen(linli_redis_prefix(redis)) + strlen("rl:") + strlen(bucket) >= S_KEY_CAP) {
        linli_error("ratelimit: bucket name too long (%zu bytes)", strlen(bucket));
        return -1;
    }
    linli_redis_key(redis, key, S_KEY_CAP, "rl:%s", bucket);
    return 0;
}

//  Run one of the scripts and read its {allowed, count, wait_ms}. 0 or -1.
static int
s_run(linli_redis_t *redis, const char *script, const char *bucket, int limit, int window_s,
      bool *allowed, int *retry_after_s)
{
    if (allowed)
        *allowed = false; //  fail closed until Redis says otherwise
    if (retry_after_s)
        *retry_after_s = 0;
    char key[S_KEY_CAP];
    if (!allowed || limit < 1 || window_s < 1 || s_key(redis, bucket, key))
        return -1;
    char member[LINLI_RANDOM_ID_CAP];
    if (linli_random_id(member, sizeof member))
        return -1;
    long long window_ms = (long long)window_s * 1000;
    redisReply *r =
        linli_redis_cmd(redis, "EVAL %s 1 %s %d %lld %s", script, key, limit, window_ms, member);
    if (!r)
        return -1; //  Redis unreachable; linli_redis has logged it
    int rc = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[2]->type == REDIS_REPLY_INTEGER) {
        *allowed = r->element[0]->integer == 1;
        long long wait_ms = r->element[2]->integer;
        if (!*allowed && retry_after_s) {
            long long s = (wait_ms + 999) / 1000;
            *retry_after_s = (int)(s < 1 ? 1 : s > window_s ? window_s : s);
        }
        rc = 0;
    } else {
        linli_error("ratelimit: unexpected answer from Redis: %s",
                    r->type == REDIS_REPLY_ERROR ? r->str : "not an array of three integers");
    }
    freeReplyObject(r);
    return rc;
}

int
linli_ratelimit_hit(linli_redis_t *redis, const char *bucket, int limit, int window_s,
                    bool *allowed, int *retry_after_s)
{
    return s_run(redis, s_hit_script, bucket, limit, window_s, allowed, retry_after_s);
}

int
linli_ratelimit_peek(linli_redis_t *redis, const char *bucket, int limit, int window_s,
                     bool *allowed, int *retry_after_s)
{
    return s_run(redis, s_peek_script, bucket, limit, window_s, allowed, retry_after_s);
}

int
linli_ratelimit_reset(linli_redis_t *redis, const char *bucket)
{
    char key[S_KEY_CAP];
    if (s_key(redis, bucket, key))
        return -1;
    redisReply *r = linli_redis_cmd(redis, "DEL %s", key);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    freeReplyObject(r);
    return rc;
}
