//  Unit tests for linli_codec: JSON <-> protobuf over tests/proto/codec_test.proto,
//  every refusal with its field path, the constraints, times. Run under ASan
//  and LeakSanitizer: every error path must free what it built.
#include "linli_codec.h"
#include "codec_test.pb-c.h"
#include "linli/envelope.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALL (&linli__codectest__all_types__descriptor)
#define REQ (&linli__codectest__required__descriptor)
#define ACCOUNT (&linli__codectest__account__descriptor)
#define NODE (&linli__codectest__node__descriptor)

//  The test messages' own limits, registered with linli_codec_add_constraints.
static const linli_constraint_t s_test_constraints[] = {
    {.message = "linli.codectest.Account", .field = "age", .min = 0, .max = 150},
    {.message = "linli.codectest.Account", .field = "balance", .min = -1000, .max = 1000},
    {.message = "linli.codectest.Account", .field = "big", .min = 0, .max = 5},
    {.message = "linli.codectest.Account", .field = "blob", .max_len = 4},
    {.message = "linli.codectest.Account", .field = "code", .pattern = "[A-Z]{2}[0-9]+"},
    {.message = "linli.codectest.Account", .field = "color", .one_of = "RED|GREEN"},
    {.message = "linli.codectest.Account", .field = "limit", .min = 1, .max = 100},
    {.message = "linli.codectest.Account", .field = "many", .max_len = 20000},
    {.message = "linli.codectest.Account", .field = "nickname", .min_len = 2, .max_len = 8},
    {.message = "linli.codectest.Account", .field = "phone", .pattern = "1[3-9][0-9]{9}"},
    {.message = "linli.codectest.Account", .field = "role", .one_of = "admin|member|guest"},
    {.message = "linli.codectest.Account", .field = "score", .min = -10, .max = 100},
    {.message = "linli.codectest.Account", .field = "tags", .min_len = 1, .max_len = 3},
    {.message = NULL},
};

// --------------------------------------------------------------------------
//  Helpers

static json_t *
s_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!j)
        fail_msg("test JSON does not parse: %s: %s", jerr.text, text);
    return j;
}

//  from_json over JSON texts (NULL text: NULL argument).
static ProtobufCMessage *
s_from(const ProtobufCMessageDescriptor *desc, const char *body, const char *params,
       linli_codec_error_t *err)
{
    json_t *b = body ? s_json(body) : NULL;
    json_t *p = params ? s_json(params) : NULL;
    ProtobufCMessage *m = linli_codec_from_json(desc, b, p, err);
    json_decref(b);
    json_decref(p);
    return m;
}

//  Expect body/params to convert; caller frees.
static ProtobufCMessage *
s_ok(const ProtobufCMessageDescriptor *desc, const char *body, const char *params)
{
    linli_codec_error_t err;
    ProtobufCMessage *m = s_from(desc, body, params, &err);
    if (!m)
        fail_msg("refused %s / %s: %s at '%s': %s", body, params ? params : "-", err.code,
                 err.field, err.message);
    return m;
}

//  Expect j/params to be refused with code at field.
static void
s_refused_json(const ProtobufCMessageDescriptor *desc, const json_t *body, const json_t *params,
               const char *code, const char *field, const char *shown)
{
    linli_codec_error_t err;
    ProtobufCMessage *m = linli_codec_from_json(desc, body, params, &err);
    if (m) {
        protobuf_c_message_free_unpacked(m, NULL);
        fail_msg("accepted %s; expected %s at '%s'", shown, code, field);
    }
    if (strcmp(err.code, code) || strcmp(err.field, field))
        fail_msg("%s: got %s at '%s' (%s); expected %s at '%s'", shown, err.code, err.field,
                 err.message, code, field);
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.message, field));
}

static void
s_refused(const ProtobufCMessageDescriptor *desc, const char *body, const char *params,
          const char *code, const char *field)
{
    json_t *b = body ? s_json(body) : NULL;
    json_t *p = params ? s_json(params) : NULL;
    s_refused_json(desc, b, p, code, field, body ? body : params);
    json_decref(b);
    json_decref(p);
}

//  The message sentence for a refused body.
static void
s_refused_says(const ProtobufCMessageDescriptor *desc, const char *body, const char *message)
{
    linli_codec_error_t err;
    ProtobufCMessage *m = s_from(desc, body, NULL, &err);
    assert_null(m);
    assert_string_equal(err.message, message);
}

//  JSON -> message -> wire -> message -> JSON must give back the same JSON.
static void
s_round_trip(const ProtobufCMessageDescriptor *desc, const char *text)
{
    json_t *in = s_json(text);
    linli_codec_error_t err;
    ProtobufCMessage *m = linli_codec_from_json(desc, in, NULL, &err);
    if (!m)
        fail_msg("refused %s: %s at '%s': %s", text, err.code, err.field, err.message);
    size_t size = protobuf_c_message_get_packed_size(m);
    uint8_t *wire = malloc(size + 1);
    assert_non_null(wire);
    assert_int_equal(protobuf_c_message_pack(m, wire), size);
    ProtobufCMessage *back = protobuf_c_message_unpack(desc, NULL, size, wire);
    assert_non_null(back);
    assert_int_equal(linli_codec_validate(back, &err), 0);
    json_t *out = linli_codec_to_json(back);
    assert_non_null(out);
    //  repeated fields the input left out come back as []
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(out, tmp, key, value)
    {
        if (!json_object_get(in, key) && json_is_array(value) && !json_array_size(value))
            json_object_del(out, key);
    }
    if (!json_equal(in, out)) {
        char *a = json_dumps(in, JSON_SORT_KEYS);
        char *b = json_dumps(out, JSON_SORT_KEYS);
        print_error("in:  %s\nout: %s\n", a, b);
        free(a);
        free(b);
        fail();
    }
    json_decref(out);
    json_decref(in);
    protobuf_c_message_free_unpacked(back, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    free(wire);
}

//  {"<field>": [<item>, <item>, ... n times]} (caller frees).
static char *
s_array_body(const char *field, const char *item, size_t n)
{
    size_t cap = strlen(field) + 16 + n * (strlen(item) + 1);
    char *text = malloc(cap);
    assert_non_null(text);
    size_t o = (size_t)snprintf(text, cap, "{\"%s\": [", field);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "%s%s", i ? "," : "", item);
    snprintf(text + o, cap - o, "]}");
    return text;
}

//  {"<field>": "<unit repeated n times>"} (caller frees).
static char *
s_long_string_body(const char *field, const char *unit, size_t n)
{
    size_t cap = strlen(field) + 16 + n * strlen(unit);
    char *text = malloc(cap);
    assert_non_null(text);
    size_t o = (size_t)snprintf(text, cap, "{\"%s\": \"", field);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "%s", unit);
    snprintf(text + o, cap - o, "\"}");
    return text;
}

// --------------------------------------------------------------------------
//  Conversions that work

