//  registry_import_demo: the demo city's volunteers — a deterministic
//  generator of plausible people, loaded through the import's staging path —
//  and the demo-csv tool that writes the same people as an import file.
#include "registry_import.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "linli/registry.pb-c.h"
#include "linli/registry_orgs.pb-c.h"
#include "linli_auth.h"
#include "linli_crypto.h"
#include "linli_log.h"
#include "registry_orgs.h"
#include "registry_residents.h"
#include "registry_store.h"
#include "registry_util.h"

//  Birth dates span this many days (16 to 75 years before this year) …
#define S_DAYS 21535
//  … and each date holds up to this many people (3-digit sequence numbers).
#define S_PER_DAY 499
#define S_MAX_PEOPLE ((int64_t)S_DAYS * S_PER_DAY)
#define S_DEMO_LOGINS 3
#define S_TEAM_SIZE 4 //  volunteers per demo community team, the leader included
#define S_RESIDENTS_PER_COMMUNITY 4
#define S_JOINED "linli.registry.organization.member_joined" //  the demo's member events

static const char *const s_surnames[] = {
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
    "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
    "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏",
    "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金",
    "石", "廖", "贾", "夏", "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹",
    "薛", "闫", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵",
    "万", "钱", "严", "覃", "武", "戴", "莫", "孔", "向", "汤",
};

static const char *const s_given[] = {
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
    "明", "超", "秀", "兰", "霞", "平", "刚", "桂", "英", "华", "玉", "萍", "红", "辉", "建",
    "文", "斌", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "婷", "雪", "琳", "晶",
    "欣", "颖", "佳", "慧", "巧", "美", "淑", "惠", "珠", "翠", "雅", "芝", "莉", "燕", "瑞",
    "荣", "思", "梦", "晨", "阳", "东", "海", "波", "鹏", "飞", "志", "峰", "国", "庆", "春",
    "秋", "冬", "梅", "竹", "松", "林", "森", "博", "睿", "哲", "子", "涵", "轩", "然", "怡",
    "嘉", "一", "诺", "安", "心", "乐", "悦", "诗", "雨", "欢", "成", "新", "民", "德", "福",
    "贵", "金", "银", "宝", "家", "和", "顺", "利", "祥", "永",
};

static const char *const s_skills[] = {
    "elderly_care", "tutoring",      "medical", "legal_aid", "repair",    "cleaning",
    "psychology",   "companionship", "cooking", "driving",   "first_aid", "translation",
};

static const char *const s_slots[] = {
    "mon_am",  "mon_pm",  "mon_eve", "tue_am",  "tue_pm",  "tue_eve", "wed_am",
    "wed_pm",  "wed_eve", "thu_am",  "thu_pm",  "thu_eve", "fri_am",  "fri_pm",
    "fri_eve", "sat_am",  "sat_pm",  "sat_eve", "sun_am",  "sun_pm",  "sun_eve",
};

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define S_STR2(x) #x
#define S_STR(x) S_STR2(x)

//  SplitMix64: a good spread of bits from a counter.
static uint64_t
s_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

//  Days since 1970-01-01 of a date, and back (proleptic Gregorian).
static int64_t
s_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
s_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

char
registry_demo_check_digit(const char *id17)
{
    static const int weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (id17[i] - '0') * weights[i];
    return "10X98765432"[sum % 11];
}

