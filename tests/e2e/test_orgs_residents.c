//  Organisations, teams and residents end to end: create/list/get, the
//  leader's grant, joining and leaving, dissolution, residents with consent,
//  sealed personal data and masking, resident login, the scope matrix of
//  every role against every endpoint, idempotency, events.
#include "test_suite.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C1 "420102001001"  //  the community most people here live in
#define C2 "420102001002"  //  its neighbour
#define FAR "420106001001" //  a community of another district (武昌区)

static ts_suite_t s_suite;
static char *s_admin;   //  city admin
static char *s_jiangan; //  district admin of 江岸区 420102
static char *s_wuchang; //  district admin of 武昌区 420106
static char *s_street;  //  street admin of 420102001
static char *s_worker;  //  community worker of C1

//  Volunteers (self sign-up, verified by the worker unless pending).
static char s_lead[32];    //  leads s_org from its creation
static char s_member[32];  //  joins and leaves
static char s_other[32];   //  a volunteer without a role
static char s_far[32];     //  lives in another district
static char s_pending[32]; //  not verified
static char *s_lead_token; //  logged in after s_org was created: holds the grant
static char *s_other_token;

static char s_org[32];      //  江岸区 organisation (area 420102), led by s_lead
static char s_team[32];     //  its team in C1
static char s_resident[32]; //  a resident of C1 who logs in
static char *s_resident_token;

// ---------------------------------------------------------------- helpers

//  The request's status; prints the reply when it is not the one expected.
static long
s_status(const char *method, const char *path, const char *token, const char *body, long want)
{
    ts_http_reply_t r = ts_req(&s_suite, method, path, token, body);
    long status = r.status;
    if (status != want)
        fprintf(stderr, "%s %s %s -> %ld (want %ld) %s\n", method, path, body ? body : "", status,
                want, r.body ? r.body : "");
    ts_http_reply_free(&r);
    return status;
}

//  Sign a volunteer up (password "volunteer-1") and, unless pending, have
//  the worker of its community verify it. 0 or -1; id into id.
static int
s_volunteer(const char *name, int seq, const char *phone, const char *community, bool verify,
            char id[32])
{
    char idn[19];
    char region[8];
    snprintf(region, sizeof region, "%.6s", community);
    ts_id_number(region, "19800101", seq, idn);
    ts_http_reply_t r =
        ts_sign_up(&s_suite, NULL, name, idn, phone, community, "\"elderly_care\"", id, 32);
    long status = r.status;
    ts_http_reply_free(&r);
    if (status != 201) {
        fprintf(stderr, "sign-up of %s: %ld\n", phone, status);
        return -1;
    }
    if (!verify)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "/v1/volunteers/%s/verify", id);
    //  The city admin covers every community.
    return s_status("POST", path, s_admin, NULL, 200) == 200 ? 0 : -1;
}

//  Create an organisation as token; the status, its id into id (may be NULL).
static long
s_create_org(const char *token, const char *body, char *id)
{
    ts_http_reply_t r = ts_req(&s_suite, "POST", "/v1/organizations", token, body);
    long status = r.status;
    if (status != 201 && status != 403)
        fprintf(stderr, "create org %s -> %ld %s\n", body, status, r.body ? r.body : "");
    if (id)
        snprintf(id, 32, "%s", ts_json_str(&r, "id"));
    ts_http_reply_free(&r);
    return status;
}

//  Does any item of the reply's "items" have key == value (or, with
//  nested, items[i][nested][key])?
static bool
s_items_have(const ts_http_reply_t *r, const char *nested, const char *key, const char *value)
{
    json_t *items = json_object_get(r->json, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *item = json_array_get(items, i);
        if (nested)
            item = json_object_get(item, nested);
        const char *v = json_string_value(json_object_get(item, key));
        if (v && !strcmp(v, value))
            return true;
    }
    return false;
}

//  Does the account logged in as phone hold a grant with this scope?
static bool
s_has_grant(const char *phone, const char *scope)
{
    char *token = ts_login(&s_suite, phone, "volunteer-1");
    assert_non_null(token);
    ts_http_reply_t r = ts_req(&s_suite, "GET", "/v1/me", token, NULL);
    assert_int_equal(r.status, 200);
    bool has = false;
    json_t *grants = json_object_get(r.json, "grants");
    for (size_t i = 0; i < json_array_size(grants); i++) {
        json_t *g = json_array_get(grants, i);
        has = has || (!strcmp(json_string_value(json_object_get(g, "role")), "org_leader") &&
                      !strcmp(json_string_value(json_object_get(g, "scope")), scope));
    }
    ts_http_reply_free(&r);
    free(token);
    return has;
}

