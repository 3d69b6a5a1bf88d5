//  linli_session: bearer-token sessions in Redis.
#include "linli_session.h"
#include "linli_crypto.h"
#include "linli_log.h"
#include "linli_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  KEYS: the session, the account's set of session hashes. ARGV: the
//  packed caller, the TTL, the hash, the session key prefix. The session is
//  stored and listed under its account (the set lives as long as its
//  longest session); hashes of sessions gone are pruned as it grows.
static const char s_create_lua[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))\n"
    "redis.call('SADD', KEYS[2], ARGV[3])\n"
    "if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then\n"
    "  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))\n"
    "end\n"
    "if redis.call('SCARD', KEYS[2]) > 32 then\n"
    "  for _, h in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "    if redis.call('EXISTS', ARGV[4] .. h) == 0 then redis.call('SREM', KEYS[2], h) end\n"
    "  end\n"
    "end\n"
    "return 1\n";

//  KEYS: the account's set, the ended-sessions channel. ARGV: the session
//  key prefix. Ends every session listed and announces each hash (gateways
//  drop their cached copies); returns how many were listed (announced).
static const char s_revoke_lua[] = "local listed = redis.call('SMEMBERS', KEYS[1])\n"
                                   "for _, h in ipairs(listed) do\n"
                                   "  redis.call('DEL', ARGV[1] .. h)\n"
                                   "  redis.call('PUBLISH', KEYS[2], h)\n"
                                   "end\n"
                                   "redis.call('DEL', KEYS[1])\n"
                                   "return #listed\n";

//  KEYS: the session, the ended-sessions channel, the account's set. ARGV:
//  the hash. The session goes, with its line in the account's list.
static const char s_delete_lua[] = "redis.call('DEL', KEYS[1])\n"
                                   "redis.call('SREM', KEYS[3], ARGV[1])\n"
                                   "redis.call('PUBLISH', KEYS[2], ARGV[1])\n"
                                   "return 1\n";

//  The key of the set listing user_id's sessions.
static void
s_user_key(const char *prefix, const char *user_id, char *out, size_t cap)
{
    snprintf(out, cap, "%ssessions:%s", prefix ? prefix : "", user_id ? user_id : "");
}

//  True when r is the integer reply a script or DEL gives; an error reply is
//  logged here (a NULL one by linli_redis, unless it is still waiting to
//  reconnect after a failure it logged).
static bool
s_check_reply(const redisReply *r, const char *what)
{
    if (r && r->type == REDIS_REPLY_INTEGER)
        return true;
    if (r)
        linli_error("session: %s: %s", what,
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    return false;
}

int
linli_session_create(linli_redis_t *redis, const Linli__Caller *caller, int ttl_s, char *token,
                     size_t cap, int64_t *expires_at_ms)
{
    char hash[65], key[256], user_key[256], session_prefix[256], ttl[16];
    //  Without a fresh token the session would sit under the hash of "".
    if (linli_token_new(token, cap))
        return -1;
    linli_token_hash(token, hash);
    linli_session_key(linli_redis_prefix(redis), hash, key, sizeof key);
    linli_session_key(linli_redis_prefix(redis), "", session_prefix, sizeof session_prefix);
    s_user_key(linli_redis_prefix(redis), caller->user_id, user_key, sizeof user_key);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    //  The session carries its own end, so a gateway's cached copy ends with it.
    int64_t expires_at = linli_now_ms() + (int64_t)ttl_s * 1000;
    Linli__Caller stored = *caller;
    stored.has_expires_at_ms = true;
    stored.expires_at_ms = expires_at;
    size_t len = linli__caller__get_packed_size(&stored);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    linli__caller__pack(&stored, buf);
    const char *argv[] = {"EVAL", s_create_lua, "2",           key, user_key, (const char *)buf,
                          ttl,    hash,         session_prefix};
    size_t lens[] = {4,           strlen(s_create_lua), 1,
                     strlen(key), strlen(user_key),     len,
                     strlen(ttl), strlen(hash),         strlen(session_prefix)};
    redisReply *r = linli_redis_argv(redis, 9, argv, lens);
    free(buf);
    int rc = s_check_reply(r, "create") ? 0 : -1;
    if (r)
        freeReplyObject(r);
    if (rc == 0)
        *expires_at_ms = expires_at;
    return rc;
}

void
linli_session_channel(const char *prefix, char *out, size_t cap)
{
    snprintf(out, cap, "%ssessions:ended", prefix ? prefix : "");
}

//  Wait until Redis has sent what the script just published. Redis writes
//  replies and subscriber messages together, after the command that caused
//  them, in no set order, and a busy machine can pause it between two
//  writes; a command answered after the script's answer comes from a later
//  pass, so once it is answered every gateway's socket holds the
//  announcement, and the session's end reaches the gateways' caches before
//  the service that ended it answers its caller.
static void
s_flush_announcements(linli_redis_t *redis)
{
    redisReply *r = linli_redis_cmd(redis, "PING");
    if (r && r->type == REDIS_REPLY_ERROR)
        linli_warn("session: the wait for ended-session announcements failed: %s", r->str);
    if (r)
        freeReplyObject(r);
}

//  Run an ending script (argc arguments, EVAL first) that returns how many
//  hashes it announced: that number, or -1 (logged); its announcements are
//  out when it returns.
static long long
s_end(linli_redis_t *redis, int argc, const char **argv, const char *what)
{
    redisReply *r = linli_redis_argv(redis, argc, argv, NULL);
    long long n = s_check_reply(r, what) ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    if (n > 0)
        s_flush_announcements(redis);
    return n;
}

int
linli_session_revoke_user(linli_redis_t *redis, const char *user_id)
{
    char user_key[256], session_prefix[256], channel[256];
    s_user_key(linli_redis_prefix(redis), user_id, user_key, sizeof user_key);
    linli_session_key(linli_redis_prefix(redis), "", session_prefix, sizeof session_prefix);
    linli_session_channel(linli_redis_prefix(redis), channel, sizeof channel);
    const char *argv[] = {"EVAL", s_revoke_lua, "2", user_key, channel, session_prefix};
    return (int)s_end(redis, 6, argv, "revoke");
}

void
linli_session_key(const char *prefix, const char *hash, char *out, size_t cap)
{
    snprintf(out, cap, "%ssession:%s", prefix ? prefix : "", hash);
}

int
linli_session_delete(linli_redis_t *redis, const char *user_id, const char *hash)
{
    char key[256], channel[256], user_key[256];
    linli_session_key(linli_redis_prefix(redis), hash, key, sizeof key);
    linli_session_channel(linli_redis_prefix(redis), channel, sizeof channel);
    s_user_key(linli_redis_prefix(redis), user_id, user_key, sizeof user_key);
    const char *argv[] = {"EVAL", s_delete_lua, "3", key, channel, user_key, hash};
    return s_end(redis, 7, argv, "delete") < 0 ? -1 : 0;
}
