//  registry_util: the small helpers every registry module shares.
#include "registry_util.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "linli_auth.h"
#include "linli_log.h"
#include "linli_outbox.h"

// ---------------------------------------------------------------- values

int64_t
registry_parse_id(const char *s)
{
    if (!s || !*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
        return 0;
    return strtoll(s, NULL, 10);
}

void
registry_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int64_t
registry_col_int64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int
registry_this_year(void)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    return tm.tm_year + 1900;
}

// ---------------------------------------------------------------- callers and areas

const char *
registry_staff_scope(const Linli__Caller *caller, int min_rank)
{
    const char *area = NULL;
    for (size_t i = 0; i < caller->n_grants; i++)
        if (linli_auth_rank(caller->grants[i]->role) >= min_rank &&
            (!area || strlen(caller->grants[i]->scope) < strlen(area)))
            area = caller->grants[i]->scope;
    return area;
}

int
registry_community_exists(registry_store_t *store, const char *code, bool *exists)
{
    registry_area_t area;
    bool found;
    if (registry_store_area_get(store, code, &area, &found))
        return -1;
    *exists = found && !strcmp(area.level, "community");
    return 0;
}

size_t
registry_grant_msgs(const registry_account_t *a, Linli__Grant *msgs, Linli__Grant **ptrs)
{
    for (size_t i = 0; i < a->n_grants; i++) {
        linli__grant__init(&msgs[i]);
        msgs[i].role = (char *)a->grants[i].role;
        msgs[i].scope = (char *)a->grants[i].scope;
        ptrs[i] = &msgs[i];
    }
    return a->n_grants;
}

// ---------------------------------------------------------------- events

int
registry_emit(linli_pg_t *pg, const char *type, const char *kind, int64_t id, const char *area,
              const ProtobufCMessage *data)
{
    char subject[48];
    snprintf(subject, sizeof subject, "%s/%" PRId64, kind, id);
    linli_event_t ev;
    if (linli_event_init(&ev, "/linli/registry", type, subject, area, data))
        return -1;
    int rc = linli_outbox_append(pg, &ev.event);
    linli_event_clear(&ev);
    return rc;
}

// ---------------------------------------------------------------- store rows

int
registry_get_row(linli_pg_t *pg, const char *sql, int nparams, const char *const *params,
                 registry_row_fn *from_row, void *out, bool *found)
{
    PGresult *res = linli_pg_exec(pg, sql, nparams, params);
    if (!res)
        return -1;
    *found = PQntuples(res) == 1;
    if (*found)
        from_row(res, 0, out);
    PQclear(res);
    return 0;
}

int
registry_get_one(linli_pg_t *pg, const char *sql, const char *param, registry_row_fn *from_row,
                 void *out, bool *found)
{
    const char *params[] = {param};
    return registry_get_row(pg, sql, 1, params, from_row, out, found);
}

int
registry_get_by_id(linli_pg_t *pg, const char *sql, int64_t id, registry_row_fn *from_row,
                   void *out, bool *found)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    return registry_get_one(pg, sql, idbuf, from_row, out, found);
}

int
registry_get_locked(linli_pg_t *pg, const char *table, const char *sql, int64_t id,
                    registry_row_fn *from_row, void *out, bool *found)
{
    char lock[128], idbuf[24];
    snprintf(lock, sizeof lock, "SELECT 1 FROM %s WHERE id = $1::bigint FOR UPDATE", table);
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    const char *params[] = {idbuf};
    bool exists = false;
    *found = false;
    if (registry_exists(pg, lock, 1, params, &exists))
        return -1;
    return exists ? registry_get_row(pg, sql, 1, params, from_row, out, found) : 0;
}

