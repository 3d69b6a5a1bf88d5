//  gateway_sessions: asynchronous session look-ups in Redis.
#include "gateway_sessions.h"

#include <async.h>
#include <czmq.h>
#include <poll.h>
#include <adapters/libevent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_crypto.h"
#include "linli_log.h"
#include "linli_pg.h"
#include "linli_redis.h"
#include "linli_session.h"

//  One look-up in flight. Redis answers in order, so they form a FIFO.
typedef struct s_lookup_t {
    gateway_session_fn *fn;  //  whom to tell
    void *arg;               //  its argument
    char hash[65];           //  the token's hash
    int64_t deadline_ms;     //  when the connection is given up
    uint64_t flushes;        //  the cache's flush count when it was sent
    uint32_t ended;          //  its slot's count of ended sessions then
    struct s_lookup_t *next; //  the next younger one
} s_lookup_t;

//  One cached session: the packed caller as Redis holds it.
typedef struct {
    char hash[65];    //  "" when the slot is free
    int64_t until_ms; //  monotonic ms: trusted until then (LINLI_SESSION_CACHE_MS
                      //  after it was read, or the session's own end if sooner)
    uint32_t ended;   //  sessions announced ended that map to this slot
    uint8_t *packed;  //  owned
    size_t len;
} s_entry_t;

struct gateway_sessions_t {
    struct event_base *base;      //  borrowed
    gateway_sessions_opts_t opts; //  strings borrowed from the caller
    redisAsyncContext *ac;        //  look-ups; NULL while disconnected
    s_lookup_t *head, *tail;      //  outstanding look-ups, oldest first
    int64_t failed_at_ms;         //  last connection failure, to back off

    //  The cache, and the subscription that keeps it true.
    s_entry_t *slots;                  //  owned; cache_entries of them (a power of two)
    size_t mask;                       //  cache_entries - 1
    redisAsyncContext *sub;            //  subscribed to the ended-sessions channel, or NULL
    bool subscribed;                   //  confirmed: only then is anything cached
    uint64_t flushes;                  //  bumped by every flush
    int64_t sub_failed_at_ms;          //  last subscription failure, to back off
    char channel[256];                 //  <prefix>sessions:ended
    char where[LINLI_REDIS_WHERE_CAP]; //  "host:port" or "unix:/path", for log lines
    gateway_sessions_stats_t stats;
};

// ---------------------------------------------------------------- the cache

//  The slot a hash maps to (the hash is hex of a keyed digest: uniform).
static s_entry_t *
s_slot(gateway_sessions_t *self, const char *hash)
{
    uint64_t h = 0;
    for (int i = 0; i < 16 && hash[i]; i++)
        h = h * 16 + (uint64_t)(hash[i] <= '9' ? hash[i] - '0' : (hash[i] | 0x20) - 'a' + 10);
    return &self->slots[h & self->mask];
}

static void
s_entry_clear(s_entry_t *e)
{
    free(e->packed);
    e->packed = NULL;
    e->len = 0;
    e->hash[0] = 0;
}

//  Forget everything: what we hold may have ended while we were not told.
static void
s_flush(gateway_sessions_t *self)
{
    self->flushes++;
    if (!self->slots || !self->stats.entries)
        return;
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i].hash[0])
            s_entry_clear(&self->slots[i]);
    self->stats.entries = 0;
}

static void
s_forget(gateway_sessions_t *self, const char *hash)
{
    if (!self->slots)
        return;
    s_entry_t *e = s_slot(self, hash);
    e->ended++; //  a look-up in flight for this slot must not keep its answer
    if (e->hash[0] && !strcmp(e->hash, hash)) {
        s_entry_clear(e);
        self->stats.entries--;
    }
}

//  Keep a session Redis just gave us, unless something ended since we asked.
static void
s_remember(gateway_sessions_t *self, const s_lookup_t *l, const Linli__Caller *caller,
           const char *packed, size_t len)
{
    if (!self->slots || !self->subscribed || l->flushes != self->flushes)
        return;
    s_entry_t *e = s_slot(self, l->hash);
    if (l->ended != e->ended)
        return;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, packed, len);
    if (e->hash[0])
        s_entry_clear(e);
    else
        self->stats.entries++;
    memcpy(e->hash, l->hash, sizeof e->hash);
    //  One monotonic deadline, so a hit reads one clock: the cache time, or
    //  what is left of the session (wall-clock time now) if that is sooner.
    int64_t keep_ms = self->opts.cache_ms;
    if (caller->has_expires_at_ms) {
        int64_t left_ms = caller->expires_at_ms - linli_now_ms();
        if (left_ms < keep_ms)
            keep_ms = left_ms;
    }
    e->until_ms = zclock_mono() + keep_ms;
    e->packed = copy;
    e->len = len;
}

