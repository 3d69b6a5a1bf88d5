//  registry_store: the registry's SQL and its in-memory area tree.
#include "registry_store.h"
#include "registry_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "linli_log.h"

struct registry_store_t {
    linli_pg_t *pg;              //  borrowed
    registry_area_t *areas;      //  owned, sorted by code
    size_t n_areas;              //  entries in areas
    registry_area_t **by_parent; //  owned array of pointers into areas, sorted by (parent, code)
};

registry_store_t *
registry_store_new(linli_pg_t *pg)
{
    registry_store_t *self = calloc(1, sizeof *self);
    if (self)
        self->pg = pg;
    return self;
}

void
registry_store_destroy(registry_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->areas);
    free((*self_p)->by_parent);
    free(*self_p);
    *self_p = NULL;
}

// ---------------------------------------------------------------- areas

static int
s_cmp_code(const void *a, const void *b)
{
    return strcmp(((const registry_area_t *)a)->code, ((const registry_area_t *)b)->code);
}

static int
s_cmp_parent(const void *a, const void *b)
{
    const registry_area_t *x = *(registry_area_t *const *)a;
    const registry_area_t *y = *(registry_area_t *const *)b;
    int c = strcmp(x->parent, y->parent);
    return c ? c : strcmp(x->code, y->code);
}

static void
s_area_from_row(PGresult *res, int row, void *out)
{
    registry_area_t *a = out;
    memset(a, 0, sizeof *a);
    registry_copy(a->code, sizeof a->code, PQgetvalue(res, row, 0));
    registry_copy(a->name, sizeof a->name, PQgetvalue(res, row, 1));
    registry_copy(a->level, sizeof a->level, PQgetvalue(res, row, 2));
    registry_copy(a->parent, sizeof a->parent, PQgetvalue(res, row, 3));
    if (!PQgetisnull(res, row, 4) && !PQgetisnull(res, row, 5)) {
        a->has_center = true;
        a->lat = strtod(PQgetvalue(res, row, 4), NULL);
        a->lng = strtod(PQgetvalue(res, row, 5), NULL);
    }
    a->children = atoi(PQgetvalue(res, row, 6));
}

#define S_AREA_COLUMNS                                                                             \
    "a.code, a.name, a.level, coalesce(a.parent, ''), a.lat, a.lng, "                              \
    "(SELECT count(*) FROM areas c WHERE c.parent = a.code)"

