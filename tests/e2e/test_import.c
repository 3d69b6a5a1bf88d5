//  Bulk import end to end: a CSV of good and bad rows through the gateway
//  (exact counts, per-row reasons, the good rows readable, a re-import adds
//  nothing), malformed files (a clear job error, nothing written), dry runs,
//  scope and access, and a runner killed mid-job (another one finishes it).
#include "test_suite.h"

#include "linli/events.pb-c.h"
#include "linli/registry.pb-c.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static ts_suite_t s_suite;
static char *s_admin;    //  city admin
static char *s_worker;   //  community worker of C1
static char *s_district; //  district admin of 武昌区 420106
static PGconn *s_db;     //  the suite's database, for checks from outside

#define C1 "420102001001"
#define C2 "420102001002"
#define WUCHANG "420106001001"

// ---------------------------------------------------------------- helpers

static int
s_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

//  Volunteers announced by linli.registry.volunteers.imported events in the
//  outbox whose area is in areas (an SQL list). Every event must name one
//  community, hold only that community's volunteers and at most 500; *dups
//  (may be NULL) counts ids announced more than once.
static long
s_announced(const char *areas, long *dups)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT payload FROM registry.outbox WHERE type = "
             "'linli.registry.volunteers.imported' AND area IN (%s)",
             areas);
    PGresult *res = PQexecParams(s_db, sql, 0, NULL, NULL, NULL, NULL, 1);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    long n = 0, cap = 1024;
    long long *ids = malloc((size_t)cap * sizeof *ids);
    assert_non_null(ids);
    for (int r = 0; r < PQntuples(res); r++) {
        Linli__Event *ev = linli__event__unpack(NULL, (size_t)PQgetlength(res, r, 0),
                                                (const uint8_t *)PQgetvalue(res, r, 0));
        assert_non_null(ev);
        assert_string_equal(ev->data_type, "linli.registry.VolunteersImported");
        Linli__Registry__VolunteersImported *b =
            linli__registry__volunteers_imported__unpack(NULL, ev->data.len, ev->data.data);
        assert_non_null(b);
        assert_string_equal(b->community, ev->area);
        assert_true(b->n_volunteers >= 1 && b->n_volunteers <= 500);
        for (size_t i = 0; i < b->n_volunteers; i++) {
            assert_string_equal(b->volunteers[i]->community, b->community);
            assert_true(b->volunteers[i]->has_version);
            if (n == cap) {
                cap *= 2;
                ids = realloc(ids, (size_t)cap * sizeof *ids);
                assert_non_null(ids);
            }
            ids[n++] = atoll(b->volunteers[i]->id);
        }
        linli__registry__volunteers_imported__free_unpacked(b, NULL);
        linli__event__free_unpacked(ev, NULL);
    }
    PQclear(res);
    qsort(ids, (size_t)n, sizeof *ids, s_cmp_ll);
    long d = 0;
    for (long i = 1; i < n; i++)
        d += ids[i] == ids[i - 1];
    if (dups)
        *dups = d;
    free(ids);
    return n;
}

static long
s_volunteers(void)
{
    return ts_sql_long(s_db, "SELECT count(*) FROM registry.volunteers");
}

//  Submit csv as token (query: "" or "?dry_run=true"); expects 202, returns the job id.
static char *
s_submit(const char *token, const char *csv, const char *query)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/imports/volunteers%s", query);
    ts_http_reply_t r = ts_req(&s_suite, "POST", path, token, csv);
    if (r.status != 202)
        fprintf(stderr, "submit: %ld %s\n", r.status, r.body);
    assert_int_equal(r.status, 202);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "queued");
    const char *id = json_string_value(json_object_get(r.json, "id"));
    assert_non_null(id);
    char *out = strdup(id);
    ts_http_reply_free(&r);
    return out;
}

