//  gateway_sessions: asynchronous session look-ups in Redis.
#include "gateway_sessions.h"

#include <async.h>
#include <adapters/libevent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_crypto.h"
#include "linli_log.h"
#include "linli_pg.h"
#include "linli_session.h"

//  One look-up in flight. Redis answers in order, so they form a FIFO.
typedef struct s_lookup_t {
    gateway_session_fn *fn;  //  whom to tell
    void *arg;               //  its argument
    char hash[65];           //  the token's hash
    int64_t deadline_ms;     //  when the connection is given up
    struct s_lookup_t *next; //  the next younger one
} s_lookup_t;

struct gateway_sessions_t {
    struct event_base *base; //  borrowed
    char host[256];          //  Redis host
    int port;                //  Redis port
    char prefix[128];        //  key prefix
    int timeout_ms;          //  per look-up
    redisAsyncContext *ac;   //  NULL while disconnected
    s_lookup_t *head, *tail; //  outstanding look-ups, oldest first
    int64_t failed_at_ms;    //  last connection failure, to back off
};

static void
s_answer_head(gateway_sessions_t *self, int rc, Linli__Caller *caller)
{
    s_lookup_t *l = self->head;
    if (!l) {
        if (caller)
            linli__caller__free_unpacked(caller, NULL);
        return;
    }
    self->head = l->next;
    if (!self->head)
        self->tail = NULL;
    l->fn(l->arg, rc, caller, l->hash);
    free(l);
}

static void
s_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    gateway_sessions_t *self = (gateway_sessions_t *)ac->data;
    (void)privdata;
    redisReply *reply = (redisReply *)r;
    if (!self)
        return;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        s_answer_head(self, -1, NULL);
        return;
    }
    Linli__Caller *caller = NULL;
    if (reply->type == REDIS_REPLY_STRING) {
        caller = linli__caller__unpack(NULL, (size_t)reply->len, (const uint8_t *)reply->str);
        if (!caller)
            linli_warn("a session holds an unreadable caller; treated as none");
    }
    s_answer_head(self, 0, caller);
}

static void
s_on_connect(const redisAsyncContext *ac, int status)
{
    gateway_sessions_t *self = (gateway_sessions_t *)ac->data;
    if (status != REDIS_OK && self) {
        linli_warn("sessions: cannot connect to Redis: %s", ac->errstr);
        self->failed_at_ms = linli_now_ms();
        self->ac = NULL; //  hiredis frees it and answers what was queued
    }
}

static void
s_on_disconnect(const redisAsyncContext *ac, int status)
{
    gateway_sessions_t *self = (gateway_sessions_t *)ac->data;
    if (!self)
        return;
    if (status != REDIS_OK) {
        linli_warn("sessions: Redis connection lost: %s", ac->errstr);
        self->failed_at_ms = linli_now_ms();
    }
    if (self->ac == ac)
        self->ac = NULL;
}

static int
s_connect(gateway_sessions_t *self)
{
    if (self->ac)
        return 0;
    //  Redis down: fail fast for a moment instead of a connect per request.
    if (self->failed_at_ms && linli_now_ms() - self->failed_at_ms < 100)
        return -1;
    redisAsyncContext *ac = redisAsyncConnect(self->host, self->port);
    if (!ac || ac->err) {
        //  At most one line per back-off period (100 ms).
        linli_warn("sessions: cannot connect to Redis at %s:%d: %s", self->host, self->port,
                   ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        self->failed_at_ms = linli_now_ms();
        return -1;
    }
    ac->data = self;
    if (redisLibeventAttach(ac, self->base) != REDIS_OK) {
        linli_error("sessions: cannot attach the Redis connection to the event loop");
        redisAsyncFree(ac);
        self->failed_at_ms = linli_now_ms();
        return -1;
    }
    redisAsyncSetConnectCallback(ac, s_on_connect);
    redisAsyncSetDisconnectCallback(ac, s_on_disconnect);
    self->ac = ac;
    return 0;
}

gateway_sessions_t *
gateway_sessions_new(struct event_base *base, const char *host, int port, const char *prefix,
                     int timeout_ms)
{
    gateway_sessions_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->base = base;
    snprintf(self->host, sizeof self->host, "%s", host);
    self->port = port;
    snprintf(self->prefix, sizeof self->prefix, "%s", prefix);
    self->timeout_ms = timeout_ms;
    return self;
}

void
gateway_sessions_destroy(gateway_sessions_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_sessions_t *self = *self_p;
    if (self->ac) {
        //  Frees the context and answers every outstanding look-up (-1).
        redisAsyncContext *ac = self->ac;
        self->ac = NULL;
        redisAsyncFree(ac);
    }
    while (self->head)
        s_answer_head(self, -1, NULL);
    free(self);
    *self_p = NULL;
}

void
gateway_sessions_lookup(gateway_sessions_t *self, const char *token, gateway_session_fn *fn,
                        void *arg)
{
    char hash[65];
    linli_token_hash(token, hash);
    s_lookup_t *l = calloc(1, sizeof *l);
    if (!l || s_connect(self)) {
        free(l);
        fn(arg, -1, NULL, hash);
        return;
    }
    l->fn = fn;
    l->arg = arg;
    memcpy(l->hash, hash, sizeof hash);
    l->deadline_ms = linli_now_ms() + self->timeout_ms;
    char key[256];
    linli_session_key(self->prefix, hash, key, sizeof key);
    //  Queue it first: a failing connection answers from inside the call.
    if (self->tail)
        self->tail->next = l;
    else
        self->head = l;
    self->tail = l;
    if (redisAsyncCommand(self->ac, s_on_reply, NULL, "GET %s", key) != REDIS_OK) {
        //  Not sent: answer it (it is the youngest, so find it by pointer).
        s_lookup_t **pp = &self->head;
        s_lookup_t *prev = NULL;
        while (*pp && *pp != l) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = l->next;
            if (self->tail == l)
                self->tail = prev;
            fn(arg, -1, NULL, hash);
            free(l);
        }
    }
}

void
gateway_sessions_tick(gateway_sessions_t *self)
{
    if (!self->head || self->head->deadline_ms > linli_now_ms())
        return;
    linli_warn("sessions: Redis did not answer in %d ms; reconnecting", self->timeout_ms);
    self->failed_at_ms = linli_now_ms();
    if (self->ac) {
        redisAsyncContext *ac = self->ac;
        self->ac = NULL;
        redisAsyncFree(ac); //  answers what it holds with NULL replies (-1)
    }
    while (self->head)
        s_answer_head(self, -1, NULL);
}
