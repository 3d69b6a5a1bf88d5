//  registry_import_job: staging by binary COPY and the one final transaction.
#define _GNU_SOURCE //  sched_getaffinity: the CPUs this process may run on
#include "registry_import_job.h"
#include "registry_util.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "linli/registry.pb-c.h"
#include "linli_auth.h"
#include "linli_log.h"
#include "linli_outbox.h"

#define S_COPY_CHUNK (1 << 20) //  bytes handed to PQputCopyData at once
#define S_TUPLE_MAX 16384      //  room one staged row may need, at most
#define S_ID_BLOCK 10000       //  account ids reserved per round trip
#define S_PROGRESS_EVERY 10000 //  rows between progress updates and stop checks
#define S_COMMIT_TRIES 3       //  final transactions tried when a concurrent insert collides
#define S_MAX_GRANTS 16
#define S_BATCH_ROWS 512        //  rows checked and sealed together
#define S_ARENA_BYTES (1 << 20) //  their strings
#define S_MAX_HELPERS 7         //  threads sealing beside the job's own

#define S_ANNOUNCE_MAX 500     //  volunteers per volunteers.imported event
#define S_ANNOUNCE_FETCH 20000 //  staged rows read per round trip while announcing

static const char s_source[] = "/linli/registry";
static const char s_type[] = "linli.registry.volunteers.imported";

// ---------------------------------------------------------------- duplicates in the file

//  The first line of each keyed hash seen in this file: open addressing on
//  the hash's first 96 bits (a keyed hash: uniform, and two different
//  numbers share 96 bits with odds of about 10^-16 in a city's file), 16
//  bytes a slot.
typedef struct {
    uint64_t key;  //  the hash's first 64 bits
    uint32_t key2; //  its next 32 bits
    uint32_t line; //  0: empty (files have fewer than 2^32 lines)
} s_seen_slot_t;

typedef struct {
    s_seen_slot_t *slots; //  owned
    size_t cap, n;        //  cap a power of two
} s_seen_t;

static uint64_t
s_hex64(const char *hex)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
    }
    return v;
}

static s_seen_slot_t *
s_seen_slot(s_seen_slot_t *slots, size_t cap, uint64_t key, uint32_t key2)
{
    size_t i = (size_t)key & (cap - 1);
    while (slots[i].line && (slots[i].key != key || slots[i].key2 != key2))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

//  Grow t to hold n keys at a load under one half. 0 or -1.
static int
s_seen_grow(s_seen_t *t, size_t n)
{
    size_t cap = t->cap ? t->cap : 4096;
    while (n * 2 > cap)
        cap *= 2;
    if (cap == t->cap)
        return 0;
    s_seen_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].line)
            *s_seen_slot(slots, cap, t->slots[i].key, t->slots[i].key2) = t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

//  Best effort: room for n keys now (a failure shows at the first add).
static void
s_seen_reserve(s_seen_t *t, int64_t n)
{
    if (n > 0 && (uint64_t)n < SIZE_MAX / 4)
        s_seen_grow(t, (size_t)n);
}

//  *first: the line hex (a 64-digit keyed hash) was first seen on, line
//  itself when it is new (and now remembered). 0, or -1 (out of memory, or
//  a line past 2^32 - 1, which no importable file has).
static int
s_seen_first(s_seen_t *t, const char *hex, int64_t line, int64_t *first)
{
    if (strnlen(hex, 24) < 24 || line <= 0 || line > (int64_t)UINT32_MAX)
        return -1;
    if ((t->n + 1) * 2 > t->cap && s_seen_grow(t, t->n + 1))
        return -1;
    uint64_t key = s_hex64(hex);
    uint32_t key2 = (uint32_t)(s_hex64(hex + 8) & 0xffffffffu);
    s_seen_slot_t *slot = s_seen_slot(t->slots, t->cap, key, key2);
    if (!slot->line) {
        slot->key = key;
        slot->key2 = key2;
        slot->line = (uint32_t)line;
        t->n++;
    }
    *first = slot->line;
    return 0;
}

// ---------------------------------------------------------------- the work

struct registry_import_job_t {
    linli_pg_t *pg;                    //  borrowed: the job's session (lock, temp tables)
    linli_pg_t *side;                  //  borrowed: progress and id blocks
    registry_import_opts_t opts;       //  strings borrowed
    char grant_buf[1024];              //  owned copy of opts.grants, cut into roles and scopes
    Linli__Grant grants[S_MAX_GRANTS]; //  point into grant_buf
    Linli__Grant *grant_ptrs[S_MAX_GRANTS];
    Linli__Caller caller;    //  whose scope rows must fall in
    char (*communities)[16]; //  owned, sorted: every community code
    size_t n_communities;
    int this_year;         //  for the age check
    int64_t t0_ms;         //  created_at/updated_at of every row, the events' version
    char t0[24];           //  t0_ms as text
    int64_t *ids;          //  owned: a reserved block of account ids
    size_t n_ids, next_id; //  ids in the block / used
    uint8_t *buf;          //  owned: COPY data not yet sent
    size_t len, cap;
    bool copying;         //  the COPY is open
    bool set_wise_fk;     //  check foreign keys once per set, not per row
    bool stopped;         //  should_stop ended it
    int64_t rows;         //  rows staged (good and refused)
    int64_t expected;     //  rows announced, for progress
    s_seen_t seen_ids;    //  ID numbers' hashes → first line
    s_seen_t seen_phones; //  phones' hashes → first line
    //  Rows waiting to be checked and sealed together, on several threads.
    struct s_pending_t *pending; //  owned, S_BATCH_ROWS
    size_t n_pending;
    char *arena; //  owned: the pending rows' strings
    size_t arena_used;
    pthread_t helpers[S_MAX_HELPERS];
    int n_helpers;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done; //  a batch to seal / a helper finished
    uint64_t generation;             //  batches handed out
    int busy;                        //  helpers still sealing this batch
    bool quit;                       //  helpers end
};