//  Poll the job until it is done or failed (30 s at most); the reply.
static ts_http_reply_t
s_wait(const char *token, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/imports/%s", id);
    int64_t until = ts_mono_ms() + 30000;
    while (true) {
        ts_http_reply_t r = ts_req(&s_suite, "GET", path, token, NULL);
        //  A worker killed under a request: the gateway answers 503/504 once.
        if (r.status != 503 && r.status != 504) {
            assert_int_equal(r.status, 200);
            const char *status = json_string_value(json_object_get(r.json, "status"));
            if (!strcmp(status, "done") || !strcmp(status, "failed"))
                return r;
        }
        ts_http_reply_free(&r);
        assert_true(ts_mono_ms() < until);
        ts_sleep_ms(100);
    }
}

static json_int_t
s_int(const ts_http_reply_t *r, const char *field)
{
    return json_integer_value(json_object_get(r->json, field));
}

//  Assert row error i of a job reply.
static void
s_row_error(const ts_http_reply_t *r, size_t i, int line, const char *code, const char *field)
{
    json_t *e = json_array_get(json_object_get(r->json, "errors"), i);
    assert_non_null(e);
    if (json_integer_value(json_object_get(e, "line")) != line ||
        strcmp(json_string_value(json_object_get(e, "code")), code))
        fprintf(stderr, "error %zu: %s\n", i, json_dumps(e, 0));
    assert_int_equal(json_integer_value(json_object_get(e, "line")), line);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *f = json_string_value(json_object_get(e, "field"));
    assert_string_equal(f ? f : "", field);
    assert_true(strlen(json_string_value(json_object_get(e, "message"))) > 5);
}

//  The volunteer with this phone as seen by token (GET /v1/volunteers?q=…),
//  then read whole by id; caller frees the reply.
static ts_http_reply_t
s_volunteer_by_phone(const char *token, const char *area, const char *phone)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/volunteers?area=%s&q=%s", area, phone);
    ts_http_reply_t r = ts_req(&s_suite, "GET", path, token, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 1);
    snprintf(path, sizeof path, "/v1/volunteers/%s",
             json_string_value(json_object_get(json_array_get(items, 0), "id")));
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", path, token, NULL);
    assert_int_equal(r.status, 200);
    return r;
}

static int
s_setup(void **state)
{
    (void)state;
    const char *const extra[] = {"LINLI_DEMO_VOLUNTEERS=0", NULL};
    s_admin = ts_suite_start_admin(&s_suite, "import", 2, extra);
    if (!s_admin)
        return -1;
    s_db = PQconnectdb(s_suite.env.dsn);
    if (PQstatus(s_db) != CONNECTION_OK)
        return -1;
    s_worker = ts_staff(&s_suite, s_admin, "13700000101", "community_worker", C1);
    s_district = ts_staff(&s_suite, s_admin, "13700000102", "district_admin", "420106");
    return s_worker && s_district ? 0 : -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    free(s_admin);
    free(s_worker);
    free(s_district);
    PQfinish(s_db);
    ts_suite_stop(&s_suite);
    return 0;
}

// ---------------------------------------------------------------- good and bad rows

