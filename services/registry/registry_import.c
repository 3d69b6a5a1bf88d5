//  registry_import: the import methods, the CSV job (two passes over the
//  file), the runner actor and the import-volunteers tool.
#include "registry_import.h"
#include "registry_util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "linli/registry_import.pb-c.h"
#include "linli_auth.h"
#include "linli_idem.h"
#include "linli_log.h"
#include "registry_csv.h"
#include "registry_store.h"

#define S_MAX_FIELD 4096          //  bytes per CSV field
#define S_MAX_ROW 16384           //  bytes per CSV row
#define S_POLL_MS 1000            //  an idle runner looks for jobs this often
#define S_CHECK_STOP_EVERY 100000 //  rows of the structure check between stop checks
#define S_CLI_ERRORS 20           //  row errors the tool prints

//  Milliseconds on the monotonic clock.
static int64_t
s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------- the CSV job

//  The columns, in the order of s_col_t.
typedef enum {
    C_NAME,
    C_ID_NUMBER,
    C_PHONE,
    C_COMMUNITY,
    C_GENDER,
    C_POLITICAL_STATUS,
    C_SKILLS,
    C_FREE_SLOTS,
    C_STATUS,
    C_COUNT,
} s_col_t;

static const struct {
    const char *name; //  the header cell, exactly
    bool required;    //  a header without it is refused
} s_columns[C_COUNT] = {
    {"name", true},      {"id_number", true},   {"phone", true},
    {"community", true}, {"gender", false},     {"political_status", false},
    {"skills", false},   {"free_slots", false}, {"status", false},
};

//  One pass over the file.
typedef struct {
    registry_import_job_t *job; //  borrowed; NULL in the checking pass
    int col[C_COUNT];           //  field index of each column, -1 when absent
    size_t n_header;            //  fields of the header row
    bool header_seen;
    int64_t rows;     //  data rows so far
    int64_t max_rows; //  more is a job error
    int (*should_stop)(void *arg);
    void *stop_arg;
    bool stopped;        //  should_stop said so
    bool engine_failed;  //  the job could not go on (store trouble)
    char error_code[32]; //  a job-level error found by the pass ("" when none)
    char error[256];
    int64_t error_line;
    char scratch[S_MAX_ROW + C_COUNT + 64]; //  the row's trimmed values
} s_pass_t;

static bool
s_space(char c)
{
    return c == ' ' || c == '\t';
}

//  Copy value (len bytes) into *p without surrounding blanks; the copy, NUL-terminated.
static char *
s_trim_into(char **p, const char *value, size_t len)
{
    while (len > 0 && s_space(*value))
        value++, len--;
    while (len > 0 && s_space(value[len - 1]))
        len--;
    char *out = *p;
    memcpy(out, value, len);
    out[len] = '\0';
    *p += len + 1;
    return out;
}

//  Cut a ';'-separated list in place into at most max items (blanks trimmed,
//  empty items dropped). Returns the count; max + 1 items signal too many.
static size_t
s_split(char *list, const char **items, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ";", &save); tok && n <= max;
         tok = strtok_r(NULL, ";", &save)) {
        while (s_space(*tok))
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && s_space(tok[len - 1]))
            tok[--len] = '\0';
        if (len)
            items[n++] = tok;
    }
    return n;
}

//  Record a job-level error found by a pass; returns 1 (stop the parser).
static int s_job_error(s_pass_t *pass, const char *code, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
s_job_error(s_pass_t *pass, const char *code, int64_t line, const char *fmt, ...)
{
    snprintf(pass->error_code, sizeof pass->error_code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pass->error, sizeof pass->error, fmt, ap);
    va_end(ap);
    pass->error_line = line;
    return 1;
}

//  True for what may be echoed as a column name: never a person's data.
static bool
s_looks_like_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 32 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") == n;
}

