//  registry_volunteers_store: the SQL of volunteers.
#include "registry_volunteers_store.h"
#include "registry_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_log.h"

#define S_COLUMNS                                                                                  \
    "v.id, a.name, v.community, v.id_number_enc, a.phone_enc, coalesce(v.gender, ''), "            \
    "coalesce(v.birth_year, 0), coalesce(v.political_status, ''), v.skills::text, "                \
    "v.free_slots::text, v.status, v.source, "                                                     \
    "coalesce((extract(epoch from v.verified_at) * 1000)::bigint, 0), "                            \
    "(extract(epoch from v.created_at) * 1000)::bigint, "                                          \
    "(extract(epoch from v.updated_at) * 1000)::bigint"

static void
s_from_row(PGresult *res, int row, void *out)
{
    registry_volunteer_t *v = out;
    memset(v, 0, sizeof *v);
    v->id = registry_col_int64(res, row, 0);
    registry_copy(v->name, sizeof v->name, PQgetvalue(res, row, 1));
    registry_copy(v->community, sizeof v->community, PQgetvalue(res, row, 2));
    registry_copy(v->id_number_enc, sizeof v->id_number_enc, PQgetvalue(res, row, 3));
    registry_copy(v->phone_enc, sizeof v->phone_enc, PQgetvalue(res, row, 4));
    registry_copy(v->gender, sizeof v->gender, PQgetvalue(res, row, 5));
    v->birth_year = atoi(PQgetvalue(res, row, 6));
    registry_copy(v->political_status, sizeof v->political_status, PQgetvalue(res, row, 7));
    registry_copy(v->skills, sizeof v->skills, PQgetvalue(res, row, 8));
    registry_copy(v->free_slots, sizeof v->free_slots, PQgetvalue(res, row, 9));
    registry_copy(v->status, sizeof v->status, PQgetvalue(res, row, 10));
    registry_copy(v->source, sizeof v->source, PQgetvalue(res, row, 11));
    v->verified_at_ms = registry_col_int64(res, row, 12);
    v->created_at_ms = registry_col_int64(res, row, 13);
    v->updated_at_ms = registry_col_int64(res, row, 14);
}

int
registry_volunteer_get(linli_pg_t *pg, int64_t id, bool lock, registry_volunteer_t *out,
                       bool *found)
{
    static const char sql[] = "SELECT " S_COLUMNS " FROM volunteers v "
                              "JOIN accounts a ON a.id = v.id WHERE v.id = $1::bigint";
    return lock ? registry_get_locked(pg, "volunteers", sql, id, s_from_row, out, found)
                : registry_get_by_id(pg, sql, id, s_from_row, out, found);
}

int
registry_volunteer_get_many(linli_pg_t *pg, const int64_t *ids, size_t n, registry_volunteer_t *out,
                            size_t *found)
{
    *found = 0;
    char *list = linli_pg_int64_array(ids, n);
    if (!list) {
        linli_error("registry: out of memory reading %zu volunteers", n);
        return -1;
    }
    const char *params[] = {list};
    PGresult *res = linli_pg_exec(pg,
                                  "SELECT " S_COLUMNS " FROM volunteers v "
                                  "JOIN accounts a ON a.id = v.id WHERE v.id = ANY($1::bigint[])",
                                  1, params);
    free(list);
    if (!res)
        return -1;
    size_t rows = (size_t)PQntuples(res);
    for (size_t i = 0; i < rows && i < n; i++)
        s_from_row(res, (int)i, &out[(*found)++]);
    PQclear(res);
    return 0;
}