static int
s_setup(void **state)
{
    (void)state;
    const char *const extra[] = {"LINLI_SIGNUP_PER_ADDR=10000", NULL};
    s_admin = ts_suite_start_admin(&s_suite, "orgs", 2, extra);
    if (!s_admin)
        return -1;
    s_jiangan = ts_staff(&s_suite, s_admin, "13600000001", "district_admin", "420102");
    s_wuchang = ts_staff(&s_suite, s_admin, "13600000002", "district_admin", "420106");
    s_street = ts_staff(&s_suite, s_admin, "13600000003", "street_admin", "420102001");
    s_worker = ts_staff(&s_suite, s_admin, "13600000004", "community_worker", C1);
    if (!s_jiangan || !s_wuchang || !s_street || !s_worker)
        return -1;
    if (s_volunteer("王队长", 1, "15100000001", C1, true, s_lead) ||
        s_volunteer("李成员", 2, "15100000002", C1, true, s_member) ||
        s_volunteer("张志愿", 3, "15100000003", C2, true, s_other) ||
        s_volunteer("赵远方", 4, "15100000004", FAR, true, s_far) ||
        s_volunteer("钱待审", 5, "15100000005", C1, false, s_pending))
        return -1;
    //  The main organisation, led by s_lead, and its team.
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"江岸区志愿者协会\",\"area\":\"420102\",\"leader_id\":\"%s\","
             "\"description\":\"为老服务、邻里互助\"}",
             s_lead);
    if (s_create_org(s_admin, body, s_org) != 201)
        return -1;
    snprintf(body, sizeof body,
             "{\"name\":\"一社区为老服务队\",\"area\":\"" C1 "\",\"type\":\"team\","
             "\"parent_id\":\"%s\"}",
             s_org);
    if (s_create_org(s_worker, body, s_team) != 201)
        return -1;
    //  Logged in after the organisation existed: the session holds the grant.
    s_lead_token = ts_login(&s_suite, "15100000001", "volunteer-1");
    s_other_token = ts_login(&s_suite, "15100000003", "volunteer-1");
    if (!s_lead_token || !s_other_token)
        return -1;
    //  A resident of C1 who may log in.
    ts_http_reply_t r =
        ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"孙奶奶\",\"community\":\"" C1 "\",\"address\":\"幸福路8号3栋201\","
               "\"phone\":\"15900000001\",\"care_categories\":[\"elderly_alone\"],"
               "\"consent\":true,\"birth_year\":1941,\"password\":\"resident-1\","
               "\"family_contacts\":[{\"name\":\"孙明\",\"relation\":\"儿子\","
               "\"phone\":\"15900000002\"}]}");
    snprintf(s_resident, sizeof s_resident, "%s", ts_json_str(&r, "id"));
    long status = r.status;
    if (status != 201)
        fprintf(stderr, "resident: %ld %s\n", status, r.body ? r.body : "");
    ts_http_reply_free(&r);
    if (status != 201)
        return -1;
    s_resident_token = ts_login(&s_suite, "15900000001", "resident-1");
    return s_resident_token ? 0 : -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    free(s_admin);
    free(s_jiangan);
    free(s_wuchang);
    free(s_street);
    free(s_worker);
    free(s_lead_token);
    free(s_other_token);
    free(s_resident_token);
    ts_suite_stop(&s_suite);
    return 0;
}

// ---------------------------------------------------------------- organisations

