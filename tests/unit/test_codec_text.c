//  test_codec_text: linli_codec_to_json_text writes the very bytes that
//  json_dumps gives for linli_codec_to_json's tree (JSON_COMPACT |
//  JSON_REAL_PRECISION(10)), and fails exactly when it does: every message
//  of the suite's protos, filled at random many times over — strings with
//  quotes, control characters, CJK, four-byte characters and broken UTF-8,
//  times in and out of range, extreme integers, floats that are not finite.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "linli_codec.h"
#include "linli/envelope.pb-c.h"
#include "linli/events.pb-c.h"
#include "linli/registry.pb-c.h"
#include "linli/registry_import.pb-c.h"
#include "linli/registry_orgs.pb-c.h"

//  Every message type of the suite.
static const ProtobufCMessageDescriptor *const s_descs[] = {
    &linli__grant__descriptor,
    &linli__caller__descriptor,
    &linli__request__descriptor,
    &linli__reply__descriptor,
    &linli__event__descriptor,
    &linli__registry__area__descriptor,
    &linli__registry__get_area_request__descriptor,
    &linli__registry__list_areas_request__descriptor,
    &linli__registry__list_areas_reply__descriptor,
    &linli__registry__user__descriptor,
    &linli__registry__login_request__descriptor,
    &linli__registry__login_reply__descriptor,
    &linli__registry__set_password_request__descriptor,
    &linli__registry__issue_password_code_request__descriptor,
    &linli__registry__password_code__descriptor,
    &linli__registry__account_event__descriptor,
    &linli__registry__logout_request__descriptor,
    &linli__registry__logout_reply__descriptor,
    &linli__registry__me_request__descriptor,
    &linli__registry__create_staff_request__descriptor,
    &linli__registry__get_staff_request__descriptor,
    &linli__registry__list_staff_request__descriptor,
    &linli__registry__list_staff_reply__descriptor,
    &linli__registry__staff_event__descriptor,
    &linli__registry__volunteer__descriptor,
    &linli__registry__sign_up_request__descriptor,
    &linli__registry__sign_up_reply__descriptor,
    &linli__registry__get_volunteer_request__descriptor,
    &linli__registry__update_volunteer_request__descriptor,
    &linli__registry__verify_volunteer_request__descriptor,
    &linli__registry__set_volunteer_status_request__descriptor,
    &linli__registry__list_volunteers_request__descriptor,
    &linli__registry__list_volunteers_reply__descriptor,
    &linli__registry__join_code_request__descriptor,
    &linli__registry__join_code_reply__descriptor,
    &linli__registry__status_change__descriptor,
    &linli__registry__volunteer_status_log_request__descriptor,
    &linli__registry__volunteer_status_log_reply__descriptor,
    &linli__registry__volunteer_event__descriptor,
    &linli__registry__volunteers_imported__descriptor,
    &linli__registry__import_volunteers_request__descriptor,
    &linli__registry__get_import_request__descriptor,
    &linli__registry__import_row_error__descriptor,
    &linli__registry__import_job__descriptor,
    &linli__registry__organization__descriptor,
    &linli__registry__create_organization_request__descriptor,
    &linli__registry__get_organization_request__descriptor,
    &linli__registry__update_organization_request__descriptor,
    &linli__registry__dissolve_organization_request__descriptor,
    &linli__registry__list_organizations_request__descriptor,
    &linli__registry__list_organizations_reply__descriptor,
    &linli__registry__organization_member__descriptor,
    &linli__registry__add_org_member_request__descriptor,
    &linli__registry__remove_org_member_request__descriptor,
    &linli__registry__remove_org_member_reply__descriptor,
    &linli__registry__list_org_members_request__descriptor,
    &linli__registry__list_org_members_reply__descriptor,
    &linli__registry__volunteer_organizations_request__descriptor,
    &linli__registry__membership__descriptor,
    &linli__registry__volunteer_organizations_reply__descriptor,
    &linli__registry__organization_event__descriptor,
    &linli__registry__organization_member_event__descriptor,
    &linli__registry__family_contact__descriptor,
    &linli__registry__resident__descriptor,
    &linli__registry__create_resident_request__descriptor,
    &linli__registry__get_resident_request__descriptor,
    &linli__registry__update_resident_request__descriptor,
    &linli__registry__list_residents_request__descriptor,
    &linli__registry__list_residents_reply__descriptor,
    &linli__registry__resident_event__descriptor,
};