void
registry_demo_person(int64_t i, const char (*communities)[16], size_t n, int this_year,
                     registry_demo_person_t *out)
{
    memset(out, 0, sizeof *out);
    uint64_t h = s_mix((uint64_t)i);
    uint64_t h2 = s_mix((uint64_t)i ^ 0x6c696e6c69ULL);
    snprintf(out->community, sizeof out->community, "%s", communities[(size_t)i % n]);

    //  Unique (birth date, sequence) per i: the date is a permutation of
    //  i mod S_DAYS, the sequence grows with i / S_DAYS; its parity (the
    //  gender digit) alternates with i.
    int64_t r = i % S_DAYS, q = i / S_DAYS;
    int64_t day = s_days_from_civil(this_year - 75, 1, 1) + (r * 7919) % S_DAYS;
    int y, m, d;
    s_civil_from_days(day, &y, &m, &d);
    int seq = (int)(1 + 2 * q + (r & 1));
    char id17[18];
    //  Born in the community's district.
    snprintf(id17, sizeof id17, "%.6s%04d%02d%02d%03d", out->community, y, m, d, seq);
    snprintf(out->id_number, sizeof out->id_number, "%s%c", id17, registry_demo_check_digit(id17));
    out->gender = (seq % 2) ? "male" : "female";

    //  Unique mobile numbers: a prefix by i, a bijective shuffle of the rest.
    static const int prefixes[] = {130, 131, 132, 133, 134, 135, 136, 137, 138, 139,
                                   150, 151, 152, 153, 155, 156, 157, 158, 159, 180,
                                   181, 182, 183, 184, 185, 186, 187, 188, 189};
    int64_t np = (int64_t)S_COUNT(prefixes);
    int64_t rest = ((i / np) * 7919 + 10000000) % 100000000;
    snprintf(out->phone, sizeof out->phone, "%d%08" PRId64, prefixes[i % np], rest);

    //  Common surnames first: the square skews the pick toward the top.
    size_t ns = S_COUNT(s_surnames), ng = S_COUNT(s_given);
    size_t a = (size_t)(h % ns), b = (size_t)((h >> 8) % ns);
    const char *surname = s_surnames[a * b / ns];
    const char *g1 = s_given[(h >> 16) % ng], *g2 = s_given[(h >> 24) % ng];
    if ((h >> 32) % 10 < 7)
        snprintf(out->name, sizeof out->name, "%s%s%s", surname, g1, g2);
    else
        snprintf(out->name, sizeof out->name, "%s%s", surname, g1);

    unsigned p = (unsigned)((h >> 40) % 100);
    out->political_status = p < 58   ? "masses"
                            : p < 78 ? "party_member"
                            : p < 93 ? "league_member"
                            : p < 95 ? "probationary_member"
                                     : "other";
    out->status = (h >> 48) % 10 < 7 ? "verified" : "pending";
    out->n_skills = (size_t)(h2 % 4);
    for (size_t k = 0; k < out->n_skills; k++)
        out->skills[k] = s_skills[(h2 >> (8 + 8 * k)) % S_COUNT(s_skills)];
    out->n_free_slots = (size_t)((h2 >> 40) % 4);
    for (size_t k = 0; k < out->n_free_slots; k++)
        out->free_slots[k] = s_slots[(h2 >> (44 + 6 * k)) % S_COUNT(s_slots)];
}

static int
s_cmp_code(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

//  The city's community codes, sorted, into *codes (caller frees; NULL
//  with *n 0 when the city has none). 0, or -1 when they could not be read.
static int
s_communities(linli_pg_t *pg, const char *city, char (**codes)[16], size_t *n)
{
    *codes = NULL;
    *n = 0;
    const char *params[] = {city};
    PGresult *res = linli_pg_exec(pg,
                                  "SELECT code FROM areas WHERE level = 'community' "
                                  "AND code LIKE $1 || '%'",
                                  1, params);
    if (!res)
        return -1;
    size_t rows = (size_t)PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        return 0;
    }
    char(*list)[16] = calloc(rows, sizeof *list);
    if (!list) {
        linli_error("demo: out of memory reading %zu communities", rows);
        PQclear(res);
        return -1;
    }
    for (size_t i = 0; i < rows; i++)
        snprintf(list[i], sizeof list[i], "%s", PQgetvalue(res, (int)i, 0));
    PQclear(res);
    qsort(list, rows, sizeof *list, s_cmp_code);
    *codes = list;
    *n = rows;
    return 0;
}

