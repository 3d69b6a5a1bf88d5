//  linli_auth: ranks, scopes and grants.
#include "linli_auth.h"

#include <string.h>

static const struct s_role_t {
    const char *role;
    int rank;
    int scope_len;
} s_roles[] = {
    {LINLI_ROLE_CITY_ADMIN, 4, 4},
    {LINLI_ROLE_DISTRICT_ADMIN, 3, 6},
    {LINLI_ROLE_STREET_ADMIN, 2, 9},
    {LINLI_ROLE_COMMUNITY_WORKER, 1, 12},
};

//  The table row of role, or NULL when role is not one of ours.
static const struct s_role_t *
s_role(const char *role)
{
    for (size_t i = 0; role && i < sizeof s_roles / sizeof s_roles[0]; i++)
        if (!strcmp(role, s_roles[i].role))
            return &s_roles[i];
    return NULL;
}

int
linli_auth_rank(const char *role)
{
    const struct s_role_t *r = s_role(role);
    return r ? r->rank : 0;
}

int
linli_auth_scope_len(const char *role)
{
    const struct s_role_t *r = s_role(role);
    return r ? r->scope_len : 0;
}

bool
linli_auth_scope_covers(const char *scope, const char *area)
{
    if (!scope || !area || !*scope)
        return false;
    size_t n = strlen(scope);
    return strncmp(scope, area, n) == 0;
}

int
linli_auth_rank_over(const Linli__Caller *caller, const char *area)
{
    int best = 0;
    if (!caller)
        return 0;
    for (size_t i = 0; i < caller->n_grants; i++) {
        const Linli__Grant *g = caller->grants[i];
        int rank = linli_auth_rank(g->role);
        if (rank > best && linli_auth_scope_covers(g->scope, area))
            best = rank;
    }
    return best;
}

bool
linli_auth_can_grant(const Linli__Caller *caller, const char *role, const char *scope)
{
    int rank = linli_auth_rank(role);
    int len = linli_auth_scope_len(role);
    if (!rank || !scope || (int)strlen(scope) != len)
        return false;
    return linli_auth_rank_over(caller, scope) > rank;
}

bool
linli_auth_has_role(const Linli__Caller *caller, const char *roles)
{
    if (!caller || !caller->user_id || !*caller->user_id)
        return false;
    if (!strcmp(roles, "user"))
        return true;
    for (size_t i = 0; i < caller->n_grants; i++) {
        const char *role = caller->grants[i]->role;
        size_t n = strlen(role);
        for (const char *p = roles; *p;) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && !strncmp(p, role, n))
                return true;
            p += len + (bar ? 1 : 0);
        }
    }
    return false;
}