static void
test_round_trip_every_type(void **state)
{
    (void)state;
    const char *text =
        "{\"f_bool\": true, \"f_int32\": -2147483648, \"f_sint32\": -5,"
        " \"f_sfixed32\": 2147483647, \"f_uint32\": 4294967295, \"f_fixed32\": 7,"
        " \"f_int64\": -9223372036854775808, \"f_sint64\": 9223372036854775807,"
        " \"f_sfixed64\": -1, \"f_uint64\": 9223372036854775807, \"f_fixed64\": 0,"
        " \"f_float\": 1.5, \"f_double\": -2.25e100,"
        " \"f_string\": \"邻里 \\\"quoted\\\" \\u00e9\", \"f_bytes\": \"AAEC/w==\","
        " \"f_enum\": \"BLUE\","
        " \"f_inner\": {\"name\": \"n\", \"weight\": 3, \"tags\": [\"a\", \"b\"],"
        "              \"color\": \"NEGATIVE\"},"
        " \"created_at\": \"2026-11-23T04:12:51.123Z\", \"f_default\": \"changed\","
        " \"f_int_default\": 0, \"f_bytes_default\": \"\","
        " \"r_bool\": [true, false], \"r_int32\": [1, -1], \"r_sint32\": [-2147483648],"
        " \"r_sfixed32\": [3], \"r_uint32\": [4294967295, 0], \"r_fixed32\": [1],"
        " \"r_int64\": [-9223372036854775808], \"r_sint64\": [5, -5], \"r_sfixed64\": [6],"
        " \"r_uint64\": [\"18446744073709551615\", 1], \"r_fixed64\": [2],"
        " \"r_float\": [0.5, -0.25], \"r_double\": [1e-300, 0.0],"
        " \"r_string\": [\"x\", \"\", \"长城\"], \"r_bytes\": [\"\", \"AA==\"],"
        " \"r_enum\": [\"RED\", \"COLOR_UNKNOWN\"],"
        " \"r_inner\": [{\"name\": \"a\", \"tags\": []}, {\"name\": \"b\", \"tags\": [\"c\"]}],"
        " \"seen_at\": [\"1970-01-01T00:00:00.000Z\", \"1969-12-31T23:59:59.999Z\"],"
        " \"r_packed\": [1, 2, 3],"
        " \"c_inner\": {\"name\": \"o\", \"tags\": []}}";
    s_round_trip(ALL, text);

    //  and the C values are what the JSON says
    Linli__Codectest__AllTypes *m = (Linli__Codectest__AllTypes *)s_ok(ALL, text, NULL);
    assert_true(m->has_f_int32);
    assert_int_equal(m->f_int32, INT32_MIN);
    assert_int_equal(m->f_uint32, UINT32_MAX);
    assert_true(m->f_int64 == INT64_MIN);
    assert_true(m->f_float == 1.5f);
    assert_int_equal(m->f_enum, LINLI__CODECTEST__COLOR__BLUE);
    assert_int_equal(m->f_inner->color, LINLI__CODECTEST__COLOR__NEGATIVE);
    assert_int_equal(m->f_bytes.len, 4);
    assert_memory_equal(m->f_bytes.data, "\x00\x01\x02\xff", 4);
    assert_true(m->created_at == INT64_C(1795407171123));
    assert_true(m->has_f_bytes_default);
    assert_int_equal(m->f_bytes_default.len, 0);
    assert_true(m->r_uint64[0] == UINT64_MAX);
    assert_string_equal(m->r_string[2], "长城");
    assert_int_equal(m->choice_case, LINLI__CODECTEST__ALL_TYPES__CHOICE_C_INNER);
    assert_string_equal(m->c_inner->name, "o");
    protobuf_c_message_free_unpacked(&m->base, NULL);

    s_round_trip(ALL, "{\"c_number\": -7, \"r_inner\": [], \"f_string\": \"\"}");
    s_round_trip(REQ, "{\"id\": 0, \"name\": \"\", \"flag\": false,"
                      " \"inner\": {\"name\": \"i\", \"tags\": []}}");
}