//  Load people [from, to) through the staging path as one demo job.
static int
s_load(const linli_config_t *config, const char (*codes)[16], size_t n, int64_t from, int64_t to,
       const char *password_hash)
{
    const char *dsn = linli_config_str(config, "LINLI_PG_DSN");
    linli_pg_t *pg = linli_pg_new(dsn, "registry", REGISTRY_IMPORT_TIMEOUT_MS);
    linli_pg_t *side = linli_pg_new(dsn, "registry", REGISTRY_IMPORT_TIMEOUT_MS);
    char grants[64];
    snprintf(grants, sizeof grants, "%s %s", LINLI_ROLE_CITY_ADMIN,
             linli_config_str(config, "LINLI_CITY_CODE"));
    registry_import_row_t job;
    int rc = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (pg && side && registry_import_store_start(pg, "demo", 0, grants, false, &job) == 0) {
        registry_import_opts_t opts = {
            .job_id = job.id,
            .grants = grants,
            .actor = "demo",
            .password_hash = password_hash,
        };
        registry_import_job_t *work = registry_import_job_new(pg, side, &opts);
        registry_import_result_t result;
        if (work) {
            registry_import_job_expect(work, to - from);
            int year = registry_this_year();
            rc = 0;
            for (int64_t i = from; i < to && rc == 0; i++) {
                registry_demo_person_t p;
                registry_demo_person(i, codes, n, year, &p);
                registry_person_input_t in = {
                    .name = p.name,
                    .id_number = p.id_number,
                    .phone = p.phone,
                    .community = p.community,
                    .gender = p.gender,
                    .political_status = p.political_status,
                    .skills = p.skills,
                    .n_skills = p.n_skills,
                    .free_slots = p.free_slots,
                    .n_free_slots = p.n_free_slots,
                };
                rc = registry_import_job_add(work, i + 1, &in, p.status);
            }
            if (rc == 0)
                rc = registry_import_job_commit(work, &result);
            registry_import_job_destroy(&work);
        }
        if (rc == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
            linli_info("demo: %" PRId64 " volunteers loaded (%" PRId64 " refused) in %.1f s",
                       result.imported, result.rejected, s);
            fprintf(stderr, "demo volunteers: %" PRId64 " loaded in %.1f s (%.0f rows/s)\n",
                    result.imported, s, s > 0 ? (double)(to - from) / s : 0.0);
            registry_import_store_release(pg, job.id);
        } else {
            registry_import_store_fail(pg, job.id, "interrupted",
                                       "loading the demo volunteers failed (see the log)", 0);
        }
    }
    linli_pg_destroy(&side);
    linli_pg_destroy(&pg);
    return rc;
}

// ---------------------------------------------------------------- organisations, residents

//  True when table (of the registry's) has no row; false on failure too.
static bool
s_empty(linli_pg_t *pg, const char *sql)
{
    PGresult *res = linli_pg_exec(pg, sql, 0, NULL);
    bool empty = res && PQgetvalue(res, 0, 0)[0] == 'f';
    PQclear(res);
    return empty;
}

