//  registry_orgs: organisations and teams (志愿服务组织 / 队伍) and their
//  members; protobuf in, protobuf out, SQL in registry_orgs_store.c.
//
//  Who may do what (the gateway checks only the route's roles):
//    create, update, dissolve      staff whose scope covers the organisation's area
//    add / remove a member         that staff, the organisation's leader, the volunteer itself
//    read, list organisations      anyone logged in (organisations are public-facing)
//    list members                  that staff, the leader, the members
//    a volunteer's organisations   the volunteer, staff covering its community
//  The leader acts as leader while it holds the grant (org_leader, "org:<id>")
//  in its session and is still the leader in the database: a new leader
//  gains the rights at its next login, a replaced one loses them at once.
#include "registry.h"
#include "registry_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_auth.h"
#include "linli_idem.h"
#include "registry_orgs.h"
#include "registry_orgs_store.h"
#include "linli/registry_orgs.pb-c.h"

#define S_STAFF 1 //  rank of the least staff role (community_worker)

// ---------------------------------------------------------------- helpers

//  The caller's account id; 0 when anonymous.
static int64_t
s_caller_id(const Linli__Caller *caller)
{
    return registry_parse_id(caller->user_id);
}

//  True when the caller leads org: it holds the grant and is still the leader.
static bool
s_is_leader(const Linli__Caller *caller, const registry_org_t *org)
{
    if (!org->leader_id || s_caller_id(caller) != org->leader_id)
        return false;
    char scope[40];
    snprintf(scope, sizeof scope, "org:%" PRId64, org->id);
    for (size_t i = 0; i < caller->n_grants; i++)
        if (!strcmp(caller->grants[i]->role, "org_leader") &&
            !strcmp(caller->grants[i]->scope, scope))
            return true;
    return false;
}

//  An Organization message over a store row (strings borrowed from o and v).
typedef struct {
    Linli__Registry__Organization msg;
    char id[24];
    char parent_id[24];
    char leader_id[24];
} s_org_view_t;

static void
s_org_msg(const registry_org_t *o, s_org_view_t *v)
{
    linli__registry__organization__init(&v->msg);
    snprintf(v->id, sizeof v->id, "%" PRId64, o->id);
    v->msg.id = v->id;
    v->msg.name = (char *)o->name;
    v->msg.area = (char *)o->area;
    v->msg.type = (char *)o->type;
    if (o->parent_id) {
        snprintf(v->parent_id, sizeof v->parent_id, "%" PRId64, o->parent_id);
        v->msg.parent_id = v->parent_id;
    }
    if (o->leader_id) {
        snprintf(v->leader_id, sizeof v->leader_id, "%" PRId64, o->leader_id);
        v->msg.leader_id = v->leader_id;
    }
    if (*o->description)
        v->msg.description = (char *)o->description;
    v->msg.status = (char *)o->status;
    v->msg.has_members = true;
    v->msg.members = o->members;
    v->msg.has_created_at = v->msg.has_updated_at = true;
    v->msg.created_at = o->created_at_ms;
    v->msg.updated_at = o->updated_at_ms;
}

//  A Membership message: an organisation and the volunteer's role in it.
typedef struct {
    s_org_view_t org;
    Linli__Registry__Membership msg;
} s_membership_view_t;

//  An OrganizationMember message over a store row.
typedef struct {
    Linli__Registry__OrganizationMember msg;
    char id[24];
} s_member_view_t;

static void
s_member_msg(const registry_org_member_t *m, s_member_view_t *v)
{
    linli__registry__organization_member__init(&v->msg);
    snprintf(v->id, sizeof v->id, "%" PRId64, m->account_id);
    v->msg.volunteer_id = v->id;
    if (*m->name)
        v->msg.name = (char *)m->name;
    if (*m->community)
        v->msg.community = (char *)m->community;
    v->msg.role = (char *)m->role;
    v->msg.has_joined_at = true;
    v->msg.joined_at = m->joined_at_ms;
}

