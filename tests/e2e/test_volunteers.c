//  Volunteers end to end: sign-up with ID-number checks, duplicates, masking
//  and encryption at rest, verification and status, the scope matrix, join
//  codes, stable pagination under concurrent inserts, events.
#include "test_suite.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "linli/events.pb-c.h"

static ts_suite_t s_suite;
static char *s_admin;        //  city admin
static char *s_jiangan;      //  district admin of 江岸区 420102
static char *s_wuchang;      //  district admin of 武昌区 420106
static char *s_street;       //  street admin of 420102001
static char *s_worker;       //  community worker of 420102001001
static char *s_worker_other; //  community worker of 420102001002

#define C1 "420102001001" //  the community most volunteers here live in
#define C2 "420102001002" //  its neighbour

// ---------------------------------------------------------------- ID numbers

//  Sign up (token NULL: self, with a password) with skills elderly_care and
//  repair. Returns the reply; id into id.
static ts_http_reply_t
s_sign_up(const char *token, const char *name, const char *id_number, const char *phone,
          const char *community, char *id, size_t cap)
{
    return ts_sign_up(&s_suite, token, name, id_number, phone, community,
                      "\"elderly_care\",\"repair\"", id, cap);
}

static int
s_setup(void **state)
{
    (void)state;
    //  Many self sign-ups come from one address here.
    const char *const extra[] = {"LINLI_SIGNUP_PER_ADDR=10000", NULL};
    s_admin = ts_suite_start_admin(&s_suite, "volunteers", 1, extra);
    if (!s_admin)
        return -1;
    s_jiangan = ts_staff(&s_suite, s_admin, "13700000001", "district_admin", "420102");
    s_wuchang = ts_staff(&s_suite, s_admin, "13700000002", "district_admin", "420106");
    s_street = ts_staff(&s_suite, s_admin, "13700000003", "street_admin", "420102001");
    s_worker = ts_staff(&s_suite, s_admin, "13700000004", "community_worker", C1);
    s_worker_other = ts_staff(&s_suite, s_admin, "13700000005", "community_worker", C2);
    return s_jiangan && s_wuchang && s_street && s_worker && s_worker_other ? 0 : -1;
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
    free(s_worker_other);
    ts_suite_stop(&s_suite);
    return 0;
}

// ---------------------------------------------------------------- sign-up

