//  linli_outbox: the transactional outbox (docs/outbox.md). An event row is
//  inserted in the same transaction as the change it reports; one relay per
//  service moves committed rows to a Redis Stream and marks them sent.
//
//  Every service schema holds this table; put linli_outbox_ddl()'s text in the
//  service's 001 migration (the migration runs with search_path = the schema):
//
//    CREATE TABLE IF NOT EXISTS outbox (
//        id         bigserial PRIMARY KEY,
//        event_id   text COLLATE "C" NOT NULL UNIQUE,
//        type       text NOT NULL,
//        area       text NOT NULL DEFAULT '',
//        payload    bytea NOT NULL,              -- the packed linli.Event
//        created_at timestamptz NOT NULL DEFAULT now(),
//        sent_at    timestamptz                  -- NULL until published
//    );
//    CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
//
//  Stream entries: XADD <prefix><stream> MAXLEN ~ N * event_id <id> type <type>
//  area <area> data <packed linli.Event>.
#ifndef LINLI_OUTBOX_H
#define LINLI_OUTBOX_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "linli/events.pb-c.h"
#include "linli_pg.h"
#include "linli_redis.h"

//  The outbox DDL above, as one SQL text (several statements) for a migration file.
const char *linli_outbox_ddl(void);

// ---------------------------------------------------------------- events

//  An event being built: the message and the storage it borrows.
typedef struct {
    Linli__Event event; //  ready to append; borrows id, data and the caller's strings
    char id[33];        //  128 random bits in hex
    uint8_t *data;      //  packed data message, owned (NULL when none)
} linli_event_t;

//  Fill self: a new random id, time_ms = now, source/type/subject/area
//  borrowed (subject and area may be NULL), and data packed from msg (may be
//  NULL; data_type is then unset, else msg's full protobuf name). self must
//  outlive its use and be cleared with linli_event_clear. 0 or -1.
int linli_event_init(linli_event_t *self, const char *source, const char *type, const char *subject,
                     const char *area, const ProtobufCMessage *msg);

//  Free what linli_event_init allocated; the event is unusable afterwards.
void linli_event_clear(linli_event_t *self);

//  Write a new random 128-bit hex id (32 characters and a NUL) into id.
void linli_event_new_id(char id[33]);

// ---------------------------------------------------------------- append

//  Insert event (borrowed) into the outbox inside pg's open transaction (the
//  caller's, which must be open). 0 or -1 (logged; the caller rolls back).
int linli_outbox_append(linli_pg_t *pg, const Linli__Event *event);

// ---------------------------------------------------------------- relay

typedef struct linli_relay_t linli_relay_t;

//  New relay for schema's outbox, publishing to the stream named
//  <redis prefix><stream_name>. It opens its own PostgreSQL connection from
//  dsn (the advisory lock that makes it the one active relay is held by that
//  session). redis is borrowed and must outlive the relay; the relay runs
//  only in the thread that ticks it. NULL on a bad argument. Caller owns.
linli_relay_t *linli_relay_new(const char *dsn, const char *schema, linli_redis_t *redis,
                               const char *stream_name);

//  Destroy; its connection closes, so its lock passes to another relay.
//  Accepts NULL and nulls the caller's pointer.
void linli_relay_destroy(linli_relay_t **self_p);

//  Tuning: rows per tick (default 500) and the stream's approximate
//  MAXLEN (default 1,000,000 entries; 0 = no trimming).
void linli_relay_set_batch(linli_relay_t *self, int batch);
void linli_relay_set_maxlen(linli_relay_t *self, long maxlen);

//  One step, from a timer every 50-100 ms: take the lock if free, recover
//  after a takeover, publish up to a batch of unsent rows and mark them.
//  Returns how many events it published (0 when passive), -1 on an error
//  (logged; the next tick tries again).
int linli_relay_tick(linli_relay_t *self);

//  True while this relay holds the lock (after its last tick).
bool linli_relay_active(const linli_relay_t *self);

//  Re-feed a Redis that lost events: mark every row created at or after
//  since_ms unsent. The next tick of the active relay first re-marks those
//  still in the stream, then publishes the rest. Returns how many rows were
//  reset, or -1.
long linli_relay_replay_from(linli_relay_t *self, int64_t since_ms);

//  Delete sent rows older than keep_days (keep the stream's retention).
//  Returns how many rows were deleted, or -1.
long linli_relay_cleanup(linli_relay_t *self, int keep_days);

//  Test hook: a tick that publishes and "crashes" before marking the rows
//  sent, as a relay killed between XADD and UPDATE would. Never in services.
int linli_relay_tick_publish_only(linli_relay_t *self);

#endif
