//  registry_volunteers: volunteers' methods — sign-up (self, by staff, by
//  join code), read, update, verify, status, list, join codes.
#include "registry.h"
#include "registry_util.h"
#include "registry_people.h"
#include "registry_service.h"
#include "registry_volunteers_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "linli_auth.h"
#include "linli_crypto.h"
#include "linli_idem.h"
#include "linli_log.h"
#include "linli_ratelimit.h"
#include "linli_session.h"
#include "linli/registry.pb-c.h"

#include <sodium.h>

#define S_JOIN_CODE_DAYS 30

// ---------------------------------------------------------------- helpers

//  Who sees a volunteer whole: the person, and staff whose scope covers its community.
static bool
s_sees_whole(const Linli__Caller *caller, const registry_volunteer_t *v)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, v->id);
    if (caller->user_id && !strcmp(caller->user_id, id))
        return true;
    return linli_auth_rank_over(caller, v->community) > 0;
}

//  A volunteer as one caller may see it (strings borrowed from v and the view).
typedef struct {
    Linli__Registry__Volunteer msg;
    char id[24];
    char id_number[32];
    char phone[32];
    char tag_buf[2][REGISTRY_MAX_TAGS * 34 + 3];
    const char *skills[REGISTRY_MAX_TAGS];
    const char *slots[REGISTRY_MAX_TAGS];
} s_view_t;

//  v as seen whole or masked.
static void
s_view_as(const registry_volunteer_t *v, bool whole, s_view_t *out)
{
    Linli__Registry__Volunteer *m = &out->msg;
    linli__registry__volunteer__init(m);
    snprintf(out->id, sizeof out->id, "%" PRId64, v->id);
    m->id = out->id;
    m->name = (char *)v->name;
    m->community = (char *)v->community;
    char *id_number = linli_pii_decrypt(v->id_number_enc);
    char *phone = linli_pii_decrypt(v->phone_enc);
    if (id_number) {
        if (whole)
            snprintf(out->id_number, sizeof out->id_number, "%s", id_number);
        else
            linli_mask_id_number(id_number, out->id_number, sizeof out->id_number);
        m->id_number = out->id_number;
    }
    if (phone) {
        if (whole)
            snprintf(out->phone, sizeof out->phone, "%s", phone);
        else
            linli_mask_phone(phone, out->phone, sizeof out->phone);
        m->phone = out->phone;
    }
    linli_pii_free(&id_number);
    linli_pii_free(&phone);
    if (*v->gender)
        m->gender = (char *)v->gender;
    if (v->birth_year) {
        m->has_birth_year = true;
        m->birth_year = v->birth_year;
    }
    if (*v->political_status)
        m->political_status = (char *)v->political_status;
    m->n_skills = registry_tags_parse(v->skills, out->tag_buf[0], sizeof out->tag_buf[0],
                                      out->skills, REGISTRY_MAX_TAGS);
    m->skills = (char **)out->skills;
    m->n_free_slots = registry_tags_parse(v->free_slots, out->tag_buf[1], sizeof out->tag_buf[1],
                                          out->slots, REGISTRY_MAX_TAGS);
    m->free_slots = (char **)out->slots;
    m->status = (char *)v->status;
    m->source = (char *)v->source;
    if (v->verified_at_ms) {
        m->has_verified_at = true;
        m->verified_at = v->verified_at_ms;
    }
    m->has_created_at = m->has_updated_at = true;
    m->created_at = v->created_at_ms;
    m->updated_at = v->updated_at_ms;
}

static void
s_view(const registry_volunteer_t *v, const Linli__Caller *caller, s_view_t *out)
{
    s_view_as(v, s_sees_whole(caller, v), out);
}

//  Record a volunteer event in the outbox (the caller's open transaction).
//  Ids, area codes and matching attributes only: never a name, phone or ID number.
static int
s_emit(registry_t *self, const char *type, const registry_volunteer_t *v, const char *actor,
       const char *previous_status, const char *previous_community)
{
    registry_volunteer_event_t e;
    registry_volunteer_event_init(&e, v->id, v->community, v->status, v->skills, v->free_slots,
                                  actor, v->updated_at_ms);
    e.msg.previous_status = (char *)previous_status;
    e.msg.previous_community = (char *)previous_community;
    return registry_emit(self->pg, type, "volunteer", v->id, v->community, &e.msg.base);
}