//  The header row: map each known column, refuse unknown and repeated ones.
static int
s_on_header(s_pass_t *pass, const registry_csv_row_t *row)
{
    pass->header_seen = true;
    pass->n_header = row->n_fields;
    for (size_t c = 0; c < C_COUNT; c++)
        pass->col[c] = -1;
    char *p = pass->scratch;
    for (size_t i = 0; i < row->n_fields; i++) {
        p = pass->scratch;
        const char *name = s_trim_into(&p, row->fields[i], row->lens[i]);
        if (!*name)
            continue; //  an empty cell (a trailing comma): a column ignored
        size_t c = 0;
        while (c < C_COUNT && strcmp(name, s_columns[c].name))
            c++;
        if (c == C_COUNT) {
            if (s_looks_like_name(name))
                return s_job_error(pass, "bad_header", row->line,
                                   "unknown column \"%s\" in the header (columns: name, "
                                   "id_number, phone, community, gender, political_status, "
                                   "skills, free_slots, status)",
                                   name);
            //  Not echoed: a file without a header row begins with a person's data.
            return s_job_error(pass, "bad_header", row->line,
                               "the first row must be the header: name, id_number, phone, "
                               "community and optional columns");
        }
        if (pass->col[c] >= 0)
            return s_job_error(pass, "bad_header", row->line,
                               "column \"%s\" appears twice in the header", s_columns[c].name);
        pass->col[c] = (int)i;
    }
    for (size_t c = 0; c < C_COUNT; c++)
        if (s_columns[c].required && pass->col[c] < 0)
            return s_job_error(pass, "bad_header", row->line,
                               "the header has no column \"%s\" (required: name, id_number, "
                               "phone, community)",
                               s_columns[c].name);
    return 0;
}

//  Checking pass: the header, the row count, the structure (the parser).
static int
s_on_check(void *arg, const registry_csv_row_t *row)
{
    s_pass_t *pass = (s_pass_t *)arg;
    if (row->number == 1)
        return s_on_header(pass, row);
    if (++pass->rows > pass->max_rows)
        return s_job_error(pass, "too_many_rows", row->line,
                           "the file has more than %" PRId64 " rows; split it", pass->max_rows);
    if (pass->rows % S_CHECK_STOP_EVERY == 0 && pass->should_stop &&
        pass->should_stop(pass->stop_arg)) {
        pass->stopped = true;
        return 1;
    }
    return 0;
}

//  Staging pass: every data row to the job.
static int
s_on_stage(void *arg, const registry_csv_row_t *row)
{
    s_pass_t *pass = (s_pass_t *)arg;
    if (row->number == 1)
        return 0;
    int rc;
    if (row->n_fields != pass->n_header) {
        char message[160];
        snprintf(message, sizeof message, "the row has %zu fields, the header %zu", row->n_fields,
                 pass->n_header);
        rc = registry_import_job_reject(pass->job, row->line, "wrong_columns", "", message);
    } else {
        char *p = pass->scratch;
        char *v[C_COUNT];
        for (size_t c = 0; c < C_COUNT; c++) {
            int i = pass->col[c];
            v[c] = i >= 0 ? s_trim_into(&p, row->fields[i], row->lens[i]) : NULL;
        }
        const char *skills[REGISTRY_MAX_TAGS + 1], *slots[REGISTRY_MAX_TAGS + 1];
        registry_person_input_t in = {
            .name = v[C_NAME],
            .id_number = v[C_ID_NUMBER],
            .phone = v[C_PHONE],
            .community = v[C_COMMUNITY],
            .gender = v[C_GENDER],
            .political_status = v[C_POLITICAL_STATUS],
            .skills = skills,
            .n_skills = v[C_SKILLS] ? s_split(v[C_SKILLS], skills, REGISTRY_MAX_TAGS) : 0,
            .free_slots = slots,
            .n_free_slots =
                v[C_FREE_SLOTS] ? s_split(v[C_FREE_SLOTS], slots, REGISTRY_MAX_TAGS) : 0,
        };
        rc = registry_import_job_add(pass->job, row->line, &in, v[C_STATUS]);
    }
    if (rc) {
        pass->stopped = registry_import_job_stopped(pass->job);
        pass->engine_failed = !pass->stopped;
        return 1;
    }
    return 0;
}