static void
test_orgs_create_list_get(void **state)
{
    (void)state;
    char path[160], body[512];
    snprintf(path, sizeof path, "/v1/organizations/%s", s_org);
    ts_http_reply_t r = ts_req(&s_suite, "GET", path, s_other_token, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "name"), "江岸区志愿者协会");
    assert_string_equal(ts_json_str(&r, "type"), "organization");
    assert_string_equal(ts_json_str(&r, "area"), "420102");
    assert_string_equal(ts_json_str(&r, "status"), "active");
    assert_string_equal(ts_json_str(&r, "leader_id"), s_lead);
    assert_true(json_integer_value(json_object_get(r.json, "members")) >= 1);
    ts_http_reply_free(&r);

    snprintf(path, sizeof path, "/v1/organizations/%s", s_team);
    r = ts_req(&s_suite, "GET", path, s_resident_token, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "type"), "team");
    assert_string_equal(ts_json_str(&r, "parent_id"), s_org);
    assert_string_equal(ts_json_str(&r, "area"), C1);
    ts_http_reply_free(&r);

    assert_int_equal(s_status("GET", path, NULL, NULL, 401), 401);
    assert_int_equal(s_status("GET", "/v1/organizations/99999999", s_admin, NULL, 404), 404);
    assert_int_equal(s_status("GET", "/v1/organizations/abc", s_admin, NULL, 400), 400);

    //  Teams need an organisation; organisations have none.
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin,
               "{\"name\":\"无主队\",\"area\":\"" C1 "\",\"type\":\"team\"}");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "parent_id");
    ts_http_reply_free(&r);
    snprintf(body, sizeof body,
             "{\"name\":\"x\",\"area\":\"" C1 "\",\"type\":\"organization\",\"parent_id\":\"%s\"}",
             s_org);
    assert_int_equal(s_status("POST", "/v1/organizations", s_admin, body, 400), 400);
    //  A team's area lies inside its organisation's; its parent is an active organisation.
    snprintf(body, sizeof body,
             "{\"name\":\"越界队\",\"area\":\"" FAR "\",\"type\":\"team\",\"parent_id\":\"%s\"}",
             s_org);
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin, body);
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "area_outside_parent");
    ts_http_reply_free(&r);
    snprintf(body, sizeof body,
             "{\"name\":\"队中队\",\"area\":\"" C1 "\",\"type\":\"team\",\"parent_id\":\"%s\"}",
             s_team);
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin, body);
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "bad_parent");
    ts_http_reply_free(&r);
    //  Areas: unknown, malformed; leaders: unverified, outside the area.
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin,
               "{\"name\":\"x\",\"area\":\"420102999\"}");
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "unknown_area");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin,
               "{\"name\":\"x\",\"area\":\"42010\"}");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "area");
    ts_http_reply_free(&r);
    snprintf(body, sizeof body, "{\"name\":\"x\",\"area\":\"420102\",\"leader_id\":\"%s\"}",
             s_pending);
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin, body);
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "volunteer_not_verified");
    ts_http_reply_free(&r);
    snprintf(body, sizeof body, "{\"name\":\"x\",\"area\":\"420102\",\"leader_id\":\"%s\"}", s_far);
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin, body);
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "leader_not_found");
    assert_string_equal(ts_error_field(&r), "leader_id");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin,
               "{\"name\":\"x\",\"area\":\"420102\",\"type\":\"club\"}");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "type");
    ts_http_reply_free(&r);
    char name[70];
    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"area\":\"420102\"}", name);
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_admin, body);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "too_long");
    ts_http_reply_free(&r);

    //  Lists: by subtree, type, parent; paged; public to anyone logged in.
    r = ts_req(&s_suite, "GET", "/v1/organizations?area=420102", s_other_token, NULL);
    assert_int_equal(r.status, 200);
    assert_true(s_items_have(&r, NULL, "id", s_org));
    assert_true(s_items_have(&r, NULL, "id", s_team));
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/organizations?area=420102&type=team", s_other_token, NULL);
    assert_int_equal(r.status, 200);
    assert_false(s_items_have(&r, NULL, "id", s_org));
    assert_true(s_items_have(&r, NULL, "id", s_team));
    ts_http_reply_free(&r);
    snprintf(path, sizeof path, "/v1/organizations?parent_id=%s", s_org);
    r = ts_req(&s_suite, "GET", path, s_other_token, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_true(s_items_have(&r, NULL, "id", s_team));
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/organizations?area=420106", s_admin, NULL);
    assert_int_equal(r.status, 200);
    assert_false(s_items_have(&r, NULL, "id", s_org));
    ts_http_reply_free(&r);
    //  Two pages of one, then the next cursor ends.
    r = ts_req(&s_suite, "GET", "/v1/organizations?area=420102&limit=1", s_admin, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    const char *cursor = json_string_value(json_object_get(r.json, "next_cursor"));
    assert_non_null(cursor);
    snprintf(path, sizeof path, "/v1/organizations?area=420102&limit=1&cursor=%s", cursor);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", path, s_admin, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    ts_http_reply_free(&r);
    assert_int_equal(s_status("GET", "/v1/organizations?limit=0", s_admin, NULL, 400), 400);
    assert_int_equal(s_status("GET", "/v1/organizations?status=gone", s_admin, NULL, 400), 400);
}

static void
test_leader_grant(void **state)
{
    (void)state;
    char path[160], body[256];
    //  The leader's account holds the grant for its organisation.
    char scope[48];
    snprintf(scope, sizeof scope, "org:%s", s_org);
    assert_true(s_has_grant("15100000001", scope));
    ts_http_reply_t r;

    //  The leader adds a member; a volunteer without the role may not.
    snprintf(path, sizeof path, "/v1/organizations/%s/members", s_org);
    snprintf(body, sizeof body, "{\"volunteer_id\":\"%s\"}", s_member);
    assert_int_equal(s_status("POST", path, s_other_token, body, 403), 403);
    r = ts_req(&s_suite, "POST", path, s_lead_token, body);
    assert_int_equal(r.status, 201);
    assert_string_equal(ts_json_str(&r, "volunteer_id"), s_member);
    assert_string_equal(ts_json_str(&r, "role"), "member");
    assert_string_equal(ts_json_str(&r, "name"), "李成员");
    ts_http_reply_free(&r);
    assert_int_equal(s_status("POST", path, s_lead_token, body, 409), 409);
    //  The leader may not add a volunteer outside the area: as if unknown.
    snprintf(body, sizeof body, "{\"volunteer_id\":\"%s\"}", s_far);
    r = ts_req(&s_suite, "POST", path, s_lead_token, body);
    assert_int_equal(r.status, 404);
    assert_string_equal(ts_error_code(&r), "volunteer_not_found");
    ts_http_reply_free(&r);
    assert_int_equal(s_status("POST", path, s_lead_token, "{\"volunteer_id\":\"99999999\"}", 404),
                     404);
    //  Nor lead another organisation: the team's leader is someone else (none).
    snprintf(path, sizeof path, "/v1/organizations/%s/members", s_team);
    snprintf(body, sizeof body, "{\"volunteer_id\":\"%s\"}", s_member);
    assert_int_equal(s_status("POST", path, s_lead_token, body, 403), 403);

    //  The member list: leader yes, members yes, others no.
    snprintf(path, sizeof path, "/v1/organizations/%s/members", s_org);
    r = ts_req(&s_suite, "GET", path, s_lead_token, NULL);
    assert_int_equal(r.status, 200);
    assert_true(s_items_have(&r, NULL, "volunteer_id", s_lead));
    assert_true(s_items_have(&r, NULL, "volunteer_id", s_member));
    ts_http_reply_free(&r);
    char *member = ts_login(&s_suite, "15100000002", "volunteer-1");
    assert_non_null(member);
    assert_int_equal(s_status("GET", path, member, NULL, 200), 200);
    assert_int_equal(s_status("GET", path, s_other_token, NULL, 403), 403);

    //  The leader removes the member; the leader itself cannot leave.
    snprintf(path, sizeof path, "/v1/organizations/%s/members/%s", s_org, s_member);
    assert_int_equal(s_status("DELETE", path, s_other_token, NULL, 403), 403);
    assert_int_equal(s_status("DELETE", path, s_lead_token, NULL, 200), 200);
    assert_int_equal(s_status("DELETE", path, s_lead_token, NULL, 404), 404);
    snprintf(path, sizeof path, "/v1/organizations/%s/members/%s", s_org, s_lead);
    r = ts_req(&s_suite, "DELETE", path, s_lead_token, NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "leader_cannot_leave");
    ts_http_reply_free(&r);
    //  The leader may not change the organisation itself (staff only).
    snprintf(path, sizeof path, "/v1/organizations/%s", s_org);
    assert_int_equal(s_status("PATCH", path, s_lead_token, "{\"description\":\"x\"}", 403), 403);

    //  A new leader: the grant moves. The old leader's session loses the
    //  rights at once; the new one gains them at its next login.
    char org[32];
    snprintf(body, sizeof body,
             "{\"name\":\"换届队伍\",\"area\":\"420102001\",\"leader_id\":\"%s\"}", s_lead);
    assert_int_equal(s_create_org(s_street, body, org), 201);
    char *old_leader = ts_login(&s_suite, "15100000001", "volunteer-1");
    assert_non_null(old_leader);
    snprintf(path, sizeof path, "/v1/organizations/%s", org);
    snprintf(body, sizeof body, "{\"leader_id\":\"%s\"}", s_member);
    r = ts_req(&s_suite, "PATCH", path, s_street, body);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "leader_id"), s_member);
    assert_int_equal(json_integer_value(json_object_get(r.json, "members")), 2);
    ts_http_reply_free(&r);
    snprintf(path, sizeof path, "/v1/organizations/%s/members", org);
    snprintf(body, sizeof body, "{\"volunteer_id\":\"%s\"}", s_other);
    assert_int_equal(s_status("POST", path, old_leader, body, 403), 403);
    assert_int_equal(s_status("POST", path, member, body, 403), 403); //  an old session
    free(member);
    member = ts_login(&s_suite, "15100000002", "volunteer-1");
    assert_int_equal(s_status("POST", path, member, body, 201), 201);
    //  The old leader is a plain member now.
    r = ts_req(&s_suite, "GET", path, member, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *m = json_array_get(items, i);
        const char *vid = json_string_value(json_object_get(m, "volunteer_id"));
        const char *role = json_string_value(json_object_get(m, "role"));
        assert_string_equal(role, !strcmp(vid, s_member) ? "leader" : "member");
    }
    assert_int_equal(json_array_size(items), 3);
    ts_http_reply_free(&r);
    free(old_leader);
    snprintf(scope, sizeof scope, "org:%s", org);
    assert_false(s_has_grant("15100000001", scope));
    assert_true(s_has_grant("15100000002", scope));
    free(member);
    //  Leader and clear_leader together make no sense.
    snprintf(path, sizeof path, "/v1/organizations/%s", org);
    snprintf(body, sizeof body, "{\"leader_id\":\"%s\",\"clear_leader\":true}", s_lead);
    assert_int_equal(s_status("PATCH", path, s_street, body, 400), 400);
}