static void
test_good_and_bad_rows(void **state)
{
    (void)state;
    char id[16][19], young_birth[16];
    ts_id_number("420102", "19800101", 1, id[0]);
    ts_id_number("420102", "19851231", 2, id[1]);
    ts_id_number("420103", "19900615", 3, id[2]);
    ts_id_number("420106", "19750704", 5, id[3]);
    ts_id_number("420102", "19660202", 7, id[4]); //  signed up before the import
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(young_birth, sizeof young_birth, "%04d0101", tm.tm_year + 1900 - 10);
    ts_id_number("420102", young_birth, 9, id[5]);
    ts_id_number("420102", "19700101", 11, id[6]);
    ts_id_number("420102", "19700101", 13, id[7]);
    char bad_check[19];
    snprintf(bad_check, sizeof bad_check, "%s", id[6]);
    bad_check[17] = bad_check[17] == '1' ? '2' : '1';

    //  A volunteer registered already: the import meets their ID number.
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"老会员\",\"id_number\":\"%s\",\"phone\":\"13500000099\","
             "\"community\":\"" C1 "\"}",
             id[4]);
    ts_http_reply_t r = ts_req(&s_suite, "POST", "/v1/volunteers", s_admin, body);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    long before = s_volunteers();
    const char *c1_events = "SELECT count(*) FROM registry.outbox WHERE type = "
                            "'linli.registry.volunteer.registered' AND area = '" C1 "'";
    long events_before = ts_sql_long(s_db, c1_events);
    long announced_before = s_announced("'" C1 "'", NULL);

    //  A BOM, CRLF, columns in another order, quoting, blanks around values.
    char csv[4096];
    snprintf(csv, sizeof csv,
             "\xef\xbb\xbfphone,name,id_number,community,skills,free_slots,status,gender,"
             "political_status\r\n"
             "13500000001,王芳,%s," C1 ",elderly_care;repair,sat_am;sun_pm,verified,male,"
             "party_member\r\n"                                                   //  2 good
             "13500000002,\"李,四\",%s," C2 ", , ,,,\r\n"                         //  3 good
             " 13500000003 ,\"张\"\"三\",%s," C1 ",tutoring,,pending,,masses\r\n" //  4 good
             "13500000004,赵六,%s," C1 ",,,,,\r\n"                                //  5 check digit
             "12345,钱七,%s," C1 ",,,,,\r\n"                                      //  6 phone
             "13500000006,孙八,%s,420102001999,,,,,\r\n"                          //  7 community
             "13500000007,周九,%s," C1 ",,,,,\r\n"                                //  8 dup id
             "13500000001,吴十,%s," C1 ",,,,,\r\n"                                //  9 dup phone
             "13500000009,郑小,%s," C1 ",,,,,\r\n"                                //  10 too young
             "13500000010,王五\r\n"                                               //  11 columns
             "13500000011,冯一,%s," C1 ",,,active,,\r\n"                          //  12 status
             TS_ADMIN_PHONE ",陈二,%s," C1 ",,,,,\r\n"                            //  13 phone taken
             "13500000013,褚三,%s," WUCHANG ",medical,,verified,,\r\n"            //  14 good
             "13500000014,卫四,%s," C1 ",,,,,\r\n",                               //  15 dup DB id
             id[0], id[1], id[2], bad_check, id[6], id[6], id[0], id[7], id[5], id[6], id[6], id[3],
             id[4]);
    char *job = s_submit(s_admin, csv, "");
    r = s_wait(s_admin, job);
    assert_string_equal(ts_json_str(&r, "status"), "done");
    assert_int_equal(s_int(&r, "total_rows"), 14);
    assert_int_equal(s_int(&r, "processed_rows"), 14);
    assert_int_equal(s_int(&r, "imported"), 4);
    assert_int_equal(s_int(&r, "rejected"), 10);
    assert_false(json_is_true(json_object_get(r.json, "dry_run")));
    assert_non_null(json_object_get(r.json, "finished_at"));
    assert_int_equal(json_array_size(json_object_get(r.json, "errors")), 10);
    s_row_error(&r, 0, 5, "bad_check_digit", "id_number");
    s_row_error(&r, 1, 6, "invalid_format", "phone");
    s_row_error(&r, 2, 7, "unknown_community", "community");
    s_row_error(&r, 3, 8, "duplicate_in_file", "id_number");
    s_row_error(&r, 4, 9, "duplicate_in_file", "phone");
    s_row_error(&r, 5, 10, "too_young", "id_number");
    s_row_error(&r, 6, 11, "wrong_columns", "");
    s_row_error(&r, 7, 12, "invalid_value", "status");
    s_row_error(&r, 8, 13, "phone_taken", "phone");
    s_row_error(&r, 9, 15, "duplicate_id_number", "id_number");
    //  No ID number or phone of the file anywhere in the report.
    for (int i = 0; i < 8; i++)
        assert_null(strstr(r.body, id[i]));
    assert_null(strstr(r.body, "13500000001"));
    assert_null(strstr(r.body, TS_ADMIN_PHONE));
    ts_http_reply_free(&r);
    assert_int_equal(s_volunteers(), before + 4);

    //  The good rows read back through the API, as imported.
    r = s_volunteer_by_phone(s_admin, "420102", "13500000001");
    assert_string_equal(ts_json_str(&r, "name"), "王芳");
    assert_string_equal(ts_json_str(&r, "community"), C1);
    assert_string_equal(ts_json_str(&r, "status"), "verified");
    assert_string_equal(ts_json_str(&r, "source"), "import");
    assert_string_equal(ts_json_str(&r, "political_status"), "party_member");
    json_t *skills = json_object_get(r.json, "skills");
    assert_int_equal(json_array_size(skills), 2);
    assert_string_equal(json_string_value(json_array_get(skills, 0)), "elderly_care");
    assert_non_null(json_object_get(r.json, "verified_at"));
    char first_id[32];
    snprintf(first_id, sizeof first_id, "%s", ts_json_str(&r, "id"));
    ts_http_reply_free(&r);
    r = s_volunteer_by_phone(s_admin, "420102", "13500000002");
    assert_string_equal(ts_json_str(&r, "name"), "李,四");
    assert_string_equal(ts_json_str(&r, "status"), "pending");
    ts_http_reply_free(&r);
    r = s_volunteer_by_phone(s_admin, "420102", "13500000003");
    assert_string_equal(ts_json_str(&r, "name"), "张\"三");
    ts_http_reply_free(&r);
    r = s_volunteer_by_phone(s_admin, "420106", "13500000013");
    assert_string_equal(ts_json_str(&r, "community"), WUCHANG);
    ts_http_reply_free(&r);

    //  No password yet; announced in a volunteers.imported event, not one
    //  registered event each.
    assert_int_equal(ts_sql_long(s_db, "SELECT count(*) FROM registry.accounts a JOIN "
                                       "registry.volunteers v USING (id) WHERE v.source = 'import' "
                                       "AND a.password_hash IS NULL AND a.kind = 'volunteer'"),
                     4);
    assert_int_equal(ts_sql_long(s_db, c1_events), events_before);
    long dups = -1;
    assert_int_equal(s_announced("'" C1 "'", &dups), announced_before + 2);
    assert_int_equal(dups, 0);
    char sql[256];
    //  The file is gone once the job is done.
    snprintf(sql, sizeof sql, "SELECT count(*) FROM registry.import_files WHERE job_id = %s", job);
    assert_int_equal(ts_sql_long(s_db, sql), 0);

    //  The same file again: every row a duplicate, nothing new.
    char *again = s_submit(s_admin, csv, "");
    r = s_wait(s_admin, again);
    assert_string_equal(ts_json_str(&r, "status"), "done");
    assert_int_equal(s_int(&r, "imported"), 0);
    assert_int_equal(s_int(&r, "rejected"), 14);
    s_row_error(&r, 0, 2, "duplicate_id_number", "id_number");
    s_row_error(&r, 1, 3, "duplicate_id_number", "id_number");
    s_row_error(&r, 2, 4, "duplicate_id_number", "id_number");
    s_row_error(&r, 6, 8, "duplicate_in_file", "id_number");
    s_row_error(&r, 12, 14, "duplicate_id_number", "id_number");
    ts_http_reply_free(&r);
    assert_int_equal(s_volunteers(), before + 4);
    free(again);
    free(job);
}