static void
test_unset_fields(void **state)
{
    (void)state;
    //  null means not set, for every kind of field
    Linli__Codectest__AllTypes *m = (Linli__Codectest__AllTypes *)s_ok(
        ALL,
        "{\"f_int32\": null, \"f_string\": null, \"f_inner\": null, \"r_int32\": null,"
        " \"c_text\": null, \"f_bytes\": null, \"created_at\": null}",
        NULL);
    assert_false(m->has_f_int32);
    assert_null(m->f_string);
    assert_null(m->f_inner);
    assert_int_equal(m->n_r_int32, 0);
    assert_int_equal(m->choice_case, LINLI__CODECTEST__ALL_TYPES__CHOICE__NOT_SET);
    //  defaults stay in place, and are not "set"
    assert_string_equal(m->f_default, "hello");
    assert_int_equal(m->f_int_default, 7);

    json_t *out = linli_codec_to_json(&m->base);
    assert_non_null(out);
    //  only the repeated fields, as empty arrays
    size_t repeated = 0;
    for (unsigned f = 0; f < ALL->n_fields; f++)
        if (ALL->fields[f].label == PROTOBUF_C_LABEL_REPEATED) {
            json_t *a = json_object_get(out, ALL->fields[f].name);
            assert_true(json_is_array(a));
            assert_int_equal(json_array_size(a), 0);
            repeated++;
        }
    assert_int_equal(json_object_size(out), repeated);
    json_decref(out);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    //  no body at all, and an empty one
    m = (Linli__Codectest__AllTypes *)s_ok(ALL, NULL, NULL);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    m = (Linli__Codectest__AllTypes *)s_ok(ALL, "{}", "{}");
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

// --------------------------------------------------------------------------
//  Numbers

static void
test_integer_ranges(void **state)
{
    (void)state;
    ProtobufCMessage *m = s_ok(ALL, "{\"f_int32\": 2147483647, \"f_uint32\": 0}", NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    s_refused(ALL, "{\"f_int32\": 2147483648}", NULL, "out_of_range", "f_int32");
    s_refused(ALL, "{\"f_int32\": -2147483649}", NULL, "out_of_range", "f_int32");
    s_refused(ALL, "{\"f_sint32\": 9999999999}", NULL, "out_of_range", "f_sint32");
    s_refused(ALL, "{\"f_sfixed32\": -9999999999}", NULL, "out_of_range", "f_sfixed32");
    s_refused(ALL, "{\"f_uint32\": -1}", NULL, "out_of_range", "f_uint32");
    s_refused(ALL, "{\"f_fixed32\": 4294967296}", NULL, "out_of_range", "f_fixed32");
    s_refused(ALL, "{\"f_uint64\": -1}", NULL, "out_of_range", "f_uint64");
    s_refused(ALL, "{\"f_fixed64\": -9223372036854775808}", NULL, "out_of_range", "f_fixed64");
    s_refused(ALL, "{\"r_uint32\": [1, -1]}", NULL, "out_of_range", "r_uint32[1]");
    s_refused_says(ALL, "{\"f_int32\": 2147483648}",
                   "field 'f_int32' must be between -2147483648 and 2147483647");
    s_refused_says(ALL, "{\"f_uint32\": -1}", "field 'f_uint32' must be between 0 and 4294967295");

    //  reals: whole numbers beyond the type are out of range, the rest are not integers
    s_refused(ALL, "{\"f_int64\": 1e30}", NULL, "out_of_range", "f_int64");
    s_refused(ALL, "{\"f_uint64\": 1e20}", NULL, "out_of_range", "f_uint64");
    s_refused(ALL, "{\"f_int32\": 3e9}", NULL, "out_of_range", "f_int32");
    s_refused(ALL, "{\"f_uint32\": -1.0}", NULL, "out_of_range", "f_uint32");
    s_refused(ALL, "{\"f_int32\": 1.5}", NULL, "invalid_type", "f_int32");
    s_refused(ALL, "{\"f_int32\": 3.0}", NULL, "invalid_type", "f_int32");
    s_refused(ALL, "{\"r_int64\": [0.5]}", NULL, "invalid_type", "r_int64[0]");

    //  a number too big for jansson's integers arrives as a real, if the gateway asks so
    json_error_t jerr;
    json_t *big =
        json_loads("{\"f_int64\": 123456789012345678901234567890}", JSON_DECODE_INT_AS_REAL, &jerr);
    assert_non_null(big);
    s_refused_json(ALL, big, NULL, "out_of_range", "f_int64", "huge f_int64");
    json_decref(big);

    //  64-bit integers also come as decimal strings; 32-bit ones do not
    Linli__Codectest__AllTypes *a = (Linli__Codectest__AllTypes *)s_ok(
        ALL,
        "{\"f_uint64\": \"18446744073709551615\", \"f_int64\": \"-9223372036854775808\","
        " \"f_fixed64\": \"0\", \"r_sint64\": [\"12\", 13]}",
        NULL);
    assert_true(a->f_uint64 == UINT64_MAX);
    assert_true(a->f_int64 == INT64_MIN);
    assert_true(a->has_f_fixed64 && a->f_fixed64 == 0);
    assert_true(a->r_sint64[0] == 12 && a->r_sint64[1] == 13);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    s_refused(ALL, "{\"f_uint64\": \"18446744073709551616\"}", NULL, "out_of_range", "f_uint64");
    s_refused(ALL, "{\"f_int64\": \"9223372036854775808\"}", NULL, "out_of_range", "f_int64");
    s_refused(ALL, "{\"f_uint64\": \"-1\"}", NULL, "out_of_range", "f_uint64");
    s_refused(ALL, "{\"f_int64\": \"12a\"}", NULL, "invalid_type", "f_int64");
    s_refused(ALL, "{\"f_int64\": \"\"}", NULL, "invalid_type", "f_int64");
    s_refused(ALL, "{\"f_int64\": \" 1\"}", NULL, "invalid_type", "f_int64");
    s_refused(ALL, "{\"f_int32\": \"12\"}", NULL, "invalid_type", "f_int32");
}

static void
test_floats(void **state)
{
    (void)state;
    Linli__Codectest__AllTypes *m = (Linli__Codectest__AllTypes *)s_ok(
        ALL, "{\"f_float\": 3.4e38, \"f_double\": 1e308, \"r_float\": [1, -2]}", NULL);
    assert_true(m->f_float > 3.3e38f);
    assert_true(m->f_double == 1e308);
    assert_true(m->r_float[0] == 1.0f && m->r_float[1] == -2.0f);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    s_refused(ALL, "{\"f_float\": 1e39}", NULL, "out_of_range", "f_float");
    s_refused(ALL, "{\"f_float\": -1e39}", NULL, "out_of_range", "f_float");
    s_refused(ALL, "{\"f_double\": \"1.5\"}", NULL, "invalid_type", "f_double");
    s_refused(ALL, "{\"r_double\": [1.5, true]}", NULL, "invalid_type", "r_double[1]");
}

// --------------------------------------------------------------------------
//  Types, enums, bytes, times in JSON

static void
test_wrong_types(void **state)
{
    (void)state;
    s_refused(ALL, "[1, 2]", NULL, "invalid_type", "");
    s_refused(ALL, "\"text\"", NULL, "invalid_type", "");
    s_refused(ALL, "null", NULL, "invalid_type", "");
    s_refused(ALL, "{}", "[\"f_int32\"]", "invalid_type", "");
    s_refused(ALL, "{\"f_bool\": 1}", NULL, "invalid_type", "f_bool");
    s_refused(ALL, "{\"f_bool\": \"true\"}", NULL, "invalid_type", "f_bool");
    s_refused(ALL, "{\"f_string\": 5}", NULL, "invalid_type", "f_string");
    s_refused(ALL, "{\"f_string\": {}}", NULL, "invalid_type", "f_string");
    s_refused(ALL, "{\"f_string\": [\"a\"]}", NULL, "invalid_type", "f_string");
    s_refused(ALL, "{\"f_int32\": \"1\"}", NULL, "invalid_type", "f_int32");
    s_refused(ALL, "{\"f_int32\": true}", NULL, "invalid_type", "f_int32");
    s_refused(ALL, "{\"f_int32\": {}}", NULL, "invalid_type", "f_int32");
    s_refused(ALL, "{\"f_inner\": \"x\"}", NULL, "invalid_type", "f_inner");
    s_refused(ALL, "{\"f_inner\": []}", NULL, "invalid_type", "f_inner");
    s_refused(ALL, "{\"r_int32\": 5}", NULL, "invalid_type", "r_int32");
    s_refused(ALL, "{\"r_int32\": {}}", NULL, "invalid_type", "r_int32");
    s_refused(ALL, "{\"r_int32\": [1, null]}", NULL, "invalid_type", "r_int32[1]");
    s_refused(ALL, "{\"r_int32\": [1, \"2\"]}", NULL, "invalid_type", "r_int32[1]");
    s_refused(ALL, "{\"r_string\": [\"a\", 2]}", NULL, "invalid_type", "r_string[1]");
    s_refused(ALL, "{\"r_inner\": [{\"name\": \"a\"}, 3]}", NULL, "invalid_type", "r_inner[1]");
    s_refused(ALL, "{\"r_inner\": [{\"name\": \"a\"}, null]}", NULL, "invalid_type", "r_inner[1]");
    s_refused(ALL, "{\"f_inner\": {\"name\": \"a\", \"weight\": \"heavy\"}}", NULL, "invalid_type",
              "f_inner.weight");
    s_refused_says(ALL, "{\"f_bool\": 1}", "field 'f_bool' must be true or false");
    s_refused_says(ALL, "[]", "the request body must be a JSON object");
}

static void
test_enums(void **state)
{
    (void)state;
    Linli__Codectest__AllTypes *m = (Linli__Codectest__AllTypes *)s_ok(
        ALL, "{\"f_enum\": 5, \"r_enum\": [\"NEGATIVE\", -3, 0, \"GREEN\"]}", NULL);
    assert_int_equal(m->f_enum, LINLI__CODECTEST__COLOR__BLUE);
    assert_int_equal(m->n_r_enum, 4);
    assert_int_equal(m->r_enum[0], LINLI__CODECTEST__COLOR__NEGATIVE);
    assert_int_equal(m->r_enum[1], LINLI__CODECTEST__COLOR__NEGATIVE);
    assert_int_equal(m->r_enum[2], LINLI__CODECTEST__COLOR__COLOR_UNKNOWN);
    assert_int_equal(m->r_enum[3], LINLI__CODECTEST__COLOR__GREEN);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    s_refused(ALL, "{\"f_enum\": \"PURPLE\"}", NULL, "invalid_value", "f_enum");
    s_refused(ALL, "{\"f_enum\": \"red\"}", NULL, "invalid_value", "f_enum");
    s_refused(ALL, "{\"f_enum\": 7}", NULL, "invalid_value", "f_enum");
    s_refused(ALL, "{\"f_enum\": 4294967297}", NULL, "invalid_value", "f_enum");
    s_refused(ALL, "{\"f_enum\": true}", NULL, "invalid_type", "f_enum");
    s_refused(ALL, "{\"f_enum\": 1.0}", NULL, "invalid_type", "f_enum");
    s_refused(ALL, "{\"r_enum\": [\"RED\", \"PINK\"]}", NULL, "invalid_value", "r_enum[1]");
    s_refused_says(ALL, "{\"f_enum\": \"PURPLE\"}",
                   "field 'f_enum' must be one of: NEGATIVE, COLOR_UNKNOWN, RED, GREEN, BLUE");
}

static void
test_bytes(void **state)
{
    (void)state;
    Linli__Codectest__AllTypes *m = (Linli__Codectest__AllTypes *)s_ok(
        ALL, "{\"f_bytes\": \"\", \"r_bytes\": [\"aGVsbG8=\", \"AA==\"]}", NULL);
    assert_true(m->has_f_bytes);
    assert_int_equal(m->f_bytes.len, 0);
    assert_int_equal(m->r_bytes[0].len, 5);
    assert_memory_equal(m->r_bytes[0].data, "hello", 5);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    s_refused(ALL, "{\"f_bytes\": 5}", NULL, "invalid_type", "f_bytes");
    s_refused(ALL, "{\"f_bytes\": \"AAE\"}", NULL, "invalid_format", "f_bytes");
    s_refused(ALL, "{\"f_bytes\": \"AA=A\"}", NULL, "invalid_format", "f_bytes");
    s_refused(ALL, "{\"f_bytes\": \"aGVsbG8-\"}", NULL, "invalid_format", "f_bytes");
    s_refused(ALL, "{\"f_bytes\": \"aGVs bG8=\"}", NULL, "invalid_format", "f_bytes");
    s_refused(ALL, "{\"r_bytes\": [\"AA==\", \"*\"]}", NULL, "invalid_format", "r_bytes[1]");
}

static void
test_times_in_json(void **state)
{
    (void)state;
    Linli__Codectest__AllTypes *m = (Linli__Codectest__AllTypes *)s_ok(
        ALL,
        "{\"created_at\": \"2026-11-23T12:12:51.123+08:00\","
        " \"seen_at\": [\"2024-02-29T12:00:00Z\", \"1970-01-01T00:00:00Z\"]}",
        NULL);
    assert_true(m->created_at == INT64_C(1795407171123));
    assert_true(m->seen_at[0] == INT64_C(1709208000000));
    assert_true(m->seen_at[1] == 0);
    json_t *out = linli_codec_to_json(&m->base);
    assert_string_equal(json_string_value(json_object_get(out, "created_at")),
                        "2026-11-23T04:12:51.123Z");
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "seen_at"), 0)),
                        "2024-02-29T12:00:00.000Z");
    json_decref(out);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    //  a time is a string; an int64 not named *_at is a number
    s_refused(ALL, "{\"created_at\": 1795407171123}", NULL, "invalid_type", "created_at");
    s_refused(ALL, "{\"created_at\": \"2023-02-29T00:00:00Z\"}", NULL, "invalid_format",
              "created_at");
    s_refused(ALL, "{\"created_at\": \"tomorrow\"}", NULL, "invalid_format", "created_at");
    s_refused(ALL, "{\"seen_at\": [\"2026-01-01T00:00:00Z\", \"2026-01-01\"]}", NULL,
              "invalid_format", "seen_at[1]");
    m = (Linli__Codectest__AllTypes *)s_ok(ALL, "{\"f_int64\": 1795407171123}", NULL);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