int
registry_volunteer_insert(linli_pg_t *pg, const registry_person_t *p, const char *password_hash,
                          const char *source, int64_t created_by, registry_volunteer_t *out,
                          registry_vol_outcome_t *outcome)
{
    *outcome = REGISTRY_VOL_OK;
    //  The person first: a second registration of the same ID number is the
    //  more useful answer than a phone clash.
    const char *hp[] = {p->id_number_hash};
    bool dup;
    if (registry_exists(pg, "SELECT 1 FROM volunteers WHERE id_number_hash = $1", 1, hp, &dup))
        return -1;
    if (dup) {
        *outcome = REGISTRY_VOL_DUP_ID_NUMBER;
        return 0;
    }
    char by[24];
    snprintf(by, sizeof by, "%" PRId64, created_by);
    const char *ap[] = {p->name,       p->phone_enc, p->phone_hash,
                        password_hash, p->community, created_by > 0 ? by : NULL};
    PGresult *res =
        linli_pg_exec(pg,
                      "INSERT INTO accounts (kind, name, phone_enc, phone_hash, password_hash, "
                      "area, created_by) VALUES ('volunteer', $1, $2, $3, $4, $5, $6::bigint) "
                      "ON CONFLICT (phone_hash) DO NOTHING RETURNING id",
                      6, ap);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        *outcome = REGISTRY_VOL_DUP_PHONE;
        return 0;
    }
    char id[24];
    registry_copy(id, sizeof id, PQgetvalue(res, 0, 0));
    PQclear(res);
    char year[16];
    snprintf(year, sizeof year, "%d", p->birth_year);
    const char *vp[] = {id,
                        p->community,
                        p->id_number_enc,
                        p->id_number_hash,
                        p->gender,
                        year,
                        *p->political_status ? p->political_status : NULL,
                        p->skills,
                        p->free_slots,
                        source};
    //  A concurrent registration of the same person loses here (unique hash).
    char state[6] = "";
    res =
        linli_pg_exec_state(pg,
                            "INSERT INTO volunteers (id, community, id_number_enc, "
                            "id_number_hash, gender, birth_year, political_status, skills, "
                            "free_slots, source) VALUES ($1::bigint, $2, $3, $4, $5, $6::int, $7, "
                            "$8::text[], $9::text[], $10)",
                            10, vp, state);
    if (!res) {
        if (!strcmp(state, "23505")) {
            *outcome = REGISTRY_VOL_DUP_ID_NUMBER;
            return 0;
        }
        return -1;
    }
    PQclear(res);
    bool found;
    if (registry_volunteer_get(pg, strtoll(id, NULL, 10), false, out, &found) || !found)
        return -1;
    return 0;
}

int
registry_volunteer_save(linli_pg_t *pg, registry_volunteer_t *v)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, v->id);
    const char *params[] = {
        id,        v->community,  *v->political_status ? v->political_status : NULL,
        v->skills, v->free_slots, v->name};
    return registry_get_int64(pg,
                              "WITH acc AS (UPDATE accounts SET name = $6, area = $2 "
                              "WHERE id = $1::bigint) "
                              "UPDATE volunteers SET community = $2, political_status = $3, "
                              "skills = $4::text[], free_slots = $5::text[], "
                              "updated_at = greatest(now(), updated_at + interval '1 ms') "
                              "WHERE id = $1::bigint "
                              "RETURNING (extract(epoch from updated_at) * 1000)::bigint",
                              6, params, &v->updated_at_ms);
}

int
registry_volunteer_set_status(linli_pg_t *pg, registry_volunteer_t *v, const char *status,
                              int64_t actor, const char *reason)
{
    char id[24], by[24];
    snprintf(id, sizeof id, "%" PRId64, v->id);
    snprintf(by, sizeof by, "%" PRId64, actor);
    const char *log[] = {id, v->status, status, reason, actor > 0 ? by : NULL};
    if (linli_pg_command(pg,
                         "INSERT INTO volunteer_status_log (volunteer_id, from_status, to_status, "
                         "reason, actor) VALUES ($1::bigint, $2, $3, $4, $5::bigint)",
                         5, log))
        return -1;
    const char *params[] = {id, status, actor > 0 ? by : NULL};
    //  updated_at strictly grows: it is the version consumers compare.
    PGresult *res = linli_pg_exec(
        pg,
        "UPDATE volunteers SET status = $2, "
        "verified_by = CASE WHEN $2 = 'verified' THEN $3::bigint ELSE verified_by END, "
        "verified_at = CASE WHEN $2 = 'verified' THEN now() ELSE verified_at END, "
        "updated_at = greatest(now(), updated_at + interval '1 ms') WHERE id = $1::bigint "
        "RETURNING (extract(epoch from updated_at) * 1000)::bigint, "
        "coalesce((extract(epoch from verified_at) * 1000)::bigint, 0)",
        3, params);
    if (!res)
        return -1;
    int rc = PQntuples(res) == 1 ? 0 : -1;
    if (!rc) {
        v->updated_at_ms = registry_col_int64(res, 0, 0);
        v->verified_at_ms = registry_col_int64(res, 0, 1);
        snprintf(v->status, sizeof v->status, "%s", status);
    }
    PQclear(res);
    return rc;
}

