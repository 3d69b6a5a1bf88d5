//  linli_redis: one Redis connection with timeouts, rate-limited reconnect
//  and the suite's key prefix.
#include "linli_redis.h"
#include "linli_log.h"

#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Fewest milliseconds between two connection attempts after a failure.
#define S_RECONNECT_MS 250

struct linli_redis_t {
    char *host;              //  owned; TCP host (unused with a socket)
    int port;                //  TCP port
    char *socket_path;       //  owned; Unix socket path, NULL for TCP
    char *where;             //  owned; "host:port" or "unix:/path", for log lines
    int timeout_ms;          //  connect and per-command timeout
    char *prefix;            //  owned; "" when none
    redisContext *ctx;       //  owned; NULL while disconnected
    bool failing;            //  in a failure burst: already logged
    int64_t next_attempt_ms; //  monotonic time before which we do not reconnect
};

int
linli_redis_address(const char *host, int port, const char *socket_path, char *where, size_t cap)
{
    if (socket_path && *socket_path) {
        if (strlen(socket_path) > LINLI_REDIS_SOCKET_MAX) {
            //  hiredis would cut the path short and try another file.
            linli_error("redis: socket path longer than %d bytes: %s", LINLI_REDIS_SOCKET_MAX,
                        socket_path);
            return -1;
        }
        snprintf(where, cap, "unix:%s", socket_path);
        return 0;
    }
    if (!host || !*host || port <= 0 || port > 65535) {
        linli_error("redis: no socket path and no valid host and port");
        return -1;
    }
    snprintf(where, cap, "%s:%d", host, port);
    return 0;
}

linli_redis_t *
linli_redis_new(const char *host, int port, const char *socket_path, int timeout_ms,
                const char *prefix)
{
    char where[LINLI_REDIS_WHERE_CAP];
    if (linli_redis_address(host, port, socket_path, where, sizeof where))
        return NULL;
    bool unix_socket = socket_path && *socket_path;
    linli_redis_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->host = strdup(host ? host : "");
    self->socket_path = unix_socket ? strdup(socket_path) : NULL;
    self->prefix = strdup(prefix ? prefix : "");
    self->where = strdup(where);
    if (!self->host || (unix_socket && !self->socket_path) || !self->prefix || !self->where) {
        linli_redis_destroy(&self);
        return NULL;
    }
    self->port = port;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    return self;
}

void
linli_redis_destroy(linli_redis_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    linli_redis_t *self = *self_p;
    if (self->ctx)
        redisFree(self->ctx);
    free(self->host);
    free(self->socket_path);
    free(self->where);
    free(self->prefix);
    free(self);
    *self_p = NULL;
}

//  Forget a dead context: hiredis contexts are never reused after an error.
static void
s_drop(linli_redis_t *self)
{
    if (self->ctx) {
        redisFree(self->ctx);
        self->ctx = NULL;
    }
}

//  The live context, connecting when there is none; NULL when Redis cannot
//  be reached (logged once per failure burst, at most one try per 250 ms).
static redisContext *
s_context(linli_redis_t *self)
{
    if (self->ctx && !self->ctx->err)
        return self->ctx;
    s_drop(self);
    int64_t now = zclock_mono();
    if (now < self->next_attempt_ms)
        return NULL;
    struct timeval tv = {self->timeout_ms / 1000, (self->timeout_ms % 1000) * 1000};
    redisContext *ctx = self->socket_path ? redisConnectUnixWithTimeout(self->socket_path, tv)
                                          : redisConnectWithTimeout(self->host, self->port, tv);
    if (ctx && !ctx->err && redisSetTimeout(ctx, tv) == REDIS_OK) {
        //  TCP only: hiredis 0.14 also sets TCP_KEEPIDLE, which a Unix socket
        //  refuses, and the error it records would mark the context dead.
        if (!self->socket_path)
            redisEnableKeepAlive(ctx);
        if (self->failing)
            linli_info("redis: connected again to %s", self->where);
        self->failing = false;
        self->ctx = ctx;
        return ctx;
    }
    if (!self->failing)
        linli_error("redis: cannot connect to %s: %s", self->where,
                    ctx ? ctx->errstr : "out of memory");
    self->failing = true;
    self->next_attempt_ms = now + S_RECONNECT_MS;
    if (ctx)
        redisFree(ctx);
    return NULL;
}