// --------------------------------------------------------------------------
//  Unknown, required, oneof

static void
test_unknown_fields(void **state)
{
    (void)state;
    s_refused(ALL, "{\"bogus\": 1}", NULL, "unknown_field", "bogus");
    s_refused(ALL, "{\"F_INT32\": 1}", NULL, "unknown_field", "F_INT32");
    s_refused(ALL, "{\"f_inner\": {\"name\": \"a\", \"bogus\": null}}", NULL, "unknown_field",
              "f_inner.bogus");
    s_refused(ALL, "{\"r_inner\": [{\"name\": \"a\"}, {\"name\": \"b\", \"x\": 1}]}", NULL,
              "unknown_field", "r_inner[1].x");
    s_refused(ALL, "{}", "{\"bogus\": \"1\"}", "unknown_field", "bogus");
    s_refused_says(ALL, "{\"bogus\": 1}", "unknown field 'bogus'");
}

static void
test_required_fields(void **state)
{
    (void)state;
    s_refused(REQ, "{}", NULL, "missing_field", "id");
    s_refused(REQ, "{\"id\": 1, \"name\": \"n\", \"flag\": false}", NULL, "missing_field", "inner");
    s_refused(REQ, "{\"id\": 1, \"name\": \"n\", \"inner\": {\"name\": \"i\"}}", NULL,
              "missing_field", "flag");
    s_refused(REQ, "{\"id\": 1, \"name\": \"n\", \"flag\": true, \"inner\": {}}", NULL,
              "missing_field", "inner.name");
    s_refused(REQ, "{\"id\": 1, \"name\": null, \"flag\": true, \"inner\": {\"name\": \"i\"}}",
              NULL, "missing_field", "name");
    s_refused(ALL, "{\"r_inner\": [{\"name\": \"a\"}, {\"weight\": 1}]}", NULL, "missing_field",
              "r_inner[1].name");
    s_refused(ACCOUNT,
              "{\"phone\": \"13812345678\", \"tags\": [\"t\"],"
              " \"grants\": [{\"role\": \"a\", \"scope\": \"b\"}, {\"role\": \"x\"}]}",
              NULL, "missing_field", "grants[1].scope");
    s_refused_says(REQ, "{\"id\": 1, \"name\": \"n\", \"flag\": true, \"inner\": {}}",
                   "field 'inner.name' is required");
    //  a required field may come from the URL
    Linli__Codectest__Required *r = (Linli__Codectest__Required *)s_ok(
        REQ, "{\"name\": \"n\", \"flag\": true, \"inner\": {\"name\": \"i\"}}", "{\"id\": \"42\"}");
    assert_int_equal(r->id, 42);
    assert_true(r->flag);
    assert_null(r->note);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_oneof(void **state)
{
    (void)state;
    Linli__Codectest__AllTypes *m =
        (Linli__Codectest__AllTypes *)s_ok(ALL, "{\"c_text\": \"a\"}", NULL);
    assert_int_equal(m->choice_case, LINLI__CODECTEST__ALL_TYPES__CHOICE_C_TEXT);
    assert_string_equal(m->c_text, "a");
    protobuf_c_message_free_unpacked(&m->base, NULL);
    s_refused(ALL, "{\"c_text\": \"a\", \"c_number\": 1}", NULL, "invalid_value", "c_number");
    s_refused(ALL, "{\"c_inner\": {\"name\": \"x\"}, \"c_text\": \"y\"}", NULL, "invalid_value",
              "c_text");
    s_refused(ALL, "{\"c_text\": \"y\", \"c_inner\": {\"name\": \"x\"}}", NULL, "invalid_value",
              "c_inner");
    s_refused(ALL, "{\"c_text\": \"a\"}", "{\"c_number\": \"1\"}", "invalid_value", "c_number");
    //  errors inside a oneof member free what was built
    s_refused(ALL, "{\"c_inner\": {\"name\": \"x\", \"bogus\": 1}}", NULL, "unknown_field",
              "c_inner.bogus");
    s_refused(ALL, "{\"c_inner\": {\"tags\": [\"a\"]}}", NULL, "missing_field", "c_inner.name");
    s_refused_says(ALL, "{\"c_text\": \"a\", \"c_number\": 1}",
                   "field 'c_number' cannot be set together with 'c_text'");
}

// --------------------------------------------------------------------------
//  URL parameters

static void
test_params(void **state)
{
    (void)state;
    Linli__Codectest__AllTypes *m = (Linli__Codectest__AllTypes *)s_ok(
        ALL, "{\"f_sint32\": 3}",
        "{\"f_int32\": \"12\", \"f_bool\": \"true\", \"f_string\": \"邻里, 1\","
        " \"r_int32\": \"1,2,-3\", \"f_enum\": \"GREEN\", \"r_enum\": \"RED,5\","
        " \"created_at\": \"2026-11-23T12:12:51.123+08:00\","
        " \"f_uint64\": \"18446744073709551615\", \"f_double\": \"2.5e3\", \"f_float\": \"-1.5\","
        " \"r_string\": \"a,,b\", \"f_bytes\": \"AAEC\", \"r_uint32\": \"\","
        " \"seen_at\": \"2026-01-01T00:00:00Z,1970-01-01T00:00:00.001Z\"}");
    assert_int_equal(m->f_sint32, 3);
    assert_int_equal(m->f_int32, 12);
    assert_true(m->has_f_bool && m->f_bool);
    assert_string_equal(m->f_string, "邻里, 1");
    assert_int_equal(m->n_r_int32, 3);
    assert_int_equal(m->r_int32[2], -3);
    assert_int_equal(m->f_enum, LINLI__CODECTEST__COLOR__GREEN);
    assert_int_equal(m->n_r_enum, 2);
    assert_int_equal(m->r_enum[1], LINLI__CODECTEST__COLOR__BLUE);
    assert_true(m->created_at == INT64_C(1795407171123));
    assert_true(m->f_uint64 == UINT64_MAX);
    assert_true(m->f_double == 2500.0);
    assert_true(m->f_float == -1.5f);
    assert_int_equal(m->n_r_string, 3);
    assert_string_equal(m->r_string[1], "");
    assert_string_equal(m->r_string[2], "b");
    assert_int_equal(m->f_bytes.len, 3);
    assert_int_equal(m->n_r_uint32, 0);
    assert_int_equal(m->n_seen_at, 2);
    assert_true(m->seen_at[1] == 1);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    m = (Linli__Codectest__AllTypes *)s_ok(ALL, NULL,
                                           "{\"f_bool\": \"false\", \"f_enum\": \"-3\"}");
    assert_true(m->has_f_bool && !m->f_bool);
    assert_int_equal(m->f_enum, LINLI__CODECTEST__COLOR__NEGATIVE);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    s_refused(ALL, "{\"f_int32\": 1}", "{\"f_int32\": \"1\"}", "invalid_value", "f_int32");
    s_refused(ALL, "{\"f_int32\": null}", "{\"f_int32\": \"1\"}", "invalid_value", "f_int32");
    s_refused(ALL, NULL, "{\"f_int32\": 12}", "invalid_type", "f_int32");
    s_refused(ALL, NULL, "{\"f_int32\": \"12x\"}", "invalid_type", "f_int32");
    s_refused(ALL, NULL, "{\"f_int32\": \" 12\"}", "invalid_type", "f_int32");
    s_refused(ALL, NULL, "{\"f_int32\": \"+12\"}", "invalid_type", "f_int32");
    s_refused(ALL, NULL, "{\"f_int32\": \"\"}", "invalid_type", "f_int32");
    s_refused(ALL, NULL, "{\"f_int32\": \"1.0\"}", "invalid_type", "f_int32");
    s_refused(ALL, NULL, "{\"f_int32\": \"2147483648\"}", "out_of_range", "f_int32");
    s_refused(ALL, NULL, "{\"f_int64\": \"99999999999999999999\"}", "out_of_range", "f_int64");
    s_refused(ALL, NULL, "{\"f_uint32\": \"-1\"}", "out_of_range", "f_uint32");
    s_refused(ALL, NULL, "{\"f_uint32\": \"4294967296\"}", "out_of_range", "f_uint32");
    s_refused(ALL, NULL, "{\"f_bool\": \"yes\"}", "invalid_type", "f_bool");
    s_refused(ALL, NULL, "{\"f_bool\": \"True\"}", "invalid_type", "f_bool");
    s_refused(ALL, NULL, "{\"f_double\": \"nan\"}", "invalid_type", "f_double");
    s_refused(ALL, NULL, "{\"f_double\": \"inf\"}", "invalid_type", "f_double");
    s_refused(ALL, NULL, "{\"f_double\": \"0x10\"}", "invalid_type", "f_double");
    s_refused(ALL, NULL, "{\"f_double\": \"1e999\"}", "out_of_range", "f_double");
    s_refused(ALL, NULL, "{\"f_double\": \".\"}", "invalid_type", "f_double");
    s_refused(ALL, NULL, "{\"f_float\": \"1e39\"}", "out_of_range", "f_float");
    s_refused(ALL, NULL, "{\"f_inner\": \"x\"}", "invalid_type", "f_inner");
    s_refused(ALL, NULL, "{\"r_inner\": \"x\"}", "invalid_type", "r_inner");
    s_refused(ALL, NULL, "{\"r_int32\": \"1,x\"}", "invalid_type", "r_int32[1]");
    s_refused(ALL, NULL, "{\"r_int32\": \"1,\"}", "invalid_type", "r_int32[1]");
    s_refused(ALL, NULL, "{\"f_enum\": \"PURPLE\"}", "invalid_value", "f_enum");
    s_refused(ALL, NULL, "{\"f_enum\": \"7\"}", "invalid_value", "f_enum");
    s_refused(ALL, NULL, "{\"created_at\": \"yesterday\"}", "invalid_format", "created_at");
    s_refused(ALL, NULL, "{\"f_bytes\": \"!!\"}", "invalid_format", "f_bytes");
}

//  Parameters are not checked by jansson: every invalid UTF-8 form is refused.
static void
test_params_encoding(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\xff", 1},             //  never valid
        {"a\0b", 3},             //  NUL
        {"\0", 1},               //  only NUL
        {"\xc0\xaf", 2},         //  overlong '/'
        {"\xe0\x80\xaf", 3},     //  overlong, 3 bytes
        {"\xed\xa0\x80", 3},     //  UTF-16 surrogate
        {"\xe9\x82", 2},         //  truncated
        {"\xf4\x90\x80\x80", 4}, //  above U+10FFFF
        {"\x80", 1},             //  lone continuation byte
        {"ab\xe9", 3},           //  truncated at the end
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *params = json_object();
        json_object_set_new(params, "f_string", json_stringn_nocheck(bad[i].bytes, bad[i].len));
        s_refused_json(ALL, NULL, params, "invalid_format", "f_string", "bad UTF-8 parameter");
        json_decref(params);
        //  the same for a number, and for an item of a repeated field
        params = json_object();
        json_object_set_new(params, "r_string", json_stringn_nocheck(bad[i].bytes, bad[i].len));
        s_refused_json(ALL, NULL, params, "invalid_format", "r_string", "bad UTF-8 parameter");
        json_decref(params);
    }
    json_t *params = json_object();
    json_object_set_new(params, "f_int32",
                        json_stringn_nocheck("12\0"
                                             "3",
                                             4));
    s_refused_json(ALL, NULL, params, "invalid_format", "f_int32", "NUL in a number");
    json_decref(params);

    //  good multi-byte text passes: 2, 3 and 4 bytes
    params = json_object();
    json_object_set_new(params, "f_string", json_string("é邻😀"));
    linli_codec_error_t err;
    Linli__Codectest__AllTypes *m =
        (Linli__Codectest__AllTypes *)linli_codec_from_json(ALL, NULL, params, &err);
    assert_non_null(m);
    assert_string_equal(m->f_string, "é邻😀");
    protobuf_c_message_free_unpacked(&m->base, NULL);
    json_decref(params);

    //  a NUL inside a body string (jansson allows one when asked)
    json_t *body = json_object();
    json_object_set_new(body, "f_string", json_stringn("a\0b", 3));
    s_refused_json(ALL, body, NULL, "invalid_format", "f_string", "NUL in the body");
    json_decref(body);
    body = json_object();
    json_object_set_new(body, "created_at", json_stringn("2026-01-01T00:00:00Z\0junk", 25));
    s_refused_json(ALL, body, NULL, "invalid_format", "created_at", "NUL in a time");
    json_decref(body);
}

