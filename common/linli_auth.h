//  linli_auth: the caller model's rules (DESIGN.md "Messages"): roles ranked,
//  each granted over a scope that is an area code prefix; a subtree is a
//  prefix. Pure logic, used by every service to enforce data-level rules.
#ifndef LINLI_AUTH_H
#define LINLI_AUTH_H

#include <stdbool.h>

#include "linli/envelope.pb-c.h"

//  Staff roles, highest first. Ranks: city_admin 4 … community_worker 1.
#define LINLI_ROLE_CITY_ADMIN "city_admin"
#define LINLI_ROLE_DISTRICT_ADMIN "district_admin"
#define LINLI_ROLE_STREET_ADMIN "street_admin"
#define LINLI_ROLE_COMMUNITY_WORKER "community_worker"

//  Rank of a staff role; 0 for any other role (volunteer, org_leader, …).
int linli_auth_rank(const char *role);

//  Length of the area code a role's scope must have (4, 6, 9, 12); 0 if none.
int linli_auth_scope_len(const char *role);

//  True when scope (an area code prefix) covers area: area lies in its subtree.
bool linli_auth_scope_covers(const char *scope, const char *area);

//  Highest rank among the caller's staff grants whose scope covers area; 0 if none.
int linli_auth_rank_over(const Linli__Caller *caller, const char *area);

//  True when the caller may grant role over scope: it holds a grant of a
//  strictly higher rank whose scope covers scope, and scope fits the role.
bool linli_auth_can_grant(const Linli__Caller *caller, const char *role, const char *scope);

//  True when the caller holds any of the roles in the '|'-separated list
//  (over any scope). "user" matches any authenticated caller.
bool linli_auth_has_role(const Linli__Caller *caller, const char *roles);

#endif
