//  registry_handlers: one function per registry method; protobuf in,
//  protobuf out, no SQL.
#include "registry.h"
#include "registry_util.h"
#include "registry_service.h"
#include "registry_volunteers_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "linli_auth.h"
#include "linli_crypto.h"
#include "linli_idem.h"
#include "linli_log.h"
#include "linli_ratelimit.h"
#include "linli_session.h"
#include "linli/registry.pb-c.h"

// ---------------------------------------------------------------- helpers

//  Fill an Area message from a store row (strings borrowed from a).
static void
s_area_msg(const registry_area_t *a, Linli__Registry__Area *m)
{
    linli__registry__area__init(m);
    m->code = (char *)a->code;
    m->name = (char *)a->name;
    m->level = (char *)a->level;
    if (*a->parent)
        m->parent = (char *)a->parent;
    if (a->has_center) {
        m->has_lat = m->has_lng = true;
        m->lat = a->lat;
        m->lng = a->lng;
    }
    m->has_children = true;
    m->children = a->children;
}

//  What one account looks like to one caller: the phone whole to the person
//  and to staff whose scope covers the account's area, masked to everyone else.
typedef struct {
    Linli__Registry__User user;
    Linli__Grant grant_msgs[REGISTRY_MAX_GRANTS];
    Linli__Grant *grant_ptrs[REGISTRY_MAX_GRANTS];
    char id[24];
    char phone[64];
} s_user_view_t;

static void
s_user_msg(const registry_account_t *a, const Linli__Caller *caller, s_user_view_t *v)
{
    linli__registry__user__init(&v->user);
    snprintf(v->id, sizeof v->id, "%" PRId64, a->id);
    v->user.id = v->id;
    v->user.kind = (char *)a->kind;
    v->user.name = (char *)a->name;
    v->user.area = (char *)a->area;
    v->user.status = (char *)a->status;
    v->user.has_created_at = true;
    v->user.created_at = a->created_at_ms;
    char *phone = linli_pii_decrypt(a->phone_enc);
    if (phone) {
        bool self_view = caller->user_id && !strcmp(caller->user_id, v->id);
        if (self_view || linli_auth_rank_over(caller, a->area) > 0)
            snprintf(v->phone, sizeof v->phone, "%s", phone);
        else
            linli_mask_phone(phone, v->phone, sizeof v->phone);
        sodium_memzero(phone, strlen(phone));
        free(phone);
        v->user.phone = v->phone;
    }
    v->user.n_grants = registry_grant_msgs(a, v->grant_msgs, v->grant_ptrs);
    v->user.grants = v->grant_ptrs;
}

// ---------------------------------------------------------------- areas

