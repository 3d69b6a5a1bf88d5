//  registry_residents_store: residents in PostgreSQL.
#include "registry_residents_store.h"
#include "registry_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A timestamptz column as Unix milliseconds.
#define S_MS(col) "(extract(epoch from " col ") * 1000)::bigint"

#define S_RESIDENT_COLUMNS                                                                         \
    "r.id, coalesce(r.account_id, 0), r.name, r.community, coalesce(r.address_enc, ''), "          \
    "coalesce(r.phone_enc, ''), coalesce(r.phone_hash, ''), array_to_string(r.care_categories, "   \
    "','), r.consent, coalesce(r.family_contacts_enc, ''), coalesce(r.birth_year, 0), " S_MS(      \
        "r.created_at") ", " S_MS("r.updated_at")

//  The same without the address and family contacts (lists).
#define S_RESIDENT_BRIEF_COLUMNS                                                                   \
    "r.id, coalesce(r.account_id, 0), r.name, r.community, '', "                                   \
    "coalesce(r.phone_enc, ''), coalesce(r.phone_hash, ''), array_to_string(r.care_categories, "   \
    "','), r.consent, '', coalesce(r.birth_year, 0), " S_MS("r.created_at") ", " S_MS(             \
        "r.updated_at")

static void
s_from_row(PGresult *res, int row, void *out)
{
    registry_resident_t *r = out;
    memset(r, 0, sizeof *r);
    r->id = registry_col_int64(res, row, 0);
    r->account_id = registry_col_int64(res, row, 1);
    registry_copy(r->name, sizeof r->name, PQgetvalue(res, row, 2));
    registry_copy(r->community, sizeof r->community, PQgetvalue(res, row, 3));
    registry_copy(r->address_enc, sizeof r->address_enc, PQgetvalue(res, row, 4));
    registry_copy(r->phone_enc, sizeof r->phone_enc, PQgetvalue(res, row, 5));
    registry_copy(r->phone_hash, sizeof r->phone_hash, PQgetvalue(res, row, 6));
    //  "a,b": categories are identifiers (a CHECK keeps them so).
    const char *p = PQgetvalue(res, row, 7);
    while (*p && r->n_categories < REGISTRY_RESIDENT_MAX_CATEGORIES) {
        size_t len = strcspn(p, ",");
        snprintf(r->categories[r->n_categories++], sizeof r->categories[0], "%.*s", (int)len, p);
        p += len + (p[len] ? 1 : 0);
    }
    r->consent = !strcmp(PQgetvalue(res, row, 8), "t");
    registry_copy(r->family_enc, sizeof r->family_enc, PQgetvalue(res, row, 9));
    r->birth_year = atoi(PQgetvalue(res, row, 10));
    r->created_at_ms = registry_col_int64(res, row, 11);
    r->updated_at_ms = registry_col_int64(res, row, 12);
}