static void
test_join_leave_dissolve(void **state)
{
    (void)state;
    char path[160], body[256];
    char *member = ts_login(&s_suite, "15100000002", "volunteer-1");
    char *far = ts_login(&s_suite, "15100000004", "volunteer-1");
    char *pending = ts_login(&s_suite, "15100000005", "volunteer-1");
    assert_non_null(member);
    assert_non_null(far);
    assert_non_null(pending);

    //  A verified volunteer of the area joins itself (no volunteer_id: the caller).
    snprintf(path, sizeof path, "/v1/organizations/%s/members", s_team);
    ts_http_reply_t r = ts_req(&s_suite, "POST", path, member, "{}");
    assert_int_equal(r.status, 201);
    assert_string_equal(ts_json_str(&r, "volunteer_id"), s_member);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", path, member, "{}");
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "already_member");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", path, pending, "{}");
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "volunteer_not_verified");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", path, far, "{}");
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), "out_of_area");
    ts_http_reply_free(&r);
    //  Staff and residents are no volunteers.
    r = ts_req(&s_suite, "POST", path, s_resident_token, "{}");
    assert_int_equal(r.status, 403);
    ts_http_reply_free(&r);
    //  Staff add a volunteer of the area, not one from elsewhere.
    snprintf(body, sizeof body, "{\"volunteer_id\":\"%s\"}", s_far);
    assert_int_equal(s_status("POST", path, s_worker, body, 404), 404);
    snprintf(body, sizeof body, "{\"volunteer_id\":\"%s\"}", s_lead);
    assert_int_equal(s_status("POST", path, s_worker, body, 201), 201);

    //  A volunteer's organisations: itself and covering staff; others 404.
    snprintf(path, sizeof path, "/v1/volunteers/%s/organizations", s_member);
    r = ts_req(&s_suite, "GET", path, member, NULL);
    assert_int_equal(r.status, 200);
    assert_true(s_items_have(&r, "organization", "id", s_team));
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *m = json_array_get(items, i);
        if (!strcmp(json_string_value(json_object_get(json_object_get(m, "organization"), "id")),
                    s_team))
            assert_string_equal(json_string_value(json_object_get(m, "role")), "member");
    }
    ts_http_reply_free(&r);
    assert_int_equal(s_status("GET", path, s_worker, NULL, 200), 200);
    assert_int_equal(s_status("GET", path, s_jiangan, NULL, 200), 200);
    assert_int_equal(s_status("GET", path, s_wuchang, NULL, 404), 404);
    assert_int_equal(s_status("GET", path, s_other_token, NULL, 404), 404);
    assert_int_equal(s_status("GET", path, s_resident_token, NULL, 404), 404);
    assert_int_equal(s_status("GET", "/v1/volunteers/99999999/organizations", s_admin, NULL, 404),
                     404);

    //  Leaving.
    snprintf(path, sizeof path, "/v1/organizations/%s/members/%s", s_team, s_member);
    assert_int_equal(s_status("DELETE", path, member, NULL, 200), 200);
    snprintf(path, sizeof path, "/v1/volunteers/%s/organizations", s_member);
    r = ts_req(&s_suite, "GET", path, member, NULL);
    assert_int_equal(r.status, 200);
    assert_false(s_items_have(&r, "organization", "id", s_team));
    ts_http_reply_free(&r);

    //  Dissolution: teams first; a dissolved team takes no one, leaves the lists.
    snprintf(path, sizeof path, "/v1/organizations/%s", s_org);
    r = ts_req(&s_suite, "DELETE", path, s_wuchang, NULL);
    assert_int_equal(r.status, 403);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "DELETE", path, s_jiangan, NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "has_active_teams");
    ts_http_reply_free(&r);
    char team[32];
    snprintf(body, sizeof body,
             "{\"name\":\"临时队\",\"area\":\"" C2 "\",\"type\":\"team\",\"parent_id\":\"%s\"}",
             s_org);
    assert_int_equal(s_create_org(s_street, body, team), 201);
    snprintf(path, sizeof path, "/v1/organizations/%s", team);
    r = ts_req(&s_suite, "DELETE", path, s_street, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "status"), "dissolved");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "DELETE", path, s_street, NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "organization_dissolved");
    ts_http_reply_free(&r);
    assert_int_equal(s_status("PATCH", path, s_street, "{\"name\":\"y\"}", 409), 409);
    snprintf(path, sizeof path, "/v1/organizations/%s/members", team);
    r = ts_req(&s_suite, "POST", path, s_other_token, "{}");
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "organization_dissolved");
    ts_http_reply_free(&r);
    //  Dissolving takes the leader's grant away.
    char led[32], scope[48];
    snprintf(body, sizeof body, "{\"name\":\"短期队伍\",\"area\":\"" C2 "\",\"leader_id\":\"%s\"}",
             s_other);
    assert_int_equal(s_create_org(s_street, body, led), 201);
    snprintf(scope, sizeof scope, "org:%s", led);
    assert_true(s_has_grant("15100000003", scope));
    snprintf(path, sizeof path, "/v1/organizations/%s", led);
    assert_int_equal(s_status("DELETE", path, s_street, NULL, 200), 200);
    assert_false(s_has_grant("15100000003", scope));
    r = ts_req(&s_suite, "GET", "/v1/organizations?area=420102001", s_admin, NULL);
    assert_false(s_items_have(&r, NULL, "id", team));
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/organizations?area=420102001&status=dissolved", s_admin, NULL);
    assert_true(s_items_have(&r, NULL, "id", team));
    ts_http_reply_free(&r);
    free(member);
    free(far);
    free(pending);
}