//  Everything one random message allocated, freed together.
typedef struct {
    void *blocks[4096]; //  owned
    size_t n;           //  used
} s_pool_t;

static void *
s_alloc(s_pool_t *pool, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    assert_non_null(p);
    assert_true(pool->n < sizeof pool->blocks / sizeof pool->blocks[0]);
    pool->blocks[pool->n++] = p;
    return p;
}

static void
s_pool_free(s_pool_t *pool)
{
    for (size_t i = 0; i < pool->n; i++)
        free(pool->blocks[i]);
    pool->n = 0;
}

static uint64_t s_seed = 0x9E3779B97F4A7C15ULL;

//  xorshift64*: a reproducible stream.
static uint64_t
s_rand(void)
{
    s_seed ^= s_seed >> 12;
    s_seed ^= s_seed << 25;
    s_seed ^= s_seed >> 27;
    return s_seed * 2685821657736338717ULL;
}

//  A string of pieces that stress escaping and UTF-8 checks; broken now and then.
static char *
s_string(s_pool_t *pool, bool allow_bad)
{
    static const char *const pieces[] = {
        "a",
        "Z",
        "0",
        " ",
        "\"",
        "\\",
        "/",
        "\n",
        "\r",
        "\t",
        "\b",
        "\f",
        "\x01",
        "\x1f",
        "\x7f",
        "é",
        "读者",
        "€",
        "\xf0\x9f\x98\x80",
        "{}[]",
        "\xc2\x80",
        "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf",
    };
    static const char *const bad[] = {
        "\xff", "\xc0\x80", "\xed\xa0\x80", "\xe0\x80\x80", "\xf4\x90\x80\x80",
        "\xc3", "\x80",     "\xe4\xb8",
    };
    size_t n = s_rand() % 12;
    //  Pieces are up to 6 bytes ("读者"), a bad tail up to 4, then the NUL.
    char *s = s_alloc(pool, n * 6 + 8);
    for (size_t i = 0; i < n; i++)
        strcat(s, pieces[s_rand() % (sizeof pieces / sizeof pieces[0])]);
    if (allow_bad && s_rand() % 8 == 0)
        strcat(s, bad[s_rand() % (sizeof bad / sizeof bad[0])]);
    return s;
}

static int64_t
s_int64(void)
{
    static const int64_t edges[] = {0,
                                    1,
                                    -1,
                                    INT64_MAX,
                                    INT64_MIN,
                                    1700000000000LL,
                                    -62167219200000LL,
                                    253402300799999LL,
                                    253402300800000LL,
                                    -62167219200001LL};
    return s_rand() % 3 ? edges[s_rand() % (sizeof edges / sizeof edges[0])] : (int64_t)s_rand();
}

static double
s_double(void)
{
    static const double edges[] = {0.0,  -0.0,    1.5,      -2.25, 1e20, 1e-7, 123456789.123456789,
                                   30.6, 114.309, 1.0 / 3.0};
    switch (s_rand() % 6) {
    case 0:
        return NAN;
    case 1:
        return s_rand() % 2 ? INFINITY : -INFINITY;
    default:
        return edges[s_rand() % (sizeof edges / sizeof edges[0])];
    }
}

static void s_fill(s_pool_t *pool, ProtobufCMessage *m, int depth, bool allow_bad);

//  Fill one value slot of field fd.
static void
s_value(s_pool_t *pool, const ProtobufCFieldDescriptor *fd, void *slot, int depth, bool allow_bad)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)slot = (int32_t)s_int64();
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)slot = (uint32_t)s_int64();
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)slot = s_int64();
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)slot = (uint64_t)s_int64();
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)slot = (float)s_double();
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)slot = s_double();
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)slot = (protobuf_c_boolean)(s_rand() % 2);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = fd->descriptor;
        *(int32_t *)slot = s_rand() % 4 || !ed->n_values
                               ? (int32_t)(s_rand() % 5)
                               : ed->values[s_rand() % ed->n_values].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        *(char **)slot = s_rand() % 16 ? s_string(pool, allow_bad) : NULL;
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = slot;
        b->len = s_rand() % 20;
        b->data = s_alloc(pool, b->len);
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)s_rand();
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sub = fd->descriptor;
        if (depth > 3 || s_rand() % 8 == 0) {
            *(ProtobufCMessage **)slot = NULL;
            break;
        }
        ProtobufCMessage *m = s_alloc(pool, sub->sizeof_message);
        protobuf_c_message_init(sub, m);
        s_fill(pool, m, depth + 1, allow_bad);
        *(ProtobufCMessage **)slot = m;
        break;
    }
    }
}

