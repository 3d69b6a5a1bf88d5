//  One-time password codes end to end: an imported volunteer (no password)
//  gets a code from the community worker covering it and sets a password
//  with it; who may issue codes; codes are single-use, expire, die after a
//  few wrong tries, are stored only as keyed hashes and never in events.
#include "test_suite.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C1 "420102001001"
#define C2 "420102001002"

static ts_suite_t s_suite;
static char *s_admin;        //  city admin
static char *s_worker;       //  community worker of C1
static char *s_worker_other; //  community worker of C2
static char *s_volunteer;    //  a volunteer of C1 (self sign-up)
static PGconn *s_db;

//  Import one volunteer of C1 with this phone (seq makes its ID number);
//  its account id into id.
static void
s_import(const char *phone, int seq, char *id, size_t cap)
{
    char idn[19], csv[256], path[64];
    ts_id_number("420102", "19560606", seq, idn);
    snprintf(csv, sizeof csv, "name,id_number,phone,community\n导入,%s,%s," C1 "\n", idn, phone);
    ts_http_reply_t r = ts_req(&s_suite, "POST", "/v1/imports/volunteers", s_admin, csv);
    assert_int_equal(r.status, 202);
    snprintf(path, sizeof path, "/v1/imports/%s", json_string_value(json_object_get(r.json, "id")));
    ts_http_reply_free(&r);
    bool done = false;
    for (int64_t until = ts_mono_ms() + 20000; !done && ts_mono_ms() < until; ts_sleep_ms(50)) {
        r = ts_req(&s_suite, "GET", path, s_admin, NULL);
        const char *status = json_string_value(json_object_get(r.json, "status"));
        done = status && !strcmp(status, "done");
        if (done)
            assert_int_equal(json_integer_value(json_object_get(r.json, "imported")), 1);
        ts_http_reply_free(&r);
    }
    assert_true(done);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT a.id FROM registry.accounts a JOIN registry.volunteers v USING (id) "
             "WHERE v.id_number_hash IS NOT NULL AND a.name = '导入' ORDER BY a.id DESC LIMIT 1");
    snprintf(id, cap, "%ld", ts_sql_long(s_db, sql));
}

//  POST /v1/volunteers/{id}/password-code as token: the reply.
static ts_http_reply_t
s_issue(const char *id, const char *token)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/volunteers/%s/password-code", id);
    return ts_req(&s_suite, "POST", path, token, NULL);
}

static int
s_setup(void **state)
{
    (void)state;
    //  Three wrong tries per phone per second: the tests wait the window out.
    const char *const extra[] = {"LINLI_LOGIN_MAX_FAILURES=3", "LINLI_LOGIN_WINDOW_S=1", NULL};
    s_admin = ts_suite_start_admin(&s_suite, "password_codes", 1, extra);
    if (!s_admin)
        return -1;
    s_worker = ts_staff(&s_suite, s_admin, "13700000011", "community_worker", C1);
    s_worker_other = ts_staff(&s_suite, s_admin, "13700000012", "community_worker", C2);
    char idn[19];
    ts_id_number("420102", "19900101", 1, idn);
    ts_http_reply_t r =
        ts_sign_up(&s_suite, NULL, "自己", idn, "13700000013", C1, "\"repair\"", NULL, 0);
    s_volunteer =
        r.status == 201 && *ts_json_str(&r, "token") ? strdup(ts_json_str(&r, "token")) : NULL;
    ts_http_reply_free(&r);
    s_db = PQconnectdb(s_suite.env.dsn);
    return s_worker && s_worker_other && s_volunteer && PQstatus(s_db) == CONNECTION_OK ? 0 : -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    PQfinish(s_db);
    free(s_admin);
    free(s_worker);
    free(s_worker_other);
    free(s_volunteer);
    ts_suite_stop(&s_suite);
    return 0;
}