// ---------------------------------------------------------------- residents

//  The bytes of a residents row's sealed columns, to check nothing is clear.
static void
s_assert_sealed(const char *id, const char *const *clear)
{
    PGconn *conn = PQconnectdb(s_suite.env.dsn);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    const char *params[] = {id};
    PGresult *res = PQexecParams(conn,
                                 "SELECT coalesce(address_enc, '') || coalesce(phone_enc, '') || "
                                 "coalesce(family_contacts_enc, '') || coalesce(phone_hash, '') "
                                 "FROM registry.residents WHERE id = $1::bigint",
                                 1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    const char *row = PQgetvalue(res, 0, 0);
    assert_true(strlen(row) > 100);
    for (size_t i = 0; clear[i]; i++)
        assert_null(strstr(row, clear[i]));
    PQclear(res);
    PQfinish(conn);
}

static void
test_residents(void **state)
{
    (void)state;
    char path[160];
    //  Consent is required; categories are a closed list.
    ts_http_reply_t r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
                               "{\"name\":\"周爷爷\",\"community\":\"" C1 "\"}");
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "consent_required");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"周爷爷\",\"community\":\"" C1 "\",\"consent\":false}");
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "consent_required");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"周爷爷\",\"community\":\"" C1 "\",\"consent\":true,"
               "\"care_categories\":[\"elderly_alone\",\"rich\"]}");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "invalid_value");
    assert_non_null(strstr(ts_error_field(&r), "care_categories"));
    ts_http_reply_free(&r);
    //  A password needs a phone; phones are checked, family phones too.
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"周爷爷\",\"community\":\"" C1 "\",\"consent\":true,"
               "\"password\":\"resident-2\"}");
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "phone_required");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"周爷爷\",\"community\":\"" C1 "\",\"consent\":true,"
               "\"family_contacts\":[{\"name\":\"周一\",\"phone\":\"12345\"}]}");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "family_contacts[0].phone");
    ts_http_reply_free(&r);
    //  Communities only, and only the caller's.
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"周爷爷\",\"community\":\"420102001\",\"consent\":true}");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "community");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"周爷爷\",\"community\":\"" C2 "\",\"consent\":true}");
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), "out_of_scope");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", "/v1/residents", s_jiangan,
               "{\"name\":\"周爷爷\",\"community\":\"420102999999\",\"consent\":true}");
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "unknown_community");
    ts_http_reply_free(&r);
    //  The phone of an existing account cannot log in twice.
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"周爷爷\",\"community\":\"" C1 "\",\"consent\":true,"
               "\"phone\":\"15100000001\",\"password\":\"resident-2\"}");
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "phone_taken");
    ts_http_reply_free(&r);

    //  The resident itself: everything whole; it logs in as kind resident.
    snprintf(path, sizeof path, "/v1/residents/%s", s_resident);
    r = ts_req(&s_suite, "GET", path, s_resident_token, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "phone"), "15900000001");
    assert_string_equal(ts_json_str(&r, "address"), "幸福路8号3栋201");
    assert_string_equal(ts_json_str(&r, "community"), C1);
    assert_true(json_is_true(json_object_get(r.json, "consent")));
    json_t *fc = json_array_get(json_object_get(r.json, "family_contacts"), 0);
    assert_string_equal(json_string_value(json_object_get(fc, "name")), "孙明");
    assert_string_equal(json_string_value(json_object_get(fc, "phone")), "15900000002");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/me", s_resident_token, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "kind"), "resident");
    assert_string_equal(ts_json_str(&r, "phone"), "15900000001");
    ts_http_reply_free(&r);
    //  Covering staff whole; another district's admin and volunteers: 404.
    r = ts_req(&s_suite, "GET", path, s_street, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "phone"), "15900000001");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", path, s_wuchang, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(ts_error_code(&r), "resident_not_found");
    ts_http_reply_free(&r);
    assert_int_equal(s_status("GET", path, s_lead_token, NULL, 404), 404);
    assert_int_equal(s_status("GET", "/v1/residents/99999999", s_admin, NULL, 404), 404);
    //  Another resident is not visible to this one.
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"吴小宝\",\"community\":\"" C1 "\",\"consent\":true,"
               "\"care_categories\":[\"child_left_behind\"],\"birth_year\":2015,"
               "\"phone\":\"15900000003\"}");
    assert_int_equal(r.status, 201);
    char child[32];
    snprintf(child, sizeof child, "%s", ts_json_str(&r, "id"));
    assert_null(json_object_get(r.json, "account_id"));
    ts_http_reply_free(&r);
    snprintf(path, sizeof path, "/v1/residents/%s", child);
    assert_int_equal(s_status("GET", path, s_resident_token, NULL, 404), 404);

    //  Sealed at rest: no phone, address or name of a contact in the clear.
    const char *const clear[] = {"15900000001", "15900000002", "幸福路", "孙明", NULL};
    s_assert_sealed(s_resident, clear);

    //  PATCH: categories replace, address changes; the login phone follows.
    snprintf(path, sizeof path, "/v1/residents/%s", s_resident);
    r = ts_req(&s_suite, "PATCH", path, s_worker,
               "{\"care_categories\":[\"elderly_alone\",\"disabled\"],\"address\":\"幸福路9号\","
               "\"phone\":\"15900000009\"}");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "care_categories")), 2);
    assert_string_equal(ts_json_str(&r, "address"), "幸福路9号");
    assert_string_equal(ts_json_str(&r, "phone"), "15900000009");
    assert_string_equal(ts_json_str(&r, "name"), "孙奶奶"); //  untouched
    ts_http_reply_free(&r);
    char *again = ts_login(&s_suite, "15900000009", "resident-1");
    assert_non_null(again);
    free(again);
    r = ts_req(&s_suite, "PATCH", path, s_worker, "{\"phone\":\"" TS_ADMIN_PHONE "\"}");
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "phone_taken");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "PATCH", path, s_worker, "{\"phone\":\"\"}");
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "phone_required");
    ts_http_reply_free(&r);
    //  A move: inside the caller's area only.
    assert_int_equal(s_status("PATCH", path, s_worker, "{\"community\":\"" C2 "\"}", 403), 403);
    assert_int_equal(s_status("PATCH", path, s_wuchang, "{\"birth_year\":1942}", 404), 404);
    snprintf(path, sizeof path, "/v1/residents/%s", child);
    r = ts_req(&s_suite, "PATCH", path, s_street,
               "{\"community\":\"" C2 "\",\"clear_care_categories\":true}");
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "community"), C2);
    assert_int_equal(json_array_size(json_object_get(r.json, "care_categories")), 0);
    ts_http_reply_free(&r);
    //  …now outside the worker's community: 404 to it.
    assert_int_equal(s_status("GET", path, s_worker, NULL, 404), 404);

    //  Lists: staff of the area, by category, without addresses.
    r = ts_req(&s_suite, "GET", "/v1/residents?area=" C1 "&category=disabled", s_worker, NULL);
    assert_int_equal(r.status, 200);
    assert_true(s_items_have(&r, NULL, "id", s_resident));
    json_t *item = json_array_get(json_object_get(r.json, "items"), 0);
    assert_null(json_object_get(item, "address"));
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/residents?area=" C1 "&category=low_income", s_worker, NULL);
    assert_int_equal(r.status, 200);
    assert_false(s_items_have(&r, NULL, "id", s_resident));
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/residents", s_worker, NULL); //  default: the caller's area
    assert_int_equal(r.status, 200);
    assert_true(s_items_have(&r, NULL, "id", s_resident));
    assert_false(s_items_have(&r, NULL, "id", child));
    ts_http_reply_free(&r);
    assert_int_equal(s_status("GET", "/v1/residents?area=420102", s_worker, NULL, 403), 403);
    assert_int_equal(s_status("GET", "/v1/residents?category=rich", s_worker, NULL, 400), 400);
}