//  After a failed read on ctx (err: errno as the read left it): when it timed
//  out, drop the connection and make none for one more timeout, so a second
//  command of the same request fails at once instead of waiting again, and
//  say so; true then. Redis is there but slow (or paused), and a command
//  that timed out may yet run: it is not retried.
static bool
s_timed_out(linli_redis_t *self, redisContext *ctx, int err)
{
    if (ctx->err != REDIS_ERR_IO || (err != EAGAIN && err != EWOULDBLOCK))
        return false;
    linli_error("redis: no reply from %s within %d ms", self->where, self->timeout_ms);
    self->failing = true;
    s_drop(self);
    self->next_attempt_ms =
        zclock_mono() + (self->timeout_ms > S_RECONNECT_MS ? self->timeout_ms : S_RECONNECT_MS);
    return true;
}

//  Send one formatted command and read its reply, reconnecting and retrying
//  once when the context turns out dead (not when it timed out: a second
//  wait would keep the caller, a worker's only thread, from its heartbeats
//  for twice the timeout). Caller frees the reply.
static redisReply *
s_exec(linli_redis_t *self, const char *cmd, size_t len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *ctx = s_context(self);
        if (!ctx)
            return NULL;
        void *reply = NULL;
        errno = 0;
        if (redisAppendFormattedCommand(ctx, cmd, len) == REDIS_OK &&
            redisGetReply(ctx, &reply) == REDIS_OK && reply)
            return reply;
        int err = errno;
        if (reply)
            freeReplyObject(reply);
        if (s_timed_out(self, ctx, err))
            return NULL;
        if (attempt == 0) {
            linli_warn("redis: %s, reconnecting", ctx->errstr[0] ? ctx->errstr : "no reply");
        } else {
            if (!self->failing)
                linli_error("redis: command failed after reconnect: %s",
                            ctx->errstr[0] ? ctx->errstr : "no reply");
            self->failing = true;
        }
        s_drop(self);
    }
    return NULL;
}

redisReply *
linli_redis_cmd(linli_redis_t *self, const char *fmt, ...)
{
    if (!self || !fmt)
        return NULL;
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        linli_error("redis: bad command format");
        return NULL;
    }
    redisReply *reply = s_exec(self, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return reply;
}

redisReply *
linli_redis_argv(linli_redis_t *self, int argc, const char **argv, const size_t *argvlen)
{
    if (!self || argc <= 0 || !argv)
        return NULL;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) {
        linli_error("redis: cannot format command");
        return NULL;
    }
    redisReply *reply = s_exec(self, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return reply;
}

int
linli_redis_pipeline(linli_redis_t *self, int n, const int *argcs, const char ***argvs,
                     const size_t **argvlens, redisReply **replies)
{
    if (!self || n < 0 || (n > 0 && (!argcs || !argvs || !replies)))
        return -1;
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    if (n == 0)
        return 0;
    redisContext *ctx = s_context(self);
    if (!ctx)
        return -1;
    //  No retry here: some of the commands may have run before the failure,
    //  and only the caller knows whether running them again is harmless.
    int i;
    for (i = 0; i < n; i++)
        if (redisAppendCommandArgv(ctx, argcs[i], argvs[i], argvlens ? argvlens[i] : NULL) !=
            REDIS_OK)
            break;
    int got = 0;
    errno = 0;
    if (i == n)
        for (got = 0; got < n; got++) {
            void *reply = NULL;
            if (redisGetReply(ctx, &reply) != REDIS_OK || !reply)
                break;
            replies[got] = reply;
        }
    if (got == n)
        return 0;
    int err = errno;
    for (int k = 0; k < n; k++)
        if (replies[k]) {
            freeReplyObject(replies[k]);
            replies[k] = NULL;
        }
    //  Unread replies would answer the next command: never reuse this context.
    if (!s_timed_out(self, ctx, err)) {
        linli_error("redis: pipeline of %d failed after %d replies: %s", n, got,
                    ctx->errstr[0] ? ctx->errstr : "no reply");
        s_drop(self);
    }
    return -1;
}

char *
linli_redis_key(const linli_redis_t *self, char *buf, size_t cap, const char *fmt, ...)
{
    if (!buf || cap == 0)
        return buf;
    int n = snprintf(buf, cap, "%s", self && self->prefix ? self->prefix : "");
    if (n < 0 || (size_t)n >= cap)
        return buf;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

const char *
linli_redis_prefix(const linli_redis_t *self)
{
    return self ? self->prefix : "";
}

const char *
linli_redis_where(const linli_redis_t *self)
{
    return self ? self->where : "";
}