int
registry_exists(linli_pg_t *pg, const char *sql, int nparams, const char *const *params,
                bool *exists)
{
    PGresult *res = linli_pg_exec(pg, sql, nparams, params);
    if (!res)
        return -1;
    *exists = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

int
registry_get_int64(linli_pg_t *pg, const char *sql, int nparams, const char *const *params,
                   int64_t *value)
{
    PGresult *res = linli_pg_exec(pg, sql, nparams, params);
    if (!res)
        return -1;
    //  Row 0 of an empty result is NULL in libpq: never read it.
    int rc = PQntuples(res) > 0 && PQnfields(res) > 0 ? 0 : -1;
    if (rc == 0)
        *value = registry_col_int64(res, 0, 0);
    else
        linli_error("registry: a one-row query returned no row: %.80s", sql);
    PQclear(res);
    return rc;
}

int
registry_page_exec(linli_pg_t *pg, const char *sql, int nparams, const char *const *params,
                   registry_row_fn *from_row, void *out, size_t row_size, size_t max, size_t *n,
                   bool *more)
{
    *n = 0;
    *more = false;
    PGresult *res = linli_pg_exec(pg, sql, nparams, params);
    if (!res)
        return -1;
    size_t rows = (size_t)PQntuples(res);
    for (; *n < rows && *n < max; (*n)++)
        from_row(res, (int)*n, (char *)out + *n * row_size);
    *more = rows > max;
    PQclear(res);
    return 0;
}

int
registry_page_of(linli_pg_t *pg, const char *sql, int64_t owner, int64_t after,
                 registry_row_fn *from_row, void *out, size_t row_size, size_t max, size_t *n,
                 bool *more)
{
    char ownerbuf[24], afterbuf[24], limit[24];
    snprintf(ownerbuf, sizeof ownerbuf, "%" PRId64, owner);
    snprintf(afterbuf, sizeof afterbuf, "%" PRId64, after);
    snprintf(limit, sizeof limit, "%zu", max + 1);
    const char *params[] = {ownerbuf, afterbuf, limit};
    return registry_page_exec(pg, sql, 3, params, from_row, out, row_size, max, n, more);
}

// ---------------------------------------------------------------- keyset lists

int
registry_page_args(linli_request_t *request, protobuf_c_boolean has_limit, int32_t limit_in,
                   const char *cursor, size_t *limit, int64_t *after)
{
    *limit = REGISTRY_PAGE_DEFAULT;
    *after = 0;
    if (has_limit) {
        if (limit_in < 1 || limit_in > REGISTRY_PAGE_MAX) {
            linli_fail_field(request, 400, "out_of_range", "limit", "limit must be from 1 to %d",
                             REGISTRY_PAGE_MAX);
            return -1;
        }
        *limit = (size_t)limit_in;
    }
    if (cursor && !(*after = registry_parse_id(cursor))) {
        linli_fail_field(request, 400, "invalid_format", "cursor", "bad cursor");
        return -1;
    }
    return 0;
}

int
registry_page_alloc(registry_page_t *page, size_t limit, size_t row_size, size_t view_size)
{
    memset(page, 0, sizeof *page);
    page->rows = calloc(limit, row_size);
    page->views = calloc(limit, view_size);
    page->items = calloc(limit, sizeof *page->items);
    if (page->rows && page->views && page->items)
        return 0;
    registry_page_free(page);
    return -1;
}

int
registry_page_reply(registry_page_t *page, linli_request_t *request, ProtobufCMessage *reply,
                    const char *cursor)
{
    //  Every List…Reply has repeated items = 1 and next_cursor = 2: set them
    //  through the descriptor, so one function serves every list.
    const ProtobufCFieldDescriptor *items =
        protobuf_c_message_descriptor_get_field(reply->descriptor, 1);
    const ProtobufCFieldDescriptor *next =
        protobuf_c_message_descriptor_get_field(reply->descriptor, 2);
    assert(items && items->label == PROTOBUF_C_LABEL_REPEATED && next &&
           next->type == PROTOBUF_C_TYPE_STRING);
    *(size_t *)((char *)reply + items->quantifier_offset) = page->n;
    *(ProtobufCMessage ***)((char *)reply + items->offset) = page->items;
    if (page->more && page->n > 0)
        *(const char **)((char *)reply + next->offset) = cursor;
    return linli_reply(request, 200, reply);
}

void
registry_page_free(registry_page_t *page)
{
    free(page->items);
    free(page->views);
    free(page->rows);
    page->items = NULL;
    page->views = page->rows = NULL;
}

// ---------------------------------------------------------------- volunteer events

void
registry_volunteer_event_init(registry_volunteer_event_t *e, int64_t id, const char *community,
                              const char *status, const char *skills, const char *free_slots,
                              const char *actor, int64_t version)
{
    Linli__Registry__VolunteerEvent *m = &e->msg;
    linli__registry__volunteer_event__init(m);
    snprintf(e->id, sizeof e->id, "%" PRId64, id);
    m->id = e->id;
    m->community = (char *)community;
    m->status = (char *)status;
    m->n_skills = registry_tags_parse(skills, e->tag_buf[0], sizeof e->tag_buf[0], e->skills,
                                      REGISTRY_MAX_TAGS);
    m->skills = (char **)e->skills;
    m->n_free_slots = registry_tags_parse(free_slots, e->tag_buf[1], sizeof e->tag_buf[1], e->slots,
                                          REGISTRY_MAX_TAGS);
    m->free_slots = (char **)e->slots;
    m->actor = (char *)actor;
    m->has_version = true;
    m->version = version;
}