// ---------------------------------------------------------------- the scope matrix

enum {
    A_CITY,
    A_DISTRICT,
    A_ELSEWHERE,
    A_STREET,
    A_WORKER,
    A_LEADER,
    A_VOLUNTEER,
    A_RESIDENT,
    A_ANON,
    A_COUNT
};

static const char *const s_actor_names[A_COUNT] = {
    "city admin",   "district admin",   "another district's admin",
    "street admin", "community worker", "org leader",
    "volunteer",    "resident",         "anonymous"};

typedef struct {
    const char *what;   //  for the failure message
    const char *method; //  HTTP verb
    const char *path;   //  %s: the organisation, resident or volunteer id (see arg)
    char arg;           //  'o' s_org, 't' s_team, 'r' s_resident, 'l' s_lead, 0 none
    const char *body;   //  may be NULL
    long want[A_COUNT]; //  status per actor
} s_case_t;

static void
test_scope_matrix(void **state)
{
    (void)state;
    char *tokens[A_COUNT] = {s_admin,      s_jiangan,     s_wuchang,        s_street, s_worker,
                             s_lead_token, s_other_token, s_resident_token, NULL};
    //  The team lives in C1 (covered by every staff role here but the other
    //  district); the resident too.
    const s_case_t cases[] = {
        {"create org in C1",
         "POST",
         "/v1/organizations",
         0,
         "{\"name\":\"矩阵服务队\",\"area\":\"" C1 "\"}",
         {201, 201, 403, 201, 201, 403, 403, 403, 401}},
        {"read org",
         "GET",
         "/v1/organizations/%s",
         't',
         NULL,
         {200, 200, 200, 200, 200, 200, 200, 200, 401}},
        {"list orgs",
         "GET",
         "/v1/organizations?area=420102",
         0,
         NULL,
         {200, 200, 200, 200, 200, 200, 200, 200, 401}},
        {"update org",
         "PATCH",
         "/v1/organizations/%s",
         't',
         "{\"description\":\"矩阵\"}",
         {200, 200, 403, 200, 200, 403, 403, 403, 401}},
        {"list members",
         "GET",
         "/v1/organizations/%s/members",
         'o',
         NULL,
         {200, 200, 403, 403, 403, 200, 403, 403, 401}},
        {"volunteer's orgs",
         "GET",
         "/v1/volunteers/%s/organizations",
         'l',
         NULL,
         {200, 200, 404, 200, 200, 200, 404, 404, 401}},
        {"create resident in C1",
         "POST",
         "/v1/residents",
         0,
         "{\"name\":\"矩阵居民\",\"community\":\"" C1 "\",\"consent\":true}",
         {201, 201, 403, 201, 201, 403, 403, 403, 401}},
        {"read resident",
         "GET",
         "/v1/residents/%s",
         'r',
         NULL,
         {200, 200, 404, 200, 200, 404, 404, 200, 401}},
        {"list residents",
         "GET",
         "/v1/residents?area=" C1,
         0,
         NULL,
         {200, 200, 403, 200, 200, 403, 403, 403, 401}},
        {"update resident",
         "PATCH",
         "/v1/residents/%s",
         'r',
         "{\"birth_year\":1941}",
         {200, 200, 404, 200, 200, 403, 403, 403, 401}},
    };
    int failures = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const s_case_t *k = &cases[c];
        const char *arg = k->arg == 'o'   ? s_org
                          : k->arg == 't' ? s_team
                          : k->arg == 'r' ? s_resident
                          : k->arg == 'l' ? s_lead
                                          : "";
        //  k->path's "%s" replaced by arg (not a format: -Wformat-nonliteral).
        char path[160];
        const char *hole = strstr(k->path, "%s");
        if (hole)
            snprintf(path, sizeof path, "%.*s%s%s", (int)(hole - k->path), k->path, arg, hole + 2);
        else
            snprintf(path, sizeof path, "%s", k->path);
        for (int a = 0; a < A_COUNT; a++) {
            ts_http_reply_t r = ts_req(&s_suite, k->method, path, tokens[a], k->body);
            if (r.status != k->want[a]) {
                fprintf(stderr, "matrix: %s as %s: %ld, want %ld (%s)\n", k->what, s_actor_names[a],
                        r.status, k->want[a], r.body ? r.body : "");
                failures++;
            }
            ts_http_reply_free(&r);
        }
    }
    assert_int_equal(failures, 0);
}