//  Parse data[len] with on_row. The parser's status.
static registry_csv_status_t
s_parse(s_pass_t *pass, registry_csv_row_fn *on_row, const char *data, size_t len, int64_t *line)
{
    registry_csv_t *csv = registry_csv_new(S_MAX_FIELD, S_MAX_ROW, on_row, pass);
    if (!csv)
        return REGISTRY_CSV_NO_MEMORY;
    registry_csv_status_t st = registry_csv_feed(csv, data, len);
    if (st == REGISTRY_CSV_OK)
        st = registry_csv_finish(csv);
    *line = registry_csv_error_line(csv);
    registry_csv_destroy(&csv);
    return st;
}

int
registry_import_run_csv(linli_pg_t *pg, linli_pg_t *side, const registry_import_row_t *job,
                        const char *data, size_t len, int64_t max_rows, bool bulk,
                        int (*should_stop)(void *arg), void *stop_arg,
                        registry_import_outcome_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t started = s_mono_ms();
    s_pass_t *pass = calloc(1, sizeof *pass);
    if (!pass)
        return -1;
    pass->max_rows = max_rows;
    pass->should_stop = should_stop;
    pass->stop_arg = stop_arg;

    //  1. The whole file's structure first: a broken file writes nothing.
    int64_t line = 0;
    registry_csv_status_t st = s_parse(pass, s_on_check, data, len, &line);
    if (st == REGISTRY_CSV_STOPPED && pass->stopped) {
        free(pass);
        return -1;
    }
    if (st == REGISTRY_CSV_NO_MEMORY) {
        linli_error("import: job %" PRId64 ": out of memory", job->id);
        free(pass);
        return -1;
    }
    if (st != REGISTRY_CSV_OK && st != REGISTRY_CSV_STOPPED) {
        snprintf(pass->error_code, sizeof pass->error_code, "%s", registry_csv_status_code(st));
        snprintf(pass->error, sizeof pass->error, "%s", registry_csv_status_text(st));
        pass->error_line = line;
    } else if (st == REGISTRY_CSV_OK && !pass->header_seen) {
        snprintf(pass->error_code, sizeof pass->error_code, "empty_file");
        snprintf(pass->error, sizeof pass->error,
                 "the file is empty: it needs a header row and the volunteers' rows");
    }
    if (*pass->error_code) {
        out->failed = true;
        snprintf(out->error_code, sizeof out->error_code, "%s", pass->error_code);
        snprintf(out->error, sizeof out->error, "%s", pass->error);
        out->error_line = pass->error_line;
        out->seconds = (double)(s_mono_ms() - started) / 1000.0;
        free(pass);
        linli_info("import: job %" PRId64 " failed: %s at line %" PRId64, job->id, out->error_code,
                   out->error_line);
        return registry_import_store_fail(pg, job->id, out->error_code, out->error,
                                          out->error_line);
    }

    //  2. Every row checked, sealed and staged; then one transaction.
    char actor[24];
    snprintf(actor, sizeof actor, "%" PRId64, job->created_by);
    registry_import_opts_t opts = {
        .job_id = job->id,
        .grants = job->grants,
        .created_by = job->created_by,
        .actor = job->created_by > 0 ? actor : "import",
        .password_hash = NULL, //  imported people log in after a reset (SMS) later
        .dry_run = job->dry_run,
        .bulk = bulk,
        .should_stop = should_stop,
        .stop_arg = stop_arg,
    };
    int64_t rows = pass->rows;
    pass->rows = 0;
    pass->job = registry_import_job_new(pg, side, &opts);
    if (!pass->job) {
        free(pass);
        return -1;
    }
    registry_import_job_expect(pass->job, rows);
    st = s_parse(pass, s_on_stage, data, len, &line);
    int rc = -1;
    if (st == REGISTRY_CSV_OK)
        rc = registry_import_job_commit(pass->job, &out->result);
    else if (!pass->stopped)
        linli_error("import: job %" PRId64 ": staging stopped (%s)", job->id,
                    pass->engine_failed ? "store trouble" : registry_csv_status_code(st));
    registry_import_job_destroy(&pass->job);
    free(pass);
    out->seconds = (double)(s_mono_ms() - started) / 1000.0;
    if (rc)
        return -1;
    registry_import_store_release(pg, job->id);
    linli_info("import: job %" PRId64 " done%s: %" PRId64 " rows, %" PRId64 " imported, %" PRId64
               " rejected in %.1f s",
               job->id, job->dry_run ? " (dry run)" : "", out->result.total, out->result.imported,
               out->result.rejected, out->seconds);
    return 0;
}