//  Copy a repeated string field into a NULL-free pointer array view.
#define S_TAGS(req, field) (const char *const *)(req)->field, (req)->n_##field

// ---------------------------------------------------------------- sign-up

//  registry.SignUp: a person registers as a volunteer, by themselves (with a
//  password, answered with a login token) or entered by staff covering the
//  community; the community comes from its code or a signed join code.
static int
s_sign_up(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__SignUpRequest *req = (const Linli__Registry__SignUpRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);

    //  The community: given, or carried by a join code (a signed QR payload).
    char community[16] = "";
    if (req->join_code) {
        char payload[128];
        long long expires = 0;
        if (linli_verify(req->join_code, payload, sizeof payload) ||
            sscanf(payload, "join:%12[0-9]:%lld", community, &expires) != 2 ||
            strlen(community) != 12)
            return linli_fail_field(request, 400, "invalid_join_code", "join_code",
                                    "the join code is not valid");
        if (expires < linli_now_ms())
            return linli_fail_field(request, 410, "join_code_expired", "join_code",
                                    "the join code has expired; ask the community for a new one");
        if (req->community && strcmp(req->community, community))
            return linli_fail_field(request, 400, "invalid_value", "community",
                                    "community and join_code name different communities");
    } else if (req->community) {
        snprintf(community, sizeof community, "%s", req->community);
    } else {
        return linli_fail_field(request, 400, "missing_field", "community",
                                "community or join_code is required");
    }

    //  Staff covering the community enter people on their behalf; anyone
    //  else signs up themselves, with a password, rate-limited per address.
    bool by_staff = linli_auth_rank_over(caller, community) > 0;
    //  Staff entering someone outside their area is an action out of scope,
    //  not a self sign-up.
    bool is_staff = registry_staff_scope(caller, 1) != NULL;
    if (is_staff && !by_staff)
        return linli_fail_field(request, 403, "out_of_scope", "community",
                                "that community is outside your area");
    if (!by_staff) {
        if (!req->password)
            return linli_fail_field(request, 400, "missing_field", "password",
                                    "password is required");
        if (strlen(req->password) < 8)
            return linli_fail_field(request, 400, "too_short", "password",
                                    "password must be at least 8 characters");
        char bucket[96];
        bool allowed;
        int retry_after;
        snprintf(bucket, sizeof bucket, "signup:addr:%.64s",
                 caller->client_addr && *caller->client_addr ? caller->client_addr : "-");
        if (linli_ratelimit_hit(self->redis, bucket, self->signup_per_addr, 3600, &allowed,
                                &retry_after))
            return linli_fail(request, 503, "rate_limit_unavailable",
                              "sign-up is paused: the rate limiter cannot be reached");
        if (!allowed) {
            linli_request_set_retry_after(request, retry_after);
            return linli_fail(request, 429, "too_many_sign_ups",
                              "too many sign-ups from this address; try again later");
        }
    }

    registry_person_input_t in = {
        .name = req->name,
        .id_number = req->id_number,
        .phone = req->phone,
        .community = community,
        .gender = req->gender,
        .political_status = req->political_status,
        .skills = S_TAGS(req, skills),
        .free_slots = S_TAGS(req, free_slots),
    };
    registry_person_t person;
    registry_person_error_t perr;
    if (registry_person_prepare(&in, registry_this_year(), &person, &perr))
        return linli_fail_field(request,
                                !strcmp(perr.code, "internal")    ? 500
                                : !strcmp(perr.code, "too_young") ? 422
                                                                  : 400,
                                perr.code, perr.field, "%s", perr.message);
    bool exists;
    if (registry_community_exists(self->store, community, &exists))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!exists)
        return linli_fail_field(request, 422, "unknown_community", "community",
                                "no community has code %s", community);
    char password_hash[160] = "";
    if (req->password && linli_password_hash(req->password, password_hash))
        return linli_fail_field(request, 400, "invalid_value", "password",
                                "the password cannot be used");

    linli_idem_t idem;
    if (linli_idem_begin(self->pg, request, &idem) != LINLI_IDEM_NEW)
        return 0;
    registry_volunteer_t v;
    registry_vol_outcome_t outcome;
    int64_t actor = registry_parse_id(caller->user_id);
    if (registry_volunteer_insert(self->pg, &person, req->password ? password_hash : NULL,
                                  by_staff ? "staff" : "self", by_staff ? actor : 0, &v, &outcome))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (outcome == REGISTRY_VOL_DUP_ID_NUMBER)
        return linli_idem_abort(&idem, request, 409, "already_registered",
                                "this person is registered as a volunteer already");
    if (outcome == REGISTRY_VOL_DUP_PHONE)
        return linli_idem_abort(&idem, request, 409, "phone_taken",
                                "an account with this phone exists");
    if (s_emit(self, "linli.registry.volunteer.registered", &v, by_staff ? caller->user_id : "self",
               NULL, NULL))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the event could not be recorded");

    Linli__Registry__SignUpReply reply = LINLI__REGISTRY__SIGN_UP_REPLY__INIT;
    s_view_t view;
    char token[96];
    int64_t expires_at = 0;
    if (by_staff) {
        s_view(&v, caller, &view);
    } else {
        //  The new volunteer is its own caller from now on.
        char id[24];
        snprintf(id, sizeof id, "%" PRId64, v.id);
        Linli__Caller who = LINLI__CALLER__INIT;
        who.user_id = id;
        who.kind = "volunteer";
        s_view(&v, &who, &view);
        //  The stored first reply has no token (a replay says: log in); the
        //  token is made once the account is committed. Without Redis the
        //  volunteer simply logs in later.
        reply.volunteer = &view.msg;
        if (linli_idem_finish(&idem, 201, &reply.base))
            return linli_fail(request, 503, "store_unavailable",
                              "the change could not be committed");
        if (linli_session_create(self->redis, &who, self->session_ttl_s, token, sizeof token,
                                 &expires_at) == 0) {
            reply.token = token;
            reply.has_expires_at = true;
            reply.expires_at = expires_at;
        }
        int rc = linli_reply(request, 201, &reply.base);
        sodium_memzero(token, sizeof token);
        return rc;
    }
    reply.volunteer = &view.msg;
    return linli_idem_commit(&idem, request, 201, &reply.base);
}