static void
test_sign_up_and_id_numbers(void **state)
{
    (void)state;
    char idn[19], id[32];
    ts_id_number("420102", "19900101", 11, idn);
    ts_http_reply_t r = s_sign_up(NULL, "刘一", idn, "15000000001", C1, id, sizeof id);
    assert_int_equal(r.status, 201);
    json_t *v = json_object_get(r.json, "volunteer");
    assert_string_equal(json_string_value(json_object_get(v, "status")), "pending");
    assert_string_equal(json_string_value(json_object_get(v, "community")), C1);
    //  The person sees its own record whole, and gets a token.
    assert_string_equal(json_string_value(json_object_get(v, "id_number")), idn);
    assert_string_equal(json_string_value(json_object_get(v, "phone")), "15000000001");
    assert_string_equal(json_string_value(json_object_get(v, "gender")), "male");
    assert_int_equal(json_integer_value(json_object_get(v, "birth_year")), 1990);
    const char *token = json_string_value(json_object_get(r.json, "token"));
    assert_non_null(token);
    char path[64];
    snprintf(path, sizeof path, "/v1/volunteers/%s", id);
    ts_http_reply_t me = ts_req(&s_suite, "GET", path, token, NULL);
    assert_int_equal(me.status, 200);
    ts_http_reply_free(&me);
    ts_http_reply_free(&r);
    //  The volunteer logs in with phone and password like anyone.
    char *t = ts_login(&s_suite, "15000000001", "volunteer-1");
    assert_non_null(t);
    free(t);

    //  Bad ID numbers: check digit, birth date, length, region.
    char bad[19];
    ts_id_number("420102", "19900101", 12, bad);
    bad[17] = bad[17] == '1' ? '2' : '1';
    r = s_sign_up(NULL, "刘二", bad, "15000000002", C1, NULL, 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "bad_check_digit");
    assert_string_equal(ts_error_field(&r), "id_number");
    ts_http_reply_free(&r);
    ts_id_number("420102", "19901301", 12, bad);
    r = s_sign_up(NULL, "刘二", bad, "15000000002", C1, NULL, 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "bad_birth_date");
    ts_http_reply_free(&r);
    r = s_sign_up(NULL, "刘二", "42010219900101123", "15000000002", C1, NULL, 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "bad_length");
    ts_http_reply_free(&r);
    ts_id_number("990102", "19900101", 12, bad);
    r = s_sign_up(NULL, "刘二", bad, "15000000002", C1, NULL, 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "bad_region");
    ts_http_reply_free(&r);
    //  Too young (under 14) is refused; an unknown community too.
    ts_id_number("420102", "20200101", 12, bad);
    r = s_sign_up(NULL, "刘二", bad, "15000000002", C1, NULL, 0);
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "too_young");
    ts_http_reply_free(&r);
    ts_id_number("420102", "19900101", 12, bad);
    r = s_sign_up(NULL, "刘二", bad, "15000000002", "420102999999", NULL, 0);
    assert_int_equal(r.status, 422);
    assert_string_equal(ts_error_code(&r), "unknown_community");
    ts_http_reply_free(&r);
    //  Self sign-up needs a password.
    r = ts_req(&s_suite, "POST", "/v1/volunteers", NULL,
               "{\"name\":\"刘二\",\"id_number\":\"420102199001011234\",\"phone\":\"15000000002\","
               "\"community\":\"" C1 "\"}");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "password");
    ts_http_reply_free(&r);

    //  Duplicates: the same person again (another phone), or the phone again.
    r = s_sign_up(NULL, "刘一", idn, "15000000003", C1, NULL, 0);
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "already_registered");
    ts_http_reply_free(&r);
    char other[19];
    ts_id_number("420102", "19850505", 21, other);
    r = s_sign_up(NULL, "刘三", other, "15000000001", C1, NULL, 0);
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "phone_taken");
    ts_http_reply_free(&r);
    //  The lower-case x of a check digit is the same person.
    ts_id_number("420102", "19700101", 30, other);
    for (int seq = 31; other[17] != 'X' && seq < 999; seq++)
        ts_id_number("420102", "19700101", seq, other);
    r = s_sign_up(s_worker, "赵四", other, "15000000004", C1, NULL, 0);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    other[17] = 'x';
    r = s_sign_up(s_worker, "赵四", other, "15000000005", C1, NULL, 0);
    assert_int_equal(r.status, 409);
    ts_http_reply_free(&r);
    //  Staff entering someone into another district's community: 403, not a
    //  self sign-up in disguise.
    ts_id_number("420102", "19720202", 77, other);
    r = s_sign_up(s_wuchang, "韩五", other, "15000000006", C1, NULL, 0);
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), "out_of_scope");
    ts_http_reply_free(&r);
}

// ---------------------------------------------------------------- masking, scope

typedef struct {
    const char *who;
    char **token; //  NULL: anonymous
    long get;     //  GET /v1/volunteers/{id}
    bool whole;   //  sees ID number and phone whole
    long verify;  //  POST …/verify
    long list;    //  GET /v1/volunteers?area=C1
} s_row_t;