//  An association per district and a team per community, led by one of its
//  verified volunteers with a few more as members. In pg's open transaction.
static int
s_load_orgs(linli_pg_t *pg, const char *city, int64_t *n_orgs, int64_t *n_members)
{
    const char *params[] = {city};
    PGresult *districts = linli_pg_exec(
        pg, "SELECT code, name FROM areas WHERE level = 'district' AND code LIKE $1 || '%'", 1,
        params);
    //  Each community's first verified volunteers (the leader, then members),
    //  in one pass over the volunteers.
    PGresult *teams = linli_pg_exec(
        pg,
        "SELECT a.code, a.name, coalesce(v.ids, '') FROM areas a LEFT JOIN "
        "(SELECT community, string_agg(id::text, ',' ORDER BY id) AS ids FROM "
        " (SELECT community, id, row_number() OVER (PARTITION BY community ORDER BY id) AS n "
        "  FROM volunteers WHERE status = 'verified') x "
        " WHERE n <= " S_STR(
            S_TEAM_SIZE) " GROUP BY community) v ON v.community = a.code "
                         "WHERE a.level = 'community' AND a.code LIKE $1 || '%' ORDER BY a.code",
        1, params);
    int rc = districts && teams ? 0 : -1;
    int64_t org_of[100] = {0};
    char district_of[100][16];
    int nd = districts ? PQntuples(districts) : 0;
    for (int i = 0; rc == 0 && i < nd && i < 100; i++) {
        registry_org_t org;
        memset(&org, 0, sizeof org);
        snprintf(org.name, sizeof org.name, "%s志愿者协会", PQgetvalue(districts, i, 1));
        snprintf(org.area, sizeof org.area, "%s", PQgetvalue(districts, i, 0));
        snprintf(org.type, sizeof org.type, "organization");
        snprintf(org.description, sizeof org.description, "演示数据：区级志愿服务组织");
        rc = registry_orgs_store_insert(pg, &org, 0) ||
             registry_orgs_emit(pg, "linli.registry.organization.created", &org, 0, "demo");
        org_of[i] = org.id;
        snprintf(district_of[i], sizeof district_of[i], "%s", org.area);
        *n_orgs += rc == 0;
    }
    for (int i = 0; rc == 0 && teams && i < PQntuples(teams); i++) {
        const char *code = PQgetvalue(teams, i, 0);
        int64_t parent = 0;
        for (int d = 0; d < nd && d < 100; d++)
            if (!strncmp(code, district_of[d], 6))
                parent = org_of[d];
        if (!parent)
            continue;
        char ids[S_TEAM_SIZE * 24];
        snprintf(ids, sizeof ids, "%s", PQgetvalue(teams, i, 2));
        char *save = NULL, *first = strtok_r(ids, ",", &save);
        registry_org_t org;
        memset(&org, 0, sizeof org);
        snprintf(org.name, sizeof org.name, "%s志愿服务队", PQgetvalue(teams, i, 1));
        snprintf(org.area, sizeof org.area, "%s", code);
        snprintf(org.type, sizeof org.type, "team");
        snprintf(org.description, sizeof org.description, "演示数据：社区志愿服务队");
        org.parent_id = parent;
        org.leader_id = first ? strtoll(first, NULL, 10) : 0;
        rc = registry_orgs_store_insert(pg, &org, 0) ||
             registry_orgs_emit(pg, "linli.registry.organization.created", &org, 0, "demo") ||
             (org.leader_id &&
              registry_orgs_emit_member(pg, S_JOINED, &org, org.leader_id, "leader", "demo"));
        *n_orgs += rc == 0;
        *n_members += rc == 0 && org.leader_id;
        for (char *id = strtok_r(NULL, ",", &save); rc == 0 && id;
             id = strtok_r(NULL, ",", &save)) {
            registry_org_member_t member;
            bool existed;
            int64_t vid = strtoll(id, NULL, 10);
            rc = registry_orgs_store_member_add(pg, org.id, vid, &member, &existed) ||
                 (!existed && registry_orgs_emit_member(pg, S_JOINED, &org, vid, "member", "demo"));
            *n_members += rc == 0;
        }
    }
    PQclear(districts);
    PQclear(teams);
    return rc;
}