// ---------------------------------------------------------------- malformed files

//  Submit csv; the job must fail with code at line (0: any), writing nothing.
static void
s_expect_job_error(const char *csv, const char *code, int line)
{
    long before = s_volunteers();
    char *job = s_submit(s_admin, csv, "");
    ts_http_reply_t r = s_wait(s_admin, job);
    assert_string_equal(ts_json_str(&r, "status"), "failed");
    if (strcmp(ts_json_str(&r, "error_code"), code))
        fprintf(stderr, "job error: %s\n", r.body);
    assert_string_equal(ts_json_str(&r, "error_code"), code);
    assert_true(strlen(ts_json_str(&r, "error")) > 10);
    if (line)
        assert_int_equal(s_int(&r, "error_line"), line);
    assert_int_equal(s_int(&r, "imported"), 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "errors")), 0);
    ts_http_reply_free(&r);
    assert_int_equal(s_volunteers(), before);
    free(job);
}

static void
test_malformed_files(void **state)
{
    (void)state;
    char id[19], csv[1024];
    ts_id_number("420102", "19880808", 21, id);
    //  Good rows first: a broken file writes none of them.
    snprintf(csv, sizeof csv,
             "name,id_number,phone,community\n"
             "好人,%s,13500000021," C1 "\n"
             "\"没有结束,11010519491231002X,13500000022," C1 "\n"
             "某人,11010519491231002X,13500000023," C1 "\n",
             id);
    s_expect_job_error(csv, "bad_quoting", 3);
    snprintf(csv, sizeof csv,
             "name,id_number,phone,community\n"
             "好人,%s,13500000021," C1 "\n"
             "坏\"人,11010519491231002X,13500000022," C1 "\n",
             id);
    s_expect_job_error(csv, "bad_quoting", 3);
    //  GBK bytes (张三) where UTF-8 belongs.
    snprintf(csv, sizeof csv,
             "name,id_number,phone,community\n"
             "好人,%s,13500000021," C1 "\n"
             "\xd5\xc5\xc8\xfd,11010519491231002X,13500000022," C1 "\n",
             id);
    s_expect_job_error(csv, "not_utf8", 3);
    //  Headers: unknown, missing, repeated, absent.
    s_expect_job_error("name,id,phone,community\n好人,1,2,3\n", "bad_header", 1);
    s_expect_job_error("name,id_number,phone\n好人,1,2\n", "bad_header", 1);
    s_expect_job_error("name,id_number,phone,community,name\n", "bad_header", 1);
    snprintf(csv, sizeof csv, "好人,%s,13500000021," C1 "\n", id);
    s_expect_job_error(csv, "bad_header", 1);
    //  Blank lines only.
    s_expect_job_error("\n\r\n\n", "empty_file", 0);

    //  The header alone: a job that imports nothing.
    char *job = s_submit(s_admin, "name,id_number,phone,community\r\n", "");
    ts_http_reply_t r = s_wait(s_admin, job);
    assert_string_equal(ts_json_str(&r, "status"), "done");
    assert_int_equal(s_int(&r, "total_rows"), 0);
    ts_http_reply_free(&r);
    free(job);

    //  No body at all.
    r = ts_req(&s_suite, "POST", "/v1/imports/volunteers", s_admin, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "missing_field");
    assert_string_equal(ts_error_field(&r), "csv");
    ts_http_reply_free(&r);
}