static void
test_scope_matrix(void **state)
{
    (void)state;
    char idn[19], id[32], path[96];
    ts_id_number("420102", "19800202", 41, idn);
    ts_http_reply_t r = s_sign_up(NULL, "钱五", idn, "15000000041", C1, id, sizeof id);
    assert_int_equal(r.status, 201);
    assert_true(*ts_json_str(&r, "token"));
    char *self = strdup(ts_json_str(&r, "token"));
    ts_http_reply_free(&r);
    char idn2[19], id2[32];
    ts_id_number("420106", "19810303", 42, idn2);
    r = s_sign_up(NULL, "孙六", idn2, "15000000042", "420106001001", id2, sizeof id2);
    assert_int_equal(r.status, 201);
    assert_true(*ts_json_str(&r, "token"));
    char *other_volunteer = strdup(ts_json_str(&r, "token"));
    ts_http_reply_free(&r);
    char *anonymous = NULL;
    //  A resident of the same community who may log in.
    r = ts_req(&s_suite, "POST", "/v1/residents", s_worker,
               "{\"name\":\"蒋奶奶\",\"community\":\"" C1 "\",\"phone\":\"15000000049\","
               "\"care_categories\":[\"elderly_alone\"],\"consent\":true,"
               "\"password\":\"resident-1\"}");
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    char *resident = ts_login(&s_suite, "15000000049", "resident-1");
    assert_non_null(resident);

    //  verify is tried by the least privileged first, so the first 200 is the right one.
    s_row_t rows[] = {
        {"anonymous", &anonymous, 401, false, 401, 401},
        {"another volunteer", &other_volunteer, 404, false, 403, 403},
        {"a resident of its community", &resident, 404, false, 403, 403},
        {"the volunteer", &self, 200, true, 403, 403},
        {"worker of another community", &s_worker_other, 404, false, 404, 403},
        {"district admin elsewhere", &s_wuchang, 404, false, 404, 403},
        {"worker of its community", &s_worker, 200, true, 200, 200},
        {"street admin", &s_street, 200, true, 409, 200},
        {"district admin", &s_jiangan, 200, true, 409, 200},
        {"city admin", &s_admin, 200, true, 409, 200},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const s_row_t *row = &rows[i];
        const char *token = *row->token;
        snprintf(path, sizeof path, "/v1/volunteers/%s", id);
        r = ts_req(&s_suite, "GET", path, token, NULL);
        if (r.status != row->get)
            fprintf(stderr, "%s: GET %ld %s\n", row->who, r.status, r.body);
        assert_int_equal(r.status, row->get);
        if (r.status == 200) {
            const char *shown = json_string_value(json_object_get(r.json, "id_number"));
            const char *phone = json_string_value(json_object_get(r.json, "phone"));
            assert_int_equal(!strcmp(shown, idn), row->whole);
            assert_int_equal(!strcmp(phone, "15000000041"), row->whole);
        } else if (r.status == 404) {
            //  Not leaked: the same answer as for an id that does not exist.
            assert_string_equal(ts_error_code(&r), "volunteer_not_found");
        }
        ts_http_reply_free(&r);

        snprintf(path, sizeof path, "/v1/volunteers/%s/verify", id);
        r = ts_req(&s_suite, "POST", path, token, NULL);
        if (r.status != row->verify)
            fprintf(stderr, "%s: verify %ld %s\n", row->who, r.status, r.body);
        assert_int_equal(r.status, row->verify);
        ts_http_reply_free(&r);

        r = ts_req(&s_suite, "GET", "/v1/volunteers?area=" C1, token, NULL);
        if (r.status != row->list)
            fprintf(stderr, "%s: list %ld %s\n", row->who, r.status, r.body);
        assert_int_equal(r.status, row->list);
        ts_http_reply_free(&r);
    }

    //  Update: the person changes its skills, not its community; staff move it
    //  inside their area only.
    snprintf(path, sizeof path, "/v1/volunteers/%s", id);
    r = ts_req(&s_suite, "PATCH", path, self,
               "{\"skills\":[\"tutoring\"],\"free_slots\":[\"sun_pm\"]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r.json, "skills"), 0)),
                        "tutoring");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "PATCH", path, self, "{\"community\":\"" C2 "\"}");
    assert_int_equal(r.status, 403);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "PATCH", path, other_volunteer, "{\"skills\":[\"x\"]}");
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "PATCH", path, s_worker, "{\"community\":\"420106001001\"}");
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), "out_of_scope");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "PATCH", path, s_street, "{\"community\":\"" C2 "\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "community")), C2);
    ts_http_reply_free(&r);
    //  Now the first community's worker no longer sees it.
    r = ts_req(&s_suite, "GET", path, s_worker, NULL);
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);

    //  Status: staff suspend and reinstate; the person may leave.
    snprintf(path, sizeof path, "/v1/volunteers/%s/status", id);
    r = ts_req(&s_suite, "POST", path, self, "{\"status\":\"suspended\"}");
    assert_int_equal(r.status, 403);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", path, s_street,
               "{\"status\":\"suspended\",\"reason\":\"投诉核查\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "suspended");
    ts_http_reply_free(&r);
    //  The change and its reason are on record (never in the event stream).
    PGconn *pg = PQconnectdb(s_suite.env.dsn);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    const char *params[] = {id};
    PGresult *log = PQexecParams(pg,
                                 "SELECT from_status, to_status, reason, actor IS NOT NULL "
                                 "FROM registry.volunteer_status_log WHERE volunteer_id = "
                                 "$1::bigint ORDER BY id DESC LIMIT 1",
                                 1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQntuples(log), 1);
    assert_string_equal(PQgetvalue(log, 0, 0), "verified");
    assert_string_equal(PQgetvalue(log, 0, 1), "suspended");
    assert_string_equal(PQgetvalue(log, 0, 2), "投诉核查");
    assert_string_equal(PQgetvalue(log, 0, 3), "t");
    PQclear(log);
    PQfinish(pg);
    //  …and staff covering it read it through the API; others do not.
    char log_path[96];
    snprintf(log_path, sizeof log_path, "/v1/volunteers/%s/status-log", id);
    r = ts_req(&s_suite, "GET", log_path, s_street, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_true(json_array_size(items) >= 2); //  verified (by the matrix above), suspended
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "to_status")), "suspended");
    assert_string_equal(json_string_value(json_object_get(last, "reason")), "投诉核查");
    assert_non_null(json_object_get(last, "changed_at"));
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", log_path, other_volunteer, NULL);
    assert_int_equal(r.status, 403); //  a volunteer: not a staff route
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", log_path, s_wuchang, NULL);
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", path, s_street, "{\"status\":\"verified\"}");
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    //  Suspension ended the person's sessions; reinstated, it logs in anew.
    r = ts_req(&s_suite, "GET", "/v1/me", self, NULL);
    assert_int_equal(r.status, 401);
    ts_http_reply_free(&r);
    free(self);
    self = ts_login(&s_suite, "15000000041", "volunteer-1");
    assert_non_null(self);
    r = ts_req(&s_suite, "POST", path, self, "{\"status\":\"left\"}");
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", path, s_street, "{\"status\":\"verified\"}");
    assert_int_equal(r.status, 409);
    assert_string_equal(ts_error_code(&r), "bad_transition");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "POST", path, s_street, "{\"status\":\"pending\"}");
    assert_int_equal(r.status, 400);
    ts_http_reply_free(&r);
    free(self);
    free(other_volunteer);
    free(resident);
}