//  A few residents per community — elderly people living alone first (一老一小),
//  registered with consent; address and phone sealed. In pg's open transaction.
static int
s_load_residents(linli_pg_t *pg, const char *city, int this_year, int64_t *n_residents)
{
    static const char *const categories[] = {"elderly_alone",     "elderly_alone", "elderly_alone",
                                             "child_left_behind", "disabled",      "low_income",
                                             "veteran_family",    "other"};
    const char *params[] = {city};
    PGresult *res = linli_pg_exec(pg,
                                  "SELECT code, name FROM areas WHERE level = 'community' "
                                  "AND code LIKE $1 || '%' ORDER BY code",
                                  1, params);
    int rc = res ? 0 : -1;
    int64_t k = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        for (int j = 0; rc == 0 && j < S_RESIDENTS_PER_COMMUNITY; j++, k++) {
            uint64_t h = s_mix((uint64_t)k ^ 0x7265736964656e74ULL);
            registry_resident_t *r = calloc(1, sizeof *r);
            if (!r) {
                rc = -1;
                break;
            }
            const char *category = categories[h % S_COUNT(categories)];
            snprintf(r->name, sizeof r->name, "%s%s%s", s_surnames[(h >> 8) % S_COUNT(s_surnames)],
                     s_given[(h >> 16) % S_COUNT(s_given)], s_given[(h >> 24) % S_COUNT(s_given)]);
            snprintf(r->community, sizeof r->community, "%s", PQgetvalue(res, i, 0));
            snprintf(r->categories[0], sizeof r->categories[0], "%s", category);
            r->n_categories = 1;
            r->consent = true;
            int age = !strcmp(category, "child_left_behind") ? 6 + (int)((h >> 32) % 8)
                      : !strncmp(category, "elderly", 7)     ? 70 + (int)((h >> 32) % 20)
                                                             : 30 + (int)((h >> 32) % 50);
            r->birth_year = this_year - age;
            char address[256], phone[16];
            snprintf(address, sizeof address, "%s%d栋%d单元%d0%d室", PQgetvalue(res, i, 1),
                     1 + (int)((h >> 40) % 20), 1 + (int)((h >> 45) % 4), 1 + (int)((h >> 48) % 18),
                     1 + (int)((h >> 53) % 4));
            snprintf(phone, sizeof phone, "177%08" PRId64, (k * 7919 + 20000000) % 100000000);
            char *address_enc = linli_pii_encrypt(address);
            char *phone_enc = linli_pii_encrypt(phone);
            if (!address_enc || !phone_enc || linli_pii_hash("phone", phone, r->phone_hash)) {
                linli_error("demo: a resident's address or phone could not be sealed");
                rc = -1;
            } else {
                snprintf(r->address_enc, sizeof r->address_enc, "%s", address_enc);
                snprintf(r->phone_enc, sizeof r->phone_enc, "%s", phone_enc);
                rc = registry_residents_store_insert(pg, r, 0);
            }
            free(address_enc);
            free(phone_enc);
            if (rc == 0) {
                rc =
                    registry_residents_emit(pg, "linli.registry.resident.created", r, NULL, "demo");
                *n_residents += rc == 0;
            }
            free(r);
        }
    }
    PQclear(res);
    return rc;
}