// ---------------------------------------------------------------- read, update

//  True when the caller leads, now, an active organisation the volunteer
//  belongs to (its session holds the org_leader grant, and the database
//  still names it leader). -1 when the store failed.
static int
s_leads_member(registry_t *self, const Linli__Caller *caller, int64_t volunteer)
{
    bool has_grant = false;
    for (size_t i = 0; i < caller->n_grants; i++)
        if (!strcmp(caller->grants[i]->role, "org_leader"))
            has_grant = true;
    int64_t leader = registry_parse_id(caller->user_id);
    if (!has_grant || !leader)
        return 0;
    bool led;
    if (registry_volunteer_led_by(self->pg, volunteer, leader, &led))
        return -1;
    return led;
}

//  May caller see v (NULL: there is none)? The person and covering staff
//  whole (*whole), the leader of one of its organisations masked when
//  allow_leader. 1 or 0; -1 when the store failed.
static int
s_may_see(registry_t *self, const Linli__Caller *caller, const registry_volunteer_t *v,
          bool allow_leader, bool *whole)
{
    *whole = v && s_sees_whole(caller, v);
    if (!v || *whole)
        return v != NULL;
    return allow_leader ? s_leads_member(self, caller, v->id) : 0;
}

//  Answer a volunteer the caller may not see (404), or a failed store (503).
static int
s_fail_unseen(linli_request_t *request, int seen)
{
    if (seen < 0)
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    return linli_fail(request, 404, "volunteer_not_found", "no such volunteer");
}