static void
test_encrypted_at_rest(void **state)
{
    (void)state;
    char idn[19];
    ts_id_number("420102", "19750607", 55, idn);
    ts_http_reply_t r = s_sign_up(s_worker, "周七", idn, "15000000055", C1, NULL, 0);
    assert_int_equal(r.status, 201);
    //  Staff entering someone see it whole.
    json_t *v = json_object_get(r.json, "volunteer");
    assert_string_equal(json_string_value(json_object_get(v, "id_number")), idn);
    ts_http_reply_free(&r);

    char dump[512], bin[512];
    snprintf(dump, sizeof dump, "%s/volunteers-dump-%d.sql", ts_root(), (int)getpid());
    snprintf(bin, sizeof bin, "%s/pg_dump", ts_pg_bindir());
    const char *argv[] = {bin, "-d", s_suite.env.dsn, "-f", dump, NULL};
    assert_int_equal(ts_run(argv, false), 0);
    FILE *f = fopen(dump, "r");
    assert_non_null(f);
    char line[8192];
    size_t lines = 0;
    bool seen_hash = false;
    while (fgets(line, sizeof line, f)) {
        lines++;
        assert_null(strstr(line, idn));
        assert_null(strstr(line, "15000000055"));
        if (strstr(line, "v1:"))
            seen_hash = true;
    }
    fclose(f);
    unlink(dump);
    assert_true(lines > 100);
    assert_true(seen_hash); //  the sealed values are there
}

// ---------------------------------------------------------------- join codes