static void
test_imported_volunteer_sets_password(void **state)
{
    (void)state;
    const char *phone = "13611110001";
    char id[32];
    s_import(phone, 1, id, sizeof id);
    assert_null(ts_login(&s_suite, phone, "anything-1"));

    //  Who may issue: staff covering the volunteer only.
    ts_http_reply_t r = s_issue(id, NULL);
    assert_int_equal(r.status, 401);
    ts_http_reply_free(&r);
    r = s_issue(id, s_volunteer);
    assert_int_equal(r.status, 403);
    ts_http_reply_free(&r);
    r = s_issue(id, s_worker_other);
    assert_int_equal(r.status, 404);
    assert_string_equal(ts_error_code(&r), "volunteer_not_found");
    ts_http_reply_free(&r);
    r = s_issue("99999999", s_worker);
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);
    r = s_issue("abc", s_worker);
    assert_int_equal(r.status, 400);
    ts_http_reply_free(&r);
    r = s_issue(id, s_worker);
    assert_int_equal(r.status, 201);
    char code[9];
    snprintf(code, sizeof code, "%s", json_string_value(json_object_get(r.json, "code")));
    assert_int_equal(strlen(code), 8);
    assert_string_equal(json_string_value(json_object_get(r.json, "account_id")), id);
    assert_non_null(json_string_value(json_object_get(r.json, "expires_at")));
    ts_http_reply_free(&r);

    //  Kept only as a keyed hash; the event names the account, not the code.
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM registry.password_codes WHERE account_id = %s "
             "AND code_hash <> '%s' AND strpos(code_hash, '%s') = 0",
             id, code, code);
    assert_int_equal(ts_sql_long(s_db, sql), 1);
    char subject[48];
    snprintf(subject, sizeof subject, "account/%s", id);
    const char *needles[] = {code, phone, NULL};
    assert_int_equal(ts_stream_count_events(&s_suite, subject,
                                            "linli.registry.account.password_code_issued", C1,
                                            needles),
                     1);

    //  Bad input: named fields.
    r = ts_set_password(&s_suite, phone, "12ab5678", "new-password-1");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "code");
    ts_http_reply_free(&r);
    r = ts_set_password(&s_suite, phone, code, "short");
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "password");
    ts_http_reply_free(&r);
    r = ts_set_password(&s_suite, "12345", code, "new-password-1");
    assert_int_equal(r.status, 400);
    ts_http_reply_free(&r);

    //  The right code sets the password and logs in; once.
    r = ts_set_password(&s_suite, phone, code, "new-password-1");
    assert_int_equal(r.status, 200);
    const char *token = json_string_value(json_object_get(r.json, "token"));
    assert_non_null(token);
    char *mine = strdup(token);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/me", mine, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), id);
    ts_http_reply_free(&r);
    free(mine);
    char *again = ts_login(&s_suite, phone, "new-password-1");
    assert_non_null(again);
    free(again);
    r = ts_set_password(&s_suite, phone, code, "other-password-2");
    assert_int_equal(r.status, 401);
    assert_string_equal(ts_error_code(&r), "bad_code");
    ts_http_reply_free(&r);
    assert_int_equal(ts_stream_count_events(&s_suite, subject,
                                            "linli.registry.account.password_set", C1, needles),
                     1);

    //  A new code resets a forgotten password the same way, and ends the
    //  sessions opened with the old one.
    char *old = ts_login(&s_suite, phone, "new-password-1");
    assert_non_null(old);
    r = ts_req(&s_suite, "GET", "/v1/me", old, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    ts_password_code(&s_suite, s_worker, id, code);
    ts_sleep_ms(1100); //  the failed reuse above counted against the phone
    r = ts_set_password(&s_suite, phone, code, "third-password-3");
    assert_int_equal(r.status, 200);
    assert_true(*ts_json_str(&r, "token"));
    char *fresh = strdup(ts_json_str(&r, "token"));
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/me", old, NULL);
    assert_int_equal(r.status, 401);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/me", fresh, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    free(old);
    free(fresh);
    assert_null(ts_login(&s_suite, phone, "new-password-1"));
    again = ts_login(&s_suite, phone, "third-password-3");
    assert_non_null(again);
    free(again);
}