// ---------------------------------------------------------------- methods

//  Room for an ImportJob message and what it borrows.
typedef struct {
    Linli__Registry__ImportJob job;
    char id[24];
    char created_by[24];
    Linli__Registry__ImportRowError *items; //  owned
    Linli__Registry__ImportRowError **ptrs; //  owned
} s_job_view_t;

//  Fill view from row and its errors (borrowed: they must outlive the view).
//  0 or -1 (out of memory).
static int
s_job_view(const registry_import_row_t *row, const registry_import_error_t *errors, size_t n,
           s_job_view_t *v)
{
    memset(v, 0, sizeof *v);
    Linli__Registry__ImportJob *m = &v->job;
    linli__registry__import_job__init(m);
    snprintf(v->id, sizeof v->id, "%" PRId64, row->id);
    m->id = v->id;
    m->status = (char *)row->status;
    if (*row->phase)
        m->phase = (char *)row->phase;
    m->has_dry_run = true;
    m->dry_run = row->dry_run;
    if (*row->error_code) {
        m->error_code = (char *)row->error_code;
        m->error = (char *)row->error;
    }
    if (row->error_line > 0) {
        m->has_error_line = true;
        m->error_line = row->error_line;
    }
    m->has_total_rows = m->has_processed_rows = m->has_imported = m->has_rejected = true;
    m->total_rows = row->total_rows;
    m->processed_rows = row->processed_rows;
    m->imported = row->imported;
    m->rejected = row->rejected;
    if (row->created_by > 0) {
        snprintf(v->created_by, sizeof v->created_by, "%" PRId64, row->created_by);
        m->created_by = v->created_by;
    }
    m->has_created_at = true;
    m->created_at = row->created_at_ms;
    if (row->started_at_ms) {
        m->has_started_at = true;
        m->started_at = row->started_at_ms;
    }
    if (row->finished_at_ms) {
        m->has_finished_at = true;
        m->finished_at = row->finished_at_ms;
    }
    if (n == 0)
        return 0;
    v->items = calloc(n, sizeof *v->items);
    v->ptrs = calloc(n, sizeof *v->ptrs);
    if (!v->items || !v->ptrs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        Linli__Registry__ImportRowError *e = &v->items[i];
        linli__registry__import_row_error__init(e);
        e->line = errors[i].line;
        e->code = (char *)errors[i].code;
        if (*errors[i].field)
            e->field = (char *)errors[i].field;
        e->message = (char *)errors[i].message;
        v->ptrs[i] = e;
    }
    m->n_errors = n;
    m->errors = v->ptrs;
    return 0;
}

static void
s_job_view_free(s_job_view_t *v)
{
    free(v->items);
    free(v->ptrs);
}

//  The caller's grants as "role scope,role scope" (roles and scopes never
//  hold ' ' or ',': the constraints table checks them).
static void
s_grants_text(const Linli__Caller *caller, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < caller->n_grants; i++) {
        const Linli__Grant *g = caller->grants[i];
        int w = snprintf(out + len, cap - len, "%s%s %s", len ? "," : "", g->role, g->scope);
        if (w < 0 || (size_t)w >= cap - len) {
            out[len] = '\0';
            break;
        }
        len += (size_t)w;
    }
}

