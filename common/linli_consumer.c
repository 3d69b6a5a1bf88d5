//  linli_consumer: consumer-group reader of the event stream, with
//  XAUTOCLAIM of dead consumers' entries and a thread runner.
#include "linli_consumer.h"
#include "linli_log.h"
#include "linli_outbox.h"
#include "linli_redis.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  How long the thread runner rests after a failed poll (Redis down).
#define S_ERROR_PAUSE_MS 250

static const char s_ddl[] = "CREATE TABLE IF NOT EXISTS processed (\n"
                            "    consumer     text NOT NULL,\n"
                            "    event_id     text NOT NULL,\n"
                            "    processed_at timestamptz NOT NULL DEFAULT now(),\n"
                            "    PRIMARY KEY (consumer, event_id)\n"
                            ");\n";

struct linli_consumer_t {
    linli_redis_t *redis;     //  own connection: XREADGROUP blocks on it
    char key[256];            //  the stream: prefix + name
    char *group;              //  consumer group, owned
    char *name;               //  consumer name, owned
    char *start_id;           //  where a new group starts, owned
    int count;                //  entries per read
    int block_max_ms;         //  cap of a poll's BLOCK
    int min_idle_ms;          //  XAUTOCLAIM threshold
    int claim_every_ms;       //  XAUTOCLAIM period
    linli_consumer_fn *fn;    //  handler
    void *arg;                //  its argument, borrowed
    bool group_ready;         //  XGROUP CREATE done (or the group existed)
    bool backlog_done;        //  own pending entries re-read since start
    char backlog_from[64];    //  next own-pending id to read from
    char claim_from[64];      //  XAUTOCLAIM cursor
    int64_t next_claim_ms;    //  monotonic time of the next XAUTOCLAIM
    pthread_t thread;         //  runner, when started
    bool running;             //  thread was started and not yet joined
    int thread_block_ms;      //  the runner's block time
    atomic_bool stop;         //  asks the runner to end
    _Atomic uint64_t handled; //  entries acknowledged
};

linli_consumer_t *
linli_consumer_new(const linli_consumer_opts_t *opts)
{
    //  Where Redis is, linli_redis_new checks.
    if (!opts || !opts->stream || !*opts->stream || !opts->group || !*opts->group || !opts->fn) {
        linli_error("consumer: stream, group and fn are required");
        return NULL;
    }
    linli_consumer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->count = opts->count > 0 ? opts->count : 100;
    self->block_max_ms = opts->block_max_ms > 0 ? opts->block_max_ms : 5000;
    self->min_idle_ms = opts->min_idle_ms > 0 ? opts->min_idle_ms : 30000;
    self->claim_every_ms = opts->claim_every_ms > 0 ? opts->claim_every_ms : 1000;
    self->fn = opts->fn;
    self->arg = opts->arg;
    //  The read timeout must outlast the longest BLOCK, or a quiet stream
    //  would look like a dead connection.
    self->redis = linli_redis_new(opts->host, opts->port, opts->socket, self->block_max_ms + 2000,
                                  opts->prefix);
    char name[128];
    if (opts->name && *opts->name) {
        snprintf(name, sizeof name, "%s", opts->name);
    } else {
        char host[64] = "host", id[33];
        gethostname(host, sizeof host - 1);
        linli_event_new_id(id);
        snprintf(name, sizeof name, "%s-%d-%.8s", host, (int)getpid(), id);
    }
    self->group = strdup(opts->group);
    self->name = strdup(name);
    self->start_id = strdup(opts->start_id && *opts->start_id ? opts->start_id : "0");
    if (!self->redis || !self->group || !self->name || !self->start_id) {
        linli_consumer_destroy(&self);
        return NULL;
    }
    linli_redis_key(self->redis, self->key, sizeof self->key, "%s", opts->stream);
    snprintf(self->backlog_from, sizeof self->backlog_from, "0");
    snprintf(self->claim_from, sizeof self->claim_from, "0-0");
    atomic_init(&self->stop, false);
    atomic_init(&self->handled, 0);
    return self;
}

void
linli_consumer_destroy(linli_consumer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    linli_consumer_t *self = *self_p;
    linli_consumer_stop(self);
    linli_redis_destroy(&self->redis);
    free(self->group);
    free(self->name);
    free(self->start_id);
    free(self);
    *self_p = NULL;
}

const char *
linli_consumer_name(const linli_consumer_t *self)
{
    return self ? self->name : "";
}

uint64_t
linli_consumer_handled(const linli_consumer_t *self)
{
    return self ? atomic_load(&self->handled) : 0;
}

