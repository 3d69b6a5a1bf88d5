//  registry_orgs_store: organisations, teams and members in PostgreSQL.
#include "registry_orgs_store.h"
#include "registry_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A timestamptz column as Unix milliseconds.
#define S_MS(col) "(extract(epoch from " col ") * 1000)::bigint"

#define S_ORG_COLUMNS                                                                              \
    "o.id, o.name, o.area, o.type, coalesce(o.parent_id, 0), coalesce(o.leader_id, 0), "           \
    "o.description, o.status, (SELECT count(*) FROM org_members c WHERE c.org_id = o.id), " S_MS(  \
        "o.created_at") ", " S_MS("o.updated_at")
#define S_ORG_NCOLS 11

#define S_MEMBER_COLUMNS "m.account_id, a.name, v.community, m.role, " S_MS("m.joined_at")

static void
s_org_from_row(PGresult *res, int row, void *out)
{
    registry_org_t *o = out;
    memset(o, 0, sizeof *o);
    o->id = registry_col_int64(res, row, 0);
    registry_copy(o->name, sizeof o->name, PQgetvalue(res, row, 1));
    registry_copy(o->area, sizeof o->area, PQgetvalue(res, row, 2));
    registry_copy(o->type, sizeof o->type, PQgetvalue(res, row, 3));
    o->parent_id = registry_col_int64(res, row, 4);
    o->leader_id = registry_col_int64(res, row, 5);
    registry_copy(o->description, sizeof o->description, PQgetvalue(res, row, 6));
    registry_copy(o->status, sizeof o->status, PQgetvalue(res, row, 7));
    o->members = atoi(PQgetvalue(res, row, 8));
    o->created_at_ms = registry_col_int64(res, row, 9);
    o->updated_at_ms = registry_col_int64(res, row, 10);
}

//  A member from S_MEMBER_COLUMNS.
static void
s_member_from_row(PGresult *res, int row, void *out)
{
    registry_org_member_t *m = out;
    memset(m, 0, sizeof *m);
    m->account_id = registry_col_int64(res, row, 0);
    registry_copy(m->name, sizeof m->name, PQgetvalue(res, row, 1));
    registry_copy(m->community, sizeof m->community, PQgetvalue(res, row, 2));
    registry_copy(m->role, sizeof m->role, PQgetvalue(res, row, 3));
    m->joined_at_ms = registry_col_int64(res, row, 4);
}

int
registry_orgs_store_get(linli_pg_t *pg, int64_t id, bool for_update, registry_org_t *out,
                        bool *found)
{
    static const char sql[] =
        "SELECT " S_ORG_COLUMNS " FROM organizations o WHERE o.id = $1::bigint";
    return for_update
               ? registry_get_locked(pg, "organizations", sql, id, s_org_from_row, out, found)
               : registry_get_by_id(pg, sql, id, s_org_from_row, out, found);
}

//  Give account the org_leader grant of org (or take it away). 0 or -1.
static int
s_leader_grant(linli_pg_t *pg, int64_t org_id, int64_t account_id, bool give)
{
    char org[24], account[24];
    snprintf(org, sizeof org, "%" PRId64, org_id);
    snprintf(account, sizeof account, "%" PRId64, account_id);
    const char *params[] = {account, org};
    return linli_pg_command(pg,
                            give ? "INSERT INTO grants (account_id, role, scope) "
                                   "VALUES ($1::bigint, 'org_leader', 'org:' || $2) "
                                   "ON CONFLICT DO NOTHING"
                                 : "DELETE FROM grants WHERE account_id = $1::bigint "
                                   "AND role = 'org_leader' AND scope = 'org:' || $2",
                            2, params);
}

int
registry_orgs_store_insert(linli_pg_t *pg, registry_org_t *org, int64_t created_by)
{
    char parent[24], leader[24], by[24];
    snprintf(parent, sizeof parent, "%" PRId64, org->parent_id);
    snprintf(leader, sizeof leader, "%" PRId64, org->leader_id);
    snprintf(by, sizeof by, "%" PRId64, created_by);
    const char *params[] = {org->name,
                            org->area,
                            org->type,
                            org->parent_id ? parent : NULL,
                            org->leader_id ? leader : NULL,
                            org->description,
                            created_by > 0 ? by : NULL};
    PGresult *res =
        linli_pg_exec(pg,
                      "INSERT INTO organizations (name, area, type, parent_id, "
                      "leader_id, description, created_by) "
                      "VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6, $7::bigint) "
                      "RETURNING id, status, " S_MS("created_at") ", " S_MS("updated_at"),
                      7, params);
    if (!res)
        return -1;
    org->id = registry_col_int64(res, 0, 0);
    registry_copy(org->status, sizeof org->status, PQgetvalue(res, 0, 1));
    org->created_at_ms = registry_col_int64(res, 0, 2);
    org->updated_at_ms = registry_col_int64(res, 0, 3);
    PQclear(res);
    org->members = 0;
    if (org->leader_id) {
        char id[24];
        snprintf(id, sizeof id, "%" PRId64, org->id);
        const char *mp[] = {id, leader};
        if (linli_pg_command(pg,
                             "INSERT INTO org_members (org_id, account_id, role) "
                             "VALUES ($1::bigint, $2::bigint, 'leader')",
                             2, mp) ||
            s_leader_grant(pg, org->id, org->leader_id, true))
            return -1;
        org->members = 1;
    }
    return 0;
}