static void
test_join_code(void **state)
{
    (void)state;
    ts_http_reply_t r = ts_req(&s_suite, "GET", "/v1/areas/" C2 "/join-code", s_worker, NULL);
    assert_int_equal(r.status, 403); //  another community's
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/areas/" C2 "/join-code", s_worker_other, NULL);
    assert_int_equal(r.status, 200);
    char code[300];
    snprintf(code, sizeof code, "%s", json_string_value(json_object_get(r.json, "join_code")));
    ts_http_reply_free(&r);

    char idn[19], body[1024];
    ts_id_number("420102", "19660606", 66, idn);
    snprintf(body, sizeof body,
             "{\"name\":\"吴八\",\"id_number\":\"%s\",\"phone\":\"15000000066\","
             "\"password\":\"volunteer-1\",\"join_code\":\"%s\"}",
             idn, code);
    r = ts_req(&s_suite, "POST", "/v1/volunteers", NULL, body);
    assert_int_equal(r.status, 201);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "volunteer"), "community")), C2);
    ts_http_reply_free(&r);
    //  A tampered code is refused.
    size_t n = strlen(code);
    code[n - 2] = code[n - 2] == 'A' ? 'B' : 'A';
    ts_id_number("420102", "19660606", 67, idn);
    snprintf(body, sizeof body,
             "{\"name\":\"吴九\",\"id_number\":\"%s\",\"phone\":\"15000000067\","
             "\"password\":\"volunteer-1\",\"join_code\":\"%s\"}",
             idn, code);
    r = ts_req(&s_suite, "POST", "/v1/volunteers", NULL, body);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "invalid_join_code");
    ts_http_reply_free(&r);
}

// ---------------------------------------------------------------- pagination

typedef struct {
    int start, count; //  volunteers to add
    int ok;           //  201s
} s_inserter_t;

static void *
s_insert(void *arg)
{
    s_inserter_t *in = (s_inserter_t *)arg;
    for (int i = 0; i < in->count; i++) {
        char idn[19], phone[16];
        ts_id_number("420102", "19920303", in->start + i, idn);
        snprintf(phone, sizeof phone, "1880000%04d", in->start + i);
        ts_http_reply_t r = s_sign_up(s_worker, "郑十", idn, phone, C1, NULL, 0);
        if (r.status == 201)
            in->ok++;
        ts_http_reply_free(&r);
    }
    return NULL;
}

static void
test_pagination_stable_under_inserts(void **state)
{
    (void)state;
    //  40 volunteers to page through.
    s_inserter_t first = {100, 40, 0};
    s_insert(&first);
    assert_int_equal(first.ok, 40);
    //  Page through 7 at a time while 40 more are inserted concurrently.
    s_inserter_t more = {200, 40, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, s_insert, &more);
    json_t *seen = json_object();
    char cursor[32] = "";
    int pages = 0;
    for (;;) {
        char path[160];
        snprintf(path, sizeof path, "/v1/volunteers?area=%s&limit=7%s%s", C1,
                 *cursor ? "&cursor=" : "", cursor);
        ts_http_reply_t r = ts_req(&s_suite, "GET", path, s_worker, NULL);
        assert_int_equal(r.status, 200);
        json_t *items = json_object_get(r.json, "items");
        for (size_t i = 0; i < json_array_size(items); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(items, i), "id"));
            assert_null(json_object_get(seen, id)); //  never twice
            json_object_set_new(seen, id, json_true());
        }
        const char *next = json_string_value(json_object_get(r.json, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        ts_http_reply_free(&r);
        pages++;
        if (!*cursor)
            break;
    }
    pthread_join(thread, NULL);
    assert_int_equal(more.ok, 40);
    //  Everything that existed before the listing began was seen exactly once.
    ts_http_reply_t r =
        ts_req(&s_suite, "GET", "/v1/volunteers?area=" C1 "&limit=500", s_worker, NULL);
    json_t *items = json_object_get(r.json, "items");
    size_t before = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(items, i), "id"));
        if (atoi(id) <= 0)
            continue;
        if (json_object_get(seen, id))
            before++;
    }
    assert_true(before >= 40);
    assert_true(json_object_size(seen) >= 40);
    assert_true(pages >= 6);
    ts_http_reply_free(&r);
    json_decref(seen);

    //  Filters: status, skill, and search by whole phone (matched by hash).
    r = ts_req(&s_suite, "GET", "/v1/volunteers?area=" C1 "&q=18800000100", s_worker, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/volunteers?area=" C1 "&skill=repair&status=pending&limit=500",
               s_worker, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.json, "items")) >= 80);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/volunteers?area=420106", s_worker, NULL);
    assert_int_equal(r.status, 403);
    ts_http_reply_free(&r);
}