//  registry.ImportVolunteers: queue a CSV file (the raw HTTP body) as an
//  import job for the runners; answers 202 with the queued job at once.
static int
s_import_volunteers(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__ImportVolunteersRequest *req =
        (const Linli__Registry__ImportVolunteersRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    bool staff = registry_staff_scope(caller, 1) != NULL;
    int64_t created_by = registry_parse_id(caller->user_id);
    if (!staff || !created_by)
        return linli_fail(request, 403, "forbidden", "only staff import volunteers");
    if (!req->has_csv || req->csv.len == 0)
        return linli_fail_field(request, 400, "missing_field", "csv",
                                "the request body must be the CSV file");
    char grants[1024];
    s_grants_text(caller, grants, sizeof grants);

    linli_idem_t idem;
    if (linli_idem_begin(self->pg, request, &idem) != LINLI_IDEM_NEW)
        return 0; //  replayed, or answered already
    registry_import_row_t row;
    if (registry_import_store_queue(self->pg, created_by, grants, req->has_dry_run && req->dry_run,
                                    req->csv.data, req->csv.len, &row))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the import could not be queued");
    s_job_view_t view;
    s_job_view(&row, NULL, 0, &view);
    linli_info("import: job %" PRId64 " queued (%zu bytes)", row.id, req->csv.len);
    return linli_idem_commit(&idem, request, 202, &view.job.base);
}

//  registry.GetImport: a job with its progress and first row errors; only
//  its creator and city admins see it, anyone else gets 404.
static int
s_get_import(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__GetImportRequest *req = (const Linli__Registry__GetImportRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    int64_t id = registry_parse_id(req->id);
    registry_import_error_t *errors = calloc(REGISTRY_IMPORT_ERRORS_SHOWN, sizeof *errors);
    if (!errors)
        return linli_fail(request, 503, "overloaded", "out of memory");
    registry_import_row_t row;
    size_t n = 0;
    bool found = false;
    int rc;
    if (id && registry_import_store_get(self->pg, id, &row, errors, REGISTRY_IMPORT_ERRORS_SHOWN,
                                        &n, &found)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else if (!found ||
               !((row.created_by > 0 && row.created_by == registry_parse_id(caller->user_id)) ||
                 linli_auth_has_role(caller, LINLI_ROLE_CITY_ADMIN))) {
        rc = linli_fail(request, 404, "import_not_found", "no such import");
    } else {
        s_job_view_t view;
        if (s_job_view(&row, errors, n, &view))
            rc = linli_fail(request, 503, "overloaded", "out of memory");
        else
            rc = linli_reply(request, 200, &view.job.base);
        s_job_view_free(&view);
    }
    free(errors);
    return rc;
}

#define IMP(name) &linli__registry__##name##__descriptor

const linli_route_t registry_import_routes[] = {
    {"registry.ImportVolunteers", IMP(import_volunteers_request), s_import_volunteers},
    {"registry.GetImport", IMP(get_import_request), s_get_import},
    {NULL, NULL, NULL},
};

// ---------------------------------------------------------------- runner

typedef struct {
    zsock_t *pipe;    //  borrowed: the actor's pipe
    linli_pg_t *pg;   //  owned: the job's session
    linli_pg_t *side; //  owned: progress, id blocks
    char runner[96];  //  host:pid, recorded on claimed jobs
    int64_t max_rows; //  LINLI_IMPORT_MAX_ROWS
    bool terminated;  //  $TERM received
} s_runner_t;

//  Read what the pipe holds without waiting; true once $TERM came.
static int
s_runner_should_stop(void *arg)
{
    s_runner_t *self = (s_runner_t *)arg;
    while (!self->terminated && (zsock_events(self->pipe) & ZMQ_POLLIN)) {
        char *command = zstr_recv(self->pipe);
        self->terminated = !command || !strcmp(command, "$TERM");
        zstr_free(&command);
    }
    return self->terminated || zsys_interrupted;
}

//  Claim and run one job; true when there was one.
static bool
s_runner_step(s_runner_t *self)
{
    registry_import_row_t job;
    bool found = false;
    if (registry_import_store_claim(self->pg, self->runner, &job, &found) || !found)
        return false;
    linli_info("import: job %" PRId64 " claimed (attempt %d)", job.id, job.attempts);
    PGresult *file = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    bool have = false;
    if (registry_import_store_file(self->pg, job.id, &file, &data, &len, &have)) {
        registry_import_store_release(self->pg, job.id);
        return true;
    }
    if (!have) {
        //  A CLI job whose process died: its file was never stored.
        registry_import_store_fail(self->pg, job.id, "interrupted",
                                   "the import stopped and its file is not stored (an "
                                   "import-volunteers run?); run it again",
                                   0);
    } else {
        registry_import_outcome_t out;
        if (registry_import_run_csv(self->pg, self->side, &job, (const char *)data, len,
                                    self->max_rows, false, s_runner_should_stop, self, &out)) {
            if (self->terminated || zsys_interrupted) {
                linli_info("import: job %" PRId64 " put back in the queue (stopping)", job.id);
                registry_import_store_requeue(self->pg, job.id);
            } else {
                registry_import_store_release(self->pg, job.id);
            }
        }
    }
    PQclear(file);
    return true;
}

void
registry_import_actor(zsock_t *pipe, void *args)
{
    const linli_config_t *config = (const linli_config_t *)args;
    s_runner_t self;
    memset(&self, 0, sizeof self);
    self.pipe = pipe;
    const char *dsn = linli_config_str(config, "LINLI_PG_DSN");
    self.pg = linli_pg_new(dsn, "registry", REGISTRY_IMPORT_TIMEOUT_MS);
    self.side = linli_pg_new(dsn, "registry",
                             (int)linli_config_int(config, "LINLI_PG_STATEMENT_TIMEOUT_MS"));
    self.max_rows = linli_config_int(config, "LINLI_IMPORT_MAX_ROWS");
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(self.runner, sizeof self.runner, "%s:%d", host, (int)getpid());
    zsock_signal(pipe, 0);
    zpoller_t *poller = self.pg && self.side ? zpoller_new(pipe, NULL) : NULL;
    if (!poller)
        linli_error("import: the runner could not start; no imports run in this process");
    bool busy = false;
    while (poller && !self.terminated) {
        //  Straight on after a job (there may be more), else wait a while.
        void *which = zpoller_wait(poller, busy ? 0 : S_POLL_MS);
        if (which == pipe || zpoller_terminated(poller)) {
            s_runner_should_stop(&self);
            if (zpoller_terminated(poller))
                break;
            continue;
        }
        busy = s_runner_step(&self);
    }
    zpoller_destroy(&poller);
    linli_pg_destroy(&self.side);
    linli_pg_destroy(&self.pg);
}

// ---------------------------------------------------------------- tool

int
registry_import_tool(registry_t *reg, const linli_config_t *config, int argc, char **argv)
{
    const char *path = NULL;
    bool city_admin = false, dry_run = false, bulk = false, bad = false;
    int64_t as = 0;
    for (int i = 0; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--as-city-admin"))
            city_admin = true;
        else if (!strcmp(argv[i], "--dry-run"))
            dry_run = true;
        else if (!strcmp(argv[i], "--bulk"))
            bulk = true;
        else if (!strcmp(argv[i], "--as") && i + 1 < argc)
            as = registry_parse_id(argv[++i]);
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            bad = true;
    }
    //  Exactly one of --as-city-admin and --as: whose scope, said explicitly.
    if (bad || !path || city_admin == (as > 0)) {
        fprintf(stderr, "usage: linli-registry import-volunteers FILE (--as-city-admin | --as "
                        "ACCOUNT_ID) [--dry-run] [--bulk]\n"
                        "  --bulk  rebuild the indexes after the load instead of updating them "
                        "row by row:\n"
                        "          faster for a city's migration, but volunteers and accounts are "
                        "locked\n"
                        "          (no reads, no sign-ups) until it commits\n");
        return -1;
    }
    //  Whose scope the rows must fall in, and who is recorded as their creator.
    char grants[1024];
    if (city_admin) {
        snprintf(grants, sizeof grants, "%s %s", LINLI_ROLE_CITY_ADMIN,
                 linli_config_str(config, "LINLI_CITY_CODE"));
    } else {
        registry_account_t account;
        bool found;
        if (registry_store_account_get(reg->store, as, &account, &found))
            return -1;
        if (!found || strcmp(account.kind, "staff")) {
            fprintf(stderr, "import-volunteers: account %" PRId64 " is not a staff account\n", as);
            return -1;
        }
        size_t len = 0;
        grants[0] = '\0';
        for (size_t i = 0; i < account.n_grants && len < sizeof grants - 64; i++)
            len += (size_t)snprintf(grants + len, sizeof grants - len, "%s%s %s", len ? "," : "",
                                    account.grants[i].role, account.grants[i].scope);
    }
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "import-volunteers: cannot read %s\n", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = (size_t)sb.st_size;
    //  Mapped, not read: a city's file of 3.4 million rows is ~400 MB.
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (len && map == MAP_FAILED) {
        fprintf(stderr, "import-volunteers: cannot map %s\n", path);
        return -1;
    }
    if (len)
        madvise(map, len, MADV_SEQUENTIAL);

    const char *dsn = linli_config_str(config, "LINLI_PG_DSN");
    linli_pg_t *pg = linli_pg_new(dsn, "registry", REGISTRY_IMPORT_TIMEOUT_MS);
    linli_pg_t *side = linli_pg_new(dsn, "registry", REGISTRY_IMPORT_TIMEOUT_MS);
    registry_import_row_t job;
    registry_import_outcome_t out;
    int rc = -1;
    if (pg && side &&
        registry_import_store_start(pg, "volunteers", as, grants, dry_run, &job) == 0) {
        if (registry_import_run_csv(pg, side, &job, len ? (const char *)map : "", len,
                                    linli_config_int(config, "LINLI_IMPORT_MAX_ROWS"), bulk, NULL,
                                    NULL, &out)) {
            registry_import_store_fail(pg, job.id, "interrupted",
                                       "the import could not finish (see the log)", 0);
            fprintf(stderr, "import-volunteers: job %" PRId64 " could not finish\n", job.id);
        } else if (out.failed) {
            printf("job %" PRId64 " failed: %s: %s", job.id, out.error_code, out.error);
            if (out.error_line)
                printf(" (line %" PRId64 ")", out.error_line);
            printf("\n");
        } else {
            double rate = out.seconds > 0 ? (double)out.result.total / out.seconds : 0;
            printf("job %" PRId64 " done%s: %" PRId64 " rows, %" PRId64 " imported, %" PRId64
                   " rejected in %.2f s (%.0f rows/s)\n",
                   job.id, dry_run ? " (dry run: nothing written)" : "", out.result.total,
                   out.result.imported, out.result.rejected, out.seconds, rate);
            registry_import_error_t errors[S_CLI_ERRORS];
            registry_import_row_t row;
            size_t n = 0;
            bool found;
            if (out.result.rejected &&
                registry_import_store_get(pg, job.id, &row, errors, S_CLI_ERRORS, &n, &found) == 0)
                for (size_t i = 0; i < n; i++)
                    printf("  line %" PRId64 ": %s%s%s%s: %s\n", errors[i].line, errors[i].code,
                           *errors[i].field ? " (" : "", errors[i].field,
                           *errors[i].field ? ")" : "", errors[i].message);
            if (out.result.rejected > (int64_t)n)
                printf("  … %" PRId64 " more: GET /v1/imports/%" PRId64 " as a city admin\n",
                       out.result.rejected - (int64_t)n, job.id);
            rc = 0;
        }
    }
    linli_pg_destroy(&side);
    linli_pg_destroy(&pg);
    if (len)
        munmap(map, len);
    return rc;
}