// --------------------------------------------------------------------------
//  Constraints

static void
test_constraint_strings(void **state)
{
    (void)state;
    Linli__Codectest__Account *a = (Linli__Codectest__Account *)s_ok(
        ACCOUNT,
        "{\"phone\": \"13812345678\", \"tags\": [\"t\"], \"nickname\": \"邻里邻里邻里邻里\","
        " \"role\": \"member\", \"code\": \"AB12\", \"color\": 2}",
        NULL);
    assert_string_equal(a->nickname, "邻里邻里邻里邻里");
    assert_int_equal(a->color, LINLI__CODECTEST__COLOR__GREEN);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    a = (Linli__Codectest__Account *)s_ok(
        ACCOUNT, "{\"phone\": \"19900000000\", \"tags\": [\"t\"], \"nickname\": \"ab\"}", NULL);
    protobuf_c_message_free_unpacked(&a->base, NULL);

#define BASE "\"phone\": \"13812345678\", \"tags\": [\"t\"]"
    s_refused(ACCOUNT, "{\"phone\": \"12812345678\", \"tags\": [\"t\"]}", NULL, "invalid_format",
              "phone");
    s_refused(ACCOUNT, "{\"phone\": \"138123456789\", \"tags\": [\"t\"]}", NULL, "invalid_format",
              "phone");
    s_refused(ACCOUNT, "{\"phone\": \"x13812345678\", \"tags\": [\"t\"]}", NULL, "invalid_format",
              "phone");
    s_refused(ACCOUNT, "{\"phone\": \"\", \"tags\": [\"t\"]}", NULL, "invalid_format", "phone");
    s_refused(ACCOUNT, "{" BASE ", \"nickname\": \"邻里邻里邻里邻里邻\"}", NULL, "too_long",
              "nickname");
    s_refused(ACCOUNT, "{" BASE ", \"nickname\": \"abcdefghi\"}", NULL, "too_long", "nickname");
    s_refused(ACCOUNT, "{" BASE ", \"nickname\": \"邻\"}", NULL, "too_short", "nickname");
    s_refused(ACCOUNT, "{" BASE ", \"nickname\": \"\"}", NULL, "too_short", "nickname");
    s_refused(ACCOUNT, "{" BASE ", \"role\": \"boss\"}", NULL, "invalid_value", "role");
    s_refused(ACCOUNT, "{" BASE ", \"role\": \"admi\"}", NULL, "invalid_value", "role");
    s_refused(ACCOUNT, "{" BASE ", \"role\": \"admin|member\"}", NULL, "invalid_value", "role");
    s_refused(ACCOUNT, "{" BASE ", \"code\": \"ab12\"}", NULL, "invalid_format", "code");
    s_refused(ACCOUNT, "{" BASE ", \"code\": \"AB\"}", NULL, "invalid_format", "code");
    s_refused(ACCOUNT, "{" BASE ", \"code\": \"AB1\\nAB1\"}", NULL, "invalid_format", "code");
    s_refused(ACCOUNT, "{" BASE ", \"color\": \"BLUE\"}", NULL, "invalid_value", "color");
    s_refused(ACCOUNT, "{" BASE ", \"blob\": \"AAECAwQ=\"}", NULL, "too_long", "blob");
    a = (Linli__Codectest__Account *)s_ok(ACCOUNT, "{" BASE ", \"blob\": \"AAECAw==\"}", NULL);
    protobuf_c_message_free_unpacked(&a->base, NULL);

    s_refused_says(ACCOUNT, "{" BASE ", \"nickname\": \"邻里邻里邻里邻里邻\"}",
                   "field 'nickname' must be at most 8 characters");
    s_refused_says(ACCOUNT, "{" BASE ", \"nickname\": \"邻\"}",
                   "field 'nickname' must be at least 2 characters");
    s_refused_says(ACCOUNT, "{" BASE ", \"role\": \"boss\"}",
                   "field 'role' must be one of: admin, member, guest");
    s_refused_says(ACCOUNT, "{" BASE ", \"code\": \"ab\"}",
                   "field 'code' must match the pattern [A-Z]{2}[0-9]+");
    s_refused_says(ACCOUNT, "{" BASE ", \"color\": \"BLUE\"}",
                   "field 'color' must be one of: RED, GREEN");
    s_refused_says(ACCOUNT, "{" BASE ", \"blob\": \"AAECAwQ=\"}",
                   "field 'blob' must be at most 4 bytes");
}