// ---------------------------------------------------------------- dry run, scope, access

static void
test_dry_run(void **state)
{
    (void)state;
    char id[2][19], csv[1024];
    ts_id_number("420102", "19790303", 31, id[0]);
    ts_id_number("420102", "19790303", 33, id[1]);
    snprintf(csv, sizeof csv,
             "name,id_number,phone,community\n试一,%s,13500000031," C1 "\n试二,%s,bad," C1 "\n",
             id[0], id[1]);
    long before = s_volunteers();
    char *job = s_submit(s_admin, csv, "?dry_run=true");
    ts_http_reply_t r = s_wait(s_admin, job);
    assert_string_equal(ts_json_str(&r, "status"), "done");
    assert_true(json_is_true(json_object_get(r.json, "dry_run")));
    assert_int_equal(s_int(&r, "imported"), 1);
    assert_int_equal(s_int(&r, "rejected"), 1);
    s_row_error(&r, 0, 3, "invalid_format", "phone");
    ts_http_reply_free(&r);
    free(job);
    assert_int_equal(s_volunteers(), before);
    //  For real now.
    job = s_submit(s_admin, csv, "");
    r = s_wait(s_admin, job);
    assert_int_equal(s_int(&r, "imported"), 1);
    ts_http_reply_free(&r);
    free(job);
    assert_int_equal(s_volunteers(), before + 1);
}