//  Organisations and residents of the demo city, once (skipped when the
//  city has any already). One transaction each.
static int
s_load_orgs_residents(const linli_config_t *config)
{
    const char *city = linli_config_str(config, "LINLI_CITY_CODE");
    //  A connection of its own: the service's statement timeout is for requests.
    linli_pg_t *pg = linli_pg_new(linli_config_str(config, "LINLI_PG_DSN"), "registry",
                                  REGISTRY_IMPORT_TIMEOUT_MS);
    if (!pg)
        return -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t orgs = 0, members = 0, residents = 0;
    int rc = 0;
    if (s_empty(pg, "SELECT EXISTS (SELECT 1 FROM organizations)")) {
        rc = linli_pg_begin(pg) || s_load_orgs(pg, city, &orgs, &members) || linli_pg_commit(pg);
        if (rc)
            linli_pg_rollback(pg);
    }
    if (rc == 0 && s_empty(pg, "SELECT EXISTS (SELECT 1 FROM residents)")) {
        rc = linli_pg_begin(pg) || s_load_residents(pg, city, registry_this_year(), &residents) ||
             linli_pg_commit(pg);
        if (rc)
            linli_pg_rollback(pg);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0 && (orgs || residents))
        fprintf(stderr,
                "demo organisations: %" PRId64 " (%" PRId64 " members), residents: %" PRId64
                ", in %.1f s\n",
                orgs, members, residents,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    linli_pg_destroy(&pg);
    return rc;
}

int
registry_import_demo(registry_t *reg, const linli_config_t *config)
{
    int64_t wanted = linli_config_int(config, "LINLI_DEMO_VOLUNTEERS");
    int64_t loaded = 0;
    if (wanted > S_MAX_PEOPLE)
        wanted = S_MAX_PEOPLE;
    if (registry_import_store_demo_loaded(reg->pg, &loaded))
        return -1;
    if (wanted <= 0 && loaded == 0)
        return 0;
    size_t n = 0;
    char(*codes)[16] = NULL;
    if (s_communities(reg->pg, linli_config_str(config, "LINLI_CITY_CODE"), &codes, &n))
        return -1;
    if (!codes) {
        linli_warn("demo: no communities, so no demo volunteers");
        return 0;
    }
    const char *password = linli_config_str(config, "LINLI_DEMO_PASSWORD");
    int rc = 0;
    if (wanted > loaded) {
        //  One hash for every demo account: argon2id per account would take hours.
        char hash[crypto_pwhash_STRBYTES];
        bool hashed = *password && linli_password_hash(password, hash) == 0;
        if (!hashed)
            linli_warn("demo: LINLI_DEMO_PASSWORD unset: demo volunteers cannot log in");
        rc = s_load(config, (const char(*)[16])codes, n, loaded, wanted, hashed ? hash : NULL);
    } else {
        linli_info("demo: %" PRId64 " volunteers loaded already", loaded);
    }
    //  Organisations need volunteers to lead them; residents come with them.
    if (rc == 0 && wanted > 0)
        rc = s_load_orgs_residents(config);
    //  Three logins to try, if they exist (a later run with fewer is fine).
    int year = registry_this_year();
    for (int64_t i = 0; rc == 0 && *password && i < S_DEMO_LOGINS; i++) {
        registry_demo_person_t p;
        registry_demo_person(i, (const char(*)[16])codes, n, year, &p);
        char phone_hash[LINLI_HASH_HEX_CAP];
        registry_account_t account;
        bool found = false;
        if (linli_pii_hash("phone", p.phone, phone_hash) == 0 &&
            registry_store_account_by_phone(reg->store, phone_hash, &account, &found) == 0 &&
            found && account.password_hash[0])
            printf("demo volunteer: phone %s password %s (%s, community %s, %s)\n", p.phone,
                   password, p.name, p.community, p.status);
    }
    free(codes);
    return rc;
}

int
registry_import_demo_csv_tool(registry_t *reg, const linli_config_t *config, int argc, char **argv)
{
    //  Counts are 1 to 18 decimal digits (registry_parse_id: 0 when not).
    bool args_ok = argc == 2 || (argc == 4 && !strcmp(argv[2], "--from"));
    int64_t count = args_ok ? registry_parse_id(argv[0]) : 0;
    int64_t from = argc == 4 ? registry_parse_id(argv[3]) : 0;
    if (argc == 4 && !from && strcmp(argv[3], "0"))
        args_ok = false;
    if (!args_ok || count <= 0 || from + count > S_MAX_PEOPLE) {
        fprintf(stderr,
                "usage: linli-registry demo-csv N FILE [--from K]  (K + N <= %" PRId64 ")\n",
                S_MAX_PEOPLE);
        return -1;
    }
    size_t n = 0;
    char(*codes)[16] = NULL;
    if (s_communities(reg->pg, linli_config_str(config, "LINLI_CITY_CODE"), &codes, &n)) {
        fprintf(stderr, "demo-csv: the city's communities could not be read\n");
        return -1;
    }
    if (!codes) {
        fprintf(stderr, "demo-csv: the city has no communities (run seed-demo first)\n");
        return -1;
    }
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        fprintf(stderr, "demo-csv: cannot write %s\n", argv[1]);
        free(codes);
        return -1;
    }
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    fprintf(f, "name,id_number,phone,community,gender,political_status,skills,free_slots,status\n");
    int year = registry_this_year();
    for (int64_t i = from; i < from + count; i++) {
        registry_demo_person_t p;
        registry_demo_person(i, (const char(*)[16])codes, n, year, &p);
        fprintf(f, "%s,%s,%s,%s,%s,%s,", p.name, p.id_number, p.phone, p.community, p.gender,
                p.political_status);
        for (size_t k = 0; k < p.n_skills; k++)
            fprintf(f, "%s%s", k ? ";" : "", p.skills[k]);
        fputc(',', f);
        for (size_t k = 0; k < p.n_free_slots; k++)
            fprintf(f, "%s%s", k ? ";" : "", p.free_slots[k]);
        fprintf(f, ",%s\n", p.status);
    }
    //  A write that failed on the way (disk full) leaves its mark in ferror.
    int rc = ferror(f) ? -1 : 0;
    if (fclose(f))
        rc = -1;
    if (rc)
        fprintf(stderr, "demo-csv: writing %s failed\n", argv[1]);
    free(codes);
    return rc;
}