static void
test_constraint_numbers(void **state)
{
    (void)state;
    Linli__Codectest__Account *a = (Linli__Codectest__Account *)s_ok(
        ACCOUNT,
        "{" BASE ", \"age\": 150, \"limit\": 100, \"score\": -10.0, \"balance\": -1000,"
        " \"big\": 5}",
        NULL);
    assert_int_equal(a->age, 150);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    a = (Linli__Codectest__Account *)s_ok(
        ACCOUNT, "{" BASE ", \"age\": 0, \"limit\": 1, \"score\": 100, \"big\": 0}", NULL);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    s_refused(ACCOUNT, "{" BASE ", \"age\": 151}", NULL, "out_of_range", "age");
    s_refused(ACCOUNT, "{" BASE ", \"age\": -1}", NULL, "out_of_range", "age");
    s_refused(ACCOUNT, "{" BASE ", \"limit\": 0}", NULL, "out_of_range", "limit");
    s_refused(ACCOUNT, "{" BASE ", \"limit\": 101}", NULL, "out_of_range", "limit");
    s_refused(ACCOUNT, "{" BASE ", \"score\": -10.5}", NULL, "out_of_range", "score");
    s_refused(ACCOUNT, "{" BASE ", \"score\": 100.01}", NULL, "out_of_range", "score");
    s_refused(ACCOUNT, "{" BASE ", \"balance\": 1001}", NULL, "out_of_range", "balance");
    s_refused(ACCOUNT, "{" BASE ", \"big\": 6}", NULL, "out_of_range", "big");
    s_refused(ACCOUNT, "{" BASE ", \"big\": \"18446744073709551615\"}", NULL, "out_of_range",
              "big");
    s_refused(ACCOUNT, "{\"tags\": [\"t\"]}", "{\"phone\": \"13812345678\", \"age\": \"200\"}",
              "out_of_range", "age");
    s_refused_says(ACCOUNT, "{" BASE ", \"age\": 151}", "field 'age' must be between 0 and 150");
}

static void
test_constraint_repeated(void **state)
{
    (void)state;
    s_refused(ACCOUNT, "{\"phone\": \"13812345678\", \"tags\": []}", NULL, "too_short", "tags");
    s_refused(ACCOUNT, "{\"phone\": \"13812345678\"}", NULL, "too_short", "tags");
    s_refused(ACCOUNT, "{\"phone\": \"13812345678\", \"tags\": [\"a\", \"b\", \"c\", \"d\"]}", NULL,
              "too_many", "tags");
    s_refused(ACCOUNT, "{\"phone\": \"13812345678\"}", "{\"tags\": \"a,b,c,d\"}", "too_many",
              "tags");
    s_refused_says(ACCOUNT, "{\"phone\": \"13812345678\", \"tags\": [\"a\", \"b\", \"c\", \"d\"]}",
                   "field 'tags' must have at most 3 items");
    s_refused_says(ACCOUNT, "{\"phone\": \"13812345678\", \"tags\": []}",
                   "field 'tags' must have at least 1 item");
    Linli__Codectest__Account *a = (Linli__Codectest__Account *)s_ok(
        ACCOUNT, "{\"phone\": \"13812345678\"}", "{\"tags\": \"a,b,c\", \"ids\": \"1,2,3\"}");
    assert_int_equal(a->n_tags, 3);
    assert_int_equal(a->n_ids, 3);
    assert_true(a->ids[2] == 3);
    protobuf_c_message_free_unpacked(&a->base, NULL);

    //  10,000 items where the table allows 20,000
    char *body = s_array_body("many", "7", 10000);
    char *full = malloc(strlen(body) + 64);
    assert_non_null(full);
    sprintf(full, "{" BASE ", %s", body + 1);
    a = (Linli__Codectest__Account *)s_ok(ACCOUNT, full, NULL);
    assert_int_equal(a->n_many, 10000);
    assert_int_equal(a->many[9999], 7);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    free(full);
    free(body);
    body = s_array_body("many", "7", 20001);
    full = malloc(strlen(body) + 64);
    assert_non_null(full);
    sprintf(full, "{" BASE ", %s", body + 1);
    s_refused(ACCOUNT, full, NULL, "too_many", "many");
    free(full);
    free(body);
}