// ---------------------------------------------------------------- events

//  What test_events_carry_no_personal_data looks for in the event stream.
typedef struct {
    const char *idn;  //  the volunteer's ID number: in no event
    char subject[64]; //  "volunteer/<id>"
    int registered;   //  its registered events
    int verified;     //  its verified events
} s_scan_t;

//  ts_event_fn: no event carries the phone or the ID number; the volunteer's
//  events are in C1; count its registered and verified ones.
static void
s_scan_event(const Linli__Event *ev, const char *d, size_t dlen, void *arg)
{
    s_scan_t *scan = arg;
    for (size_t k = 0; k + 11 <= dlen; k++) {
        assert_false(memcmp(d + k, "15000000077", 11) == 0);
        assert_false(k + 18 <= dlen && memcmp(d + k, scan->idn, 18) == 0);
    }
    if (ev && ev->subject && !strcmp(ev->subject, scan->subject)) {
        assert_string_equal(ev->area, C1);
        if (!strcmp(ev->type, "linli.registry.volunteer.registered"))
            scan->registered++;
        if (!strcmp(ev->type, "linli.registry.volunteer.verified"))
            scan->verified++;
    }
}

static void
test_events_carry_no_personal_data(void **state)
{
    (void)state;
    char idn[19], id[32];
    ts_id_number("420102", "19770707", 77, idn);
    ts_http_reply_t r = s_sign_up(s_worker, "冯十一", idn, "15000000077", C1, id, sizeof id);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    char path[96];
    snprintf(path, sizeof path, "/v1/volunteers/%s/verify", id);
    r = ts_req(&s_suite, "POST", path, s_worker, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);

    s_scan_t scan = {.idn = idn};
    snprintf(scan.subject, sizeof scan.subject, "volunteer/%s", id);
    for (int attempt = 0; attempt < 100 && !(scan.registered && scan.verified); attempt++) {
        scan.registered = scan.verified = 0;
        assert_int_equal(ts_stream_events(&s_suite, s_scan_event, &scan), 0);
        if (!(scan.registered && scan.verified))
            ts_sleep_ms(50);
    }
    assert_int_equal(scan.registered, 1);
    assert_int_equal(scan.verified, 1);
}

// ---------------------------------------------------------------- leaders

//  An organisation's leader sees its members masked, and may not change them.
static void
test_leader_sees_members_masked(void **state)
{
    (void)state;
    char idl[19], idm[19], idx[19], leader[32], member[32], outsider[32], path[128];
    ts_id_number("420102", "19820808", 81, idl);
    ts_id_number("420102", "19830909", 82, idm);
    ts_id_number("420102", "19841010", 83, idx);
    ts_http_reply_t r = s_sign_up(NULL, "陈队长", idl, "15000000081", C1, leader, sizeof leader);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    r = s_sign_up(NULL, "褚队员", idm, "15000000082", C1, member, sizeof member);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    r = s_sign_up(NULL, "卫路人", idx, "15000000083", C1, outsider, sizeof outsider);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    const char *ids[] = {leader, member};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/v1/volunteers/%s/verify", ids[i]);
        r = ts_req(&s_suite, "POST", path, s_worker, NULL);
        assert_int_equal(r.status, 200);
        ts_http_reply_free(&r);
    }
    char body[256];
    snprintf(body, sizeof body,
             "{\"name\":\"一街志愿服务队\",\"area\":\"420102001\",\"type\":\"organization\","
             "\"leader_id\":\"%s\"}",
             leader);
    r = ts_req(&s_suite, "POST", "/v1/organizations", s_street, body);
    assert_int_equal(r.status, 201);
    char org[32];
    snprintf(org, sizeof org, "%s", json_string_value(json_object_get(r.json, "id")));
    ts_http_reply_free(&r);
    snprintf(path, sizeof path, "/v1/organizations/%s/members", org);
    snprintf(body, sizeof body, "{\"volunteer_id\":\"%s\"}", member);
    r = ts_req(&s_suite, "POST", path, s_street, body);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);

    //  The grant comes with the leader's next login.
    char *token = ts_login(&s_suite, "15000000081", "volunteer-1");
    assert_non_null(token);
    snprintf(path, sizeof path, "/v1/volunteers/%s", member);
    r = ts_req(&s_suite, "GET", path, token, NULL);
    assert_int_equal(r.status, 200);
    const char *shown_id = json_string_value(json_object_get(r.json, "id_number"));
    const char *shown_phone = json_string_value(json_object_get(r.json, "phone"));
    assert_string_not_equal(shown_id, idm);
    assert_non_null(strstr(shown_id, "********"));
    assert_int_equal(strncmp(shown_id, idm, 6), 0);
    assert_string_equal(shown_phone, "150****0082");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "PATCH", path, token, "{\"skills\":[\"tutoring\"]}");
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);
    snprintf(path, sizeof path, "/v1/volunteers/%s", outsider);
    r = ts_req(&s_suite, "GET", path, token, NULL);
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);
    free(token);
}