//  XGROUP CREATE ... MKSTREAM; an existing group is fine. 0 or -1.
static int
s_group_create(linli_consumer_t *self)
{
    redisReply *reply = linli_redis_cmd(self->redis, "XGROUP CREATE %s %s %s MKSTREAM", self->key,
                                        self->group, self->start_id);
    if (!reply)
        return -1;
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        linli_error("consumer: XGROUP CREATE %s %s: %s", self->key, self->group, reply->str);
        rc = -1;
    }
    freeReplyObject(reply);
    if (rc == 0) {
        self->group_ready = true;
        //  A (re)created group: whatever we held before is gone or ours again.
        self->backlog_done = false;
        snprintf(self->backlog_from, sizeof self->backlog_from, "0");
    }
    return rc;
}

//  An error reply: NOGROUP (Redis flushed or restarted empty) means create
//  the group again on the next poll. Always -1.
static int
s_reply_error(linli_consumer_t *self, const char *what, const redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOGROUP", 7)) {
        linli_warn("consumer: group %s of %s is gone, creating it again", self->group, self->key);
        self->group_ready = false;
    } else if (reply) {
        linli_error("consumer: %s %s: %s", what, self->key,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
    return -1;
}

//  Hand each entry of a list ([[id, [field, value, ...]], ...]) to the
//  handler and XACK those it finished. last_id receives the last entry's id
//  when not NULL. Returns how many were acknowledged, or -1.
static int
s_handle_entries(linli_consumer_t *self, const redisReply *entries, char *last_id, size_t cap)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0)
        return 0;
    size_t n = entries->elements;
    const char **argv = calloc(n + 3, sizeof *argv);
    if (!argv) {
        linli_error("consumer: out of memory reading %zu entries of %s", n, self->key);
        return -1;
    }
    int argc = 0;
    argv[argc++] = "XACK";
    argv[argc++] = self->key;
    argv[argc++] = self->group;
    for (size_t i = 0; i < n; i++) {
        const redisReply *entry = entries->element[i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
            entry->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *stream_id = entry->element[0]->str;
        if (last_id)
            snprintf(last_id, cap, "%s", stream_id);
        const redisReply *fields = entry->element[1];
        if (fields->type != REDIS_REPLY_ARRAY) {
            //  Trimmed from the stream while pending: nothing left to do.
            argv[argc++] = stream_id;
            continue;
        }
        const redisReply *data = NULL;
        for (size_t f = 0; f + 1 < fields->elements; f += 2)
            if (fields->element[f]->type == REDIS_REPLY_STRING &&
                !strcmp(fields->element[f]->str, "data"))
                data = fields->element[f + 1];
        Linli__Event *event =
            data && data->type == REDIS_REPLY_STRING
                ? linli__event__unpack(NULL, data->len, (const uint8_t *)data->str)
                : NULL;
        if (!event || !event->id || !*event->id) {
            //  It will never parse: acknowledge it rather than retry forever.
            linli_error("consumer: %s entry %s holds no valid event; skipped", self->key,
                        stream_id);
            if (event)
                linli__event__free_unpacked(event, NULL);
            argv[argc++] = stream_id;
            continue;
        }
        int rc = self->fn(self->arg, stream_id, event);
        if (rc == 0)
            argv[argc++] = stream_id;
        else
            linli_log_ctx(LINLI_LOG_WARN, NULL, event->id,
                          "consumer: %s handler failed on %s; it will be retried", self->group,
                          event->type);
        linli__event__free_unpacked(event, NULL);
    }
    int acked = argc - 3;
    if (acked > 0) {
        redisReply *reply = linli_redis_argv(self->redis, argc, argv, NULL);
        if (!reply || reply->type != REDIS_REPLY_INTEGER) {
            //  Not acknowledged: delivered again later, the handler is idempotent.
            s_reply_error(self, "XACK", reply);
            acked = -1;
        }
        freeReplyObject(reply);
    }
    free(argv);
    if (acked > 0)
        atomic_fetch_add(&self->handled, (uint64_t)acked);
    return acked;
}

//  XAUTOCLAIM entries idle longer than min_idle_ms. Returns handled, or -1.
static int
s_claim(linli_consumer_t *self)
{
    char idle[16], count[16];
    snprintf(idle, sizeof idle, "%d", self->min_idle_ms);
    snprintf(count, sizeof count, "%d", self->count);
    redisReply *reply =
        linli_redis_cmd(self->redis, "XAUTOCLAIM %s %s %s %s %s COUNT %s", self->key, self->group,
                        self->name, idle, self->claim_from, count);
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        int rc = s_reply_error(self, "XAUTOCLAIM", reply);
        freeReplyObject(reply);
        return rc;
    }
    //  Copy the cursor first: the reply goes away below.
    snprintf(self->claim_from, sizeof self->claim_from, "%s", reply->element[0]->str);
    if (!strcmp(self->claim_from, "0-0"))
        self->next_claim_ms = zclock_mono() + self->claim_every_ms;
    if (reply->element[1]->type == REDIS_REPLY_ARRAY && reply->element[1]->elements > 0)
        linli_info("consumer: %s claimed %zu idle entries of %s", self->name,
                   reply->element[1]->elements, self->key);
    int rc = s_handle_entries(self, reply->element[1], NULL, 0);
    freeReplyObject(reply);
    return rc;
}