int
registry_orgs_emit(linli_pg_t *pg, const char *type, const registry_org_t *o,
                   int64_t previous_leader, const char *actor)
{
    char id[24], parent[24], leader[24], previous[24];
    snprintf(id, sizeof id, "%" PRId64, o->id);
    Linli__Registry__OrganizationEvent data = LINLI__REGISTRY__ORGANIZATION_EVENT__INIT;
    data.id = id;
    data.area = (char *)o->area;
    data.type = (char *)o->type;
    data.status = (char *)o->status;
    if (o->parent_id) {
        snprintf(parent, sizeof parent, "%" PRId64, o->parent_id);
        data.parent_id = parent;
    }
    if (o->leader_id) {
        snprintf(leader, sizeof leader, "%" PRId64, o->leader_id);
        data.leader_id = leader;
    }
    if (previous_leader) {
        snprintf(previous, sizeof previous, "%" PRId64, previous_leader);
        data.previous_leader_id = previous;
    }
    data.actor = (char *)actor;
    return registry_emit(pg, type, "organization", o->id, o->area, &data.base);
}

int
registry_orgs_emit_member(linli_pg_t *pg, const char *type, const registry_org_t *o,
                          int64_t volunteer, const char *role, const char *actor)
{
    char id[24], vid[24];
    snprintf(id, sizeof id, "%" PRId64, o->id);
    snprintf(vid, sizeof vid, "%" PRId64, volunteer);
    Linli__Registry__OrganizationMemberEvent data =
        LINLI__REGISTRY__ORGANIZATION_MEMBER_EVENT__INIT;
    data.organization_id = id;
    data.area = (char *)o->area;
    data.volunteer_id = vid;
    data.role = (char *)role;
    data.actor = (char *)actor;
    return registry_emit(pg, type, "organization", o->id, o->area, &data.base);
}

//  Check a prospective leader inside the open transaction: a verified
//  volunteer whose community lies in area. Answers (and rolls back) when it
//  is not one; returns true when the caller may go on.
static bool
s_leader_ok(registry_t *self, linli_idem_t *idem, linli_request_t *request, int64_t leader,
            const char *area)
{
    registry_org_volunteer_t v;
    bool found;
    if (registry_orgs_store_volunteer(self->pg, leader, &v, &found)) {
        linli_idem_abort(idem, request, 503, "store_unavailable",
                         "the registry store is unavailable");
        return false;
    }
    //  Unknown and outside the area look alike: no existence leaks.
    if (!found || !linli_auth_scope_covers(area, v.community)) {
        linli_pg_rollback(self->pg);
        linli_fail_field(request, 422, "leader_not_found", "leader_id",
                         "no volunteer with that id in the organisation's area");
        return false;
    }
    if (strcmp(v.status, "verified")) {
        linli_pg_rollback(self->pg);
        linli_fail_field(request, 422, "volunteer_not_verified", "leader_id",
                         "the leader must be a verified volunteer");
        return false;
    }
    return true;
}

// ---------------------------------------------------------------- organisations