// ---------------------------------------------------------------- idempotency, events

static void
test_idempotency(void **state)
{
    (void)state;
    const char *const key[] = {"Idempotency-Key: org-create-1", NULL};
    const char *body = "{\"name\":\"幂等服务队\",\"area\":\"420102001\"}";
    ts_http_reply_t first, again;
    ts_http(&s_suite, "POST", "/v1/organizations", s_street, body, key, &first);
    assert_int_equal(first.status, 201);
    ts_http(&s_suite, "POST", "/v1/organizations", s_street, body, key, &again);
    assert_int_equal(again.status, 201);
    assert_string_equal(first.body, again.body);
    ts_http_reply_free(&first);
    ts_http_reply_free(&again);

    const char *const rkey[] = {"Idempotency-Key: resident-create-1", NULL};
    const char *rbody = "{\"name\":\"幂等居民\",\"community\":\"" C1 "\",\"consent\":true,"
                        "\"phone\":\"15900000077\",\"password\":\"resident-7\"}";
    ts_http(&s_suite, "POST", "/v1/residents", s_worker, rbody, rkey, &first);
    assert_int_equal(first.status, 201);
    ts_http(&s_suite, "POST", "/v1/residents", s_worker, rbody, rkey, &again);
    assert_int_equal(again.status, 201);
    assert_string_equal(first.body, again.body);
    ts_http_reply_free(&first);
    ts_http_reply_free(&again);
    //  Without the key it is a new request: the phone is taken now.
    assert_int_equal(s_status("POST", "/v1/residents", s_worker, rbody, 409), 409);
}