int
registry_orgs_store_update(linli_pg_t *pg, registry_org_t *org)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, org->id);
    const char *params[] = {id, org->name, org->description, org->status};
    return registry_get_int64(pg,
                              "UPDATE organizations SET name = $2, description = $3, "
                              "status = $4, updated_at = now() WHERE id = $1::bigint "
                              "RETURNING " S_MS("updated_at"),
                              4, params, &org->updated_at_ms);
}

int
registry_orgs_store_set_leader(linli_pg_t *pg, int64_t org_id, int64_t old_leader,
                               int64_t new_leader, bool *new_member)
{
    *new_member = false;
    char org[24], old[24], neu[24];
    snprintf(org, sizeof org, "%" PRId64, org_id);
    snprintf(old, sizeof old, "%" PRId64, old_leader);
    snprintf(neu, sizeof neu, "%" PRId64, new_leader);
    //  Demote first: one leader per organisation is a unique index.
    if (old_leader) {
        const char *p[] = {org, old};
        if (linli_pg_command(pg,
                             "UPDATE org_members SET role = 'member' "
                             "WHERE org_id = $1::bigint AND account_id = $2::bigint",
                             2, p) ||
            s_leader_grant(pg, org_id, old_leader, false))
            return -1;
    }
    if (new_leader) {
        const char *p[] = {org, neu};
        //  xmax = 0 only on a row this statement inserted.
        PGresult *res = linli_pg_exec(pg,
                                      "INSERT INTO org_members (org_id, account_id, role) "
                                      "VALUES ($1::bigint, $2::bigint, 'leader') "
                                      "ON CONFLICT (org_id, account_id) DO UPDATE SET role = "
                                      "'leader' RETURNING (xmax = 0)",
                                      2, p);
        if (!res)
            return -1;
        *new_member = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
        PQclear(res);
        if (s_leader_grant(pg, org_id, new_leader, true))
            return -1;
    }
    const char *p[] = {org, new_leader ? neu : NULL};
    return linli_pg_command(pg,
                            "UPDATE organizations SET leader_id = $2::bigint, updated_at = now() "
                            "WHERE id = $1::bigint",
                            2, p);
}

int
registry_orgs_store_active_teams(linli_pg_t *pg, int64_t org_id, int *n)
{
    char org[24];
    snprintf(org, sizeof org, "%" PRId64, org_id);
    const char *params[] = {org};
    int64_t count;
    if (registry_get_int64(pg,
                           "SELECT count(*) FROM organizations "
                           "WHERE parent_id = $1::bigint AND status = 'active'",
                           1, params, &count))
        return -1;
    *n = (int)count;
    return 0;
}

int
registry_orgs_store_list(linli_pg_t *pg, const registry_org_filter_t *f, int64_t after,
                         registry_org_t *out, size_t max, size_t *n, bool *more)
{
    char parent[24], afterbuf[24], limit[16];
    snprintf(parent, sizeof parent, "%" PRId64, f->parent_id);
    snprintf(afterbuf, sizeof afterbuf, "%" PRId64, after);
    snprintf(limit, sizeof limit, "%zu", max + 1);
    const char *params[] = {f->area ? f->area : "",
                            f->type ? f->type : "",
                            f->status ? f->status : "",
                            parent,
                            afterbuf,
                            limit};
    //  Keyset pagination on id: stable while rows are inserted. Area codes
    //  are digits only (checked by the codec), so LIKE sees no wildcard.
    return registry_page_exec(pg,
                              "SELECT " S_ORG_COLUMNS " FROM organizations o "
                              "WHERE o.area LIKE $1 || '%' AND ($2 = '' OR o.type = $2) "
                              "AND ($3 = '' OR o.status = $3) "
                              "AND ($4::bigint = 0 OR o.parent_id = $4::bigint) "
                              "AND o.id > $5::bigint ORDER BY o.id LIMIT $6::int",
                              6, params, s_org_from_row, out, sizeof *out, max, n, more);
}

static void
s_volunteer_from_row(PGresult *res, int row, void *out)
{
    registry_org_volunteer_t *v = out;
    memset(v, 0, sizeof *v);
    v->id = registry_col_int64(res, row, 0);
    registry_copy(v->community, sizeof v->community, PQgetvalue(res, row, 1));
    registry_copy(v->status, sizeof v->status, PQgetvalue(res, row, 2));
}

int
registry_orgs_store_volunteer(linli_pg_t *pg, int64_t id, registry_org_volunteer_t *out,
                              bool *found)
{
    return registry_get_by_id(pg,
                              "SELECT id, community, status FROM volunteers WHERE id = $1::bigint",
                              id, s_volunteer_from_row, out, found);
}