int
registry_store_areas_reload(registry_store_t *self)
{
    PGresult *res =
        linli_pg_exec(self->pg, "SELECT " S_AREA_COLUMNS " FROM areas a ORDER BY a.code", 0, NULL);
    if (!res)
        return -1;
    size_t n = (size_t)PQntuples(res);
    registry_area_t *areas = calloc(n ? n : 1, sizeof *areas);
    registry_area_t **by_parent = calloc(n ? n : 1, sizeof *by_parent);
    if (!areas || !by_parent) {
        linli_error("registry: out of memory loading %zu areas", n);
        free(areas);
        free(by_parent);
        PQclear(res);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        s_area_from_row(res, (int)i, &areas[i]);
    PQclear(res);
    qsort(areas, n, sizeof *areas, s_cmp_code); //  byte order, whatever the collation
    for (size_t i = 0; i < n; i++)
        by_parent[i] = &areas[i];
    qsort(by_parent, n, sizeof *by_parent, s_cmp_parent);
    free(self->areas);
    free(self->by_parent);
    self->areas = areas;
    self->by_parent = by_parent;
    self->n_areas = n;
    return 0;
}

int
registry_store_ensure_city(registry_store_t *self, const char *code, const char *name)
{
    const char *params[] = {code, name};
    return linli_pg_command(self->pg,
                            "INSERT INTO areas (code, name, level) VALUES ($1, $2, 'city') "
                            "ON CONFLICT (code) DO NOTHING",
                            2, params);
}

int
registry_store_area_get(registry_store_t *self, const char *code, registry_area_t *out, bool *found)
{
    registry_area_t key;
    registry_copy(key.code, sizeof key.code, code);
    registry_area_t *hit =
        self->n_areas ? bsearch(&key, self->areas, self->n_areas, sizeof *self->areas, s_cmp_code)
                      : NULL;
    if (hit) {
        *out = *hit;
        *found = true;
        return 0;
    }
    //  Not in memory: added since the last reload, or absent. Ask the truth.
    return registry_get_one(self->pg, "SELECT " S_AREA_COLUMNS " FROM areas a WHERE a.code = $1",
                            code, s_area_from_row, out, found);
}

int
registry_store_area_children(registry_store_t *self, const char *parent, const char *after,
                             registry_area_t *out, size_t max, size_t *n, bool *more)
{
    if (self->n_areas == 0) {
        //  Nothing loaded yet: answer from PostgreSQL.
        char limit[16];
        snprintf(limit, sizeof limit, "%zu", max + 1);
        const char *params[] = {parent, after, limit};
        return registry_page_exec(self->pg,
                                  "SELECT " S_AREA_COLUMNS " FROM areas a "
                                  "WHERE coalesce(a.parent, '') = $1 AND a.code > $2 "
                                  "ORDER BY a.code COLLATE \"C\" LIMIT $3::int",
                                  3, params, s_area_from_row, out, sizeof *out, max, n, more);
    }
    *n = 0;
    *more = false;
    //  Lower bound of (parent, after) in the (parent, code) order.
    size_t lo = 0, hi = self->n_areas;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const registry_area_t *a = self->by_parent[mid];
        int c = strcmp(a->parent, parent);
        if (c == 0)
            c = strcmp(a->code, after);
        if (c <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < self->n_areas && !strcmp(self->by_parent[i]->parent, parent); i++) {
        if (*n == max) {
            *more = true;
            break;
        }
        out[(*n)++] = *self->by_parent[i];
    }
    return 0;
}

// ---------------------------------------------------------------- accounts

#define S_ACCOUNT_COLUMNS                                                                          \
    "a.id, a.kind, a.name, a.phone_enc, a.password_hash, a.area, a.status, "                       \
    "(extract(epoch from a.created_at) * 1000)::bigint, "                                          \
    "coalesce((SELECT string_agg(g.role || ' ' || g.scope, ',' ORDER BY g.role, g.scope) "         \
    "FROM grants g WHERE g.account_id = a.id), ''), "                                              \
    "coalesce((SELECT v.status FROM volunteers v WHERE v.id = a.id), '')"

static void
s_account_from_row(PGresult *res, int row, void *out)
{
    registry_account_t *a = out;
    memset(a, 0, sizeof *a);
    a->id = registry_col_int64(res, row, 0);
    registry_copy(a->kind, sizeof a->kind, PQgetvalue(res, row, 1));
    registry_copy(a->name, sizeof a->name, PQgetvalue(res, row, 2));
    registry_copy(a->phone_enc, sizeof a->phone_enc, PQgetvalue(res, row, 3));
    registry_copy(a->password_hash, sizeof a->password_hash, PQgetvalue(res, row, 4));
    registry_copy(a->area, sizeof a->area, PQgetvalue(res, row, 5));
    registry_copy(a->status, sizeof a->status, PQgetvalue(res, row, 6));
    a->created_at_ms = registry_col_int64(res, row, 7);
    registry_copy(a->volunteer_status, sizeof a->volunteer_status, PQgetvalue(res, row, 9));
    //  "role scope,role scope": roles and scopes never hold ' ' or ','.
    const char *p = PQgetvalue(res, row, 8);
    while (*p && a->n_grants < REGISTRY_MAX_GRANTS) {
        registry_grant_t *g = &a->grants[a->n_grants++];
        size_t r = strcspn(p, " ");
        snprintf(g->role, sizeof g->role, "%.*s", (int)r, p);
        p += r + (p[r] ? 1 : 0);
        size_t s = strcspn(p, ",");
        snprintf(g->scope, sizeof g->scope, "%.*s", (int)s, p);
        p += s + (p[s] ? 1 : 0);
    }
}

int
registry_store_account_by_phone(registry_store_t *self, const char *phone_hash,
                                registry_account_t *out, bool *found)
{
    return registry_get_one(self->pg,
                            "SELECT " S_ACCOUNT_COLUMNS " FROM accounts a WHERE a.phone_hash = $1",
                            phone_hash, s_account_from_row, out, found);
}

int
registry_store_account_get(registry_store_t *self, int64_t id, registry_account_t *out, bool *found)
{
    return registry_get_by_id(
        self->pg, "SELECT " S_ACCOUNT_COLUMNS " FROM accounts a WHERE a.id = $1::bigint", id,
        s_account_from_row, out, found);
}

int
registry_store_account_lock(registry_store_t *self, int64_t id, registry_account_t *out,
                            bool *found)
{
    return registry_get_locked(self->pg, "accounts",
                               "SELECT " S_ACCOUNT_COLUMNS
                               " FROM accounts a WHERE a.id = $1::bigint",
                               id, s_account_from_row, out, found);
}

int
registry_store_account_set_status(registry_store_t *self, int64_t id, const char *status)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    const char *params[] = {idbuf, status};
    return linli_pg_command(self->pg, "UPDATE accounts SET status = $2 WHERE id = $1::bigint", 2,
                            params);
}