//  XREADGROUP from id (">" new entries, else our own pending ones after id).
//  Returns handled, or -1; *empty tells whether nothing came.
static int
s_read(linli_consumer_t *self, const char *id, int block_ms, bool *empty)
{
    char count[16], block[16];
    snprintf(count, sizeof count, "%d", self->count);
    snprintf(block, sizeof block, "%d", block_ms);
    const char *argv[12];
    int argc = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = self->group;
    argv[argc++] = self->name;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    //  BLOCK 0 would wait forever: leave it out for a non-blocking read.
    if (block_ms > 0) {
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
    }
    argv[argc++] = "STREAMS";
    argv[argc++] = self->key;
    argv[argc++] = id;
    *empty = true;
    redisReply *reply = linli_redis_argv(self->redis, argc, argv, NULL);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        int rc = s_reply_error(self, "XREADGROUP", reply);
        freeReplyObject(reply);
        return rc;
    }
    int rc = 0;
    //  [[key, [entries]]], or nil when BLOCK timed out.
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2) {
        const redisReply *entries = reply->element[0]->element[1];
        *empty = entries->type != REDIS_REPLY_ARRAY || entries->elements == 0;
        char last[64] = "";
        rc = s_handle_entries(self, entries, last, sizeof last);
        if (strcmp(id, ">") != 0 && *last)
            snprintf(self->backlog_from, sizeof self->backlog_from, "%s", last);
    }
    freeReplyObject(reply);
    return rc;
}

int
linli_consumer_poll(linli_consumer_t *self, int block_ms)
{
    if (!self)
        return -1;
    if (!self->group_ready && s_group_create(self))
        return -1;
    if (block_ms > self->block_max_ms)
        block_ms = self->block_max_ms;
    if (block_ms < 0)
        block_ms = 0;
    int handled = 0;
    if (zclock_mono() >= self->next_claim_ms) {
        int rc = s_claim(self);
        if (rc < 0)
            return -1;
        handled += rc;
    }
    bool empty;
    if (!self->backlog_done) {
        //  Entries this consumer name read before a restart and never acked.
        int rc = s_read(self, self->backlog_from, 0, &empty);
        if (rc < 0)
            return -1;
        if (empty)
            self->backlog_done = true;
        return handled + rc;
    }
    //  Claimed work done: do not wait on top of it.
    int rc = s_read(self, ">", handled > 0 ? 0 : block_ms, &empty);
    if (rc < 0)
        return -1;
    return handled + rc;
}

//  The runner thread: poll until asked to stop.
static void *
s_thread_run(void *arg)
{
    linli_consumer_t *self = arg;
    while (!atomic_load(&self->stop)) {
        if (linli_consumer_poll(self, self->thread_block_ms) < 0) {
            //  Redis down or refusing: the handle rate-limits reconnects, we
            //  rest so the loop does not spin on immediate failures.
            struct timespec ts = {0, S_ERROR_PAUSE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int
linli_consumer_start(linli_consumer_t *self, int block_ms)
{
    if (!self || self->running)
        return -1;
    self->thread_block_ms = block_ms > 0 ? block_ms : 1000;
    atomic_store(&self->stop, false);
    if (pthread_create(&self->thread, NULL, s_thread_run, self) != 0) {
        linli_error("consumer: cannot start its thread");
        return -1;
    }
    self->running = true;
    return 0;
}

void
linli_consumer_stop(linli_consumer_t *self)
{
    if (!self || !self->running)
        return;
    atomic_store(&self->stop, true);
    pthread_join(self->thread, NULL);
    self->running = false;
}

int
linli_consumer_seen(linli_pg_t *pg, const char *consumer, const char *event_id, bool *seen)
{
    if (!pg || !consumer || !event_id || !seen)
        return -1;
    if (!linli_pg_in_tx(pg)) {
        //  Outside the effect's transaction the mark would prove nothing.
        linli_error("consumer: seen outside a transaction");
        return -1;
    }
    const char *params[] = {consumer, event_id};
    PGresult *res = linli_pg_exec(pg,
                                  "INSERT INTO processed (consumer, event_id) VALUES ($1, $2) "
                                  "ON CONFLICT DO NOTHING",
                                  2, params);
    if (!res)
        return -1;
    *seen = strcmp(PQcmdTuples(res), "1") != 0;
    PQclear(res);
    return 0;
}

const char *
linli_consumer_ddl(void)
{
    return s_ddl;
}