//  Load a volunteer the caller may see (s_may_see). Answers 404 (or 503)
//  itself and returns -1.
static int
s_load_visible(registry_t *self, linli_request_t *request, const char *id_text, bool lock,
               bool allow_leader, registry_volunteer_t *v)
{
    int64_t id = registry_parse_id(id_text);
    bool found = false, whole;
    if (id && registry_volunteer_get(self->pg, id, lock, v, &found)) {
        linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
        return -1;
    }
    int seen =
        s_may_see(self, linli_request_caller(request), found ? v : NULL, allow_leader, &whole);
    if (seen <= 0) {
        s_fail_unseen(request, seen);
        return -1;
    }
    return 0;
}

//  registry.GetVolunteer: the person and staff covering its community see it
//  whole; the leader of one of its organisations sees it masked.
static int
s_get(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__GetVolunteerRequest *req =
        (const Linli__Registry__GetVolunteerRequest *)msg;
    registry_volunteer_t v;
    if (s_load_visible(self, request, req->id, false, true, &v))
        return 0;
    s_view_t view;
    s_view(&v, linli_request_caller(request), &view);
    return linli_reply(request, 200, &view.msg.base);
}

//  registry.GetVolunteer for requests that arrived together: one query for
//  all of them, then each answered by the same rules as s_get.
static int
s_get_batch(void *self_, linli_request_t **requests, const ProtobufCMessage **msgs, size_t n)
{
    registry_t *self = (registry_t *)self_;
    int64_t *ids = calloc(n, sizeof *ids);
    registry_volunteer_t *rows = calloc(n, sizeof *rows);
    size_t found = 0;
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = registry_parse_id(((const Linli__Registry__GetVolunteerRequest *)msgs[i])->id);
    if (!ids || !rows || registry_volunteer_get_many(self->pg, ids, n, rows, &found)) {
        for (size_t i = 0; i < n; i++)
            linli_fail(requests[i], 503, "store_unavailable", "the registry store is unavailable");
        free(rows);
        free(ids);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const Linli__Caller *caller = linli_request_caller(requests[i]);
        const registry_volunteer_t *v = NULL;
        for (size_t k = 0; k < found && !v; k++)
            if (ids[i] && rows[k].id == ids[i])
                v = &rows[k];
        bool whole;
        int seen = s_may_see(self, caller, v, true, &whole);
        if (seen <= 0) {
            s_fail_unseen(requests[i], seen);
        } else {
            s_view_t view;
            s_view_as(v, whole, &view);
            linli_reply(requests[i], 200, &view.msg.base);
        }
    }
    free(rows);
    free(ids);
    return 0;
}