//  Read what the subscription has waiting (ended sessions, or its end)
//  before answering from the cache: an ended session is announced before
//  its deletion is acknowledged, so a request sent after a logout's answer
//  finds the announcement here. Only for a hit: a miss asks Redis anyway.
static void
s_sub_catch_up(gateway_sessions_t *self)
{
    if (!self->sub)
        return;
    //  hiredis reads at most 16 KB a call (≈ 140 announcements): read until
    //  the socket is empty, within reason (a revocation of thousands of
    //  sessions at once is caught up on the next requests).
    for (int i = 0; i < 64 && self->sub; i++) {
        struct pollfd pfd = {.fd = self->sub->c.fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)
            break;
        redisAsyncHandleRead(self->sub);
    }
}

//  A cached caller for hash, unpacked (callee owns), or NULL. The
//  subscription is opened (again) by gateway_sessions_tick, not here.
static Linli__Caller *
s_cached(gateway_sessions_t *self, const char *hash)
{
    if (!self->slots)
        return NULL;
    s_entry_t *e = s_slot(self, hash);
    if (!e->hash[0] || strcmp(e->hash, hash))
        return NULL;
    //  A hit is served only after every announcement already waiting has
    //  been read: it may end this session (or the subscription, emptying
    //  the cache), so look at the slot again.
    s_sub_catch_up(self);
    if (!self->subscribed || !e->hash[0] || strcmp(e->hash, hash))
        return NULL;
    if (e->until_ms <= zclock_mono()) {
        s_entry_clear(e);
        self->stats.entries--;
        return NULL;
    }
    return linli__caller__unpack(NULL, e->len, e->packed);
}

// ---------------------------------------------------------------- the subscription

static void
s_on_sub_message(redisAsyncContext *ac, void *r, void *privdata)
{
    gateway_sessions_t *self = (gateway_sessions_t *)ac->data;
    (void)privdata;
    redisReply *reply = (redisReply *)r;
    if (!self || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    const redisReply *kind = reply->element[0], *payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING)
        return;
    if (!strcmp(kind->str, "subscribe")) {
        //  From now on we hear of every ended session: start afresh.
        s_flush(self);
        self->subscribed = true;
    } else if (!strcmp(kind->str, "message") && payload->type == REDIS_REPLY_STRING &&
               payload->len < 65) {
        self->stats.ended++;
        s_forget(self, payload->str);
    }
}

//  The subscription is gone (hiredis frees its context) or being dropped:
//  what it vouched for goes with it; it is opened again after a back-off.
static void
s_sub_lost(gateway_sessions_t *self)
{
    self->subscribed = false;
    self->sub = NULL;
    self->sub_failed_at_ms = zclock_mono();
    s_flush(self);
}

//  Close the subscription ourselves (its callbacks no longer see us).
static void
s_sub_drop(gateway_sessions_t *self)
{
    redisAsyncContext *sub = self->sub;
    s_sub_lost(self);
    if (sub) {
        sub->data = NULL;
        redisAsyncFree(sub);
    }
}

static void
s_on_sub_connect(const redisAsyncContext *ac, int status)
{
    gateway_sessions_t *self = (gateway_sessions_t *)ac->data;
    if (status != REDIS_OK && self && self->sub == ac) {
        linli_warn("sessions: cannot subscribe to ended sessions: %s; not caching", ac->errstr);
        s_sub_lost(self);
    }
}

static void
s_on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    gateway_sessions_t *self = (gateway_sessions_t *)ac->data;
    if (!self || self->sub != ac)
        return;
    if (status != REDIS_OK)
        linli_warn("sessions: subscription to ended sessions lost: %s; cache emptied", ac->errstr);
    s_sub_lost(self);
}

