//  registry_index: the matching read model in Redis (docs/matching-index.md)
//  — per volunteer: community, position, skills, free slots, status — fed
//  by the registry's own volunteer events through a consumer group, and
//  rebuildable from PostgreSQL. Dispatch reads it with
//  registry_index_candidates.
#ifndef REGISTRY_INDEX_H
#define REGISTRY_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/events.pb-c.h"
#include "linli_config.h"
#include "linli_pg.h"
#include "linli_redis.h"
#include "registry.h"

//  The consumer group every registry process joins.
#define REGISTRY_INDEX_GROUP "registry-index"

typedef struct registry_index_t registry_index_t;

typedef struct {
    const char *redis_host;   //  Redis host
    int redis_port;           //  Redis port
    const char *redis_socket; //  Redis Unix socket path; NULL or "": host and port
    int redis_timeout_ms;     //  per command (the index's own connection)
    const char *prefix;       //  key prefix, may be NULL
    const char *pg_dsn;       //  for the area centres (its own connection)
    int pg_timeout_ms;        //  statement_timeout
    const char *stream;       //  stream name without prefix; NULL: "events"
    const char *group;        //  NULL: REGISTRY_INDEX_GROUP
    const char *name;         //  consumer name; NULL: "<host>-<pid>-<random>"
    int min_idle_ms;          //  claim others' pending entries idle this long (0: 30000)
    int claim_every_ms;       //  XAUTOCLAIM period (0: 1000)
    int block_ms;             //  longest XREADGROUP BLOCK (0: 1000)
} registry_index_opts_t;

//  Counts of a rebuild.
typedef struct {
    long volunteers; //  rows read from PostgreSQL (every status)
    long verified;   //  of those, verified (in the sets)
    long stale;      //  ignored: Redis held a newer version
    long removed;    //  ids swept from Redis: no longer in PostgreSQL
    double seconds;  //  wall time of the whole rebuild
} registry_index_stats_t;

//  One match.
typedef struct {
    int64_t id;    //  volunteer (account) id
    double dist_m; //  metres from the asked point to the volunteer's position
} registry_candidate_t;

//  New index consumer (not yet running); copies opts. NULL on a bad option.
//  Caller owns.
registry_index_t *registry_index_new(const registry_index_opts_t *opts);

//  The same from the registry's configuration (LINLI_REDIS_*, LINLI_PG_*).
registry_index_t *registry_index_new_from_config(const linli_config_t *config);

//  Stop its thread if running and close its connections (unacknowledged
//  entries stay pending for another process). Accepts NULL, nulls the pointer.
void registry_index_destroy(registry_index_t **self_p);

//  Run the consumer in a thread of its own until destroy. 0 or -1.
int registry_index_start(registry_index_t *self);

//  Process one batch in the caller's thread instead (tests, tools): returns
//  entries handled, or -1 when Redis failed.
int registry_index_poll(registry_index_t *self, int block_ms);

//  The consumer's handler (a linli_consumer_fn; arg is a registry_index_t):
//  applies a volunteer event, ignores others. 0 done, -1 retry later.
int registry_index_handle(void *arg, const char *stream_id, const Linli__Event *event);

//  Rebuild the index from PostgreSQL (pg is borrowed, its search_path is
//  the registry schema): every volunteer through the version-guarded script,
//  in pipelines, then a sweep of ids PostgreSQL no longer holds. With clear,
//  every index key is deleted first. stats may be NULL. 0 or -1 (logged).
int registry_index_rebuild(linli_pg_t *pg, linli_redis_t *redis, bool clear,
                           registry_index_stats_t *stats);

//  Delete every index key (vol:*) under redis's prefix. Returns how many, or -1.
long registry_index_clear(linli_redis_t *redis);

//  Verified volunteers within radius_m of (lat, lng), nearest first, that
//  have skill and slot (each NULL or "" for any): at most max into out,
//  *n set to how many. 0, or -1 when Redis failed or an argument is bad.
int registry_index_candidates(linli_redis_t *redis, double lat, double lng, int radius_m,
                              const char *skill, const char *slot, size_t max,
                              registry_candidate_t *out, size_t *n);

//  linli-registry rebuild-index [--clear]: the tool in main.c's table.
int registry_index_tool(registry_t *reg, const linli_config_t *config, int argc, char **argv);

#endif