//  registry.UpdateVolunteer: the person changes its skills, free time and
//  political status; staff covering it also its name and community (a move
//  inside their own area).
static int
s_update(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__UpdateVolunteerRequest *req =
        (const Linli__Registry__UpdateVolunteerRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    //  Check what can be checked before the transaction.
    if (req->gender)
        return linli_fail_field(request, 400, "read_only", "gender",
                                "gender follows the ID number");
    for (size_t i = 0; i < req->n_skills; i++)
        if (!registry_skill_valid(req->skills[i]))
            return linli_fail_field(request, 400, "invalid_value", "skills",
                                    "skills are words of a-z, 0-9 and _");
    for (size_t i = 0; i < req->n_free_slots; i++)
        if (!registry_slot_valid(req->free_slots[i]))
            return linli_fail_field(request, 400, "invalid_value", "free_slots",
                                    "free_slots are like sat_am");

    linli_idem_t idem;
    if (linli_idem_begin(self->pg, request, &idem) != LINLI_IDEM_NEW)
        return 0;
    registry_volunteer_t v;
    if (s_load_visible(self, request, req->id, true, false, &v)) {
        linli_pg_rollback(self->pg);
        return 0;
    }
    bool staff = linli_auth_rank_over(caller, v.community) > 0;
    char previous[16];
    snprintf(previous, sizeof previous, "%s", v.community);
    if ((req->name || req->community) && !staff)
        return linli_idem_abort(&idem, request, 403, "forbidden",
                                "only staff change a volunteer's name or community");
    if (req->name) {
        registry_person_error_t perr;
        if (registry_name_check(req->name, &perr))
            return linli_idem_abort(&idem, request, 400, perr.code, "%s", perr.message);
        snprintf(v.name, sizeof v.name, "%s", req->name);
    }
    if (req->community && strcmp(req->community, v.community)) {
        bool exists;
        if (linli_auth_rank_over(caller, req->community) < 1)
            return linli_idem_abort(&idem, request, 403, "out_of_scope",
                                    "the new community is outside your area");
        if (registry_community_exists(self->store, req->community, &exists))
            return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                    "the registry store is unavailable");
        if (!exists)
            return linli_idem_abort(&idem, request, 422, "unknown_community",
                                    "no community has code %s", req->community);
        snprintf(v.community, sizeof v.community, "%s", req->community);
    }
    if (req->political_status) {
        if (!registry_political_valid(req->political_status))
            return linli_idem_abort(&idem, request, 400, "invalid_value",
                                    "political_status is not one of the known values");
        snprintf(v.political_status, sizeof v.political_status, "%s", req->political_status);
    }
    //  Lists are replaced whole, duplicates dropped (as at sign-up).
    if ((req->n_skills || (req->has_clear_skills && req->clear_skills)) &&
        registry_tags_literal(S_TAGS(req, skills), registry_skill_valid, v.skills, sizeof v.skills))
        return linli_idem_abort(&idem, request, 400, "invalid_value", "too many skills");
    if ((req->n_free_slots || (req->has_clear_free_slots && req->clear_free_slots)) &&
        registry_tags_literal(S_TAGS(req, free_slots), registry_slot_valid, v.free_slots,
                              sizeof v.free_slots))
        return linli_idem_abort(&idem, request, 400, "invalid_value", "too many free slots");
    if (registry_volunteer_save(self->pg, &v) ||
        s_emit(self, "linli.registry.volunteer.updated", &v, caller->user_id ? caller->user_id : "",
               NULL, strcmp(previous, v.community) ? previous : NULL))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    s_view_t view;
    s_view(&v, caller, &view);
    return linli_idem_commit(&idem, request, 200, &view.msg.base);
}

// ---------------------------------------------------------------- status

//  The allowed moves of a volunteer's status.
static bool
s_transition_ok(const char *from, const char *to)
{
    static const char *moves[][2] = {
        {"pending", "verified"}, {"pending", "left"},       {"verified", "suspended"},
        {"verified", "left"},    {"suspended", "verified"}, {"suspended", "left"},
    };
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
        if (!strcmp(from, moves[i][0]) && !strcmp(to, moves[i][1]))
            return true;
    return false;
}

//  Move a volunteer to status `to`: staff covering it, or the person leaving.
static int
s_change_status(registry_t *self, linli_request_t *request, const char *id, const char *to,
                const char *reason)
{
    const Linli__Caller *caller = linli_request_caller(request);
    linli_idem_t idem;
    if (linli_idem_begin(self->pg, request, &idem) != LINLI_IDEM_NEW)
        return 0;
    registry_volunteer_t v;
    if (s_load_visible(self, request, id, true, false, &v)) {
        linli_pg_rollback(self->pg);
        return 0;
    }
    bool staff = linli_auth_rank_over(caller, v.community) > 0;
    if (!staff && strcmp(to, "left"))
        return linli_idem_abort(&idem, request, 403, "forbidden",
                                "only staff verify or suspend volunteers");
    if (!s_transition_ok(v.status, to))
        return linli_idem_abort(&idem, request, 409, "bad_transition",
                                "a %s volunteer cannot become %s", v.status, to);
    char previous[16];
    snprintf(previous, sizeof previous, "%s", v.status);
    const char *type = !strcmp(to, "verified") && !strcmp(previous, "pending")
                           ? "linli.registry.volunteer.verified"
                           : "linli.registry.volunteer.status_changed";
    if (registry_volunteer_set_status(self->pg, &v, to, registry_parse_id(caller->user_id),
                                      reason) ||
        s_emit(self, type, &v, caller->user_id ? caller->user_id : "", previous, NULL))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    s_view_t view;
    s_view(&v, caller, &view);
    if (!registry_volunteer_barred(to))
        return linli_idem_commit(&idem, request, 200, &view.msg.base);
    //  A suspended or departed volunteer keeps no session: all of them end
    //  with the change, before the answer, so a token tried after it is
    //  refused.
    return registry_commit_ending_sessions(self, &idem, request, 200, &view.msg.base, view.id);
}