//  An account's grants, inserted (inside the caller's open transaction).
static int
s_grants_insert(registry_store_t *self, const registry_account_t *account)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, account->id);
    for (size_t i = 0; i < account->n_grants; i++) {
        const char *gp[] = {idbuf, account->grants[i].role, account->grants[i].scope};
        if (linli_pg_command(self->pg,
                             "INSERT INTO grants (account_id, role, scope) "
                             "VALUES ($1::bigint, $2, $3) ON CONFLICT DO NOTHING",
                             3, gp))
            return -1;
    }
    return 0;
}

int
registry_store_account_set_grants(registry_store_t *self, const registry_account_t *account)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, account->id);
    const char *params[] = {idbuf, account->area};
    if (linli_pg_command(self->pg, "DELETE FROM grants WHERE account_id = $1::bigint", 1, params) ||
        linli_pg_command(self->pg, "UPDATE accounts SET area = $2 WHERE id = $1::bigint", 2,
                         params))
        return -1;
    return s_grants_insert(self, account);
}

int
registry_store_account_insert(registry_store_t *self, registry_account_t *account,
                              const char *phone_hash, int64_t created_by, bool *taken)
{
    *taken = false;
    char by[24];
    snprintf(by, sizeof by, "%" PRId64, created_by);
    const char *params[] = {
        account->kind,          account->name, account->phone_enc,        phone_hash,
        account->password_hash, account->area, created_by > 0 ? by : NULL};
    PGresult *res = linli_pg_exec(
        self->pg,
        "INSERT INTO accounts (kind, name, phone_enc, phone_hash, password_hash, area, "
        "created_by) VALUES ($1, $2, $3, $4, $5, $6, $7::bigint) "
        "ON CONFLICT (phone_hash) DO NOTHING "
        "RETURNING id, (extract(epoch from created_at) * 1000)::bigint",
        7, params);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        *taken = true;
        PQclear(res);
        return 0;
    }
    account->id = registry_col_int64(res, 0, 0);
    account->created_at_ms = registry_col_int64(res, 0, 1);
    snprintf(account->status, sizeof account->status, "active");
    PQclear(res);
    return s_grants_insert(self, account);
}