int
registry_orgs_store_member_get(linli_pg_t *pg, int64_t org_id, int64_t account_id,
                               registry_org_member_t *out, bool *found)
{
    char org[24], account[24];
    snprintf(org, sizeof org, "%" PRId64, org_id);
    snprintf(account, sizeof account, "%" PRId64, account_id);
    const char *params[] = {org, account};
    return registry_get_row(pg,
                            "SELECT " S_MEMBER_COLUMNS " FROM org_members m "
                            "JOIN accounts a ON a.id = m.account_id "
                            "JOIN volunteers v ON v.id = m.account_id "
                            "WHERE m.org_id = $1::bigint AND m.account_id = $2::bigint",
                            2, params, s_member_from_row, out, found);
}

int
registry_orgs_store_member_add(linli_pg_t *pg, int64_t org_id, int64_t account_id,
                               registry_org_member_t *out, bool *existed)
{
    char org[24], account[24];
    snprintf(org, sizeof org, "%" PRId64, org_id);
    snprintf(account, sizeof account, "%" PRId64, account_id);
    const char *params[] = {org, account};
    PGresult *res = linli_pg_exec(pg,
                                  "INSERT INTO org_members (org_id, account_id, role) "
                                  "VALUES ($1::bigint, $2::bigint, 'member') "
                                  "ON CONFLICT DO NOTHING RETURNING 1",
                                  2, params);
    if (!res)
        return -1;
    *existed = PQntuples(res) == 0;
    PQclear(res);
    bool found;
    if (registry_orgs_store_member_get(pg, org_id, account_id, out, &found))
        return -1;
    return found ? 0 : -1;
}

int
registry_orgs_store_member_remove(linli_pg_t *pg, int64_t org_id, int64_t account_id, bool *removed)
{
    char org[24], account[24];
    snprintf(org, sizeof org, "%" PRId64, org_id);
    snprintf(account, sizeof account, "%" PRId64, account_id);
    const char *params[] = {org, account};
    PGresult *res = linli_pg_exec(pg,
                                  "DELETE FROM org_members "
                                  "WHERE org_id = $1::bigint AND account_id = $2::bigint",
                                  2, params);
    if (!res)
        return -1;
    *removed = atoi(PQcmdTuples(res)) == 1;
    PQclear(res);
    return 0;
}

int
registry_orgs_store_members(linli_pg_t *pg, int64_t org_id, int64_t after,
                            registry_org_member_t *out, size_t max, size_t *n, bool *more)
{
    return registry_page_of(pg,
                            "SELECT " S_MEMBER_COLUMNS " FROM org_members m "
                            "JOIN accounts a ON a.id = m.account_id "
                            "JOIN volunteers v ON v.id = m.account_id "
                            "WHERE m.org_id = $1::bigint AND m.account_id > $2::bigint "
                            "ORDER BY m.account_id LIMIT $3::int",
                            org_id, after, s_member_from_row, out, sizeof *out, max, n, more);
}

int
registry_orgs_store_of_volunteer(linli_pg_t *pg, int64_t account_id, int64_t after,
                                 registry_org_t *out, registry_org_member_t *roles, size_t max,
                                 size_t *n, bool *more)
{
    *n = 0;
    *more = false;
    char account[24], afterbuf[24], limit[16];
    snprintf(account, sizeof account, "%" PRId64, account_id);
    snprintf(afterbuf, sizeof afterbuf, "%" PRId64, after);
    snprintf(limit, sizeof limit, "%zu", max + 1);
    const char *params[] = {account, afterbuf, limit};
    PGresult *res = linli_pg_exec(
        pg,
        "SELECT " S_ORG_COLUMNS ", m.role, " S_MS(
            "m.joined_at") " FROM org_members m JOIN organizations o ON o.id = m.org_id "
                           "WHERE m.account_id = $1::bigint AND o.status = 'active' "
                           "AND o.id > $2::bigint ORDER BY o.id LIMIT $3::int",
        3, params);
    if (!res)
        return -1;
    size_t rows = (size_t)PQntuples(res);
    for (size_t i = 0; i < rows && i < max; i++) {
        s_org_from_row(res, (int)i, &out[*n]);
        memset(&roles[*n], 0, sizeof roles[*n]);
        roles[*n].account_id = account_id;
        registry_copy(roles[*n].role, sizeof roles[*n].role, PQgetvalue(res, (int)i, S_ORG_NCOLS));
        roles[*n].joined_at_ms = registry_col_int64(res, (int)i, S_ORG_NCOLS + 1);
        (*n)++;
    }
    *more = rows > max;
    PQclear(res);
    return 0;
}

int
registry_orgs_store_revoke_leader_grant(linli_pg_t *pg, int64_t org_id, int64_t leader_id)
{
    return leader_id ? s_leader_grant(pg, org_id, leader_id, false) : 0;
}