const char *
registry_volunteer_barred(const char *status)
{
    return !strcmp(status, "suspended") ? "volunteer_suspended"
           : !strcmp(status, "left")    ? "volunteer_left"
                                        : NULL;
}

//  registry.VerifyVolunteer: a community worker or above confirms a pending volunteer.
static int
s_verify(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    const Linli__Registry__VerifyVolunteerRequest *req =
        (const Linli__Registry__VerifyVolunteerRequest *)msg;
    return s_change_status((registry_t *)self_, request, req->id, "verified", NULL);
}

//  registry.SetVolunteerStatus: suspend, reinstate, or mark as left.
static int
s_set_status(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    const Linli__Registry__SetVolunteerStatusRequest *req =
        (const Linli__Registry__SetVolunteerStatusRequest *)msg;
    return s_change_status((registry_t *)self_, request, req->id, req->status, req->reason);
}

// ---------------------------------------------------------------- list

//  registry.ListVolunteers: staff list the volunteers of an area of theirs.
static int
s_list(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__ListVolunteersRequest *req =
        (const Linli__Registry__ListVolunteersRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    const char *area = req->area ? req->area : registry_staff_scope(caller, 1);
    if (!area || linli_auth_rank_over(caller, area) < 1)
        return linli_fail_field(request, 403, "out_of_scope", "area", "that area is outside yours");
    size_t limit;
    int64_t after;
    if (registry_page_args(request, req->has_limit, req->limit, req->cursor, &limit, &after))
        return 0;

    registry_volunteer_filter_t f = {.area = area, .skill = req->skill, .status = req->status};
    char hash[65];
    if (req->q) {
        //  A whole phone or ID number is matched by its keyed hash (they are
        //  stored sealed); anything else is a name prefix.
        char phone[LINLI_PHONE_CAP], reason[LINLI_ID_REASON_CAP], id[24];
        snprintf(id, sizeof id, "%s", req->q);
        if (strlen(id) == 18 && id[17] == 'x')
            id[17] = 'X';
        int rc = 0;
        if (linli_phone_normalize(req->q, phone, sizeof phone) == 0) {
            rc = linli_pii_hash("phone", phone, hash);
            f.phone_hash = hash;
        } else if (linli_id_number_check(id, reason, sizeof reason) == 0) {
            rc = linli_pii_hash("id_number", id, hash);
            f.id_hash = hash;
        } else {
            f.name_prefix = req->q;
        }
        if (rc)
            return linli_fail(request, 503, "overloaded", "the search could not be prepared");
    }
    registry_page_t page;
    if (registry_page_alloc(&page, limit, sizeof(registry_volunteer_t), sizeof(s_view_t)))
        return linli_fail(request, 503, "overloaded", "out of memory");
    registry_volunteer_t *rows = page.rows;
    s_view_t *views = page.views;
    int rc;
    if (registry_volunteer_list(self->pg, &f, after, rows, limit, &page.n, &page.more)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else {
        Linli__Registry__ListVolunteersReply reply = LINLI__REGISTRY__LIST_VOLUNTEERS_REPLY__INIT;
        for (size_t i = 0; i < page.n; i++) {
            s_view(&rows[i], caller, &views[i]);
            page.items[i] = &views[i].msg.base;
        }
        rc = registry_page_reply(&page, request, &reply.base, page.n ? views[page.n - 1].id : NULL);
    }
    registry_page_free(&page);
    return rc;
}

//  A status change as a message (strings borrowed from c and the view).
typedef struct {
    Linli__Registry__StatusChange msg;
    char id[24];
    char actor[24];
} s_change_view_t;

//  registry.VolunteerStatusLog: who changed a volunteer's status, when and
//  why — for staff covering its community (a reason is an internal note);
//  anyone else 404.
static int
s_status_log(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__VolunteerStatusLogRequest *req =
        (const Linli__Registry__VolunteerStatusLogRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    size_t limit;
    int64_t after;
    if (registry_page_args(request, req->has_limit, req->limit, req->cursor, &limit, &after))
        return 0;
    int64_t id = registry_parse_id(req->id);
    registry_volunteer_t v;
    bool found = false;
    if (id && registry_volunteer_get(self->pg, id, false, &v, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!found || linli_auth_rank_over(caller, v.community) < 1)
        return linli_fail(request, 404, "volunteer_not_found", "no such volunteer");
    registry_page_t page;
    if (registry_page_alloc(&page, limit, sizeof(registry_status_change_t),
                            sizeof(s_change_view_t)))
        return linli_fail(request, 503, "overloaded", "out of memory");
    registry_status_change_t *rows = page.rows;
    s_change_view_t *views = page.views;
    int rc;
    if (registry_volunteer_status_log(self->pg, id, after, rows, limit, &page.n, &page.more)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else {
        Linli__Registry__VolunteerStatusLogReply reply =
            LINLI__REGISTRY__VOLUNTEER_STATUS_LOG_REPLY__INIT;
        for (size_t i = 0; i < page.n; i++) {
            s_change_view_t *cv = &views[i];
            linli__registry__status_change__init(&cv->msg);
            snprintf(cv->id, sizeof cv->id, "%" PRId64, rows[i].id);
            cv->msg.id = cv->id;
            cv->msg.from_status = rows[i].from_status;
            cv->msg.to_status = rows[i].to_status;
            if (rows[i].has_reason)
                cv->msg.reason = rows[i].reason;
            if (rows[i].actor) {
                snprintf(cv->actor, sizeof cv->actor, "%" PRId64, rows[i].actor);
                cv->msg.actor = cv->actor;
            }
            cv->msg.changed_at = rows[i].changed_at_ms;
            page.items[i] = &cv->msg.base;
        }
        rc = registry_page_reply(&page, request, &reply.base, page.n ? views[page.n - 1].id : NULL);
    }
    registry_page_free(&page);
    return rc;
}

// ---------------------------------------------------------------- join codes

//  registry.JoinCode: a community's sign-up code for a QR poster, signed,
//  valid for 30 days; staff covering the community.
static int
s_join_code(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__JoinCodeRequest *req = (const Linli__Registry__JoinCodeRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    if (linli_auth_rank_over(caller, req->code) < 1)
        return linli_fail(request, 403, "out_of_scope", "that community is outside your area");
    bool exists;
    if (registry_community_exists(self->store, req->code, &exists))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!exists)
        return linli_fail(request, 404, "area_not_found", "no community has code %s", req->code);
    int64_t expires = linli_now_ms() + (int64_t)S_JOIN_CODE_DAYS * 24 * 3600 * 1000;
    char payload[64], code[160];
    snprintf(payload, sizeof payload, "join:%s:%" PRId64, req->code, expires);
    if (linli_sign(payload, code, sizeof code))
        return linli_fail(request, 500, "internal", "the code could not be signed");
    Linli__Registry__JoinCodeReply reply = LINLI__REGISTRY__JOIN_CODE_REPLY__INIT;
    reply.community = req->code;
    reply.join_code = code;
    reply.expires_at = expires;
    return linli_reply(request, 200, &reply.base);
}

#define REG(name) &linli__registry__##name##__descriptor

//  Reads answered in batches (linli_worker drains them together).
const linli_batch_route_t registry_volunteer_batches[] = {
    {"registry.GetVolunteer", s_get_batch, 64},
    {NULL, NULL, 0},
};

const linli_route_t registry_volunteer_routes[] = {
    {"registry.SignUp", REG(sign_up_request), s_sign_up},
    {"registry.GetVolunteer", REG(get_volunteer_request), s_get},
    {"registry.UpdateVolunteer", REG(update_volunteer_request), s_update},
    {"registry.VerifyVolunteer", REG(verify_volunteer_request), s_verify},
    {"registry.SetVolunteerStatus", REG(set_volunteer_status_request), s_set_status},
    {"registry.ListVolunteers", REG(list_volunteers_request), s_list},
    {"registry.JoinCode", REG(join_code_request), s_join_code},
    {"registry.VolunteerStatusLog", REG(volunteer_status_log_request), s_status_log},
    {NULL, NULL, NULL},
};