//  Without a line in the table: 4096 characters, 1000 items.
static void
test_default_caps(void **state)
{
    (void)state;
    char *body = s_long_string_body("f_string", "a", LINLI_CODEC_DEFAULT_MAX_LEN);
    ProtobufCMessage *m = s_ok(ALL, body, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    free(body);
    body = s_long_string_body("f_string", "a", LINLI_CODEC_DEFAULT_MAX_LEN + 1);
    s_refused(ALL, body, NULL, "too_long", "f_string");
    s_refused_says(ALL, body, "field 'f_string' must be at most 4096 characters");
    free(body);
    //  characters, not bytes: 4096 Chinese characters are 12288 bytes
    body = s_long_string_body("f_string", "邻", LINLI_CODEC_DEFAULT_MAX_LEN);
    m = s_ok(ALL, body, NULL);
    assert_int_equal(strlen(((Linli__Codectest__AllTypes *)m)->f_string),
                     3 * LINLI_CODEC_DEFAULT_MAX_LEN);
    protobuf_c_message_free_unpacked(m, NULL);
    free(body);
    body = s_long_string_body("f_string", "邻", LINLI_CODEC_DEFAULT_MAX_LEN + 1);
    s_refused(ALL, body, NULL, "too_long", "f_string");
    free(body);
    //  an item of a repeated field gets the cap, and a path
    size_t n = LINLI_CODEC_DEFAULT_MAX_LEN + 1;
    char *items = malloc(n + 64);
    assert_non_null(items);
    int o = sprintf(items, "{\"r_string\": [\"a\", \"");
    memset(items + o, 'b', n);
    strcpy(items + o + n, "\"]}");
    s_refused(ALL, items, NULL, "too_long", "r_string[1]");
    free(items);

    body = s_array_body("r_int32", "1", LINLI_CODEC_DEFAULT_MAX_ITEMS);
    m = s_ok(ALL, body, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    free(body);
    body = s_array_body("r_int32", "1", LINLI_CODEC_DEFAULT_MAX_ITEMS + 1);
    s_refused(ALL, body, NULL, "too_many", "r_int32");
    free(body);
    body = s_array_body("r_inner", "{\"name\": \"n\"}", 10000);
    s_refused(ALL, body, NULL, "too_many", "r_inner");
    free(body);
    body = s_array_body("r_string", "\"s\"", 10000);
    s_refused(ALL, body, NULL, "too_many", "r_string");
    free(body);
}

//  The table of envelope.proto lines, as the suite ships it.
static void
test_envelope_constraints(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *grant = &linli__grant__descriptor;
    const char *good[] = {"42", "4201", "420102", "420102001", "420102001001", "org:7f3a-9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"role\": \"street_admin\", \"scope\": \"%s\"}", good[i]);
        ProtobufCMessage *m = s_ok(grant, body, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    s_refused(grant, "{\"role\": \"king\", \"scope\": \"4201\"}", NULL, "invalid_value", "role");
    s_refused(grant, "{\"role\": \"volunteer\", \"scope\": \"42010\"}", NULL, "invalid_format",
              "scope");
    s_refused(grant, "{\"role\": \"volunteer\", \"scope\": \"4201x\"}", NULL, "invalid_format",
              "scope");
    s_refused(grant, "{\"role\": \"volunteer\", \"scope\": \"org:\"}", NULL, "invalid_format",
              "scope");
    s_refused(grant, "{\"role\": \"volunteer\"}", NULL, "missing_field", "scope");
    s_refused(&linli__caller__descriptor, "{\"kind\": \"robot\"}", NULL, "invalid_value", "kind");
    s_refused(&linli__caller__descriptor,
              "{\"grants\": [{\"role\": \"resident\", \"scope\": \"4201\"},"
              " {\"role\": \"emperor\", \"scope\": \"4201\"}]}",
              NULL, "invalid_value", "grants[1].role");
    ProtobufCMessage *m =
        s_ok(&linli__request__descriptor, "{\"method\": \"registry.GetArea\"}", NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    s_refused(&linli__request__descriptor, "{\"method\": \"GetArea\"}", NULL, "invalid_format",
              "method");
    s_refused(&linli__reply__descriptor, "{\"status\": 42}", NULL, "out_of_range", "status");
}

static void
test_add_constraints(void **state)
{
    (void)state;
    assert_int_equal(linli_codec_add_constraints(s_test_constraints), 0); //  again: no-op
    assert_int_equal(linli_codec_add_constraints(linli_constraints), 0);
    assert_int_equal(linli_codec_add_constraints(NULL), -1);
    //  a later table wins over an earlier one, and a broken pattern refuses all
    static const linli_constraint_t later[] = {
        {.message = "linli.codectest.Account", .field = "age", .min = 0, .max = 10},
        {.message = "linli.codectest.Inner", .field = "name", .max_len = 2},
        {.message = "linli.codectest.Inner", .field = "tags", .pattern = "(unclosed"},
        {.message = NULL},
    };
    assert_int_equal(linli_codec_add_constraints(later), 0);
    s_refused(ACCOUNT, "{" BASE ", \"age\": 11}", NULL, "out_of_range", "age");
    s_refused(ALL, "{\"f_inner\": {\"name\": \"abc\"}}", NULL, "too_long", "f_inner.name");
    s_refused(ALL, "{\"f_inner\": {\"name\": \"ab\", \"tags\": [\"x\"]}}", NULL, "invalid_format",
              "f_inner.tags[0]");
    ProtobufCMessage *m = s_ok(ALL, "{\"f_inner\": {\"name\": \"ab\", \"tags\": []}}", NULL);
    protobuf_c_message_free_unpacked(m, NULL);
}

// --------------------------------------------------------------------------
//  Nesting

//  {"child": {"child": ... {"label": "x"}}}: levels messages in all.
static char *
s_nested_body(size_t levels)
{
    char *text = malloc(levels * 12 + 32);
    assert_non_null(text);
    size_t o = 0;
    for (size_t i = 1; i < levels; i++)
        o += (size_t)sprintf(text + o, "{\"child\": ");
    o += (size_t)sprintf(text + o, "{\"label\": \"x\"}");
    for (size_t i = 1; i < levels; i++)
        text[o++] = '}';
    text[o] = '\0';
    return text;
}

static void
test_depth(void **state)
{
    (void)state;
    char *body = s_nested_body(LINLI_CODEC_MAX_DEPTH);
    ProtobufCMessage *m = s_ok(NODE, body, NULL);
    free(body);
    assert_int_equal(linli_codec_validate(m, NULL), 0);
    json_t *out = linli_codec_to_json(m);
    assert_non_null(out);
    json_decref(out);
    protobuf_c_message_free_unpacked(m, NULL);

    body = s_nested_body(LINLI_CODEC_MAX_DEPTH + 1);
    char path[256] = "";
    for (int i = 0; i < LINLI_CODEC_MAX_DEPTH; i++)
        strcat(path, i ? ".child" : "child");
    s_refused(NODE, body, NULL, "too_deep", path);
    free(body);

    //  a bomb, built without jansson's parser (which stops at 2048 levels)
    json_t *bomb = json_object();
    for (int i = 0; i < 5000; i++) {
        json_t *outer = json_object();
        json_object_set_new(outer, i % 2 ? "child" : "kids", i % 2 ? bomb : json_pack("[o]", bomb));
        bomb = outer;
    }
    linli_codec_error_t err;
    assert_null(linli_codec_from_json(NODE, bomb, NULL, &err));
    assert_string_equal(err.code, "too_deep");
    json_decref(bomb);

    //  validate stops deep messages from the wire too
    Linli__Codectest__Node nodes[40];
    for (int i = 0; i < 40; i++) {
        linli__codectest__node__init(&nodes[i]);
        nodes[i].child = i + 1 < 40 ? &nodes[i + 1] : NULL;
    }
    assert_int_equal(linli_codec_validate(&nodes[40 - LINLI_CODEC_MAX_DEPTH].base, &err), 0);
    assert_int_equal(linli_codec_validate(&nodes[0].base, &err), -1);
    assert_string_equal(err.code, "too_deep");
}

// --------------------------------------------------------------------------
//  Validation of messages from the wire

static void
test_validate(void **state)
{
    (void)state;
    linli_codec_error_t err;
    Linli__Codectest__Grant g0 = LINLI__CODECTEST__GRANT__INIT;
    Linli__Codectest__Grant g1 = LINLI__CODECTEST__GRANT__INIT;
    Linli__Codectest__Grant *grants[] = {&g0, &g1};
    char *tags[] = {"t"};
    g0.role = "r";
    g0.scope = "s";
    g1.role = "r";
    Linli__Codectest__Account a = LINLI__CODECTEST__ACCOUNT__INIT;
    a.phone = "13812345678";
    a.n_tags = 1;
    a.tags = tags;
    assert_int_equal(linli_codec_validate(&a.base, &err), 0);

    a.n_grants = 2;
    a.grants = grants;
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "missing_field");
    assert_string_equal(err.field, "grants[1].scope");
    g1.scope = "s";
    assert_int_equal(linli_codec_validate(&a.base, &err), 0);

    a.nickname = "\xff\xfe";
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "invalid_format");
    assert_string_equal(err.field, "nickname");
    a.nickname = "邻里邻里邻里邻里邻";
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "too_long");
    a.nickname = NULL;

    a.has_color = 1;
    a.color = 99;
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "invalid_value");
    assert_string_equal(err.field, "color");
    a.color = LINLI__CODECTEST__COLOR__BLUE;
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "invalid_value");
    a.has_color = 0; //  unset: not checked
    assert_int_equal(linli_codec_validate(&a.base, &err), 0);

    a.has_age = 1;
    a.age = 200;
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "out_of_range");
    a.has_age = 0;

    a.n_tags = 0;
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "too_short");
    assert_string_equal(err.field, "tags");
    a.n_tags = 1;

    a.phone = NULL;
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "missing_field");
    assert_string_equal(err.field, "phone");
    a.phone = "23812345678";
    assert_int_equal(linli_codec_validate(&a.base, &err), -1);
    assert_string_equal(err.code, "invalid_format");
    a.phone = "13812345678";

    //  through the wire: a list longer than the default cap
    static int32_t ints[LINLI_CODEC_DEFAULT_MAX_ITEMS + 1];
    Linli__Codectest__AllTypes all = LINLI__CODECTEST__ALL_TYPES__INIT;
    all.n_r_int32 = LINLI_CODEC_DEFAULT_MAX_ITEMS + 1;
    all.r_int32 = ints;
    size_t size = protobuf_c_message_get_packed_size(&all.base);
    uint8_t *wire = malloc(size);
    assert_non_null(wire);
    protobuf_c_message_pack(&all.base, wire);
    ProtobufCMessage *back = protobuf_c_message_unpack(ALL, NULL, size, wire);
    assert_non_null(back);
    assert_int_equal(linli_codec_validate(back, &err), -1);
    assert_string_equal(err.code, "too_many");
    assert_string_equal(err.field, "r_int32");
    assert_int_equal(err.status, 400);
    protobuf_c_message_free_unpacked(back, NULL);
    free(wire);

    //  a oneof is checked only when it is the one set
    Linli__Codectest__Inner inner = LINLI__CODECTEST__INNER__INIT;
    all = (Linli__Codectest__AllTypes)LINLI__CODECTEST__ALL_TYPES__INIT;
    all.choice_case = LINLI__CODECTEST__ALL_TYPES__CHOICE_C_INNER;
    all.c_inner = &inner;
    assert_int_equal(linli_codec_validate(&all.base, &err), -1);
    assert_string_equal(err.field, "c_inner.name");
    inner.name = "i";
    assert_int_equal(linli_codec_validate(&all.base, &err), 0);
    assert_int_equal(linli_codec_validate(NULL, &err), -1);
}