//  registry.CreateOrganization: staff create an organisation, or a team
//  under one, in an area of their scope; a leader gets its grant.
static int
s_create_org(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__CreateOrganizationRequest *req =
        (const Linli__Registry__CreateOrganizationRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    if (linli_auth_rank_over(caller, req->area) < S_STAFF)
        return linli_fail_field(request, 403, "out_of_scope", "area", "that area is outside yours");
    const char *type = req->type ? req->type : "organization";
    bool team = !strcmp(type, "team");
    if (team && !req->parent_id)
        return linli_fail_field(request, 400, "missing_field", "parent_id",
                                "a team needs its organisation (parent_id)");
    if (!team && req->parent_id)
        return linli_fail_field(request, 400, "invalid_value", "parent_id",
                                "only a team has a parent organisation");
    registry_area_t area;
    bool found;
    if (registry_store_area_get(self->store, req->area, &area, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!found)
        return linli_fail_field(request, 422, "unknown_area", "area", "no area has code %s",
                                req->area);

    registry_org_t org;
    memset(&org, 0, sizeof org);
    snprintf(org.name, sizeof org.name, "%s", req->name);
    snprintf(org.area, sizeof org.area, "%s", req->area);
    snprintf(org.type, sizeof org.type, "%s", type);
    snprintf(org.description, sizeof org.description, "%s",
             req->description ? req->description : "");
    org.parent_id = registry_parse_id(req->parent_id);
    org.leader_id = registry_parse_id(req->leader_id);

    linli_idem_t idem;
    if (linli_idem_begin(self->pg, request, &idem) != LINLI_IDEM_NEW)
        return 0; //  replayed, or answered already
    if (team) {
        //  Locked: a concurrent dissolution of the parent waits for us.
        registry_org_t parent;
        if (registry_orgs_store_get(self->pg, org.parent_id, true, &parent, &found))
            return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                    "the registry store is unavailable");
        if (!found || strcmp(parent.type, "organization") || strcmp(parent.status, "active")) {
            linli_pg_rollback(self->pg);
            return linli_fail_field(request, 422, "bad_parent", "parent_id",
                                    "the parent must be an active organisation");
        }
        if (!linli_auth_scope_covers(parent.area, org.area)) {
            linli_pg_rollback(self->pg);
            return linli_fail_field(request, 422, "area_outside_parent", "area",
                                    "a team serves an area inside its organisation's (%s)",
                                    parent.area);
        }
    }
    if (org.leader_id && !s_leader_ok(self, &idem, request, org.leader_id, org.area))
        return 0;
    if (registry_orgs_store_insert(self->pg, &org, s_caller_id(caller)))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (registry_orgs_emit(self->pg, "linli.registry.organization.created", &org, 0,
                           caller->user_id) ||
        (org.leader_id &&
         registry_orgs_emit_member(self->pg, "linli.registry.organization.member_joined", &org,
                                   org.leader_id, "leader", caller->user_id)))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the event could not be recorded");
    s_org_view_t view;
    s_org_msg(&org, &view);
    return linli_idem_commit(&idem, request, 201, &view.msg.base);
}

//  registry.GetOrganization: one organisation; anyone logged in.
static int
s_get_org(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__GetOrganizationRequest *req =
        (const Linli__Registry__GetOrganizationRequest *)msg;
    if (!s_caller_id(linli_request_caller(request)))
        return linli_fail(request, 401, "unauthenticated", "log in first");
    int64_t id = registry_parse_id(req->id);
    registry_org_t org;
    bool found = false;
    if (id && registry_orgs_store_get(self->pg, id, false, &org, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!found)
        return linli_fail(request, 404, "organization_not_found", "no such organisation");
    s_org_view_t view;
    s_org_msg(&org, &view);
    return linli_reply(request, 200, &view.msg.base);
}

//  registry.ListOrganizations: organisations of a subtree, by id; anyone logged in.
static int
s_list_orgs(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__ListOrganizationsRequest *req =
        (const Linli__Registry__ListOrganizationsRequest *)msg;
    if (!s_caller_id(linli_request_caller(request)))
        return linli_fail(request, 401, "unauthenticated", "log in first");
    size_t limit;
    int64_t after;
    if (registry_page_args(request, req->has_limit, req->limit, req->cursor, &limit, &after))
        return 0;
    registry_org_filter_t filter = {
        .area = req->area,
        .type = req->type,
        .status = req->status ? req->status : "active",
        .parent_id = registry_parse_id(req->parent_id),
    };
    if (req->parent_id && !filter.parent_id)
        return linli_fail_field(request, 400, "invalid_format", "parent_id", "bad id");
    registry_page_t page;
    if (registry_page_alloc(&page, limit, sizeof(registry_org_t), sizeof(s_org_view_t)))
        return linli_fail(request, 503, "overloaded", "out of memory");
    registry_org_t *rows = page.rows;
    s_org_view_t *views = page.views;
    int rc;
    if (registry_orgs_store_list(self->pg, &filter, after, rows, limit, &page.n, &page.more)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else {
        Linli__Registry__ListOrganizationsReply reply =
            LINLI__REGISTRY__LIST_ORGANIZATIONS_REPLY__INIT;
        for (size_t i = 0; i < page.n; i++) {
            s_org_msg(&rows[i], &views[i]);
            page.items[i] = &views[i].msg.base;
        }
        rc = registry_page_reply(&page, request, &reply.base, page.n ? views[page.n - 1].id : NULL);
    }
    registry_page_free(&page);
    return rc;
}

//  Open the transaction and lock organisation id_text for a change. Answers
//  and returns false when it is missing (or the request was answered by
//  linli_idem_begin).
static bool
s_begin_change(registry_t *self, linli_request_t *request, linli_idem_t *idem, const char *id_text,
               registry_org_t *org)
{
    int64_t id = registry_parse_id(id_text);
    if (linli_idem_begin(self->pg, request, idem) != LINLI_IDEM_NEW)
        return false;
    bool found = false;
    if (id && registry_orgs_store_get(self->pg, id, true, org, &found)) {
        linli_idem_abort(idem, request, 503, "store_unavailable",
                         "the registry store is unavailable");
        return false;
    }
    if (!found) {
        linli_idem_abort(idem, request, 404, "organization_not_found", "no such organisation");
        return false;
    }
    return true;
}

//  s_begin_change for a staff change: also answers and returns false when
//  the organisation is outside the caller's scope or dissolved.
static bool
s_begin_staff_change(registry_t *self, linli_request_t *request, linli_idem_t *idem,
                     const char *id_text, registry_org_t *org)
{
    const Linli__Caller *caller = linli_request_caller(request);
    if (!s_begin_change(self, request, idem, id_text, org))
        return false;
    //  Organisations are public, so 403 leaks nothing: an action outside the scope.
    if (linli_auth_rank_over(caller, org->area) < S_STAFF) {
        linli_idem_abort(idem, request, 403, "out_of_scope",
                         "the organisation's area is outside yours");
        return false;
    }
    if (strcmp(org->status, "active")) {
        linli_idem_abort(idem, request, 409, "organization_dissolved",
                         "the organisation is dissolved");
        return false;
    }
    return true;
}

//  registry.UpdateOrganization: staff of the area rename, describe, or
//  change the leader (the grant moves with it).
static int
s_update_org(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__UpdateOrganizationRequest *req =
        (const Linli__Registry__UpdateOrganizationRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    bool clear_leader = req->has_clear_leader && req->clear_leader;
    if (clear_leader && req->leader_id)
        return linli_fail_field(request, 400, "invalid_value", "clear_leader",
                                "give leader_id or clear_leader, not both");
    linli_idem_t idem;
    registry_org_t org;
    if (!s_begin_staff_change(self, request, &idem, req->id, &org))
        return 0;
    if (req->name)
        snprintf(org.name, sizeof org.name, "%s", req->name);
    if (req->description)
        snprintf(org.description, sizeof org.description, "%s", req->description);
    int64_t previous = org.leader_id;
    int64_t leader = req->leader_id ? registry_parse_id(req->leader_id)
                     : clear_leader ? 0
                                    : previous;
    bool changed = leader != previous;
    bool new_member = false;
    if (changed && leader && !s_leader_ok(self, &idem, request, leader, org.area))
        return 0;
    //  Read again after the change: a new leader may have joined as a member.
    if ((changed &&
         registry_orgs_store_set_leader(self->pg, org.id, previous, leader, &new_member)) ||
        registry_orgs_store_update(self->pg, &org) ||
        registry_orgs_store_get(self->pg, org.id, false, &org, &(bool){false}))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (registry_orgs_emit(self->pg, "linli.registry.organization.updated", &org,
                           changed ? previous : 0, caller->user_id) ||
        (new_member &&
         registry_orgs_emit_member(self->pg, "linli.registry.organization.member_joined", &org,
                                   leader, "leader", caller->user_id)))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the event could not be recorded");
    s_org_view_t view;
    s_org_msg(&org, &view);
    return linli_idem_commit(&idem, request, 200, &view.msg.base);
}

//  registry.DissolveOrganization: staff of the area dissolve it (its teams
//  first); the leader's grant goes, the rows stay for the record.
static int
s_dissolve_org(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__DissolveOrganizationRequest *req =
        (const Linli__Registry__DissolveOrganizationRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    linli_idem_t idem;
    registry_org_t org;
    if (!s_begin_staff_change(self, request, &idem, req->id, &org))
        return 0;
    int teams = 0;
    if (registry_orgs_store_active_teams(self->pg, org.id, &teams))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (teams > 0)
        return linli_idem_abort(&idem, request, 409, "has_active_teams",
                                "dissolve the organisation's %d active teams first", teams);
    snprintf(org.status, sizeof org.status, "dissolved");
    if (registry_orgs_store_update(self->pg, &org) ||
        registry_orgs_store_revoke_leader_grant(self->pg, org.id, org.leader_id))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (registry_orgs_emit(self->pg, "linli.registry.organization.dissolved", &org, 0,
                           caller->user_id))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the event could not be recorded");
    s_org_view_t view;
    s_org_msg(&org, &view);
    return linli_idem_commit(&idem, request, 200, &view.msg.base);
}

// ---------------------------------------------------------------- members

//  s_begin_change for a member change; *manager when the caller is staff of
//  the organisation's area or its leader.
static bool
s_begin_member_change(registry_t *self, linli_request_t *request, linli_idem_t *idem,
                      const char *id_text, registry_org_t *org, bool *manager)
{
    const Linli__Caller *caller = linli_request_caller(request);
    if (!s_begin_change(self, request, idem, id_text, org))
        return false;
    *manager = linli_auth_rank_over(caller, org->area) >= S_STAFF || s_is_leader(caller, org);
    return true;
}

//  registry.AddOrgMember: a verified volunteer joins itself, or staff of the
//  area or the leader add one; the volunteer's community lies in the
//  organisation's area.
static int
s_add_member(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__AddOrgMemberRequest *req =
        (const Linli__Registry__AddOrgMemberRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    int64_t me = s_caller_id(caller);
    int64_t vid = req->volunteer_id ? registry_parse_id(req->volunteer_id) : me;
    if (!me)
        return linli_fail(request, 401, "unauthenticated", "log in first");
    if (!vid)
        return linli_fail_field(request, 400, "invalid_format", "volunteer_id", "bad id");

    linli_idem_t idem;
    registry_org_t org;
    bool manager;
    if (!s_begin_member_change(self, request, &idem, req->id, &org, &manager))
        return 0;
    if (!manager && vid != me)
        return linli_idem_abort(&idem, request, 403, "forbidden",
                                "only the organisation's leader or staff of its area add others");
    if (strcmp(org.status, "active"))
        return linli_idem_abort(&idem, request, 409, "organization_dissolved",
                                "the organisation is dissolved");
    registry_org_volunteer_t v;
    bool found;
    if (registry_orgs_store_volunteer(self->pg, vid, &v, &found))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    bool in_area = found && linli_auth_scope_covers(org.area, v.community);
    if (!manager && !found)
        return linli_idem_abort(&idem, request, 403, "not_a_volunteer",
                                "only volunteers join organisations");
    if (!manager && !in_area)
        return linli_idem_abort(&idem, request, 403, "out_of_area",
                                "the organisation serves another area");
    //  For a manager, unknown and outside the area look alike.
    if (!in_area)
        return linli_idem_abort(&idem, request, 404, "volunteer_not_found",
                                "no volunteer with that id in the organisation's area");
    if (strcmp(v.status, "verified"))
        return linli_idem_abort(&idem, request, 422, "volunteer_not_verified",
                                "only verified volunteers join organisations");
    registry_org_member_t member;
    bool existed;
    if (registry_orgs_store_member_add(self->pg, org.id, vid, &member, &existed))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (existed)
        return linli_idem_abort(&idem, request, 409, "already_member",
                                "the volunteer is a member already");
    if (registry_orgs_emit_member(self->pg, "linli.registry.organization.member_joined", &org, vid,
                                  "member", caller->user_id))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the event could not be recorded");
    s_member_view_t view;
    s_member_msg(&member, &view);
    return linli_idem_commit(&idem, request, 201, &view.msg.base);
}

//  registry.RemoveOrgMember: a member leaves, or staff of the area or the
//  leader remove one. The leader cannot leave: appoint another first.
static int
s_remove_member(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__RemoveOrgMemberRequest *req =
        (const Linli__Registry__RemoveOrgMemberRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    int64_t me = s_caller_id(caller);
    int64_t vid = registry_parse_id(req->volunteer_id);
    if (!me)
        return linli_fail(request, 401, "unauthenticated", "log in first");

    linli_idem_t idem;
    registry_org_t org;
    bool manager;
    if (!s_begin_member_change(self, request, &idem, req->id, &org, &manager))
        return 0;
    if (!manager && vid != me)
        return linli_idem_abort(
            &idem, request, 403, "forbidden",
            "only the organisation's leader or staff of its area remove others");
    registry_org_member_t member;
    bool found = false;
    if (vid && registry_orgs_store_member_get(self->pg, org.id, vid, &member, &found))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (!found)
        return linli_idem_abort(&idem, request, 404, "member_not_found",
                                "the volunteer is not a member");
    if (!strcmp(member.role, "leader"))
        return linli_idem_abort(&idem, request, 409, "leader_cannot_leave",
                                "appoint another leader (or clear it) first");
    bool removed;
    if (registry_orgs_store_member_remove(self->pg, org.id, vid, &removed) || !removed)
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (registry_orgs_emit_member(self->pg, "linli.registry.organization.member_left", &org, vid,
                                  member.role, caller->user_id))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the event could not be recorded");
    Linli__Registry__RemoveOrgMemberReply reply = LINLI__REGISTRY__REMOVE_ORG_MEMBER_REPLY__INIT;
    return linli_idem_commit(&idem, request, 200, &reply.base);
}

//  registry.ListOrgMembers: the members, for staff of the area, the leader
//  and the members themselves.
static int
s_list_members(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__ListOrgMembersRequest *req =
        (const Linli__Registry__ListOrgMembersRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    int64_t me = s_caller_id(caller);
    if (!me)
        return linli_fail(request, 401, "unauthenticated", "log in first");
    size_t limit;
    int64_t after;
    if (registry_page_args(request, req->has_limit, req->limit, req->cursor, &limit, &after))
        return 0;
    int64_t id = registry_parse_id(req->id);
    registry_org_t org;
    bool found = false;
    if (id && registry_orgs_store_get(self->pg, id, false, &org, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!found)
        return linli_fail(request, 404, "organization_not_found", "no such organisation");
    bool allowed = linli_auth_rank_over(caller, org.area) >= S_STAFF || s_is_leader(caller, &org);
    if (!allowed) {
        registry_org_member_t mine;
        if (registry_orgs_store_member_get(self->pg, org.id, me, &mine, &allowed))
            return linli_fail(request, 503, "store_unavailable",
                              "the registry store is unavailable");
    }
    if (!allowed)
        return linli_fail(request, 403, "forbidden",
                          "members are listed to the organisation, its leader and staff");

    registry_page_t page;
    if (registry_page_alloc(&page, limit, sizeof(registry_org_member_t), sizeof(s_member_view_t)))
        return linli_fail(request, 503, "overloaded", "out of memory");
    registry_org_member_t *rows = page.rows;
    s_member_view_t *views = page.views;
    int rc;
    if (registry_orgs_store_members(self->pg, org.id, after, rows, limit, &page.n, &page.more)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else {
        Linli__Registry__ListOrgMembersReply reply = LINLI__REGISTRY__LIST_ORG_MEMBERS_REPLY__INIT;
        for (size_t i = 0; i < page.n; i++) {
            s_member_msg(&rows[i], &views[i]);
            page.items[i] = &views[i].msg.base;
        }
        rc = registry_page_reply(&page, request, &reply.base, page.n ? views[page.n - 1].id : NULL);
    }
    registry_page_free(&page);
    return rc;
}

//  registry.VolunteerOrganizations: the active organisations a volunteer
//  belongs to, for the volunteer and staff covering its community; anyone
//  else gets 404.
static int
s_volunteer_orgs(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__VolunteerOrganizationsRequest *req =
        (const Linli__Registry__VolunteerOrganizationsRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    int64_t me = s_caller_id(caller);
    if (!me)
        return linli_fail(request, 401, "unauthenticated", "log in first");
    size_t limit;
    int64_t after;
    if (registry_page_args(request, req->has_limit, req->limit, req->cursor, &limit, &after))
        return 0;
    int64_t vid = registry_parse_id(req->id);
    registry_org_volunteer_t v;
    bool found = false;
    if (vid && registry_orgs_store_volunteer(self->pg, vid, &v, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!found || (vid != me && linli_auth_rank_over(caller, v.community) < S_STAFF))
        return linli_fail(request, 404, "volunteer_not_found", "no such volunteer");

    registry_page_t page;
    registry_org_member_t *roles = calloc(limit, sizeof *roles);
    if (!roles ||
        registry_page_alloc(&page, limit, sizeof(registry_org_t), sizeof(s_membership_view_t))) {
        free(roles);
        return linli_fail(request, 503, "overloaded", "out of memory");
    }
    registry_org_t *rows = page.rows;
    s_membership_view_t *views = page.views;
    int rc;
    if (registry_orgs_store_of_volunteer(self->pg, vid, after, rows, roles, limit, &page.n,
                                         &page.more)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else {
        Linli__Registry__VolunteerOrganizationsReply reply =
            LINLI__REGISTRY__VOLUNTEER_ORGANIZATIONS_REPLY__INIT;
        for (size_t i = 0; i < page.n; i++) {
            s_org_msg(&rows[i], &views[i].org);
            linli__registry__membership__init(&views[i].msg);
            views[i].msg.organization = &views[i].org.msg;
            views[i].msg.role = roles[i].role;
            views[i].msg.has_joined_at = true;
            views[i].msg.joined_at = roles[i].joined_at_ms;
            page.items[i] = &views[i].msg.base;
        }
        rc = registry_page_reply(&page, request, &reply.base,
                                 page.n ? views[page.n - 1].org.id : NULL);
    }
    registry_page_free(&page);
    free(roles);
    return rc;
}

#define REG(name) &linli__registry__##name##__descriptor

const linli_route_t registry_org_routes[] = {
    {"registry.CreateOrganization", REG(create_organization_request), s_create_org},
    {"registry.GetOrganization", REG(get_organization_request), s_get_org},
    {"registry.ListOrganizations", REG(list_organizations_request), s_list_orgs},
    {"registry.UpdateOrganization", REG(update_organization_request), s_update_org},
    {"registry.DissolveOrganization", REG(dissolve_organization_request), s_dissolve_org},
    {"registry.AddOrgMember", REG(add_org_member_request), s_add_member},
    {"registry.RemoveOrgMember", REG(remove_org_member_request), s_remove_member},
    {"registry.ListOrgMembers", REG(list_org_members_request), s_list_members},
    {"registry.VolunteerOrganizations", REG(volunteer_organizations_request), s_volunteer_orgs},
    {NULL, NULL, NULL},
};