//  registry.GetArea: one area by code; public.
static int
s_get_area(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__GetAreaRequest *req = (const Linli__Registry__GetAreaRequest *)msg;
    registry_area_t area;
    bool found;
    if (registry_store_area_get(self->store, req->code, &area, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!found)
        return linli_fail(request, 404, "area_not_found", "no area has code %s", req->code);
    Linli__Registry__Area reply;
    s_area_msg(&area, &reply);
    return linli_reply(request, 200, &reply.base);
}

//  registry.ListAreas: the children of an area (or the top), a page at a time.
static int
s_list_areas(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__ListAreasRequest *req = (const Linli__Registry__ListAreasRequest *)msg;
    size_t limit = req->has_limit ? (size_t)req->limit : 100;
    if (limit < 1 || limit > REGISTRY_PAGE_MAX)
        return linli_fail_field(request, 400, "out_of_range", "limit", "limit must be from 1 to %d",
                                REGISTRY_PAGE_MAX);
    registry_page_t page;
    if (registry_page_alloc(&page, limit, sizeof(registry_area_t), sizeof(Linli__Registry__Area)))
        return linli_fail(request, 503, "overloaded", "out of memory");
    registry_area_t *rows = page.rows;
    Linli__Registry__Area *items = page.views;
    int rc;
    if (registry_store_area_children(self->store, req->parent ? req->parent : "",
                                     req->cursor ? req->cursor : "", rows, limit, &page.n,
                                     &page.more)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else {
        Linli__Registry__ListAreasReply reply = LINLI__REGISTRY__LIST_AREAS_REPLY__INIT;
        for (size_t i = 0; i < page.n; i++) {
            s_area_msg(&rows[i], &items[i]);
            page.items[i] = &items[i].base;
        }
        rc =
            registry_page_reply(&page, request, &reply.base, page.n ? rows[page.n - 1].code : NULL);
    }
    registry_page_free(&page);
    return rc;
}

// ---------------------------------------------------------------- sessions

//  The login limits for a phone: attempts per client address, and wrong
//  passwords (or codes) per phone, whose bucket name goes to bucket. 0 when
//  the caller may try; otherwise the request is answered (429 or 503) and 1.
static int
s_login_limits(registry_t *self, linli_request_t *request, const char *phone_hash, char *bucket,
               size_t cap)
{
    const Linli__Caller *caller = linli_request_caller(request);
    bool allowed = true;
    int retry_after = 0;
    snprintf(bucket, cap, "login:addr:%s",
             caller->client_addr && *caller->client_addr ? caller->client_addr : "-");
    if (linli_ratelimit_hit(self->redis, bucket, self->login_per_addr, self->login_window_s,
                            &allowed, &retry_after)) {
        linli_fail(request, 503, "rate_limit_unavailable",
                   "logins are paused: the rate limiter cannot be reached");
        return 1;
    }
    snprintf(bucket, cap, "login:phone:%s", phone_hash);
    if (allowed && linli_ratelimit_peek(self->redis, bucket, self->login_failures,
                                        self->login_window_s, &allowed, &retry_after)) {
        linli_fail(request, 503, "rate_limit_unavailable",
                   "logins are paused: the rate limiter cannot be reached");
        return 1;
    }
    if (!allowed) {
        linli_request_set_retry_after(request, retry_after);
        linli_fail(request, 429, "too_many_attempts", "too many login attempts; try again in %d s",
                   retry_after);
        return 1;
    }
    return 0;
}

//  The start of a login by phone (with a password or a code): the phone
//  checked, the limits applied (the phone's bucket name into bucket), the
//  account looked up (*found). 0 to go on; 1 when the request is answered.
static int
s_login_begin(registry_t *self, linli_request_t *request, const char *phone_in, char *bucket,
              size_t cap, registry_account_t *account, bool *found)
{
    char phone[32], phone_hash[65];
    if (linli_phone_normalize(phone_in, phone, sizeof phone)) {
        linli_fail_field(request, 400, "invalid_format", "phone",
                         "phone must be a mainland mobile number");
        return 1;
    }
    if (linli_pii_hash("phone", phone, phone_hash)) {
        linli_fail(request, 503, "overloaded", "the phone could not be looked up");
        return 1;
    }
    if (s_login_limits(self, request, phone_hash, bucket, cap))
        return 1;
    if (registry_store_account_by_phone(self->store, phone_hash, account, found)) {
        linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
        return 1;
    }
    return 0;
}

//  Count one failure against the phone's bucket.
static void
s_login_failed(registry_t *self, const char *bucket)
{
    bool ignored;
    int ra;
    if (linli_ratelimit_hit(self->redis, bucket, self->login_failures, self->login_window_s,
                            &ignored, &ra))
        linli_warn("registry: a failed login could not be counted (rate limiter unavailable)");
}

//  Answer the refusal of a volunteer barred from sessions (code from
//  registry_volunteer_barred). Told only to whoever proved the password or
//  code: the status comes with the account, read before either was checked,
//  so an unknown phone and a wrong password take the same time either way.
static int
s_fail_barred(linli_request_t *request, const char *code)
{
    return !strcmp(code, "volunteer_left")
               ? linli_fail(request, 403, code, "this volunteer has left; it cannot log in")
               : linli_fail(request, 403, code,
                            "this volunteer is suspended; it can log in once reinstated");
}

//  Whether a and b hold the same grants, in any order (neither repeats one).
static bool
s_same_grants(const registry_account_t *a, const registry_account_t *b)
{
    if (a->n_grants != b->n_grants)
        return false;
    for (size_t i = 0; i < a->n_grants; i++) {
        bool held = false;
        for (size_t k = 0; k < b->n_grants && !held; k++)
            held = !strcmp(a->grants[i].role, b->grants[k].role) &&
                   !strcmp(a->grants[i].scope, b->grants[k].scope);
        if (!held)
            return false;
    }
    return true;
}

//  A session for account, answered as a LoginReply (200). proved_hash: the
//  password hash the caller's password matched (NULL when it proved itself
//  by a code that just set the password).
//
//  The account is read again once the session is listed: a change committed
//  before that read (disabled, new grants, a new password, a volunteer
//  suspended or gone) is seen here and the session ended; one committed
//  after it ends the session by revocation. New grants make the session
//  again with them.
static int
s_login_answer(registry_t *self, linli_request_t *request, const registry_account_t *proved,
               const char *proved_hash, const char *bucket)
{
    registry_account_t account = *proved;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, account.id);
    char token[96];
    int64_t expires_at;
    for (int attempt = 0;; attempt++) {
        Linli__Grant grant_msgs[REGISTRY_MAX_GRANTS];
        Linli__Grant *grant_ptrs[REGISTRY_MAX_GRANTS];
        Linli__Caller who = LINLI__CALLER__INIT;
        who.user_id = id;
        who.kind = account.kind;
        who.n_grants = registry_grant_msgs(&account, grant_msgs, grant_ptrs);
        who.grants = grant_ptrs;
        if (linli_session_create(self->redis, &who, self->session_ttl_s, token, sizeof token,
                                 &expires_at))
            return linli_fail(request, 503, "session_store_unavailable",
                              "sessions cannot be created right now");
        registry_account_t now;
        bool found = false;
        int rc = registry_store_account_get(self->store, account.id, &now, &found);
        const char *barred = found ? registry_volunteer_barred(now.volunteer_status) : NULL;
        bool same_password = found && (!proved_hash || !strcmp(proved_hash, now.password_hash));
        bool active = found && !strcmp(now.status, "active");
        bool same_grants = found && s_same_grants(&account, &now);
        if (!rc && same_password && active && !barred && same_grants)
            break;
        char hash[LINLI_HASH_HEX_CAP];
        linli_token_hash(token, hash);
        sodium_memzero(token, sizeof token);
        if (linli_session_delete(self->redis, id, hash))
            linli_warn("registry: a refused session of account %s could not be ended", id);
        if (rc)
            return linli_fail(request, 503, "store_unavailable",
                              "the registry store is unavailable");
        if (!same_password)
            return linli_fail(request, 401, "bad_credentials", "wrong phone or password");
        if (!active)
            return linli_fail(request, 403, "account_disabled", "this account is disabled");
        if (barred)
            return s_fail_barred(request, barred);
        if (attempt == 2)
            return linli_fail(request, 503, "account_changing",
                              "the account's roles are being changed; try again");
        account = now; //  new grants: a session with them
    }
    if (linli_ratelimit_reset(self->redis, bucket))
        linli_warn("registry: the failed logins of a phone could not be reset");

    s_user_view_t view;
    Linli__Caller self_caller = LINLI__CALLER__INIT;
    self_caller.user_id = id;
    s_user_msg(&account, &self_caller, &view);
    Linli__Registry__LoginReply reply = LINLI__REGISTRY__LOGIN_REPLY__INIT;
    reply.token = token;
    reply.expires_at = expires_at;
    reply.user = &view.user;
    int rc = linli_reply(request, 200, &reply.base);
    sodium_memzero(token, sizeof token);
    return rc;
}

//  registry.Login: phone + password -> bearer token. Wrong passwords are
//  counted per phone, attempts per client address; both answer 429 past the limit.
static int
s_login(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__LoginRequest *req = (const Linli__Registry__LoginRequest *)msg;
    char bucket[160];
    registry_account_t account;
    bool found;
    if (s_login_begin(self, request, req->phone, bucket, sizeof bucket, &account, &found))
        return 0;
    //  Verify against a dummy hash when there is no account, so the answer
    //  takes as long and says as little either way.
    //  An account without a password (imported, not yet activated) takes as
    //  long to refuse as any other.
    bool usable = found && *account.password_hash;
    bool ok = linli_password_verify(usable ? account.password_hash : linli_password_dummy(),
                                    req->password) &&
              usable;
    if (!ok) {
        s_login_failed(self, bucket);
        return linli_fail(request, 401, "bad_credentials", "wrong phone or password");
    }
    if (strcmp(account.status, "active"))
        return linli_fail(request, 403, "account_disabled", "this account is disabled");
    const char *barred = registry_volunteer_barred(account.volunteer_status);
    if (barred)
        return s_fail_barred(request, barred);
    return s_login_answer(self, request, &account, account.password_hash, bucket);
}

// ---------------------------------------------------------------- password codes

//  The keyed hash of account id's code: bound to the account, so a code is
//  worth nothing for another phone. 0 or -1 (out of memory).
static int
s_code_hash(int64_t account_id, const char *code, char out[65])
{
    char bound[48];
    snprintf(bound, sizeof bound, "%" PRId64 ":%s", account_id, code);
    int rc = linli_pii_hash("password_code", bound, out);
    sodium_memzero(bound, sizeof bound);
    return rc;
}

//  registry.IssuePasswordCode: staff covering a volunteer give it a
//  one-time code to set its password with (imported volunteers have none;
//  a forgotten one is replaced). Replaces an earlier code. Anyone else: 404.
static int
s_issue_password_code(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__IssuePasswordCodeRequest *req =
        (const Linli__Registry__IssuePasswordCodeRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    int64_t id = registry_parse_id(req->id);
    registry_account_t account;
    bool found = false;
    if (id > 0 && registry_store_account_get(self->store, id, &account, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    //  Volunteers only, and only inside the caller's staff scope.
    if (!found || strcmp(account.kind, "volunteer") ||
        linli_auth_rank_over(caller, account.area) < 1)
        return linli_fail(request, 404, "volunteer_not_found", "no such volunteer");
    if (strcmp(account.status, "active"))
        return linli_fail(request, 409, "account_disabled", "this account is disabled");
    //  Whoever sets the password acts with the account's grants: a volunteer
    //  who holds some (an organisation's leader) gets codes from a city admin.
    if (account.n_grants > 0 &&
        linli_auth_rank_over(caller, account.area) < linli_auth_rank(LINLI_ROLE_CITY_ADMIN))
        return linli_fail(request, 403, "holds_grants",
                          "this volunteer holds grants; a city admin issues its code");

    char code[9];
    for (int i = 0; i < 8; i++)
        code[i] = (char)('0' + randombytes_uniform(10));
    code[8] = '\0';
    char hash[65];
    if (s_code_hash(id, code, hash))
        return linli_fail(request, 503, "overloaded", "the code could not be made");
    int64_t expires_at = 0;
    int64_t by = registry_parse_id(caller->user_id);
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    Linli__Registry__AccountEvent data = LINLI__REGISTRY__ACCOUNT_EVENT__INIT;
    data.id = idbuf;
    data.kind = account.kind;
    data.area = account.area;
    data.actor = caller->user_id;
    if (linli_pg_begin(self->pg) ||
        registry_store_password_code_put(self->store, id, hash, by, self->password_code_ttl_s,
                                         &expires_at) ||
        registry_emit(self->pg, "linli.registry.account.password_code_issued", "account", id,
                      account.area, &data.base) ||
        linli_pg_commit(self->pg)) {
        linli_pg_rollback(self->pg);
        sodium_memzero(code, sizeof code);
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    }
    Linli__Registry__PasswordCode reply = LINLI__REGISTRY__PASSWORD_CODE__INIT;
    reply.account_id = idbuf;
    reply.code = code;
    reply.expires_at = expires_at;
    int rc = linli_reply(request, 201, &reply.base);
    sodium_memzero(code, sizeof code);
    return rc;
}

//  hash_fn of registry_store_password_code_use: the new password's hash.
static char *
s_hash_password(void *arg)
{
    char *out = malloc(crypto_pwhash_STRBYTES);
    if (out && linli_password_hash((const char *)arg, out)) {
        free(out);
        out = NULL;
    }
    return out;
}

//  registry.SetPassword: the person sets a password with the code staff
//  gave, and is logged in. A wrong phone, code, or a used or expired code
//  all answer the same 401; wrong codes count as failed logins (429 after
//  as many), and the code dies after LINLI_LOGIN_MAX_FAILURES wrong tries.
static int
s_set_password(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__SetPasswordRequest *req =
        (const Linli__Registry__SetPasswordRequest *)msg;
    char bucket[160];
    registry_account_t account = {.id = 0};
    bool found;
    if (s_login_begin(self, request, req->phone, bucket, sizeof bucket, &account, &found))
        return 0;
    //  A disabled account keeps its password: refused before the code is
    //  looked at, as a login would be after it.
    if (found && strcmp(account.status, "active"))
        return linli_fail(request, 403, "account_disabled", "this account is disabled");
    //  One transaction: the code used up, the password set and the event,
    //  or a wrong try counted. An unknown phone runs the same look-up (for
    //  account 0), so it takes about as long as a phone without a code.
    char hash[65], idbuf[24];
    if (s_code_hash(found ? account.id : 0, req->code, hash))
        return linli_fail(request, 503, "overloaded", "the code could not be checked");
    snprintf(idbuf, sizeof idbuf, "%" PRId64, found ? account.id : 0);
    registry_code_outcome_t outcome = REGISTRY_CODE_NONE;
    Linli__Registry__AccountEvent data = LINLI__REGISTRY__ACCOUNT_EVENT__INIT;
    data.id = idbuf;
    data.kind = account.kind;
    data.area = account.area;
    data.actor = "self";
    //  The account is read again once the code is used: a suspension since
    //  the look-up is seen before anything is committed.
    registry_account_t now;
    bool still = false;
    if (linli_pg_begin(self->pg) ||
        registry_store_password_code_use(self->store, found ? account.id : 0, hash,
                                         self->login_failures, s_hash_password, req->password,
                                         &outcome) ||
        (outcome == REGISTRY_CODE_OK &&
         registry_store_account_get(self->store, account.id, &now, &still))) {
        linli_pg_rollback(self->pg);
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    }
    //  A suspended or departed volunteer gets no session: told so only once
    //  the code proved it is the person, and rolled back, so the code and
    //  the password stay as they were (a reinstated volunteer may use it).
    const char *barred = outcome == REGISTRY_CODE_OK && still
                             ? registry_volunteer_barred(now.volunteer_status)
                             : NULL;
    if (barred) {
        linli_pg_rollback(self->pg);
        return s_fail_barred(request, barred);
    }
    if (outcome == REGISTRY_CODE_OK &&
        registry_emit(self->pg, "linli.registry.account.password_set", "account", account.id,
                      account.area, &data.base)) {
        linli_pg_rollback(self->pg);
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    }
    //  A new password ends the sessions opened with the old one: first
    //  before the commit (without Redis nothing changes, the code stays
    //  usable), then again after it, for a login with the old password
    //  in between.
    if (outcome == REGISTRY_CODE_OK && linli_session_revoke_user(self->redis, idbuf) < 0) {
        linli_pg_rollback(self->pg);
        return linli_fail(request, 503, "session_store_unavailable",
                          "sessions cannot be ended right now");
    }
    if (linli_pg_commit(self->pg)) {
        linli_pg_rollback(self->pg);
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    }
    if (outcome != REGISTRY_CODE_OK) {
        s_login_failed(self, bucket);
        return linli_fail(request, 401, "bad_code", "wrong phone or code, or the code has expired");
    }
    if (linli_session_revoke_user(self->redis, idbuf) < 0)
        linli_warn("registry: the sessions of account %s could not be ended", idbuf);
    return s_login_answer(self, request, &account, NULL, bucket);
}

//  registry.Logout: end the caller's session.
static int
s_logout(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    (void)msg;
    registry_t *self = (registry_t *)self_;
    const Linli__Caller *caller = linli_request_caller(request);
    if (!caller->session || !*caller->session)
        return linli_fail(request, 401, "unauthenticated", "no session to end");
    if (linli_session_delete(self->redis, caller->user_id, caller->session))
        return linli_fail(request, 503, "session_store_unavailable",
                          "sessions cannot be ended right now");
    Linli__Registry__LogoutReply reply = LINLI__REGISTRY__LOGOUT_REPLY__INIT;
    return linli_reply(request, 200, &reply.base);
}

//  registry.Me: the caller's own account.
static int
s_me(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    (void)msg;
    registry_t *self = (registry_t *)self_;
    const Linli__Caller *caller = linli_request_caller(request);
    int64_t id = registry_parse_id(caller->user_id);
    if (!id)
        return linli_fail(request, 401, "unauthenticated", "log in first");
    registry_account_t account;
    bool found;
    if (registry_store_account_get(self->store, id, &account, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!found)
        return linli_fail(request, 401, "unauthenticated", "this account no longer exists");
    s_user_view_t view;
    s_user_msg(&account, caller, &view);
    return linli_reply(request, 200, &view.user.base);
}

int
registry_commit_ending_sessions(registry_t *self, linli_idem_t *idem, linli_request_t *request,
                                int status, const ProtobufCMessage *body, const char *account_id)
{
    if (linli_session_revoke_user(self->redis, account_id) < 0)
        return linli_idem_abort(idem, request, 503, "session_store_unavailable",
                                "sessions cannot be ended right now; nothing was changed");
    if (linli_idem_finish(idem, status, body))
        return linli_fail(request, 503, "store_unavailable", "the change could not be committed");
    if (linli_session_revoke_user(self->redis, account_id) < 0)
        linli_warn("registry: the sessions of account %s could not be ended after the change",
                   account_id);
    return linli_reply(request, status, body);
}

// ---------------------------------------------------------------- staff

int
registry_emit_staff(registry_t *self, const char *type, const registry_account_t *a,
                    const char *actor, const char *previous_area)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    Linli__Grant grant_msgs[REGISTRY_MAX_GRANTS];
    Linli__Grant *grant_ptrs[REGISTRY_MAX_GRANTS];
    Linli__Registry__StaffEvent data = LINLI__REGISTRY__STAFF_EVENT__INIT;
    data.id = id;
    data.area = (char *)a->area;
    data.n_grants = registry_grant_msgs(a, grant_msgs, grant_ptrs);
    data.grants = grant_ptrs;
    data.actor = (char *)actor;
    data.status = (char *)a->status;
    data.previous_area = (char *)previous_area;
    return registry_emit(self->pg, type, "staff", a->id, a->area, &data.base);
}

//  Check the grants an admin gives a staff account (each a staff role over an
//  existing area of its level, below the caller's role, inside its subtree)
//  and put them, and the area of the highest, in account. 0, or -1 when
//  request was answered.
static int
s_grants_from(registry_t *self, linli_request_t *request, Linli__Grant **grants, size_t n,
              registry_account_t *account)
{
    const Linli__Caller *caller = linli_request_caller(request);
    account->n_grants = 0;
    int best = 0;
    if (n > REGISTRY_MAX_GRANTS) {
        linli_fail_field(request, 400, "too_many", "grants", "at most %d grants",
                         REGISTRY_MAX_GRANTS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const Linli__Grant *g = grants[i];
        char field[48];
        snprintf(field, sizeof field, "grants[%zu]", i);
        registry_area_t area;
        bool found = false;
        if (linli_auth_rank(g->role) == 0 ||
            (int)strlen(g->scope) != linli_auth_scope_len(g->role)) {
            linli_fail_field(request, 400, "invalid_value", field,
                             "a staff role needs a scope of its level's area code");
            return -1;
        }
        if (!linli_auth_can_grant(caller, g->role, g->scope)) {
            //  An area outside the caller's subtree, or a role not below its own.
            linli_fail_field(request, 403, "grant_not_allowed", field,
                             "you may only grant roles below yours inside your area");
            return -1;
        }
        if (registry_store_area_get(self->store, g->scope, &area, &found)) {
            linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
            return -1;
        }
        if (!found) {
            linli_fail_field(request, 422, "unknown_area", field, "no area has code %s", g->scope);
            return -1;
        }
        bool repeated = false; //  the same grant twice is one grant
        for (size_t k = 0; k < account->n_grants && !repeated; k++)
            repeated = !strcmp(account->grants[k].role, g->role) &&
                       !strcmp(account->grants[k].scope, g->scope);
        if (repeated)
            continue;
        registry_grant_t *dst = &account->grants[account->n_grants++];
        snprintf(dst->role, sizeof dst->role, "%s", g->role);
        snprintf(dst->scope, sizeof dst->scope, "%s", g->scope);
        if (linli_auth_rank(g->role) > best) {
            best = linli_auth_rank(g->role);
            snprintf(account->area, sizeof account->area, "%s", g->scope);
        }
    }
    return 0;
}

//  registry.CreateStaff: an admin creates a staff account with grants below
//  its own role and inside its own subtree.
static int
s_create_staff(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__CreateStaffRequest *req =
        (const Linli__Registry__CreateStaffRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);

    registry_account_t account;
    memset(&account, 0, sizeof account);
    snprintf(account.kind, sizeof account.kind, "staff");
    snprintf(account.name, sizeof account.name, "%s", req->name);
    if (s_grants_from(self, request, req->grants, req->n_grants, &account))
        return 0;
    char phone[32], phone_hash[65];
    if (linli_phone_normalize(req->phone, phone, sizeof phone))
        return linli_fail_field(request, 400, "invalid_format", "phone",
                                "phone must be a mainland mobile number");
    if (linli_pii_hash("phone", phone, phone_hash))
        return linli_fail(request, 503, "overloaded", "the phone could not be hashed");
    char *sealed = linli_pii_encrypt(phone);
    if (!sealed || strlen(sealed) >= sizeof account.phone_enc) {
        free(sealed);
        return linli_fail(request, 500, "internal", "the phone could not be sealed");
    }
    snprintf(account.phone_enc, sizeof account.phone_enc, "%s", sealed);
    free(sealed);
    if (linli_password_hash(req->password, account.password_hash))
        return linli_fail_field(request, 400, "invalid_value", "password",
                                "the password cannot be used");

    linli_idem_t idem;
    if (linli_idem_begin(self->pg, request, &idem) != LINLI_IDEM_NEW)
        return 0; //  replayed, or answered already
    bool taken;
    int64_t actor = registry_parse_id(caller->user_id);
    if (registry_store_account_insert(self->store, &account, phone_hash, actor, &taken))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    if (taken)
        return linli_idem_abort(&idem, request, 409, "phone_taken",
                                "an account with this phone exists");
    if (registry_emit_staff(self, "linli.registry.staff.created", &account, caller->user_id, NULL))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the event could not be recorded");
    s_user_view_t view;
    s_user_msg(&account, caller, &view);
    return linli_idem_commit(&idem, request, 201, &view.user.base);
}

//  registry.GetStaff: a staff account inside the caller's subtree; any
//  other id answers 404, so existence outside the scope is not leaked.
static int
s_get_staff(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__GetStaffRequest *req = (const Linli__Registry__GetStaffRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    int64_t id = registry_parse_id(req->id);
    registry_account_t account;
    bool found = false;
    if (id && registry_store_account_get(self->store, id, &account, &found))
        return linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    if (!found || strcmp(account.kind, "staff") ||
        linli_auth_rank_over(caller, account.area) < linli_auth_rank(LINLI_ROLE_STREET_ADMIN))
        return linli_fail(request, 404, "staff_not_found", "no such staff account");
    s_user_view_t view;
    s_user_msg(&account, caller, &view);
    return linli_reply(request, 200, &view.user.base);
}

//  Whether the caller administers staff account a: a visible staff account
//  (as for GetStaff), not the caller's own, each of whose grants the caller
//  could have given. 1 yes; 0 no (answer 403); -1 not visible (answer 404).
static int
s_administers(const Linli__Caller *caller, const registry_account_t *a)
{
    if (strcmp(a->kind, "staff") ||
        linli_auth_rank_over(caller, a->area) < linli_auth_rank(LINLI_ROLE_STREET_ADMIN))
        return -1;
    if (registry_parse_id(caller->user_id) == a->id)
        return 0;
    for (size_t i = 0; i < a->n_grants; i++)
        if (!linli_auth_can_grant(caller, a->grants[i].role, a->grants[i].scope))
            return 0;
    return 1;
}

//  Open the transaction of a change to staff account `id` and lock it,
//  when the caller administers it. 0, or -1 when request was answered.
static int
s_staff_change_begin(registry_t *self, linli_request_t *request, const char *id, linli_idem_t *idem,
                     registry_account_t *account)
{
    if (linli_idem_begin(self->pg, request, idem) != LINLI_IDEM_NEW)
        return -1; //  replayed, or answered already
    bool found = false;
    int64_t n = registry_parse_id(id);
    if (n && registry_store_account_lock(self->store, n, account, &found)) {
        linli_idem_abort(idem, request, 503, "store_unavailable",
                         "the registry store is unavailable");
        return -1;
    }
    int may = found ? s_administers(linli_request_caller(request), account) : -1;
    if (may < 0) {
        linli_idem_abort(idem, request, 404, "staff_not_found", "no such staff account");
        return -1;
    }
    if (may == 0) {
        linli_idem_abort(idem, request, 403, "forbidden",
                         "only an admin above all of its roles changes a staff account, "
                         "and not one's own");
        return -1;
    }
    return 0;
}

//  registry.SetStaffStatus: an admin disables a staff account (its sessions
//  end, login is refused) or enables it again.
static int
s_set_staff_status(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__SetStaffStatusRequest *req =
        (const Linli__Registry__SetStaffStatusRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    linli_idem_t idem;
    registry_account_t account;
    if (s_staff_change_begin(self, request, req->id, &idem, &account))
        return 0;
    bool changed = strcmp(account.status, req->status) != 0;
    snprintf(account.status, sizeof account.status, "%s", req->status);
    if (changed && (registry_store_account_set_status(self->store, account.id, account.status) ||
                    registry_emit_staff(self, "linli.registry.staff.status_changed", &account,
                                        caller->user_id, NULL)))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    s_user_view_t view;
    s_user_msg(&account, caller, &view);
    //  Disabling a disabled account ends its sessions again: harmless, and
    //  it leaves none behind whatever happened before.
    if (strcmp(account.status, "disabled"))
        return linli_idem_commit(&idem, request, 200, &view.user.base);
    return registry_commit_ending_sessions(self, &idem, request, 200, &view.user.base, view.id);
}

//  registry.SetStaffGrants: an admin replaces a staff account's grants; its
//  sessions end, so the new grants hold from its next login.
static int
s_set_staff_grants(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__SetStaffGrantsRequest *req =
        (const Linli__Registry__SetStaffGrantsRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    //  The new grants are checked before the transaction (they need no lock).
    registry_account_t wanted;
    memset(&wanted, 0, sizeof wanted);
    if (s_grants_from(self, request, req->grants, req->n_grants, &wanted))
        return 0;
    linli_idem_t idem;
    registry_account_t account;
    if (s_staff_change_begin(self, request, req->id, &idem, &account))
        return 0;
    s_user_view_t view;
    if (s_same_grants(&account, &wanted)) {
        //  Nothing to change: no event, and its sessions hold these grants.
        s_user_msg(&account, caller, &view);
        return linli_idem_commit(&idem, request, 200, &view.user.base);
    }
    char previous[sizeof account.area];
    snprintf(previous, sizeof previous, "%s", account.area);
    account.n_grants = wanted.n_grants;
    memcpy(account.grants, wanted.grants, sizeof account.grants);
    snprintf(account.area, sizeof account.area, "%s", wanted.area);
    //  The event goes out under the new area and names the old one, so a
    //  consumer of either area sees the account come or go.
    if (registry_store_account_set_grants(self->store, &account) ||
        registry_emit_staff(self, "linli.registry.staff.grants_changed", &account, caller->user_id,
                            strcmp(previous, account.area) ? previous : NULL))
        return linli_idem_abort(&idem, request, 503, "store_unavailable",
                                "the registry store is unavailable");
    s_user_msg(&account, caller, &view);
    return registry_commit_ending_sessions(self, &idem, request, 200, &view.user.base, view.id);
}

//  registry.ListStaff: staff in an area of the caller's subtree, by id.
static int
s_list_staff(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__ListStaffRequest *req = (const Linli__Registry__ListStaffRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    //  Default: the widest area the caller administers.
    const char *area = req->area ? req->area : registry_staff_scope(caller, 2);
    if (!area || linli_auth_rank_over(caller, area) < linli_auth_rank(LINLI_ROLE_STREET_ADMIN))
        return linli_fail_field(request, 403, "out_of_scope", "area", "that area is outside yours");
    size_t limit;
    int64_t after;
    if (registry_page_args(request, req->has_limit, req->limit, req->cursor, &limit, &after))
        return 0;
    registry_page_t page;
    if (registry_page_alloc(&page, limit, sizeof(registry_account_t), sizeof(s_user_view_t)))
        return linli_fail(request, 503, "overloaded", "out of memory");
    registry_account_t *rows = page.rows;
    s_user_view_t *views = page.views;
    int rc;
    if (registry_store_staff_list(self->store, area, after, rows, limit, &page.n, &page.more)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else {
        Linli__Registry__ListStaffReply reply = LINLI__REGISTRY__LIST_STAFF_REPLY__INIT;
        for (size_t i = 0; i < page.n; i++) {
            s_user_msg(&rows[i], caller, &views[i]);
            page.items[i] = &views[i].user.base;
        }
        rc = registry_page_reply(&page, request, &reply.base, page.n ? views[page.n - 1].id : NULL);
    }
    registry_page_free(&page);
    return rc;
}

#define REG(name) &linli__registry__##name##__descriptor

const linli_route_t registry_account_routes[] = {
    {"registry.GetArea", REG(get_area_request), s_get_area},
    {"registry.ListAreas", REG(list_areas_request), s_list_areas},
    {"registry.Login", REG(login_request), s_login},
    {"registry.Logout", REG(logout_request), s_logout},
    {"registry.SetPassword", REG(set_password_request), s_set_password},
    {"registry.IssuePasswordCode", REG(issue_password_code_request), s_issue_password_code},
    {"registry.Me", REG(me_request), s_me},
    {"registry.CreateStaff", REG(create_staff_request), s_create_staff},
    {"registry.GetStaff", REG(get_staff_request), s_get_staff},
    {"registry.ListStaff", REG(list_staff_request), s_list_staff},
    {"registry.SetStaffStatus", REG(set_staff_status_request), s_set_staff_status},
    {"registry.SetStaffGrants", REG(set_staff_grants_request), s_set_staff_grants},
    {NULL, NULL, NULL},
};