static void
test_wrong_tries_expiry_and_unknown_phone(void **state)
{
    (void)state;
    const char *phone = "13611110002";
    char id[32], code[9], wrong[16];
    s_import(phone, 2, id, sizeof id);
    ts_password_code(&s_suite, s_worker, id, code);
    snprintf(wrong, sizeof wrong, "%08d", (atoi(code) + 1) % 100000000);

    //  Three wrong tries kill the code (and the phone waits the window out).
    for (int i = 0; i < 3; i++) {
        ts_http_reply_t r = ts_set_password(&s_suite, phone, wrong, "new-password-1");
        assert_int_equal(r.status, 401);
        assert_string_equal(ts_error_code(&r), "bad_code");
        ts_http_reply_free(&r);
    }
    ts_http_reply_t r = ts_set_password(&s_suite, phone, code, "new-password-1");
    assert_int_equal(r.status, 429);
    assert_string_equal(ts_error_code(&r), "too_many_attempts");
    ts_http_reply_free(&r);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM registry.password_codes WHERE account_id = %s",
             id);
    assert_int_equal(ts_sql_long(s_db, sql), 0);
    ts_sleep_ms(1100);
    r = ts_set_password(&s_suite, phone, code, "new-password-1");
    assert_int_equal(r.status, 401);
    ts_http_reply_free(&r);

    //  An expired code is refused like a wrong one.
    ts_password_code(&s_suite, s_worker, id, code);
    snprintf(sql, sizeof sql,
             "UPDATE registry.password_codes SET expires_at = now() - interval '1 second' "
             "WHERE account_id = %s",
             id);
    PQclear(PQexec(s_db, sql));
    ts_sleep_ms(1100);
    r = ts_set_password(&s_suite, phone, code, "new-password-1");
    assert_int_equal(r.status, 401);
    assert_string_equal(ts_error_code(&r), "bad_code");
    ts_http_reply_free(&r);

    //  A phone with no account: the same answer.
    r = ts_set_password(&s_suite, "13611119999", code, "new-password-1");
    assert_int_equal(r.status, 401);
    assert_string_equal(ts_error_code(&r), "bad_code");
    ts_http_reply_free(&r);
    assert_null(ts_login(&s_suite, phone, "new-password-1"));
}

//  A disabled account keeps its password and its code; a volunteer holding
//  grants (an organisation's leader) gets codes from a city admin only.
static void
test_disabled_account_and_grants(void **state)
{
    (void)state;
    const char *phone = "13611110003";
    char id[32], code[9], sql[200];
    s_import(phone, 3, id, sizeof id);
    ts_password_code(&s_suite, s_worker, id, code);
    snprintf(sql, sizeof sql, "UPDATE registry.accounts SET status = 'disabled' WHERE id = %s", id);
    PQclear(PQexec(s_db, sql));
    ts_http_reply_t r = ts_set_password(&s_suite, phone, code, "new-password-1");
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), "account_disabled");
    ts_http_reply_free(&r);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM registry.accounts a JOIN registry.password_codes c "
             "ON c.account_id = a.id WHERE a.id = %s AND a.password_hash IS NULL",
             id);
    assert_int_equal(ts_sql_long(s_db, sql), 1);
    r = s_issue(id, s_worker);
    assert_int_equal(r.status, 409);
    ts_http_reply_free(&r);

    snprintf(sql, sizeof sql, "UPDATE registry.accounts SET status = 'active' WHERE id = %s", id);
    PQclear(PQexec(s_db, sql));
    snprintf(sql, sizeof sql,
             "INSERT INTO registry.grants (account_id, role, scope) VALUES (%s, 'org_leader', "
             "'org:1')",
             id);
    PQclear(PQexec(s_db, sql));
    r = s_issue(id, s_worker);
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), "holds_grants");
    ts_http_reply_free(&r);
    ts_password_code(&s_suite, s_admin, id, code);
    r = ts_set_password(&s_suite, phone, code, "leader-password-1");
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imported_volunteer_sets_password),
        cmocka_unit_test(test_wrong_tries_expiry_and_unknown_phone),
        cmocka_unit_test(test_disabled_account_and_grants),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