static void
test_scope_and_access(void **state)
{
    (void)state;
    char id[2][19], csv[1024];
    ts_id_number("420102", "19820909", 41, id[0]);
    ts_id_number("420102", "19820909", 43, id[1]);
    snprintf(csv, sizeof csv,
             "name,id_number,phone,community\n本社区,%s,13500000041," C1
             "\n邻社区,%s,13500000042," C2 "\n",
             id[0], id[1]);
    //  A community worker imports into its own community only.
    char *job = s_submit(s_worker, csv, "");
    ts_http_reply_t r = s_wait(s_worker, job);
    assert_string_equal(ts_json_str(&r, "status"), "done");
    assert_int_equal(s_int(&r, "imported"), 1);
    assert_int_equal(s_int(&r, "rejected"), 1);
    s_row_error(&r, 0, 3, "out_of_scope", "community");
    assert_true(strlen(ts_json_str(&r, "created_by")) > 0);
    ts_http_reply_free(&r);

    //  The creator and city admins see the job; other staff get 404.
    char path[64];
    snprintf(path, sizeof path, "/v1/imports/%s", job);
    r = ts_req(&s_suite, "GET", path, s_admin, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", path, s_district, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(ts_error_code(&r), "import_not_found");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 401);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/imports/999999", s_admin, NULL);
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/imports/abc", s_admin, NULL);
    assert_int_equal(r.status, 400);
    ts_http_reply_free(&r);
    free(job);

    //  A volunteer may not import.
    r = ts_req(&s_suite, "POST", "/v1/volunteers", NULL,
               "{\"name\":\"志愿者\",\"id_number\":\"11010519491231002X\","
               "\"phone\":\"13500000049\",\"password\":\"volunteer-1\","
               "\"community\":\"" C1 "\"}");
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    char *volunteer = ts_login(&s_suite, "13500000049", "volunteer-1");
    assert_non_null(volunteer);
    r = ts_req(&s_suite, "POST", "/v1/imports/volunteers", volunteer, csv);
    assert_int_equal(r.status, 403);
    ts_http_reply_free(&r);
    free(volunteer);
}

// ---------------------------------------------------------------- a runner dies