// --------------------------------------------------------------------------
//  Rendering

static void
test_to_json_edges(void **state)
{
    (void)state;
    Linli__Codectest__AllTypes all = LINLI__CODECTEST__ALL_TYPES__INIT;
    uint8_t raw[] = {0, 1, 2};
    all.has_f_uint64 = 1;
    all.f_uint64 = UINT64_MAX;
    all.has_f_float = 1;
    all.f_float = NAN;
    all.has_f_double = 1;
    all.f_double = INFINITY;
    all.has_f_enum = 1;
    all.f_enum = 42;
    all.has_created_at = 1;
    all.created_at = INT64_MAX;
    all.has_f_bytes = 1;
    all.f_bytes.len = 3;
    all.f_bytes.data = raw;
    all.f_int32 = 5; //  without has_f_int32: not set
    all.choice_case = LINLI__CODECTEST__ALL_TYPES__CHOICE_C_NUMBER;
    all.c_number = 9;
    json_t *out = linli_codec_to_json(&all.base);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "f_uint64")),
                        "18446744073709551615");
    assert_true(json_is_null(json_object_get(out, "f_float")));
    assert_true(json_is_null(json_object_get(out, "f_double")));
    assert_int_equal(json_integer_value(json_object_get(out, "f_enum")), 42);
    assert_true(json_integer_value(json_object_get(out, "created_at")) == INT64_MAX);
    assert_string_equal(json_string_value(json_object_get(out, "f_bytes")), "AAEC");
    assert_null(json_object_get(out, "f_int32"));
    assert_null(json_object_get(out, "f_string"));
    assert_null(json_object_get(out, "f_default"));
    assert_null(json_object_get(out, "c_text"));
    assert_int_equal(json_integer_value(json_object_get(out, "c_number")), 9);
    assert_true(json_is_array(json_object_get(out, "r_inner")));
    json_decref(out);

    //  required fields are always rendered; a string that is not UTF-8 cannot be
    Linli__Codectest__Inner inner = LINLI__CODECTEST__INNER__INIT;
    Linli__Codectest__Required req = LINLI__CODECTEST__REQUIRED__INIT;
    req.name = "n";
    req.inner = &inner;
    out = linli_codec_to_json(&req.base);
    assert_non_null(out);
    assert_int_equal(json_integer_value(json_object_get(out, "id")), 0);
    assert_true(json_is_false(json_object_get(out, "flag")));
    assert_null(json_object_get(out, "note"));
    json_decref(out);
    inner.name = "\xff";
    assert_null(linli_codec_to_json(&req.base));
    assert_null(linli_codec_to_json(NULL));
}

// --------------------------------------------------------------------------
//  Times

static void
test_parse_time(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"2026-11-23T04:12:51Z", INT64_C(1795407171000)},
        {"2026-11-23T04:12:51.123Z", INT64_C(1795407171123)},
        {"2026-11-23T12:12:51.123+08:00", INT64_C(1795407171123)},
        {"2026-11-22T22:42:51.123-05:30", INT64_C(1795407171123)},
        {"2026-11-23t04:12:51.123z", INT64_C(1795407171123)},
        {"2026-11-23 04:12:51.123Z", INT64_C(1795407171123)},
        {"2026-11-23T04:12:51.1Z", INT64_C(1795407171100)},
        {"2026-11-23T04:12:51.123456789Z", INT64_C(1795407171123)},
        {"2026-11-23T04:12:51-00:00", INT64_C(1795407171000)},
        {"2024-02-29T12:00:00Z", INT64_C(1709208000000)},
        {"2000-02-29T00:00:00Z", INT64_C(951782400000)},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
        {"1970-01-01T08:00:00+08:00", 0},
        {"0000-01-01T00:00:00Z", INT64_C(-62167219200000)},
        {"9999-12-31T23:59:59.999Z", INT64_C(253402300799999)},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = 42;
        if (linli_codec_parse_time(good[i].text, &ms) != 0 || ms != good[i].ms)
            fail_msg("%s: got %lld, expected %lld", good[i].text, (long long)ms,
                     (long long)good[i].ms);
    }
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-23",
        "2026-11-23T04:12",
        "2026-11-23T04:12:51",   //  no zone
        "2026-11-23T04:12:51ZZ", //  trailing garbage
        "2026-11-23T04:12:51Z ", //  trailing blank
        " 2026-11-23T04:12:51Z", //  leading blank
        "2026-11-23T04:12:51.Z", //  empty fraction
        "2026-11-23T04:12:51.1234567890Z",
        "2026-11-23T04:12:51,5Z",
        "2023-02-29T00:00:00Z", //  not a leap year
        "1900-02-29T00:00:00Z", //  nor is 1900
        "2026-02-30T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T23:60:00Z",
        "2026-12-31T23:59:60Z", //  leap second
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+08:60",
        "2026-01-01T00:00:00+0800",
        "2026-01-01T00:00:00+08",
        "2026-01-01T00:00:00 +08:00",
        "2026-1-01T00:00:00Z",
        "20261-01-01T00:00:00Z",
        "-2026-01-01T00:00:00Z",
        "2026/01/01T00:00:00Z",
        "2026-01-01X00:00:00Z",
        "２026-01-01T00:00:00Z",
        "yesterday",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (linli_codec_parse_time(bad[i], &ms) != -1)
            fail_msg("accepted '%s' as %lld", bad[i], (long long)ms);
        assert_true(ms == 42);
    }
    int64_t ms;
    assert_int_equal(linli_codec_parse_time(NULL, &ms), -1);
}

static void
test_format_time(void **state)
{
    (void)state;
    char out[32];
    linli_codec_format_time(0, out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    linli_codec_format_time(-1, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    linli_codec_format_time(INT64_C(1795407171123), out, sizeof out);
    assert_string_equal(out, "2026-11-23T04:12:51.123Z");
    linli_codec_format_time(INT64_C(1709208000000), out, sizeof out);
    assert_string_equal(out, "2024-02-29T12:00:00.000Z");
    linli_codec_format_time(INT64_C(253402300799999), out, sizeof out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    linli_codec_format_time(INT64_C(-62167219200000), out, sizeof out);
    assert_string_equal(out, "0000-01-01T00:00:00.000Z");
    linli_codec_format_time(INT64_C(253402300800000), out, sizeof out);
    assert_string_equal(out, "");
    linli_codec_format_time(INT64_MAX, out, sizeof out);
    assert_string_equal(out, "");
    linli_codec_format_time(INT64_MIN, out, sizeof out);
    assert_string_equal(out, "");
    linli_codec_format_time(0, out, 5); //  cut, still a string
    assert_string_equal(out, "1970");
    //  every formatted time parses back to itself
    for (int64_t t = INT64_C(-5000000000000); t < INT64_C(5000000000000);
         t += INT64_C(99999999937)) {
        int64_t back;
        linli_codec_format_time(t, out, sizeof out);
        assert_int_equal(linli_codec_parse_time(out, &back), 0);
        assert_true(back == t);
    }
}

int
main(void)
{
    if (linli_codec_add_constraints(s_test_constraints))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_unset_fields),
        cmocka_unit_test(test_integer_ranges),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_times_in_json),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_oneof),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_params_encoding),
        cmocka_unit_test(test_constraint_strings),
        cmocka_unit_test(test_constraint_numbers),
        cmocka_unit_test(test_constraint_repeated),
        cmocka_unit_test(test_default_caps),
        cmocka_unit_test(test_envelope_constraints),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_to_json_edges),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_format_time),
        //  last: it adds a table that changes Inner's limits
        cmocka_unit_test(test_add_constraints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
