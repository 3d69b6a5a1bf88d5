//  linli_redis: one Redis connection with timeouts and reconnect, and the key
//  prefix every key of the suite carries.
#ifndef LINLI_REDIS_H
#define LINLI_REDIS_H

#include <hiredis.h>
#include <stddef.h>

typedef struct linli_redis_t linli_redis_t;

//  Longest Unix socket path a handle accepts (sun_path holds it and its NUL).
#define LINLI_REDIS_SOCKET_MAX 107

//  Room for an address as linli_redis_address writes it.
#define LINLI_REDIS_WHERE_CAP (LINLI_REDIS_SOCKET_MAX + 300)

//  Check where Redis is to be reached — the Unix socket at socket_path when
//  that is non-empty, else host:port over TCP — and write it for log lines
//  into where: "unix:/path" or "host:port". 0, or -1 (logged) when the path
//  is too long or there is neither a path nor a valid host and port.
int linli_redis_address(const char *host, int port, const char *socket_path, char *where,
                        size_t cap);

//  New handle; connects lazily (never fails because Redis is down). It
//  connects to the Unix socket at socket_path when that is non-empty (host
//  and port are then ignored), else over TCP to host:port. timeout_ms bounds
//  connect and every command. NULL on a bad address (logged). Caller owns.
linli_redis_t *linli_redis_new(const char *host, int port, const char *socket_path, int timeout_ms,
                               const char *prefix);

//  Destroy; accepts NULL and nulls the caller's pointer.
void linli_redis_destroy(linli_redis_t **self_p);

//  Run one command (hiredis format). A NULL or I/O-error reply means the
//  context is dead: it is dropped, reconnected, and the command retried once.
//  Returns the reply (may be of type REDIS_REPLY_ERROR) or NULL when Redis
//  cannot be reached. Caller frees with freeReplyObject.
redisReply *linli_redis_cmd(linli_redis_t *self, const char *fmt, ...);

//  The same with an argument vector (binary-safe).
redisReply *linli_redis_argv(linli_redis_t *self, int argc, const char **argv,
                             const size_t *argvlen);

//  Send n commands at once (argument vectors) and read n replies into
//  replies[]; one round trip. 0, or -1 with every reply freed and NULLed.
//  Not retried (some commands may have run): a dead context is dropped and
//  the next call reconnects.
int linli_redis_pipeline(linli_redis_t *self, int n, const int *argcs, const char ***argvs,
                         const size_t **argvlens, redisReply **replies);

//  Write prefix + formatted name into buf; returns buf.
char *linli_redis_key(const linli_redis_t *self, char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

//  The key prefix (borrowed).
const char *linli_redis_prefix(const linli_redis_t *self);

//  Where it connects, for log lines: "host:port" or "unix:/path" (borrowed).
const char *linli_redis_where(const linli_redis_t *self);

#endif