static int
s_cmp_code(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

//  Cut "role scope,role scope" into the caller's grants.
static void
s_parse_grants(registry_import_job_t *self)
{
    linli__caller__init(&self->caller);
    registry_copy(self->grant_buf, sizeof self->grant_buf, self->opts.grants);
    size_t n = 0;
    char *save = NULL;
    for (char *g = strtok_r(self->grant_buf, ",", &save); g && n < S_MAX_GRANTS;
         g = strtok_r(NULL, ",", &save)) {
        char *space = strchr(g, ' ');
        if (!space)
            continue;
        *space = '\0';
        linli__grant__init(&self->grants[n]);
        self->grants[n].role = g;
        self->grants[n].scope = space + 1;
        self->grant_ptrs[n] = &self->grants[n];
        n++;
    }
    self->caller.n_grants = n;
    self->caller.grants = self->grant_ptrs;
}

static int
s_load_communities(registry_import_job_t *self)
{
    PGresult *res =
        linli_pg_exec(self->pg, "SELECT code FROM areas WHERE level = 'community'", 0, NULL);
    if (!res)
        return -1;
    size_t n = (size_t)PQntuples(res);
    self->communities = calloc(n ? n : 1, sizeof *self->communities);
    if (!self->communities) {
        PQclear(res);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        registry_copy(self->communities[i], sizeof self->communities[i],
                      PQgetvalue(res, (int)i, 0));
    self->n_communities = n;
    PQclear(res);
    //  Byte order, whatever the database's collation.
    qsort(self->communities, n, sizeof *self->communities, s_cmp_code);
    return 0;
}

// ---- binary COPY (PostgreSQL's "PGCOPY" format: no escaping, bytea as is)

static void
s_u16(registry_import_job_t *self, uint16_t v)
{
    self->buf[self->len++] = (uint8_t)(v >> 8);
    self->buf[self->len++] = (uint8_t)v;
}

static void
s_u32(registry_import_job_t *self, uint32_t v)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        self->buf[self->len++] = (uint8_t)(v >> shift);
}

static void
s_i64(registry_import_job_t *self, int64_t v)
{
    s_u32(self, 8);
    uint64_t u = (uint64_t)v;
    for (int shift = 56; shift >= 0; shift -= 8)
        self->buf[self->len++] = (uint8_t)(u >> shift);
}

static void
s_i32(registry_import_job_t *self, int32_t v)
{
    s_u32(self, 4);
    s_u32(self, (uint32_t)v);
}

static void
s_bytes(registry_import_job_t *self, const void *data, size_t len)
{
    s_u32(self, (uint32_t)len);
    memcpy(self->buf + self->len, data, len);
    self->len += len;
}

//  SQL NULL.
static void
s_null(registry_import_job_t *self)
{
    s_u32(self, 0xffffffffu);
}

//  A text value; NULL is SQL NULL.
static void
s_text(registry_import_job_t *self, const char *s)
{
    if (!s)
        s_null(self);
    else
        s_bytes(self, s, strlen(s));
}

//  Send what is buffered. 0 or -1.
static int
s_flush(registry_import_job_t *self)
{
    if (self->len == 0)
        return 0;
    PGconn *conn = linli_pg_conn(self->pg);
    if (!conn || PQputCopyData(conn, (const char *)self->buf, (int)self->len) != 1) {
        linli_error("import: job %" PRId64 ": COPY failed: %s", self->opts.job_id,
                    conn ? PQerrorMessage(conn) : "no connection");
        return -1;
    }
    self->len = 0;
    return 0;
}

//  Make room for one more row (flushing first when the chunk is full). 0 or -1.
static int
s_room(registry_import_job_t *self)
{
    if (self->len >= S_COPY_CHUNK && s_flush(self))
        return -1;
    if (self->len + S_TUPLE_MAX <= self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : S_COPY_CHUNK + S_TUPLE_MAX;
    while (self->len + S_TUPLE_MAX > cap)
        cap *= 2;
    uint8_t *grown = realloc(self->buf, cap);
    if (!grown) {
        linli_error("import: job %" PRId64 ": out of memory for %zu bytes of COPY data",
                    self->opts.job_id, cap);
        return -1;
    }
    self->buf = grown;
    self->cap = cap;
    return 0;
}

//  End the COPY; 0 when the server took every row.
static int
s_copy_end(registry_import_job_t *self, const char *abort_reason)
{
    if (!self->copying)
        return 0;
    self->copying = false;
    PGconn *conn = linli_pg_conn(self->pg);
    if (!conn)
        return -1;
    int rc = 0;
    if (!abort_reason) {
        s_u16(self, 0xffff); //  the trailer
        rc = s_flush(self);
    }
    if (PQputCopyEnd(conn, rc ? "import failed" : abort_reason) != 1)
        rc = -1;
    PGresult *res;
    while ((res = PQgetResult(conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !abort_reason) {
            linli_error("import: job %" PRId64 ": staging failed: %s", self->opts.job_id,
                        PQresultErrorMessage(res));
            rc = -1;
        }
        PQclear(res);
    }
    self->len = 0;
    return abort_reason ? -1 : rc;
}

//  Record progress (phase NULL: unchanged). Progress is only shown to the
//  submitter: a failure is logged and the job goes on.
static void
s_progress(registry_import_job_t *self, const char *phase, int64_t total)
{
    if (registry_import_store_progress(self->side, self->opts.job_id, phase, total, self->rows))
        linli_warn("import: job %" PRId64 ": progress not recorded (%" PRId64 " rows)",
                   self->opts.job_id, self->rows);
}

//  Every S_PROGRESS_EVERY rows: progress, and whether to stop. 0 or -1.
static int
s_tick(registry_import_job_t *self)
{
    if (self->rows % S_PROGRESS_EVERY)
        return 0;
    s_progress(self, NULL, self->expected > self->rows ? self->expected : self->rows);
    if (self->opts.should_stop && self->opts.should_stop(self->opts.stop_arg)) {
        self->stopped = true;
        return -1;
    }
    return 0;
}

//  The next reserved account id, reserving a block when the last is used. 0 when none.
static int64_t
s_next_id(registry_import_job_t *self)
{
    if (self->next_id == self->n_ids) {
        char n[16];
        snprintf(n, sizeof n, "%d", S_ID_BLOCK);
        const char *params[] = {n};
        //  nextval per row: race-free beside concurrent sign-ups; the block
        //  need not be contiguous.
        PGresult *res = linli_pg_exec(
            self->side, "SELECT nextval('accounts_id_seq') FROM generate_series(1, $1::int)", 1,
            params);
        if (!res)
            return 0;
        self->n_ids = 0;
        self->next_id = 0;
        for (int i = 0; i < PQntuples(res) && i < S_ID_BLOCK; i++)
            self->ids[self->n_ids++] = registry_col_int64(res, i, 0);
        PQclear(res);
        if (self->n_ids == 0)
            return 0;
    }
    return self->ids[self->next_id++];
}

//  Foreign keys are checked by per-row triggers: five lookups per
//  volunteer, a third of the final transaction. When the tables carry no
//  trigger but those foreign keys, and the role may set
//  session_replication_role, the final transaction makes the same checks
//  once per set instead (with the same row locks) and skips the triggers.
static bool
s_set_wise_fk_allowed(linli_pg_t *pg)
{
    PGresult *res = linli_pg_exec(
        pg,
        "SELECT has_parameter_privilege('session_replication_role', 'SET') "
        "AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
        "  ('accounts'::regclass, 'volunteers'::regclass, 'outbox'::regclass)) "
        "AND (SELECT array_agg(conname::text ORDER BY conname) FROM pg_constraint "
        "  WHERE contype = 'f' AND conrelid IN "
        "  ('accounts'::regclass, 'volunteers'::regclass, 'outbox'::regclass)) "
        "  = ARRAY['accounts_area_fkey', 'accounts_created_by_fkey', "
        "          'volunteers_community_fkey', 'volunteers_id_fkey', "
        "          'volunteers_verified_by_fkey']",
        0, NULL);
    bool ok = res && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return ok;
}

// ---------------------------------------------------------------- rows, sealed in batches

//  One row waiting: its input (strings in the arena), then what sealing gave.
typedef struct s_pending_t {
    int64_t line;
    registry_person_input_t in;
    const char *skills[REGISTRY_MAX_TAGS + 1], *slots[REGISTRY_MAX_TAGS + 1];
    const char *status;
    int rc; //  registry_person_prepare's
    registry_person_t p;
    registry_person_error_t e;
} s_pending_t;

//  Check and seal pending rows [from, to): pure work, any thread.
static void
s_prepare_range(registry_import_job_t *self, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        s_pending_t *r = &self->pending[i];
        r->rc = registry_person_prepare(&r->in, self->this_year, &r->p, &r->e);
    }
}

typedef struct {
    registry_import_job_t *job;
    int index; //  1..n_helpers: its slice of each batch
} s_helper_arg_t;

static void *
s_helper(void *arg_)
{
    s_helper_arg_t *arg = (s_helper_arg_t *)arg_;
    registry_import_job_t *self = arg->job;
    int index = arg->index;
    free(arg);
    uint64_t done = 0;
    pthread_mutex_lock(&self->mu);
    while (true) {
        while (!self->quit && self->generation == done)
            pthread_cond_wait(&self->cv_work, &self->mu);
        if (self->quit)
            break;
        done = self->generation;
        size_t n = self->n_pending, parts = (size_t)self->n_helpers + 1;
        pthread_mutex_unlock(&self->mu);
        s_prepare_range(self, n * (size_t)index / parts, n * (size_t)(index + 1) / parts);
        pthread_mutex_lock(&self->mu);
        if (--self->busy == 0)
            pthread_cond_signal(&self->cv_done);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

//  Start the sealing helpers: one per further CPU, up to S_MAX_HELPERS.
//  None is fine (everything is sealed on the job's thread).
static void
s_helpers_start(registry_import_job_t *self)
{
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv_work, NULL);
    pthread_cond_init(&self->cv_done, NULL);
    //  The CPUs this process may use (a container's cpuset), else all online.
    cpu_set_t set;
    long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                            : sysconf(_SC_NPROCESSORS_ONLN);
    int want = cpus > 1 ? (int)(cpus - 1 < S_MAX_HELPERS ? cpus - 1 : S_MAX_HELPERS) : 0;
    for (int i = 0; i < want; i++) {
        s_helper_arg_t *arg = malloc(sizeof *arg);
        if (!arg)
            break;
        arg->job = self;
        arg->index = i + 1;
        if (pthread_create(&self->helpers[i], NULL, s_helper, arg)) {
            free(arg);
            break;
        }
        self->n_helpers++;
    }
}

static void
s_helpers_stop(registry_import_job_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->quit = true;
    pthread_cond_broadcast(&self->cv_work);
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < self->n_helpers; i++)
        pthread_join(self->helpers[i], NULL);
    self->n_helpers = 0;
    pthread_cond_destroy(&self->cv_done);
    pthread_cond_destroy(&self->cv_work);
    pthread_mutex_destroy(&self->mu);
}

registry_import_job_t *
registry_import_job_new(linli_pg_t *pg, linli_pg_t *side, const registry_import_opts_t *opts)
{
    registry_import_job_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pg = pg;
    self->side = side;
    self->opts = *opts;
    //  A dry run writes nothing: no reason to lock the tables for it.
    if (self->opts.dry_run)
        self->opts.bulk = false;
    if (!self->opts.actor)
        self->opts.actor = "import";
    s_parse_grants(self);
    self->this_year = registry_this_year();
    self->t0_ms = linli_now_ms();
    snprintf(self->t0, sizeof self->t0, "%" PRId64, self->t0_ms);
    self->ids = calloc(S_ID_BLOCK, sizeof *self->ids);
    self->pending = calloc(S_BATCH_ROWS, sizeof *self->pending);
    self->arena = malloc(S_ARENA_BYTES);
    s_helpers_start(self);
    if (!self->ids || !self->pending || !self->arena || s_load_communities(self) || s_room(self)) {
        registry_import_job_destroy(&self);
        return NULL;
    }
    //  Local buffers for the staging table (~550 bytes a row), taken as
    //  needed up to this: a city's file stays in memory instead of going
    //  through temporary files. Only settable before the session's first
    //  temporary table; an HTTP job (≤ 8 MiB) uses a few tens of MB.
    static const char *setup[] = {
        "SELECT CASE WHEN pg_my_temp_schema() = 0 THEN set_config('temp_buffers', '2GB', "
        "false) END",
        "DROP TABLE IF EXISTS import_stage, import_bad",
        //  One row per data row: a good row sealed and ready, or a refused
        //  row with code/field/message and nothing else.
        "CREATE TEMP TABLE import_stage (line bigint, id bigint, name text, community text, "
        "id_number_enc text, id_number_hash text COLLATE \"C\", phone_enc text, "
        "phone_hash text COLLATE \"C\", gender text, "
        "birth_year int, political_status text, skills text, free_slots text, status text, "
        "payload bytea, code text, field text, message text)",
        "CREATE TEMP TABLE import_bad (line bigint PRIMARY KEY, code text NOT NULL, "
        "field text NOT NULL, message text NOT NULL)",
        NULL,
    };
    for (size_t i = 0; setup[i]; i++)
        if (linli_pg_command(self->pg, setup[i], 0, NULL)) {
            registry_import_job_destroy(&self);
            return NULL;
        }
    self->set_wise_fk = s_set_wise_fk_allowed(self->pg);
    PGresult *res =
        linli_pg_exec(self->pg, "COPY import_stage FROM STDIN (FORMAT binary)", 0, NULL);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        PQclear(res);
        registry_import_job_destroy(&self);
        return NULL;
    }
    PQclear(res);
    self->copying = true;
    //  The header: signature, flags, extension length.
    static const uint8_t signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    memcpy(self->buf, signature, sizeof signature);
    self->len = sizeof signature;
    s_u32(self, 0);
    s_u32(self, 0);
    s_progress(self, "staging", 0);
    return self;
}

void
registry_import_job_destroy(registry_import_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_import_job_t *self = *self_p;
    if (self->copying)
        s_copy_end(self, "import abandoned");
    if (linli_pg_in_tx(self->pg))
        linli_pg_rollback(self->pg);
    //  Temporary tables go with the session anyway; free their space now
    //  (best effort: linli_pg logs a failure, and the session's end drops them).
    (void)linli_pg_command(self->pg, "DROP TABLE IF EXISTS import_stage, import_bad", 0, NULL);
    free(self->communities);
    free(self->ids);
    free(self->seen_ids.slots);
    free(self->seen_phones.slots);
    s_helpers_stop(self);
    free(self->pending);
    free(self->arena);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

void
registry_import_job_expect(registry_import_job_t *self, int64_t total)
{
    self->expected = total;
    //  Room for every row's hashes at once: no growing while staging.
    s_seen_reserve(&self->seen_ids, total);
    s_seen_reserve(&self->seen_phones, total);
    s_progress(self, NULL, total);
}

bool
registry_import_job_stopped(const registry_import_job_t *self)
{
    return self->stopped;
}

int
registry_import_job_reject(registry_import_job_t *self, int64_t line, const char *code,
                           const char *field, const char *message)
{
    if (s_room(self))
        return -1;
    s_u16(self, 18);
    s_i64(self, line);
    for (int i = 0; i < 14; i++)
        s_null(self);
    s_text(self, code);
    s_text(self, field ? field : "");
    s_text(self, message);
    self->rows++;
    return s_tick(self);
}

//  Pack the row's VolunteerEvent (what a volunteer.registered event would
//  carry; announced in batches at the commit) into out[cap]. Its length, or
//  0 when it does not fit.
static size_t
s_event_data(registry_import_job_t *self, int64_t id, const registry_person_t *p,
             const char *status, uint8_t *out, size_t cap)
{
    registry_volunteer_event_t e;
    //  version = the row's updated_at
    registry_volunteer_event_init(&e, id, p->community, status, p->skills, p->free_slots,
                                  self->opts.actor, self->t0_ms);
    size_t len = protobuf_c_message_get_packed_size(&e.msg.base);
    if (len > cap)
        return 0;
    return protobuf_c_message_pack(&e.msg.base, out);
}

//  A sealed row's remaining checks, in file order (they look at the rows
//  before it), and its staging. 0 or -1 as registry_import_job_add.
static int
s_finish(registry_import_job_t *self, s_pending_t *r)
{
    int64_t line = r->line;
    const char *status = r->status;
    registry_person_t *p = &r->p;
    if (r->rc) {
        if (!strcmp(r->e.code, "internal")) {
            linli_error("import: job %" PRId64 ": a record could not be sealed", self->opts.job_id);
            return -1;
        }
        return registry_import_job_reject(self, line, r->e.code, r->e.field, r->e.message);
    }
    if (!bsearch(p->community, self->communities, self->n_communities, sizeof *self->communities,
                 s_cmp_code))
        return registry_import_job_reject(self, line, "unknown_community", "community",
                                          "no community has this code");
    if (linli_auth_rank_over(&self->caller, p->community) < 1)
        return registry_import_job_reject(self, line, "out_of_scope", "community",
                                          "this community is outside your area");
    if (!status || !*status)
        status = "pending";
    if (strcmp(status, "pending") && strcmp(status, "verified"))
        return registry_import_job_reject(self, line, "invalid_value", "status",
                                          "status must be pending or verified");
    //  The same person twice in the file: the first stays, the others are
    //  refused (each row is checked against every row before it that passed
    //  the checks above, refused as a repeat or not: by the ID number, then
    //  the phone).
    int64_t id_first, phone_first;
    if (s_seen_first(&self->seen_ids, p->id_number_hash, line, &id_first) ||
        s_seen_first(&self->seen_phones, p->phone_hash, line, &phone_first)) {
        linli_error("import: job %" PRId64 ": line %" PRId64 ": no room to check for repeats",
                    self->opts.job_id, line);
        return -1;
    }
    if (id_first != line || phone_first != line) {
        bool by_id = id_first != line;
        char message[96];
        snprintf(message, sizeof message, "the same %s is on line %" PRId64 " of this file",
                 by_id ? "id_number" : "phone", by_id ? id_first : phone_first);
        return registry_import_job_reject(self, line, "duplicate_in_file",
                                          by_id ? "id_number" : "phone", message);
    }
    int64_t id = s_next_id(self);
    if (!id)
        return -1;
    uint8_t event[4096];
    size_t elen = s_event_data(self, id, p, status, event, sizeof event);
    if (!elen) {
        linli_error("import: job %" PRId64 ": line %" PRId64 ": its event exceeds %zu bytes",
                    self->opts.job_id, line, sizeof event);
        return -1;
    }
    if (s_room(self))
        return -1;
    s_u16(self, 18);
    s_i64(self, line);
    s_i64(self, id);
    s_text(self, p->name);
    s_text(self, p->community);
    s_text(self, p->id_number_enc);
    s_text(self, p->id_number_hash);
    s_text(self, p->phone_enc);
    s_text(self, p->phone_hash);
    s_text(self, p->gender);
    s_i32(self, p->birth_year);
    s_text(self, p->political_status);
    s_text(self, p->skills);
    s_text(self, p->free_slots);
    s_text(self, status);
    s_bytes(self, event, elen);
    s_null(self);
    s_null(self);
    s_null(self);
    self->rows++;
    return s_tick(self);
}

//  Seal the pending rows (this thread and the helpers, a slice each), then
//  finish them in order. 0 or -1.
static int
s_flush_pending(registry_import_job_t *self)
{
    size_t n = self->n_pending;
    if (n == 0)
        return 0;
    if (self->n_helpers) {
        pthread_mutex_lock(&self->mu);
        self->busy = self->n_helpers;
        self->generation++;
        pthread_cond_broadcast(&self->cv_work);
        pthread_mutex_unlock(&self->mu);
    }
    s_prepare_range(self, 0, n / ((size_t)self->n_helpers + 1));
    if (self->n_helpers) {
        pthread_mutex_lock(&self->mu);
        while (self->busy)
            pthread_cond_wait(&self->cv_done, &self->mu);
        pthread_mutex_unlock(&self->mu);
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s_finish(self, &self->pending[i]);
    self->n_pending = 0;
    self->arena_used = 0;
    return rc;
}

//  Copy s into the arena (room checked by the caller).
static const char *
s_keep(registry_import_job_t *self, const char *s)
{
    if (!s)
        return NULL;
    size_t len = strlen(s) + 1;
    char *at = self->arena + self->arena_used;
    memcpy(at, s, len);
    self->arena_used += len;
    return at;
}

int
registry_import_job_add(registry_import_job_t *self, int64_t line,
                        const registry_person_input_t *in, const char *status)
{
    size_t n_skills = in->n_skills > REGISTRY_MAX_TAGS ? REGISTRY_MAX_TAGS + 1 : in->n_skills;
    size_t n_slots =
        in->n_free_slots > REGISTRY_MAX_TAGS ? REGISTRY_MAX_TAGS + 1 : in->n_free_slots;
    const char *strs[] = {in->name,   in->id_number,        in->phone, in->community,
                          in->gender, in->political_status, status};
    size_t need = 0;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        need += strs[i] ? strlen(strs[i]) + 1 : 0;
    for (size_t i = 0; i < n_skills; i++)
        need += strlen(in->skills[i]) + 1;
    for (size_t i = 0; i < n_slots; i++)
        need += strlen(in->free_slots[i]) + 1;
    if (need > S_ARENA_BYTES)
        return registry_import_job_reject(self, line, "too_long", "", "the row is too long");
    if ((self->n_pending == S_BATCH_ROWS || self->arena_used + need > S_ARENA_BYTES) &&
        s_flush_pending(self))
        return -1;
    s_pending_t *r = &self->pending[self->n_pending++];
    r->line = line;
    r->in = (registry_person_input_t){
        .name = s_keep(self, in->name),
        .id_number = s_keep(self, in->id_number),
        .phone = s_keep(self, in->phone),
        .community = s_keep(self, in->community),
        .gender = s_keep(self, in->gender),
        .political_status = s_keep(self, in->political_status),
        .skills = r->skills,
        .n_skills = n_skills,
        .free_slots = r->slots,
        .n_free_slots = n_slots,
    };
    for (size_t i = 0; i < n_skills; i++)
        r->skills[i] = s_keep(self, in->skills[i]);
    for (size_t i = 0; i < n_slots; i++)
        r->slots[i] = s_keep(self, in->free_slots[i]);
    r->status = s_keep(self, status);
    return 0;
}

// ---------------------------------------------------------------- the final transaction

//  Refused rows: those C refused (in-file duplicates among them), then the
//  rest's duplicates in the database, found set-wise (joins, no per-row probes).
static const char s_find_bad[] =
    "INSERT INTO import_bad (line, code, field, message) "
    "SELECT line, code, coalesce(field, ''), message FROM import_stage WHERE code IS NOT NULL "
    "UNION ALL "
    "SELECT s.line, "
    "  CASE WHEN v.id IS NOT NULL THEN 'duplicate_id_number' ELSE 'phone_taken' END, "
    "  CASE WHEN v.id IS NOT NULL THEN 'id_number' ELSE 'phone' END, "
    "  CASE WHEN v.id IS NOT NULL THEN 'a volunteer with this id_number is registered already' "
    "       ELSE 'an account with this phone exists already' END "
    "FROM import_stage s "
    "LEFT JOIN volunteers v ON v.id_number_hash = s.id_number_hash "
    "LEFT JOIN accounts a ON a.phone_hash = s.phone_hash "
    "WHERE s.code IS NULL AND (v.id IS NOT NULL OR a.id IS NOT NULL)";

static const char s_insert_accounts[] =
    "INSERT INTO accounts (id, kind, name, phone_enc, phone_hash, password_hash, area, "
    "created_by, created_at) "
    "SELECT id, 'volunteer', name, phone_enc, phone_hash, $1, community, $2::bigint, "
    "timestamptz 'epoch' + $3::bigint * interval '1 millisecond' FROM import_stage";

static const char s_insert_volunteers[] =
    "INSERT INTO volunteers (id, community, id_number_enc, id_number_hash, gender, birth_year, "
    "political_status, skills, free_slots, status, source, verified_by, verified_at, "
    "created_at, updated_at) "
    "SELECT id, community, id_number_enc, id_number_hash, gender, birth_year, "
    "nullif(political_status, ''), skills::text[], free_slots::text[], status, 'import', "
    "CASE WHEN status = 'verified' THEN $1::bigint END, CASE WHEN status = 'verified' THEN t END, "
    "t, t FROM import_stage, "
    "(SELECT timestamptz 'epoch' + $2::bigint * interval '1 millisecond' AS t) t0";

//  Run one statement of the final transaction; *rows its row count, *state
//  its SQLSTATE on failure. 0 or -1.
static int
s_step(linli_pg_t *pg, const char *sql, int n, const char *const *params, int64_t *rows,
       char state[6])
{
    PGresult *res = linli_pg_exec_state(pg, sql, n, params, state);
    if (!res)
        return -1;
    if (rows)
        *rows = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

// ---------------------------------------------------------------- announcing

//  One volunteers.imported event being gathered: one community's entries,
//  each a packed VolunteerEvent behind its field-3 tag and length, so the
//  bytes are a VolunteersImported message without unpacking anything.
typedef struct {
    char community[16];
    uint8_t *entries; //  owned
    size_t len, cap;
    size_t n;
} s_batch_t;

static int
s_batch_add(s_batch_t *b, const uint8_t *data, size_t len)
{
    if (b->len + len + 16 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + len + 16)
            cap *= 2;
        uint8_t *entries = realloc(b->entries, cap);
        if (!entries) {
            linli_error("import: out of memory gathering the events of community %s", b->community);
            return -1;
        }
        b->entries = entries;
        b->cap = cap;
    }
    b->entries[b->len++] = (3 << 3) | 2; //  field 3, length-delimited
    for (size_t v = len;; v >>= 7) {
        b->entries[b->len++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    memcpy(b->entries + b->len, data, len);
    b->len += len;
    b->n++;
    return 0;
}

//  Append the gathered batch to the outbox and empty it. 0 or -1.
static int
s_batch_flush(registry_import_job_t *self, s_batch_t *b)
{
    char job[24], subject[40];
    snprintf(job, sizeof job, "%" PRId64, self->opts.job_id);
    snprintf(subject, sizeof subject, "import/%" PRId64, self->opts.job_id);
    Linli__Registry__VolunteersImported head = LINLI__REGISTRY__VOLUNTEERS_IMPORTED__INIT;
    head.community = b->community;
    head.job_id = job;
    size_t hlen = protobuf_c_message_get_packed_size(&head.base);
    uint8_t *data = malloc(hlen + b->len);
    if (!data) {
        linli_error("import: job %" PRId64 ": out of memory announcing community %s",
                    self->opts.job_id, b->community);
        return -1;
    }
    protobuf_c_message_pack(&head.base, data);
    memcpy(data + hlen, b->entries, b->len);
    char event_id[33];
    linli_event_new_id(event_id);
    Linli__Event ev = LINLI__EVENT__INIT;
    ev.id = event_id;
    ev.source = (char *)s_source;
    ev.type = (char *)s_type;
    ev.time_ms = self->t0_ms;
    ev.subject = subject;
    ev.area = b->community;
    ev.data_type = (char *)head.base.descriptor->name;
    ev.has_data = true;
    ev.data.data = data;
    ev.data.len = hlen + b->len;
    int rc = linli_outbox_append(self->pg, &ev);
    free(data);
    b->len = b->n = 0;
    return rc;
}

//  The staged volunteers, announced by community in events of at most
//  S_ANNOUNCE_MAX, inside the final transaction (a cursor over the staging
//  table, read in binary). 0 or -1 (state set when the server said why).
static int
s_announce(registry_import_job_t *self, char state[6])
{
    if (s_step(self->pg,
               "DECLARE import_announce NO SCROLL CURSOR FOR "
               "SELECT community, payload FROM import_stage ORDER BY community, id",
               0, NULL, NULL, state))
        return -1;
    PGconn *conn = linli_pg_conn(self->pg);
    if (!conn)
        return -1;
    char fetch[64];
    snprintf(fetch, sizeof fetch, "FETCH %d FROM import_announce", S_ANNOUNCE_FETCH);
    s_batch_t b = {.n = 0};
    int rc = 0;
    while (rc == 0) {
        PGresult *res = PQexecParams(conn, fetch, 0, NULL, NULL, NULL, NULL, 1);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            snprintf(state, 6, "%s", code ? code : "");
            linli_error("import: job %" PRId64 ": announcing failed: %s", self->opts.job_id,
                        PQerrorMessage(conn));
            PQclear(res);
            rc = -1;
            break;
        }
        int n = PQntuples(res);
        for (int i = 0; i < n && rc == 0; i++) {
            const char *community = PQgetvalue(res, i, 0);
            if (b.n && (b.n == S_ANNOUNCE_MAX || strcmp(community, b.community)))
                rc = s_batch_flush(self, &b);
            if (rc == 0 && b.n == 0)
                snprintf(b.community, sizeof b.community, "%s", community);
            if (rc == 0)
                rc = s_batch_add(&b, (const uint8_t *)PQgetvalue(res, i, 1),
                                 (size_t)PQgetlength(res, i, 1));
        }
        PQclear(res);
        if (n == 0)
            break;
    }
    if (rc == 0 && b.n)
        rc = s_batch_flush(self, &b);
    free(b.entries);
    if (rc == 0)
        rc = s_step(self->pg, "CLOSE import_announce", 0, NULL, NULL, state);
    return rc;
}

//  The foreign-key triggers' checks, once for the whole set, with their row
//  locks (FOR KEY SHARE: the areas and the creator cannot go away before
//  the commit); then the triggers are skipped until the inserts are done.
//  volunteers.id -> accounts holds by construction: both rows are written
//  here. 0, or -1 (state "23503" when a key is missing).
static int
s_check_keys(registry_import_job_t *self, const char *creator, char state[6])
{
    PGresult *res = linli_pg_exec_state(
        self->pg,
        "WITH c AS (SELECT DISTINCT community FROM import_stage), "
        "l AS (SELECT a.code FROM areas a JOIN c ON a.code = c.community FOR KEY SHARE OF a) "
        "SELECT (SELECT count(*) FROM c) = (SELECT count(*) FROM l)",
        0, NULL, state);
    bool ok = res && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (ok && creator) {
        const char *params[] = {creator};
        res = linli_pg_exec_state(self->pg,
                                  "SELECT 1 FROM accounts WHERE id = $1::bigint FOR KEY SHARE", 1,
                                  params, state);
        ok = res && PQntuples(res) == 1;
        PQclear(res);
    }
    if (!ok) {
        if (!*state)
            snprintf(state, 6, "23503");
        linli_error("import: job %" PRId64 ": a community or the creator is gone",
                    self->opts.job_id);
        return -1;
    }
    return s_step(self->pg, "SET LOCAL session_replication_role = replica", 0, NULL, NULL, state);
}

// ---------------------------------------------------------------- bulk mode

#define S_BULK_INDEXES 32

//  A secondary index of accounts or volunteers, as bulk mode rebuilds it.
typedef struct {
    char drop[256];  //  the statement that drops it
    char build[512]; //  the statement that builds it again
} s_index_t;

//  Bulk mode, before the inserts: drop the secondary indexes of accounts
//  and volunteers (unique ones as constraints), remembering how to build
//  them; *n how many. Dropping holds both tables ACCESS EXCLUSIVE until the
//  commit: reads and sign-ups wait. 0 or -1.
static int
s_bulk_drop(registry_import_job_t *self, s_index_t *ix, int *n, char state[6])
{
    *n = 0;
    PGresult *res = linli_pg_exec_state(
        self->pg,
        "SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, "
        "  coalesce(quote_ident(c.conname), ''), "
        "  CASE WHEN c.oid IS NULL THEN pg_get_indexdef(i.indexrelid) "
        "       ELSE pg_get_constraintdef(c.oid) END "
        "FROM pg_index i LEFT JOIN pg_constraint c "
        "  ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('u', 'x') "
        "WHERE i.indrelid IN ('accounts'::regclass, 'volunteers'::regclass) "
        "  AND NOT i.indisprimary ORDER BY 2",
        0, NULL, state);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    int rc = rows > S_BULK_INDEXES ? -1 : 0;
    for (int r = 0; rc == 0 && r < rows; r++) {
        const char *table = PQgetvalue(res, r, 0), *index = PQgetvalue(res, r, 1);
        const char *con = PQgetvalue(res, r, 2), *def = PQgetvalue(res, r, 3);
        s_index_t *x = &ix[*n];
        int a, b;
        if (*con) {
            a = snprintf(x->drop, sizeof x->drop, "ALTER TABLE %s DROP CONSTRAINT %s", table, con);
            b = snprintf(x->build, sizeof x->build, "ALTER TABLE %s ADD CONSTRAINT %s %s", table,
                         con, def);
        } else {
            a = snprintf(x->drop, sizeof x->drop, "DROP INDEX %s", index);
            b = snprintf(x->build, sizeof x->build, "%s", def);
        }
        if (a < 0 || (size_t)a >= sizeof x->drop || b < 0 || (size_t)b >= sizeof x->build)
            rc = -1;
        else
            (*n)++;
    }
    PQclear(res);
    if (rc) {
        linli_error("import: job %" PRId64 ": bulk mode cannot handle these indexes",
                    self->opts.job_id);
        return -1;
    }
    for (int i = 0; i < *n; i++)
        if (s_step(self->pg, ix[i].drop, 0, NULL, NULL, state))
            return -1;
    return 0;
}

//  Bulk mode, after the inserts: build every dropped index again (each one
//  sort; a unique one fails the transaction on a duplicate). 0 or -1.
static int
s_bulk_build(registry_import_job_t *self, const s_index_t *ix, int n, char state[6])
{
    if (s_step(self->pg, "SET LOCAL maintenance_work_mem = '512MB'", 0, NULL, NULL, state))
        return -1;
    for (int i = 0; i < n; i++)
        if (s_step(self->pg, ix[i].build, 0, NULL, NULL, state))
            return -1;
    return 0;
}

//  One try of the final transaction. 0, or -1 with state set ("23505": a
//  concurrent insert took a phone or ID number: try again).
static int
s_write(registry_import_job_t *self, registry_import_result_t *out, char state[6])
{
    char id[24], by[24], imported[24], rejected[24], total[24];
    snprintf(id, sizeof id, "%" PRId64, self->opts.job_id);
    snprintf(by, sizeof by, "%" PRId64, self->opts.created_by);
    const char *creator = self->opts.created_by > 0 ? by : NULL;
    state[0] = '\0';
    if (linli_pg_begin(self->pg))
        return -1;
    //  Imports write one at a time: each sees the others' volunteers.
    if (s_step(self->pg, "SELECT pg_advisory_xact_lock(hashtext('linli.registry.import.write'))", 0,
               NULL, NULL, state) ||
        s_step(self->pg, "SET LOCAL work_mem = '256MB'", 0, NULL, NULL, state) ||
        //  Compiling these one-off statements costs more than it saves.
        s_step(self->pg, "SET LOCAL jit = off", 0, NULL, NULL, state) ||
        s_step(self->pg, s_find_bad, 0, NULL, &out->rejected, state) ||
        s_step(self->pg, "ANALYZE import_bad", 0, NULL, NULL, state) ||
        s_step(self->pg, "DELETE FROM import_stage s USING import_bad b WHERE s.line = b.line", 0,
               NULL, NULL, state))
        return -1;
    if (self->opts.dry_run && s_step(self->pg, "SAVEPOINT dry_run", 0, NULL, NULL, state))
        return -1;
    if (self->set_wise_fk && s_check_keys(self, creator, state))
        return -1;
    s_index_t indexes[S_BULK_INDEXES];
    int n_indexes = 0;
    if (self->opts.bulk && s_bulk_drop(self, indexes, &n_indexes, state))
        return -1;
    const char *ap[] = {self->opts.password_hash, creator, self->t0};
    const char *vp[] = {creator, self->t0};
    if (s_step(self->pg, s_insert_accounts, 3, ap, &out->imported, state) ||
        s_step(self->pg, s_insert_volunteers, 2, vp, NULL, state) ||
        (self->opts.bulk && s_bulk_build(self, indexes, n_indexes, state)) ||
        s_announce(self, state))
        return -1;
    if (self->set_wise_fk &&
        s_step(self->pg, "SET LOCAL session_replication_role = origin", 0, NULL, NULL, state))
        return -1;
    if (self->opts.dry_run &&
        s_step(self->pg, "ROLLBACK TO SAVEPOINT dry_run", 0, NULL, NULL, state))
        return -1;
    snprintf(imported, sizeof imported, "%" PRId64, out->imported);
    snprintf(rejected, sizeof rejected, "%" PRId64, out->rejected);
    snprintf(total, sizeof total, "%" PRId64, self->rows);
    const char *ep[] = {id};
    const char *jp[] = {id, imported, rejected, total};
    int64_t done = 0;
    if (s_step(self->pg,
               "INSERT INTO import_errors (job_id, line, code, field, message) "
               "SELECT $1::bigint, line, code, field, message FROM import_bad",
               1, ep, NULL, state) ||
        s_step(self->pg,
               "UPDATE import_jobs SET status = 'done', phase = NULL, imported = $2::bigint, "
               "rejected = $3::bigint, total_rows = $4::bigint, processed_rows = $4::bigint, "
               "finished_at = clock_timestamp() WHERE id = $1::bigint AND status = 'running'",
               4, jp, &done, state) ||
        s_step(self->pg, "DELETE FROM import_files WHERE job_id = $1::bigint", 1, ep, NULL, state))
        return -1;
    if (done != 1) {
        linli_error("import: job %s is no longer running here; its work is dropped", id);
        return -1;
    }
    return linli_pg_commit(self->pg);
}

int
registry_import_job_commit(registry_import_job_t *self, registry_import_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (s_flush_pending(self))
        return -1;
    out->total = self->rows;
    if (s_copy_end(self, NULL))
        return -1;
    s_progress(self, "writing", self->rows);
    //  Temporary tables are never analysed automatically; the plan needs
    //  sizes and distinct counts, which a small sample gives.
    if (linli_pg_command(self->pg, "SET default_statistics_target = 10", 0, NULL) ||
        linli_pg_command(self->pg,
                         "ANALYZE import_stage (line, community, id_number_hash, phone_hash, code)",
                         0, NULL) ||
        linli_pg_command(self->pg, "RESET default_statistics_target", 0, NULL))
        return -1;
    for (int attempt = 1; attempt <= S_COMMIT_TRIES; attempt++) {
        char state[6];
        out->imported = out->rejected = 0;
        if (s_write(self, out, state) == 0)
            return 0; //  registry_import_job_destroy drops the temporary tables

        linli_pg_rollback(self->pg);
        //  A concurrent insert took a phone or ID number (23505), or a
        //  deadlock (40P01: bulk mode's lock upgrade): try again.
        if (strcmp(state, "23505") && strcmp(state, "40P01"))
            break;
        linli_warn("import: job %" PRId64 ": a concurrent change collided (%s); trying again",
                   self->opts.job_id, state);
    }
    return -1;
}