static void
test_events(void **state)
{
    (void)state;
    char subject[64];
    snprintf(subject, sizeof subject, "organization/%s", s_org);
    assert_int_equal(ts_stream_count_events(&s_suite, subject,
                                            "linli.registry.organization.created", "420102", NULL),
                     1);
    //  The leader's membership from the creation, and later joins and leaves.
    assert_true(ts_stream_count_events(&s_suite, subject,
                                       "linli.registry.organization.member_joined", "420102",
                                       NULL) >= 2);
    assert_int_equal(ts_stream_count_events(&s_suite, subject,
                                            "linli.registry.organization.member_left", "420102",
                                            NULL),
                     1);
    snprintf(subject, sizeof subject, "organization/%s", s_team);
    assert_int_equal(
        ts_stream_count_events(&s_suite, subject, "linli.registry.organization.created", C1, NULL),
        1);
    assert_true(ts_stream_count_events(&s_suite, subject, "linli.registry.organization.updated", C1,
                                       NULL) >= 1);

    //  Residents: id, community and categories only.
    const char *const personal[] = {"15900000001", "15900000009", "15900000002", "孙奶奶",
                                    "幸福路",      "孙明",        NULL};
    snprintf(subject, sizeof subject, "resident/%s", s_resident);
    assert_int_equal(
        ts_stream_count_events(&s_suite, subject, "linli.registry.resident.created", C1, personal),
        1);
    assert_true(ts_stream_count_events(&s_suite, subject, "linli.registry.resident.updated", C1,
                                       personal) >= 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orgs_create_list_get),
        cmocka_unit_test(test_leader_grant),
        cmocka_unit_test(test_join_leave_dissolve),
        cmocka_unit_test(test_residents),
        cmocka_unit_test(test_scope_matrix),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