//  A new connection to Redis on our event loop, its callbacks set; NULL
//  (logged as what) when it cannot even be started. Over TCP it has
//  keepalive, so a connection dropped silently (NAT, failover) is noticed;
//  hiredis refuses keepalive on a Unix socket.
static redisAsyncContext *
s_open(gateway_sessions_t *self, const char *what, redisConnectCallback *on_connect,
       redisDisconnectCallback *on_disconnect)
{
    bool unix_socket = self->opts.socket && *self->opts.socket;
    redisAsyncContext *ac = unix_socket ? redisAsyncConnectUnix(self->opts.socket)
                                        : redisAsyncConnect(self->opts.host, self->opts.port);
    if (!ac || ac->err || redisLibeventAttach(ac, self->base) != REDIS_OK) {
        linli_warn("sessions: cannot open the %s connection to Redis at %s: %s", what, self->where,
                   !ac       ? "out of memory"
                   : ac->err ? ac->errstr
                             : "event loop");
        if (ac)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = self;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (!unix_socket)
        redisEnableKeepAlive(&ac->c);
    return ac;
}

//  Open the connection that hears of ended sessions (not in the way of a
//  request: until it confirms, look-ups simply go to Redis).
static void
s_sub_connect(gateway_sessions_t *self)
{
    if (self->sub || (self->sub_failed_at_ms && zclock_mono() - self->sub_failed_at_ms < 1000))
        return;
    self->sub = s_open(self, "subscription", s_on_sub_connect, s_on_sub_disconnect);
    if (!self->sub || redisAsyncCommand(self->sub, s_on_sub_message, NULL, "SUBSCRIBE %s",
                                        self->channel) != REDIS_OK) {
        if (self->sub)
            linli_warn("sessions: cannot subscribe to ended sessions at %s", self->where);
        s_sub_drop(self);
    }
}

// ---------------------------------------------------------------- look-ups

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
        else if (caller->has_expires_at_ms && caller->expires_at_ms <= linli_now_ms()) {
            //  Past its end (Redis expires it at the same moment, give or take).
            linli__caller__free_unpacked(caller, NULL);
            caller = NULL;
        } else if (self->head)
            s_remember(self, self->head, caller, reply->str, (size_t)reply->len);
    }
    s_answer_head(self, 0, caller);
}

static void
s_on_connect(const redisAsyncContext *ac, int status)
{
    gateway_sessions_t *self = (gateway_sessions_t *)ac->data;
    if (status != REDIS_OK && self) {
        linli_warn("sessions: cannot connect to Redis: %s", ac->errstr);
        self->failed_at_ms = zclock_mono();
        self->ac = NULL; //  hiredis frees it and answers what was queued
        s_sub_drop(self);
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
        self->failed_at_ms = zclock_mono();
        s_sub_drop(self);
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
    if (self->failed_at_ms && zclock_mono() - self->failed_at_ms < 100)
        return -1;
    //  At most one warning per back-off period (100 ms).
    self->ac = s_open(self, "look-up", s_on_connect, s_on_disconnect);
    if (!self->ac) {
        self->failed_at_ms = zclock_mono();
        return -1;
    }
    return 0;
}

gateway_sessions_t *
gateway_sessions_new(struct event_base *base, const gateway_sessions_opts_t *opts)
{
    gateway_sessions_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->base = base;
    self->opts = *opts;
    if (linli_redis_address(opts->host, opts->port, opts->socket, self->where,
                            sizeof self->where)) {
        free(self);
        return NULL;
    }
    linli_session_channel(opts->prefix, self->channel, sizeof self->channel);
    if (opts->cache_ms > 0 && opts->cache_entries > 0) {
        size_t n = 1;
        while (n < opts->cache_entries)
            n <<= 1;
        self->slots = calloc(n, sizeof *self->slots);
        if (!self->slots) {
            linli_error("sessions: no memory for a cache of %zu entries", n);
            free(self);
            return NULL;
        }
        self->mask = n - 1;
    }
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
    s_sub_drop(self);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

void
gateway_sessions_stats(const gateway_sessions_t *self, gateway_sessions_stats_t *out)
{
    *out = self->stats;
}

void
gateway_sessions_lookup(gateway_sessions_t *self, const char *token, gateway_session_fn *fn,
                        void *arg)
{
    char hash[65];
    linli_token_hash(token, hash);
    Linli__Caller *cached = s_cached(self, hash);
    if (cached) {
        self->stats.hits++;
        fn(arg, 0, cached, hash);
        return;
    }
    self->stats.misses++;
    s_lookup_t *l = calloc(1, sizeof *l);
    if (!l || s_connect(self)) {
        free(l);
        fn(arg, -1, NULL, hash);
        return;
    }
    l->fn = fn;
    l->arg = arg;
    memcpy(l->hash, hash, sizeof hash);
    l->deadline_ms = zclock_mono() + self->opts.timeout_ms;
    l->flushes = self->flushes;
    if (self->slots)
        l->ended = s_slot(self, hash)->ended;
    char key[256];
    linli_session_key(self->opts.prefix, hash, key, sizeof key);
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
    if (self->slots)
        s_sub_connect(self);
    if (!self->head || self->head->deadline_ms > zclock_mono())
        return;
    linli_warn("sessions: Redis did not answer in %d ms; reconnecting", self->opts.timeout_ms);
    self->failed_at_ms = zclock_mono();
    s_sub_drop(self);
    if (self->ac) {
        redisAsyncContext *ac = self->ac;
        self->ac = NULL;
        redisAsyncFree(ac); //  answers what it holds with NULL replies (-1)
    }
    while (self->head)
        s_answer_head(self, -1, NULL);
}