int
registry_volunteer_list(linli_pg_t *pg, const registry_volunteer_filter_t *f, int64_t after,
                        registry_volunteer_t *out, size_t max, size_t *n, bool *more)
{
    char afterbuf[24], limit[16];
    snprintf(afterbuf, sizeof afterbuf, "%" PRId64, after);
    snprintf(limit, sizeof limit, "%zu", max + 1);
    //  LIKE metacharacters in a typed name are literal.
    char prefix[300] = "";
    if (f->name_prefix) {
        size_t j = 0;
        for (const char *c = f->name_prefix; *c && j + 3 < sizeof prefix; c++) {
            if (*c == '%' || *c == '_' || *c == '\\')
                prefix[j++] = '\\';
            prefix[j++] = *c;
        }
        prefix[j] = '\0';
    }
    const char *params[] = {f->area,       afterbuf,  limit,
                            f->skill,      f->status, f->name_prefix ? prefix : NULL,
                            f->phone_hash, f->id_hash};
    //  Keyset pagination on id: rows inserted meanwhile get higher ids, so a
    //  page boundary never moves.
    return registry_page_exec(pg,
                              "SELECT " S_COLUMNS
                              " FROM volunteers v JOIN accounts a ON a.id = v.id "
                              "WHERE v.community LIKE $1 || '%' AND v.id > $2::bigint "
                              "AND ($4::text IS NULL OR v.skills @> ARRAY[$4::text]) "
                              "AND ($5::text IS NULL OR v.status = $5) "
                              "AND ($6::text IS NULL OR a.name LIKE $6 || '%') "
                              "AND ($7::text IS NULL OR a.phone_hash = $7) "
                              "AND ($8::text IS NULL OR v.id_number_hash = $8) "
                              "ORDER BY v.id LIMIT $3::int",
                              8, params, s_from_row, out, sizeof *out, max, n, more);
}

//  A status change from the columns of registry_volunteer_status_log.
static void
s_change_from_row(PGresult *res, int row, void *out)
{
    registry_status_change_t *c = out;
    memset(c, 0, sizeof *c);
    c->id = registry_col_int64(res, row, 0);
    registry_copy(c->from_status, sizeof c->from_status, PQgetvalue(res, row, 1));
    registry_copy(c->to_status, sizeof c->to_status, PQgetvalue(res, row, 2));
    c->has_reason = !PQgetisnull(res, row, 3);
    registry_copy(c->reason, sizeof c->reason, PQgetvalue(res, row, 3));
    c->actor = registry_col_int64(res, row, 4);
    c->changed_at_ms = registry_col_int64(res, row, 5);
}

int
registry_volunteer_status_log(linli_pg_t *pg, int64_t volunteer, int64_t after,
                              registry_status_change_t *out, size_t max, size_t *n, bool *more)
{
    return registry_page_of(pg,
                            "SELECT id, from_status, to_status, reason, coalesce(actor, 0), "
                            "(extract(epoch from changed_at) * 1000)::bigint "
                            "FROM volunteer_status_log WHERE volunteer_id = $1::bigint "
                            "AND id > $2::bigint ORDER BY id LIMIT $3::int",
                            volunteer, after, s_change_from_row, out, sizeof *out, max, n, more);
}

int
registry_volunteer_led_by(linli_pg_t *pg, int64_t volunteer, int64_t leader, bool *led)
{
    char vid[24], lid[24];
    snprintf(vid, sizeof vid, "%" PRId64, volunteer);
    snprintf(lid, sizeof lid, "%" PRId64, leader);
    const char *params[] = {vid, lid};
    return registry_exists(pg,
                           "SELECT 1 FROM org_members m JOIN organizations o "
                           "ON o.id = m.org_id WHERE m.account_id = $1::bigint "
                           "AND o.leader_id = $2::bigint AND o.status = 'active' LIMIT 1",
                           2, params, led);
}
