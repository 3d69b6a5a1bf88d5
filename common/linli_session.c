//  linli_session: bearer-token sessions in Redis.
#include "linli_session.h"
#include "linli_crypto.h"
#include "linli_log.h"
#include "linli_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
linli_session_create(linli_redis_t *redis, const Linli__Caller *caller, int ttl_s, char *token,
                     size_t cap, int64_t *expires_at_ms)
{
    char hash[65], key[256];
    //  Without a fresh token the session would sit under the hash of "".
    if (linli_token_new(token, cap))
        return -1;
    linli_token_hash(token, hash);
    linli_session_key(linli_redis_prefix(redis), hash, key, sizeof key);
    size_t len = linli__caller__get_packed_size(caller);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    linli__caller__pack(caller, buf);
    redisReply *r = linli_redis_cmd(redis, "SET %s %b EX %d", key, buf, len, ttl_s);
    free(buf);
    int rc = (r && r->type == REDIS_REPLY_STATUS) ? 0 : -1;
    if (r)
        freeReplyObject(r);
    if (rc == 0)
        *expires_at_ms = linli_now_ms() + (int64_t)ttl_s * 1000;
    return rc;
}

void
linli_session_key(const char *prefix, const char *hash, char *out, size_t cap)
{
    snprintf(out, cap, "%ssession:%s", prefix ? prefix : "", hash);
}

int
linli_session_delete(linli_redis_t *redis, const char *hash)
{
    char key[256];
    linli_session_key(linli_redis_prefix(redis), hash, key, sizeof key);
    redisReply *r = linli_redis_cmd(redis, "DEL %s", key);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
    freeReplyObject(r);
    return rc;
}