static size_t
s_item_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 8;
    }
}

//  Fill m's fields at random: some left unset, repeated ones 0-4 items.
static void
s_fill(s_pool_t *pool, ProtobufCMessage *m, int depth, bool allow_bad)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    char *base = (char *)m;
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[f];
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = s_rand() % 5;
            size_t size = s_item_size(fd->type);
            char *items = n ? s_alloc(pool, n * size) : NULL;
            for (size_t i = 0; i < n; i++)
                s_value(pool, fd, items + i * size, depth, allow_bad);
            *(size_t *)(base + fd->quantifier_offset) = n;
            *(void **)(base + fd->offset) = items;
            continue;
        }
        if (s_rand() % 4 == 0)
            continue; //  left at its default
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            //  The last member drawn wins, as in a parsed message.
            *(uint32_t *)(base + fd->quantifier_offset) = fd->id;
        } else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->type != PROTOBUF_C_TYPE_STRING &&
                   fd->type != PROTOBUF_C_TYPE_MESSAGE) {
            *(protobuf_c_boolean *)(base + fd->quantifier_offset) = 1;
        }
        s_value(pool, fd, base + fd->offset, depth, allow_bad);
    }
}

//  The reference: the tree, then json_dumps.
static char *
s_reference(const ProtobufCMessage *m)
{
    json_t *tree = linli_codec_to_json(m);
    char *text = tree ? json_dumps(tree, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(tree);
    return text;
}

static void
s_compare(const ProtobufCMessage *m, size_t *failures)
{
    char *want = s_reference(m);
    size_t len = 0;
    char *got = linli_codec_to_json_text(m, &len);
    if (!want) {
        assert_null(got);
        (*failures)++;
        return;
    }
    assert_non_null(got);
    if (strcmp(want, got) != 0)
        fail_msg("%s:\n want %s\n got  %s", m->descriptor->name, want, got);
    assert_int_equal(len, strlen(got));
    free(want);
    free(got);
}

//  Random messages of every type: identical text, or both fail.
static void
test_same_bytes_as_jansson(void **state)
{
    (void)state;
    size_t failures = 0, total = 0;
    for (int round = 0; round < 300; round++) {
        for (size_t d = 0; d < sizeof s_descs / sizeof s_descs[0]; d++) {
            s_pool_t *pool = calloc(1, sizeof *pool);
            assert_non_null(pool);
            ProtobufCMessage *m = s_alloc(pool, s_descs[d]->sizeof_message);
            protobuf_c_message_init(s_descs[d], m);
            s_fill(pool, m, 1, round % 2 == 1);
            s_compare(m, &failures);
            total++;
            s_pool_free(pool);
            free(pool);
        }
    }
    //  Both sides were exercised: most render, some (broken UTF-8) fail.
    assert_true(failures > 0);
    assert_true(failures < total / 2);
}

//  A volunteer as the registry answers it, byte for byte.
static void
test_volunteer_text(void **state)
{
    (void)state;
    Linli__Registry__Volunteer v = LINLI__REGISTRY__VOLUNTEER__INIT;
    char *skills[] = {"repair", "cook"};
    v.id = "2";
    v.name = "读者 \"Q\"\\\n";
    v.community = "420102001001";
    v.phone = "136****0000";
    v.n_skills = 2;
    v.skills = skills;
    v.status = "pending";
    v.has_birth_year = 1;
    v.birth_year = 1949;
    v.has_created_at = 1;
    v.created_at = 1795416078346LL;
    size_t len;
    char *text = linli_codec_to_json_text(&v.base, &len);
    assert_non_null(text);
    assert_string_equal(text, "{\"id\":\"2\",\"name\":\"读者 \\\"Q\\\"\\\\\\n\",\"community\":"
                              "\"420102001001\",\"phone\":\"136****0000\",\"birth_year\":1949,"
                              "\"skills\":[\"repair\",\"cook\"],\"free_slots\":[],\"status\":"
                              "\"pending\",\"created_at\":\"2026-11-23T06:41:18.346Z\"}");
    free(text);
    //  Not UTF-8: no text at all, as linli_codec_to_json gives no tree.
    v.name = "\xff";
    assert_null(linli_codec_to_json_text(&v.base, NULL));
    assert_null(linli_codec_to_json(&v.base));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_jansson),
        cmocka_unit_test(test_volunteer_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
