//  linli_consumer: reads the event stream with a Redis consumer group
//  (docs/outbox.md). Delivery is at least once: an entry is XACKed only when
//  the handler returns 0, entries of dead consumers (or failed handlers) are
//  taken over with XAUTOCLAIM once idle long enough. Handlers make their
//  effects exactly once by event id, e.g. with linli_consumer_seen.
//
//  A service that uses linli_consumer_seen creates this table in its schema
//  (linli_consumer_ddl()'s text, in a migration):
//
//    CREATE TABLE IF NOT EXISTS processed (
//        consumer     text NOT NULL,
//        event_id     text NOT NULL,
//        processed_at timestamptz NOT NULL DEFAULT now(),
//        PRIMARY KEY (consumer, event_id)
//    );
#ifndef LINLI_CONSUMER_H
#define LINLI_CONSUMER_H

#include <stdbool.h>
#include <stdint.h>

#include "linli/events.pb-c.h"
#include "linli_pg.h"

typedef struct linli_consumer_t linli_consumer_t;

//  Handle one entry: stream_id and event are borrowed for the call. Return 0
//  when done (the entry is acknowledged), -1 to have it delivered again later
//  (after min_idle_ms). Runs in the thread that polls.
typedef int(linli_consumer_fn)(void *arg, const char *stream_id, const Linli__Event *event);

typedef struct {
    const char *host;      //  Redis host
    int port;              //  Redis port
    const char *socket;    //  Redis Unix socket path; NULL or "": host and port
    const char *prefix;    //  key prefix (the relay's Redis prefix); may be NULL
    const char *stream;    //  stream name without prefix, e.g. "linli:events"
    const char *group;     //  consumer group: one per consuming purpose, e.g. "ledger"
    const char *name;      //  this consumer within the group, unique per process;
                           //  NULL: "<host>-<pid>-<random>"
    const char *start_id;  //  where a new group starts: NULL/"0" = the whole stream, "$" = new only
    int count;             //  entries per read (default 100)
    int block_max_ms;      //  longest block a poll may ask for (default 5000)
    int min_idle_ms;       //  claim pending entries idle this long (default 30000)
    int claim_every_ms;    //  how often to XAUTOCLAIM (default 1000)
    linli_consumer_fn *fn; //  the handler
    void *arg;             //  its first argument; borrowed
} linli_consumer_opts_t;

//  New consumer with its own Redis connection (read timeout above
//  block_max_ms). Copies what opts holds except arg. Connects lazily.
//  NULL on a bad option. Caller owns.
linli_consumer_t *linli_consumer_new(const linli_consumer_opts_t *opts);

//  Stop its thread if running, drop the connection (unacknowledged entries
//  stay pending for another consumer to claim). Accepts NULL, nulls the pointer.
void linli_consumer_destroy(linli_consumer_t **self_p);

//  Process one batch: claim idle entries when due, re-read this consumer's
//  own pending entries once after start, else read new entries, waiting up
//  to block_ms (0: no wait; capped at block_max_ms). Returns how many entries
//  were handled and acknowledged, or -1 when Redis failed (logged).
int linli_consumer_poll(linli_consumer_t *self, int block_ms);

//  Run poll in a thread of its own until linli_consumer_stop (or destroy);
//  the handler then runs in that thread. 0 or -1.
int linli_consumer_start(linli_consumer_t *self, int block_ms);

//  Stop the thread (waits for the poll in progress, at most about block_ms).
void linli_consumer_stop(linli_consumer_t *self);

//  Entries handled and acknowledged since creation (any thread may read it).
uint64_t linli_consumer_handled(const linli_consumer_t *self);

//  The consumer's name in its group (borrowed).
const char *linli_consumer_name(const linli_consumer_t *self);

//  Record in pg's open transaction (the one holding the handler's effect)
//  that consumer has processed event_id. *seen is true when it already had:
//  then skip the effect. A concurrent duplicate waits for the first
//  transaction. 0 or -1 (the caller rolls back and returns -1).
int linli_consumer_seen(linli_pg_t *pg, const char *consumer, const char *event_id, bool *seen);

//  The processed table's DDL above, for a migration file.
const char *linli_consumer_ddl(void);

#endif