int
registry_store_staff_list(registry_store_t *self, const char *prefix, int64_t after,
                          registry_account_t *out, size_t max, size_t *n, bool *more)
{
    char afterbuf[24], limit[16];
    snprintf(afterbuf, sizeof afterbuf, "%" PRId64, after);
    snprintf(limit, sizeof limit, "%zu", max + 1);
    const char *params[] = {prefix, afterbuf, limit};
    //  Keyset pagination on id: stable while rows are inserted.
    return registry_page_exec(self->pg,
                              "SELECT " S_ACCOUNT_COLUMNS " FROM accounts a "
                              "WHERE a.kind = 'staff' AND a.area LIKE $1 || '%' "
                              "AND a.id > $2::bigint ORDER BY a.id LIMIT $3::int",
                              3, params, s_account_from_row, out, sizeof *out, max, n, more);
}

// ---------------------------------------------------------------- demo city

//  Wuhan's 13 districts (real codes and names, approximate centres); streets
//  and communities are generated: ≈ 169 streets, ≈ 3,300 communities.
static const char *s_demo_sql[] = {
    "INSERT INTO areas (code, name, level, parent, lat, lng) VALUES "
    "('4201', '武汉市', 'city', NULL, 30.5928, 114.3055) "
    "ON CONFLICT (code) DO UPDATE SET lat = EXCLUDED.lat, lng = EXCLUDED.lng",

    "INSERT INTO areas (code, name, level, parent, lat, lng) "
    "SELECT d.code, d.name, 'district', '4201', d.lat, d.lng FROM (VALUES "
    "('420102', '江岸区', 30.600, 114.309), ('420103', '江汉区', 30.601, 114.270), "
    "('420104', '硚口区', 30.582, 114.215), ('420105', '汉阳区', 30.554, 114.218), "
    "('420106', '武昌区', 30.553, 114.316), ('420107', '青山区', 30.640, 114.385), "
    "('420111', '洪山区', 30.500, 114.344), ('420112', '东西湖区', 30.620, 114.137), "
    "('420113', '汉南区', 30.309, 114.084), ('420114', '蔡甸区', 30.582, 114.029), "
    "('420115', '江夏区', 30.375, 114.321), ('420116', '黄陂区', 30.882, 114.375), "
    "('420117', '新洲区', 30.841, 114.801)) AS d(code, name, lat, lng) "
    "ON CONFLICT (code) DO NOTHING",

    //  Streets per district roughly as in the city (5 to 17).
    "INSERT INTO areas (code, name, level, parent, lat, lng) "
    "SELECT d.code || lpad(s::text, 3, '0'), d.name || '第' || s || '街道', 'street', d.code, "
    "d.lat + ((s * 37) % 11 - 5) * 0.006, d.lng + ((s * 53) % 13 - 6) * 0.006 "
    "FROM areas d, generate_series(1, CASE d.code "
    "WHEN '420102' THEN 16 WHEN '420103' THEN 13 WHEN '420104' THEN 11 WHEN '420105' THEN 11 "
    "WHEN '420106' THEN 14 WHEN '420107' THEN 10 WHEN '420111' THEN 17 WHEN '420112' THEN 12 "
    "WHEN '420113' THEN 5 WHEN '420114' THEN 12 WHEN '420115' THEN 17 WHEN '420116' THEN 16 "
    "ELSE 15 END) AS s "
    "WHERE d.level = 'district' AND d.parent = '4201' ON CONFLICT (code) DO NOTHING",

    //  12 to 27 communities per street: ≈ 3,300 in all.
    "INSERT INTO areas (code, name, level, parent, lat, lng) "
    "SELECT st.code || lpad(c::text, 3, '0'), st.name || '第' || c || '社区', 'community', "
    "st.code, st.lat + ((c * 29) % 9 - 4) * 0.0015, st.lng + ((c * 31) % 7 - 3) * 0.0015 "
    "FROM areas st, generate_series(1, 12 + (substr(st.code, 5, 2)::int * 7 "
    "+ right(st.code, 3)::int * 13) % 16) AS c "
    "WHERE st.level = 'street' AND st.code LIKE '4201%' ON CONFLICT (code) DO NOTHING",
    NULL,
};