// ---------------------------------------------------------------- batched reads

#define S_READERS 8
#define S_READS 25

typedef struct {
    char **token;          //  whose eyes
    char (*ids)[32];       //  the volunteers to read, S_READS of them
    char (*names)[32];     //  their names, "" for one this reader may not see
    int ok, hidden, wrong; //  200 with the right record, 404 as expected, anything else
} s_reader_t;

static void *
s_read(void *arg)
{
    s_reader_t *r = (s_reader_t *)arg;
    for (int i = 0; i < S_READS; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/volunteers/%s", r->ids[i]);
        ts_http_reply_t reply = ts_req(&s_suite, "GET", path, *r->token, NULL);
        const char *id = json_string_value(json_object_get(reply.json, "id"));
        const char *name = json_string_value(json_object_get(reply.json, "name"));
        if (*r->names[i] && reply.status == 200 && id && !strcmp(id, r->ids[i]) && name &&
            !strcmp(name, r->names[i]))
            r->ok++;
        else if (!*r->names[i] && reply.status == 404)
            r->hidden++;
        else
            r->wrong++;
        ts_http_reply_free(&reply);
    }
    return NULL;
}

//  Reads arrive together and are answered in batches (one query for many
//  callers): each caller still gets its own record, or its own 404.
static void
test_concurrent_reads_answer_each_caller(void **state)
{
    (void)state;
    static char ids[S_READS][32], names[S_READS][32], none[S_READS][32];
    for (int i = 0; i < S_READS; i++) {
        char idn[19], phone[16];
        ts_id_number("420102", "19880808", 300 + i, idn);
        snprintf(phone, sizeof phone, "1870000%04d", i);
        snprintf(names[i], sizeof names[i], "读者%d", i);
        ts_http_reply_t r = s_sign_up(s_worker, names[i], idn, phone, C1, ids[i], sizeof ids[i]);
        assert_int_equal(r.status, 201);
        ts_http_reply_free(&r);
        none[i][0] = '\0';
    }
    //  Staff of the community read them all; another community's worker
    //  reads the same ids at the same time and must get 404 for each.
    s_reader_t readers[S_READERS];
    pthread_t threads[S_READERS];
    for (int t = 0; t < S_READERS; t++) {
        readers[t] = (s_reader_t){.token = t % 2 ? &s_worker_other : &s_worker,
                                  .ids = ids,
                                  .names = t % 2 ? none : names};
        pthread_create(&threads[t], NULL, s_read, &readers[t]);
    }
    int ok = 0, hidden = 0, wrong = 0;
    for (int t = 0; t < S_READERS; t++) {
        pthread_join(threads[t], NULL);
        ok += readers[t].ok;
        hidden += readers[t].hidden;
        wrong += readers[t].wrong;
    }
    assert_int_equal(wrong, 0);
    assert_int_equal(ok, S_READERS / 2 * S_READS);
    assert_int_equal(hidden, S_READERS / 2 * S_READS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_up_and_id_numbers),
        cmocka_unit_test(test_scope_matrix),
        cmocka_unit_test(test_encrypted_at_rest),
        cmocka_unit_test(test_join_code),
        cmocka_unit_test(test_pagination_stable_under_inserts),
        cmocka_unit_test(test_events_carry_no_personal_data),
        cmocka_unit_test(test_leader_sees_members_masked),
        cmocka_unit_test(test_concurrent_reads_answer_each_caller),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