//  The categories as an array literal "{a,b}" (identifiers: nothing to quote).
static void
s_array(const registry_resident_t *r, char *out, size_t cap)
{
    size_t used = (size_t)snprintf(out, cap, "{");
    for (size_t i = 0; i < r->n_categories && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", r->categories[i]);
    if (used < cap)
        snprintf(out + used, cap - used, "}");
}

//  NULL for "" (SQL NULL), else s.
static const char *
s_null(const char *s)
{
    return *s ? s : NULL;
}

int
registry_residents_store_insert(linli_pg_t *pg, registry_resident_t *r, int64_t created_by)
{
    char account[24], birth[16], by[24], categories[200];
    snprintf(account, sizeof account, "%" PRId64, r->account_id);
    snprintf(birth, sizeof birth, "%d", r->birth_year);
    snprintf(by, sizeof by, "%" PRId64, created_by);
    s_array(r, categories, sizeof categories);
    const char *params[] = {r->account_id ? account : NULL,
                            r->name,
                            r->community,
                            s_null(r->address_enc),
                            s_null(r->phone_enc),
                            s_null(r->phone_hash),
                            categories,
                            r->consent ? "t" : "f",
                            s_null(r->family_enc),
                            r->birth_year ? birth : NULL,
                            created_by > 0 ? by : NULL};
    PGresult *res = linli_pg_exec(
        pg,
        "INSERT INTO residents (account_id, name, community, address_enc, phone_enc, phone_hash, "
        "care_categories, consent, family_contacts_enc, birth_year, created_by) "
        "VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::text[], $8::boolean, $9, $10::int, "
        "$11::bigint) RETURNING id, " S_MS("created_at") ", " S_MS("updated_at"),
        11, params);
    if (!res)
        return -1;
    r->id = registry_col_int64(res, 0, 0);
    r->created_at_ms = registry_col_int64(res, 0, 1);
    r->updated_at_ms = registry_col_int64(res, 0, 2);
    PQclear(res);
    return 0;
}

int
registry_residents_store_get(linli_pg_t *pg, int64_t id, bool for_update, registry_resident_t *out,
                             bool *found)
{
    return registry_get_by_id(pg,
                              for_update ? "SELECT " S_RESIDENT_COLUMNS
                                           " FROM residents r WHERE r.id = $1::bigint FOR UPDATE"
                                         : "SELECT " S_RESIDENT_COLUMNS
                                           " FROM residents r WHERE r.id = $1::bigint",
                              id, s_from_row, out, found);
}

int
registry_residents_store_update(linli_pg_t *pg, registry_resident_t *r)
{
    char id[24], birth[16], categories[200];
    snprintf(id, sizeof id, "%" PRId64, r->id);
    snprintf(birth, sizeof birth, "%d", r->birth_year);
    s_array(r, categories, sizeof categories);
    const char *params[] = {id,
                            r->name,
                            r->community,
                            s_null(r->address_enc),
                            s_null(r->phone_enc),
                            s_null(r->phone_hash),
                            categories,
                            s_null(r->family_enc),
                            r->birth_year ? birth : NULL};
    return registry_get_int64(pg,
                              "UPDATE residents SET name = $2, community = $3, "
                              "address_enc = $4, phone_enc = $5, phone_hash = $6, "
                              "care_categories = $7::text[], family_contacts_enc = $8, "
                              "birth_year = $9::int, updated_at = now() "
                              "WHERE id = $1::bigint RETURNING " S_MS("updated_at"),
                              9, params, &r->updated_at_ms);
}

int
registry_residents_store_list(linli_pg_t *pg, const char *prefix, const char *category,
                              int64_t after, registry_resident_t *out, size_t max, size_t *n,
                              bool *more)
{
    char afterbuf[24], limit[16];
    snprintf(afterbuf, sizeof afterbuf, "%" PRId64, after);
    snprintf(limit, sizeof limit, "%zu", max + 1);
    const char *params[] = {prefix, category ? category : "", afterbuf, limit};
    //  Keyset pagination on id. Area codes are digits only (checked by the
    //  codec), so LIKE sees no wildcard.
    return registry_page_exec(pg,
                              "SELECT " S_RESIDENT_BRIEF_COLUMNS " FROM residents r "
                              "WHERE r.community LIKE $1 || '%' "
                              "AND ($2 = '' OR r.care_categories @> ARRAY[$2::text]) "
                              "AND r.id > $3::bigint ORDER BY r.id LIMIT $4::int",
                              4, params, s_from_row, out, sizeof *out, max, n, more);
}

int
registry_residents_store_account_sync(linli_pg_t *pg, int64_t account_id, const char *name,
                                      const char *phone_enc, const char *phone_hash,
                                      const char *community, bool *taken)
{
    *taken = false;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, account_id);
    const char *check[] = {id, phone_hash};
    //  Asked first so a taken phone is an answer, not a failed statement
    //  (the unique index still guards a race).
    if (registry_exists(pg, "SELECT 1 FROM accounts WHERE phone_hash = $2 AND id <> $1::bigint", 2,
                        check, taken))
        return -1;
    if (*taken)
        return 0;
    const char *params[] = {id, name, phone_enc, phone_hash, community};
    if (linli_pg_command(pg,
                         "UPDATE accounts SET name = $2, phone_enc = $3, phone_hash = $4, "
                         "area = $5 WHERE id = $1::bigint",
                         5, params))
        return -1;
    const char *grant[] = {id, community};
    return linli_pg_command(pg,
                            "UPDATE grants SET scope = $2 "
                            "WHERE account_id = $1::bigint AND role = 'resident'",
                            2, grant);
}