int
registry_store_load_demo_areas(registry_store_t *self)
{
    if (linli_pg_begin(self->pg))
        return -1;
    for (size_t i = 0; s_demo_sql[i]; i++) {
        if (linli_pg_command(self->pg, s_demo_sql[i], 0, NULL)) {
            linli_pg_rollback(self->pg);
            return -1;
        }
    }
    if (linli_pg_commit(self->pg))
        return -1;
    return registry_store_areas_reload(self);
}

// ---------------------------------------------------------------- password codes

int
registry_store_password_code_put(registry_store_t *self, int64_t account_id, const char *code_hash,
                                 int64_t issued_by, int ttl_s, int64_t *expires_at_ms)
{
    char id[24], by[24], ttl[16];
    snprintf(id, sizeof id, "%" PRId64, account_id);
    snprintf(by, sizeof by, "%" PRId64, issued_by);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *params[] = {id, code_hash, issued_by > 0 ? by : NULL, ttl};
    return registry_get_int64(
        self->pg,
        "INSERT INTO password_codes (account_id, code_hash, issued_by, expires_at) "
        "VALUES ($1::bigint, $2, $3::bigint, now() + $4::int * interval '1 second') "
        "ON CONFLICT (account_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, "
        "issued_by = EXCLUDED.issued_by, expires_at = EXCLUDED.expires_at, attempts = 0, "
        "created_at = now() "
        "RETURNING (extract(epoch FROM expires_at) * 1000)::bigint",
        4, params, expires_at_ms);
}

int
registry_store_password_code_use(registry_store_t *self, int64_t account_id, const char *code_hash,
                                 int max_tries, char *(*hash_fn)(void *arg), void *arg,
                                 registry_code_outcome_t *outcome)
{
    *outcome = REGISTRY_CODE_NONE;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, account_id);
    const char *params[] = {id};
    PGresult *res = linli_pg_exec(self->pg,
                                  "SELECT c.code_hash, c.attempts FROM password_codes c "
                                  "JOIN accounts a ON a.id = c.account_id "
                                  "WHERE c.account_id = $1::bigint AND c.expires_at > now() "
                                  "AND a.status = 'active' FOR UPDATE OF c",
                                  1, params);
    if (!res)
        return -1;
    bool live = PQntuples(res) == 1;
    bool match = live && strlen(PQgetvalue(res, 0, 0)) == strlen(code_hash) &&
                 sodium_memcmp(PQgetvalue(res, 0, 0), code_hash, strlen(code_hash)) == 0;
    int attempts = live ? atoi(PQgetvalue(res, 0, 1)) : 0;
    PQclear(res);
    if (!live)
        return 0;
    if (!match) {
        *outcome = REGISTRY_CODE_WRONG;
        return attempts + 1 >= max_tries
                   ? linli_pg_command(self->pg,
                                      "DELETE FROM password_codes WHERE account_id = $1::bigint", 1,
                                      params)
                   : linli_pg_command(self->pg,
                                      "UPDATE password_codes SET attempts = attempts + 1 "
                                      "WHERE account_id = $1::bigint",
                                      1, params);
    }
    char *hash = hash_fn(arg);
    if (!hash)
        linli_error("registry: the new password of account %s could not be hashed", id);
    const char *up[] = {id, hash};
    int rc = hash ? linli_pg_command(self->pg,
                                     "UPDATE accounts SET password_hash = $2 WHERE id = $1::bigint",
                                     2, up)
                  : -1;
    if (rc == 0)
        rc = linli_pg_command(self->pg, "DELETE FROM password_codes WHERE account_id = $1::bigint",
                              1, params);
    if (hash) {
        sodium_memzero(hash, strlen(hash));
        free(hash);
    }
    if (rc == 0)
        *outcome = REGISTRY_CODE_OK;
    return rc;
}