static void
test_runner_killed(void **state)
{
    (void)state;
    //  Big enough to be caught running: 30,000 rows.
    size_t cap = 30000 * 80 + 64, len = 0;
    char *csv = malloc(cap);
    assert_non_null(csv);
    len += (size_t)snprintf(csv, cap, "name,id_number,phone,community\n");
    for (int k = 0; k < 30000; k++) {
        char id[19], birth[9];
        snprintf(birth, sizeof birth, "1985%02d%02d", 1 + k % 12, 1 + (k / 12) % 28);
        ts_id_number("420104", birth, 1 + k / 336, id);
        len += (size_t)snprintf(csv + len, cap - len, "批量%d,%s,156%08d,%s\n", k % 100, id, k,
                                k % 2 ? C1 : C2);
    }
    long before = s_volunteers();
    char *job = s_submit(s_admin, csv, "");
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(split_part(runner, ':', 2), '0') FROM registry.import_jobs "
             "WHERE id = %s AND status = 'running' AND phase = 'staging'",
             job);
    //  Kill whichever worker is staging it; the other takes the job over.
    long pid = 0;
    int64_t until = ts_mono_ms() + 20000;
    while (!pid && ts_mono_ms() < until) {
        PGresult *res = PQexec(s_db, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            pid = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
        ts_sleep_ms(20);
    }
    assert_true(pid > 0);
    int slot = -1;
    for (int i = 0; i < TS_MAX_PROCS; i++)
        if (s_suite.registry[i] == (pid_t)pid)
            slot = i;
    assert_true(slot >= 0);
    ts_kill(s_suite.registry[slot], SIGKILL);
    s_suite.registry[slot] = 0;
    ts_http_reply_t r = s_wait(s_admin, job);
    assert_string_equal(ts_json_str(&r, "status"), "done");
    assert_int_equal(s_int(&r, "imported"), 30000);
    assert_int_equal(s_int(&r, "rejected"), 0);
    ts_http_reply_free(&r);
    assert_int_equal(s_volunteers(), before + 30000);
    snprintf(sql, sizeof sql, "SELECT attempts FROM registry.import_jobs WHERE id = %s", job);
    assert_int_equal(ts_sql_long(s_db, sql), 2);
    //  Every volunteer announced exactly once, however many runners began the job.
    long dups = -1;
    assert_int_equal(
        ts_sql_long(s_db, "SELECT count(*) FROM registry.outbox WHERE area IN ('" C1 "', '" C2
                          "') AND type = 'linli.registry.volunteer.registered'") +
            s_announced("'" C1 "', '" C2 "'", &dups),
        ts_sql_long(s_db, "SELECT count(*) FROM registry.volunteers WHERE community IN ('" C1
                          "', '" C2 "')"));
    assert_int_equal(dups, 0);
    free(job);
    free(csv);
    //  A replacement, so the suite ends with its workers.
    assert_true(ts_suite_start_registry(&s_suite, slot) > 0);
}

//  One text from SQL (owned).
static char *
s_sql_text(const char *sql)
{
    PGresult *res = PQexec(s_db, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    char *v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

//  The CLI's bulk mode (a city's migration): killed in its transaction it
//  leaves nothing; run through, good and bad rows as in any import; the
//  indexes and constraints it dropped are all back, the same, and enforce
//  uniqueness afterwards.
static void
test_cli_bulk(void **state)
{
    (void)state;
    static const char schema_sql[] =
        "SELECT string_agg(d, ';' ORDER BY d) FROM ("
        " SELECT indexdef AS d FROM pg_indexes WHERE schemaname = 'registry' "
        "   AND tablename IN ('accounts', 'volunteers') "
        " UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
        "   WHERE conrelid IN ('registry.accounts'::regclass, 'registry.volunteers'::regclass)) x";
    char *schema_before = s_sql_text(schema_sql);

    //  Signed up already: the file meets this person again.
    char known[19], body[512];
    ts_id_number("420102", "19340404", 1, known);
    snprintf(body, sizeof body,
             "{\"name\":\"已注册\",\"id_number\":\"%s\",\"phone\":\"13903049999\","
             "\"community\":\"" C2 "\"}",
             known);
    ts_http_reply_t r = ts_req(&s_suite, "POST", "/v1/volunteers", s_admin, body);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);

    enum { GOOD = 300 };
    char path[400];
    snprintf(path, sizeof path, "%s/bulk.csv", s_suite.logdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name,id_number,phone,community,skills,status\n");
    char idn[19];
    for (int i = 0; i < GOOD; i++) {
        ts_id_number("420102", "19330303", i, idn);
        fprintf(f, "迁移%d,%s,1390303%04d," C2 ",repair,verified\n", i, idn, i);
    }
    ts_id_number("420102", "19330303", 0, idn);
    fprintf(f, "重复,%s,13903039998," C2 ",,\n", idn);     //  line GOOD + 2: in the file already
    fprintf(f, "老会员,%s,13903039997," C2 ",,\n", known); //  GOOD + 3: registered already
    fclose(f);
    long before = s_volunteers(), announced = s_announced("'" C2 "'", NULL);

    char bin[512], log[600];
    ts_bin("linli-registry", bin, sizeof bin);
    snprintf(log, sizeof log, "%s/import-bulk.log", s_suite.logdir);
    const char *argv[] = {bin, "import-volunteers", path, "--as-city-admin", "--bulk", NULL};

    //  Killed inside its transaction (held at the index drops by a lock of
    //  ours): nothing of it stays, indexes included.
    PQclear(PQexec(s_db, "BEGIN"));
    PQclear(PQexec(s_db, "LOCK TABLE registry.accounts, registry.volunteers IN ACCESS SHARE MODE"));
    pid_t pid = ts_spawn(argv, s_suite.envp, log);
    assert_true(pid > 0);
    bool waiting = false;
    for (int64_t until = ts_mono_ms() + 20000; !waiting && ts_mono_ms() < until; ts_sleep_ms(20)) {
        //  Activity is read once per transaction unless the snapshot is dropped.
        PQclear(PQexec(s_db, "SELECT pg_stat_clear_snapshot()"));
        PGresult *res = PQexec(s_db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type "
                                     "= 'Lock' AND (query LIKE 'DROP INDEX %' "
                                     "OR query LIKE 'ALTER TABLE % DROP CONSTRAINT %')");
        waiting = PQresultStatus(res) == PGRES_TUPLES_OK && atol(PQgetvalue(res, 0, 0)) > 0;
        PQclear(res);
    }
    assert_true(waiting);
    ts_kill(pid, SIGKILL);
    PQclear(PQexec(s_db, "COMMIT"));
    char *schema_killed = s_sql_text(schema_sql);
    assert_string_equal(schema_killed, schema_before);
    free(schema_killed);
    assert_int_equal(s_volunteers(), before);

    //  Run again to the end.
    pid = ts_spawn(argv, s_suite.envp, log);
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_int_equal(s_volunteers(), before + GOOD);
    assert_int_equal(ts_sql_long(s_db,
                                 "SELECT imported * 1000 + rejected FROM registry.import_jobs "
                                 "WHERE kind = 'volunteers' ORDER BY id DESC LIMIT 1"),
                     GOOD * 1000 + 2);
    char sql[300];
    snprintf(
        sql, sizeof sql,
        "SELECT string_agg(line || ':' || code, ',' ORDER BY line) FROM registry.import_errors "
        "WHERE job_id = (SELECT max(id) FROM registry.import_jobs WHERE kind = 'volunteers')");
    char *errors = s_sql_text(sql);
    char want[96];
    snprintf(want, sizeof want, "%d:duplicate_in_file,%d:duplicate_id_number", GOOD + 2, GOOD + 3);
    assert_string_equal(errors, want);
    free(errors);
    assert_int_equal(s_announced("'" C2 "'", NULL), announced + GOOD);

    //  Every index and constraint is back as it was, and holds.
    char *schema_after = s_sql_text(schema_sql);
    assert_string_equal(schema_after, schema_before);
    free(schema_after);
    free(schema_before);
    ts_id_number("420102", "19330303", 7, idn);
    snprintf(body, sizeof body,
             "{\"name\":\"又来\",\"id_number\":\"%s\",\"phone\":\"13903048888\","
             "\"community\":\"" C2 "\"}",
             idn);
    r = ts_req(&s_suite, "POST", "/v1/volunteers", s_admin, body);
    assert_int_equal(r.status, 409);
    ts_http_reply_free(&r);
    assert_int_equal(
        ts_sql_long(s_db, "SELECT count(*) FROM registry.volunteers v JOIN registry.accounts a "
                          "USING (id) WHERE a.name = '迁移7' AND v.status = 'verified'"),
        1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_and_bad_rows), cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_dry_run),           cmocka_unit_test(test_scope_and_access),
        cmocka_unit_test(test_runner_killed),     cmocka_unit_test(test_cli_bulk),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
