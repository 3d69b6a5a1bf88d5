//  linli_codec: the one generic JSON <-> protobuf converter, driven by the
//  protobuf-c descriptors and the constraints tables (see linli_codec.h).
//
//  Messages are built with malloc and the descriptor's init, and every value
//  is hung on its message the moment it is allocated (with its has_ flag or
//  oneof case set), so one protobuf_c_message_free_unpacked(m, NULL) frees a
//  message on every path, half-built ones included.
#include "linli_codec.h"
#include "linli_utf8.h"
#include "linli_log.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Most extra tables linli_codec_add_constraints accepts.
#define S_MAX_TABLES 32
//  Deepest message to_json renders; only a broken peer sends deeper ones.
#define S_MAX_RENDER_DEPTH 64
//  Unix seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years
//  RFC 3339 can write.
#define S_MIN_SECS INT64_C(-62167219200)
#define S_MAX_SECS INT64_C(253402300799)

// --------------------------------------------------------------------------
//  The constraints index: one hash over every registered table, keyed by
//  (message full name, field name), built on first use and rebuilt after a
//  table is added. Patterns are compiled once, when the index is built.
//  Conversions hold the read lock for their whole run, so a rule they found
//  stays valid until they return.

typedef struct {
    const linli_constraint_t *c; //  borrowed from a registered table; NULL: empty slot
    bool has_re;                 //  c->pattern compiled into re
    bool re_broken;              //  c->pattern did not compile: every value is refused
    regex_t re;                  //  c->pattern anchored to the whole string
} s_rule_t;

static pthread_rwlock_t s_lock = PTHREAD_RWLOCK_INITIALIZER;
static const linli_constraint_t *s_tables[S_MAX_TABLES]; //  added tables, borrowed
static size_t s_ntables;                                 //  s_tables used
static s_rule_t *s_slots;                                //  the index, open addressing
static size_t s_nslots;                                  //  a power of two
static bool s_built;                                     //  s_slots reflects every table

//  FNV-1a over "message\xff field".
static uint64_t
s_hash(const char *message, const char *field)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (const char *p = message; *p; p++)
        h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    h = (h ^ 0xff) * UINT64_C(1099511628211);
    for (const char *p = field; *p; p++)
        h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    return h;
}

//  The slot holding (message, field), or the empty slot where it would go.
static s_rule_t *
s_slot(const char *message, const char *field)
{
    size_t mask = s_nslots - 1;
    for (size_t i = (size_t)s_hash(message, field) & mask;; i = (i + 1) & mask) {
        s_rule_t *r = &s_slots[i];
        if (!r->c || (!strcmp(r->c->message, message) && !strcmp(r->c->field, field)))
            return r;
    }
}

//  Compile the rule's pattern, anchored: "a|b" must match "^(a|b)$", not "^a|b$".
static void
s_compile(s_rule_t *r)
{
    size_t len = strlen(r->c->pattern) + sizeof "^()$";
    char *anchored = malloc(len);
    int rc = REG_ESPACE;
    if (anchored) {
        snprintf(anchored, len, "^(%s)$", r->c->pattern);
        rc = regcomp(&r->re, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
    }
    if (rc == 0) {
        r->has_re = true;
        return;
    }
    char why[128] = "out of memory";
    if (rc != REG_ESPACE)
        regerror(rc, &r->re, why, sizeof why);
    linli_error("constraint %s.%s: pattern does not compile (%s); every value is refused",
                r->c->message, r->c->field, why);
    r->re_broken = true;
}

//  Drop the index (it is rebuilt at next use). Write lock held.
static void
s_index_clear(void)
{
    for (size_t i = 0; i < s_nslots; i++)
        if (s_slots[i].has_re)
            regfree(&s_slots[i].re);
    free(s_slots);
    s_slots = NULL;
    s_nslots = 0;
    s_built = false;
}

//  Index linli_constraints and every added table, in that order. Write lock held.
static int
s_index_build(void)
{
    size_t count = 0;
    for (size_t t = 0; t <= s_ntables; t++)
        for (const linli_constraint_t *e = t ? s_tables[t - 1] : linli_constraints; e->message; e++)
            count++;
    size_t n = 16;
    while (n < 2 * count)
        n *= 2;
    s_slots = calloc(n, sizeof *s_slots);
    if (!s_slots)
        return -1;
    s_nslots = n;
    for (size_t t = 0; t <= s_ntables; t++)
        for (const linli_constraint_t *e = t ? s_tables[t - 1] : linli_constraints; e->message;
             e++) {
            if (!e->field) {
                linli_error("constraint for %s names no field; ignored", e->message);
                continue;
            }
            s_rule_t *r = s_slot(e->message, e->field);
            if (r->c) {
                linli_warn("constraint %s.%s is listed twice; the later line wins", e->message,
                           e->field);
                if (r->has_re)
                    regfree(&r->re);
                r->has_re = r->re_broken = false;
            }
            r->c = e;
            if (e->pattern)
                s_compile(r);
        }
    s_built = true;
    return 0;
}

//  Take the read lock over a built index; -1 (no lock held) when memory ran out.
static int
s_rules_acquire(void)
{
    for (;;) {
        pthread_rwlock_rdlock(&s_lock);
        if (s_built)
            return 0;
        pthread_rwlock_unlock(&s_lock);
        pthread_rwlock_wrlock(&s_lock);
        int rc = s_built ? 0 : s_index_build();
        pthread_rwlock_unlock(&s_lock);
        if (rc)
            return -1;
        //  a table added between unlock and rdlock clears the index: go round
    }
}

//  Give back the read lock s_rules_acquire took.
static void
s_rules_release(void)
{
    pthread_rwlock_unlock(&s_lock);
}

//  The rule for a field, or NULL. Read lock held.
static const s_rule_t *
s_rule_find(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *fd)
{
    const s_rule_t *r = s_slot(desc->name, fd->name);
    return r->c ? r : NULL;
}

int
linli_codec_add_constraints(const linli_constraint_t *table)
{
    if (!table)
        return -1;
    int rc = 0;
    pthread_rwlock_wrlock(&s_lock);
    bool known = table == linli_constraints;
    for (size_t i = 0; i < s_ntables && !known; i++)
        known = s_tables[i] == table;
    if (!known) {
        if (s_ntables == S_MAX_TABLES) {
            linli_error("linli_codec_add_constraints: more than %d tables", S_MAX_TABLES);
            rc = -1;
        } else {
            s_tables[s_ntables++] = table;
            s_index_clear();
        }
    }
    pthread_rwlock_unlock(&s_lock);
    return rc;
}

// --------------------------------------------------------------------------
//  Refusals and the path of the field at hand.

typedef struct {
    linli_codec_error_t *err; //  borrowed: where a refusal is described
    size_t len;               //  strlen(path)
    char path[256];           //  dotted path of the field at hand: "grants[1].scope"
} s_ctx_t;

//  Start a conversion that reports into err (borrowed), at the top-level path.
static void
s_ctx_init(s_ctx_t *ctx, linli_codec_error_t *err)
{
    memset(err, 0, sizeof *err);
    ctx->err = err;
    ctx->len = 0;
    ctx->path[0] = '\0';
}

static int s_fail_raw(s_ctx_t *ctx, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_fail(s_ctx_t *ctx, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

//  Copy src into dst, cut to fit.
static void
s_copy(char *dst, size_t cap, const char *src)
{
    size_t len = strnlen(src, cap - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

//  Describe the refusal of the field at hand with a message of our own; -1.
static int
s_fail_raw(s_ctx_t *ctx, int status, const char *code, const char *fmt, ...)
{
    linli_codec_error_t *err = ctx->err;
    err->status = status;
    s_copy(err->code, sizeof err->code, code);
    s_copy(err->field, sizeof err->field, ctx->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

//  Refuse the field at hand (400): "field '<path>' " + what is wrong; -1.
static int
s_fail(s_ctx_t *ctx, const char *code, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return s_fail_raw(ctx, 400, code, "field '%s' %s", ctx->path, what);
}

//  Memory ran out: 500, not the client's fault; -1.
static int
s_oom(s_ctx_t *ctx)
{
    return s_fail_raw(ctx, 500, "internal", "out of memory");
}

//  Append ".name" (or "name" at the top) to the path; returns what to pop to.
static size_t
s_path_field(s_ctx_t *ctx, const char *name)
{
    size_t saved = ctx->len;
    int n = snprintf(ctx->path + ctx->len, sizeof ctx->path - ctx->len, "%s%s", ctx->len ? "." : "",
                     name);
    if (n > 0)
        ctx->len +=
            (size_t)n < sizeof ctx->path - ctx->len ? (size_t)n : sizeof ctx->path - 1 - ctx->len;
    return saved;
}

//  Append "[i]" to the path; returns what to pop to.
static size_t
s_path_index(s_ctx_t *ctx, size_t i)
{
    size_t saved = ctx->len;
    int n = snprintf(ctx->path + ctx->len, sizeof ctx->path - ctx->len, "[%zu]", i);
    if (n > 0)
        ctx->len +=
            (size_t)n < sizeof ctx->path - ctx->len ? (size_t)n : sizeof ctx->path - 1 - ctx->len;
    return saved;
}

//  Cut the path back to what s_path_field or s_path_index returned.
static void
s_path_pop(s_ctx_t *ctx, size_t saved)
{
    ctx->len = saved;
    ctx->path[saved] = '\0';
}

// --------------------------------------------------------------------------
//  Small helpers.

//  True if s is one or more ASCII digits and nothing else.
static bool
s_all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

//  True if s is one of the '|'-separated values in list.
static bool
s_one_of(const char *list, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = list;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !memcmp(p, s, n))
            return true;
        if (!bar)
            return false;
        p = bar + 1;
    }
}

//  Refuse a value not in list, showing the allowed values; -1.
static int
s_fail_one_of(s_ctx_t *ctx, const char *list)
{
    char shown[180];
    size_t o = 0;
    for (const char *p = list; *p && o + 3 < sizeof shown; p++) {
        if (*p == '|') {
            shown[o++] = ',';
            shown[o++] = ' ';
        } else
            shown[o++] = *p;
    }
    shown[o] = '\0';
    return s_fail(ctx, "invalid_value", "must be one of: %s", shown);
}

//  Refuse an enum value that has no name, showing the names; -1.
static int
s_fail_enum(s_ctx_t *ctx, const ProtobufCEnumDescriptor *ed)
{
    char shown[180] = "";
    size_t o = 0;
    for (unsigned i = 0; i < ed->n_values && o < sizeof shown; i++) {
        int n = snprintf(shown + o, sizeof shown - o, "%s%s", i ? ", " : "", ed->values[i].name);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return s_fail(ctx, "invalid_value", "must be one of: %s", shown);
}

//  Fields of a signed 64-bit type whose name ends in "_at" are times.
static bool
s_is_time(const ProtobufCFieldDescriptor *fd)
{
    if (fd->type != PROTOBUF_C_TYPE_INT64 && fd->type != PROTOBUF_C_TYPE_SINT64 &&
        fd->type != PROTOBUF_C_TYPE_SFIXED64)
        return false;
    size_t len = strlen(fd->name);
    return len >= 3 && !strcmp(fd->name + len - 3, "_at");
}

//  Bytes one item of a repeated field of this type takes in its array.
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
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 8;
}

//  Is a singular field set? Mirrors what protobuf-c packs: a string or message
//  still pointing at its default is not set.
static bool
s_is_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
    const char *base = (const char *)msg;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + fd->quantifier_offset) == fd->id;
    if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        const void *p = *(const void *const *)(base + fd->offset);
        return p && (fd->label == PROTOBUF_C_LABEL_REQUIRED || p != fd->default_value);
    }
    if (fd->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)(base + fd->quantifier_offset);
    return true; //  required and proto3 scalars are always there
}

//  Record that a singular field now holds a value: its has_ flag or oneof case.
static void
s_mark_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
    char *base = (char *)msg;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(base + fd->quantifier_offset) = fd->id;
    else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->type != PROTOBUF_C_TYPE_STRING &&
             fd->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)(base + fd->quantifier_offset) = 1;
}

//  A new, initialised message; caller owns (protobuf_c_message_free_unpacked).
static ProtobufCMessage *
s_new_message(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = malloc(desc->sizeof_message);
    if (m)
        protobuf_c_message_init(desc, m);
    return m;
}

// --------------------------------------------------------------------------
//  Constraints on one value, shared by from_json and validate.

//  Refuse a value outside lo..hi (a type's or a constraint's range); -1.
static int
s_fail_signed_range(s_ctx_t *ctx, int64_t lo, int64_t hi)
{
    return s_fail(ctx, "out_of_range", "must be between %" PRId64 " and %" PRId64, lo, hi);
}

//  Refuse an integer outside its unsigned type's range; -1.
static int
s_fail_unsigned_range(s_ctx_t *ctx, uint64_t hi)
{
    return s_fail(ctx, "out_of_range", "must be between 0 and %" PRIu64, hi);
}

//  Range and one_of of a signed integer (c may be NULL).
static int
s_check_signed(s_ctx_t *ctx, const linli_constraint_t *c, int64_t v)
{
    if (!c)
        return 0;
    if ((c->min || c->max) && (v < c->min || v > c->max))
        return s_fail_signed_range(ctx, c->min, c->max);
    if (c->one_of) {
        char text[24];
        snprintf(text, sizeof text, "%" PRId64, v);
        if (!s_one_of(c->one_of, text))
            return s_fail_one_of(ctx, c->one_of);
    }
    return 0;
}

//  Range and one_of of an unsigned integer, against the table's int64 bounds.
static int
s_check_unsigned(s_ctx_t *ctx, const linli_constraint_t *c, uint64_t v)
{
    if (!c)
        return 0;
    if (c->min || c->max) {
        bool below = c->min > 0 && v < (uint64_t)c->min;
        bool above = c->max < 0 || v > (uint64_t)c->max;
        if (below || above)
            return s_fail_signed_range(ctx, c->min, c->max);
    }
    if (c->one_of) {
        char text[24];
        snprintf(text, sizeof text, "%" PRIu64, v);
        if (!s_one_of(c->one_of, text))
            return s_fail_one_of(ctx, c->one_of);
    }
    return 0;
}

//  Range of a float or double.
static int
s_check_double(s_ctx_t *ctx, const linli_constraint_t *c, double v)
{
    //  written so that NaN is out of every range
    if (c && (c->min || c->max) && !(v >= (double)c->min && v <= (double)c->max))
        return s_fail_signed_range(ctx, c->min, c->max);
    return 0;
}

//  An enum value must have a name; one_of restricts the names.
static int
s_check_enum(s_ctx_t *ctx, const ProtobufCEnumDescriptor *ed, const linli_constraint_t *c,
             int32_t v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
    if (!ev)
        return s_fail_enum(ctx, ed);
    if (c && c->one_of && !s_one_of(c->one_of, ev->name))
        return s_fail_one_of(ctx, c->one_of);
    return 0;
}

//  A string's encoding, length, pattern and allowed values. For an item of a
//  repeated field, min_len/max_len count items, so only the default cap applies.
static int
s_check_string(s_ctx_t *ctx, const s_rule_t *rule, const char *s, bool item)
{
    const linli_constraint_t *c = rule ? rule->c : NULL;
    size_t chars;
    if (linli_utf8_count(s, strlen(s), &chars))
        return s_fail(ctx, "invalid_format", "must be valid UTF-8 text");
    size_t max = c && !item && c->max_len ? c->max_len : LINLI_CODEC_DEFAULT_MAX_LEN;
    size_t min = c && !item ? c->min_len : 0;
    if (chars > max)
        return s_fail(ctx, "too_long", "must be at most %zu character%s", max, max == 1 ? "" : "s");
    if (chars < min)
        return s_fail(ctx, "too_short", "must be at least %zu character%s", min,
                      min == 1 ? "" : "s");
    if (!c)
        return 0;
    if (rule->re_broken || (rule->has_re && regexec(&rule->re, s, 0, NULL, 0) != 0))
        return s_fail(ctx, "invalid_format", "must match the pattern %s", c->pattern);
    if (c->one_of && !s_one_of(c->one_of, s))
        return s_fail_one_of(ctx, c->one_of);
    return 0;
}

//  Length of a bytes field, in bytes; only limits the table sets.
static int
s_check_bytes(s_ctx_t *ctx, const linli_constraint_t *c, const ProtobufCBinaryData *b, bool item)
{
    if (!c || item)
        return 0;
    if (c->max_len && b->len > c->max_len)
        return s_fail(ctx, "too_long", "must be at most %zu byte%s", c->max_len,
                      c->max_len == 1 ? "" : "s");
    if (b->len < c->min_len)
        return s_fail(ctx, "too_short", "must be at least %zu byte%s", c->min_len,
                      c->min_len == 1 ? "" : "s");
    return 0;
}

//  Item count of a repeated field.
static int
s_check_count(s_ctx_t *ctx, const s_rule_t *rule, size_t n)
{
    const linli_constraint_t *c = rule ? rule->c : NULL;
    size_t max = c && c->max_len ? c->max_len : LINLI_CODEC_DEFAULT_MAX_ITEMS;
    if (n > max)
        return s_fail(ctx, "too_many", "must have at most %zu item%s", max, max == 1 ? "" : "s");
    if (c && n < c->min_len)
        return s_fail(ctx, "too_short", "must have at least %zu item%s", c->min_len,
                      c->min_len == 1 ? "" : "s");
    return 0;
}

//  Every constraint on one stored scalar value (slot points at it).
static int
s_check_value(s_ctx_t *ctx, const ProtobufCFieldDescriptor *fd, const s_rule_t *rule,
              const void *slot, bool item)
{
    const linli_constraint_t *c = rule ? rule->c : NULL;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return s_check_signed(ctx, c, *(const int32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return s_check_signed(ctx, c, *(const int64_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return s_check_unsigned(ctx, c, *(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return s_check_unsigned(ctx, c, *(const uint64_t *)slot);
    case PROTOBUF_C_TYPE_FLOAT:
        return s_check_double(ctx, c, *(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return s_check_double(ctx, c, *(const double *)slot);
    case PROTOBUF_C_TYPE_ENUM:
        return s_check_enum(ctx, fd->descriptor, c, *(const int32_t *)slot);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)slot;
        return s ? s_check_string(ctx, rule, s, item) : 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return s_check_bytes(ctx, c, (const ProtobufCBinaryData *)slot, item);
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 0;
    }
    return 0;
}

// --------------------------------------------------------------------------
//  One scalar from JSON (j) or from a URL parameter (text, when not NULL).

//  An integer from lo to hi. JSON strings are taken as decimal when
//  strings_ok; a JSON real is an out-of-range whole number or not an integer.
static int
s_get_signed(s_ctx_t *ctx, const json_t *j, const char *text, bool strings_ok, int64_t lo,
             int64_t hi, int64_t *out)
{
    if (!text && strings_ok && json_is_string(j))
        text = json_string_value(j);
    if (text) {
        if (!s_all_digits(text + (*text == '-')))
            return s_fail(ctx, "invalid_type", "must be an integer");
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == ERANGE || v < lo || v > hi)
            return s_fail_signed_range(ctx, lo, hi);
        *out = v;
        return 0;
    }
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v < lo || v > hi)
            return s_fail_signed_range(ctx, lo, hi);
        *out = v;
        return 0;
    }
    if (json_is_real(j)) {
        //  jansson reads integers too big for 64 bits as reals (1e30)
        double d = json_real_value(j);
        if (d == floor(d) && (d < (double)lo || d > (double)hi))
            return s_fail_signed_range(ctx, lo, hi);
    }
    return s_fail(ctx, "invalid_type", "must be an integer");
}

//  An integer from 0 to hi; as s_get_signed.
static int
s_get_unsigned(s_ctx_t *ctx, const json_t *j, const char *text, bool strings_ok, uint64_t hi,
               uint64_t *out)
{
    if (!text && strings_ok && json_is_string(j))
        text = json_string_value(j);
    if (text) {
        bool negative = *text == '-';
        if (!s_all_digits(text + negative))
            return s_fail(ctx, "invalid_type", "must be an integer");
        errno = 0;
        unsigned long long v = negative ? 0 : strtoull(text, NULL, 10);
        if (negative || errno == ERANGE || v > hi)
            return s_fail_unsigned_range(ctx, hi);
        *out = v;
        return 0;
    }
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v < 0 || (uint64_t)v > hi)
            return s_fail_unsigned_range(ctx, hi);
        *out = (uint64_t)v;
        return 0;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (d == floor(d) && (d < 0 || d > (double)hi))
            return s_fail_unsigned_range(ctx, hi);
    }
    return s_fail(ctx, "invalid_type", "must be an integer");
}

//  A number for a float or double field: any JSON number, or a decimal parameter.
static int
s_get_double(s_ctx_t *ctx, const json_t *j, const char *text, double *out)
{
    if (!text) {
        if (!json_is_number(j))
            return s_fail(ctx, "invalid_type", "must be a number");
        *out = json_number_value(j);
        return 0;
    }
    //  strtod alone would take "nan", "inf", hex and leading blanks
    bool digit = false;
    for (const char *p = text; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digit = true;
        else if (!strchr("+-.eE", *p))
            return s_fail(ctx, "invalid_type", "must be a number");
    }
    char *end;
    errno = 0;
    double d = digit ? strtod(text, &end) : 0;
    if (!digit || *end)
        return s_fail(ctx, "invalid_type", "must be a number");
    if (errno == ERANGE && fabs(d) > 1.0)
        return s_fail(ctx, "out_of_range", "is too large a number");
    *out = d;
    return 0;
}

//  true or false: JSON booleans, or the parameters "true" and "false".
static int
s_get_bool(s_ctx_t *ctx, const json_t *j, const char *text, protobuf_c_boolean *out)
{
    if (text && (!strcmp(text, "true") || !strcmp(text, "false")))
        *out = !strcmp(text, "true");
    else if (!text && json_is_boolean(j))
        *out = json_is_true(j);
    else
        return s_fail(ctx, "invalid_type", "must be true or false");
    return 0;
}

//  An enum value by name, or by number.
static int
s_get_enum(s_ctx_t *ctx, const ProtobufCEnumDescriptor *ed, const json_t *j, const char *text,
           int32_t *out)
{
    const ProtobufCEnumValue *ev = NULL;
    const char *name = text ? text : json_string_value(j);
    if (name) {
        ev = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
        if (!ev && text && s_all_digits(text + (*text == '-'))) {
            errno = 0;
            long long v = strtoll(text, NULL, 10);
            if (errno == 0 && v >= INT32_MIN && v <= INT32_MAX)
                ev = protobuf_c_enum_descriptor_get_value(ed, (int)v);
        }
    } else if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v >= INT32_MIN && v <= INT32_MAX)
            ev = protobuf_c_enum_descriptor_get_value(ed, (int)v);
    } else
        return s_fail(ctx, "invalid_type", "must be a string naming one of the values");
    if (!ev)
        return s_fail_enum(ctx, ed);
    *out = ev->value;
    return 0;
}

//  A copy of the string (text or JSON); its encoding is checked after, with
//  the other constraints.
static int
s_get_string(s_ctx_t *ctx, const json_t *j, const char *text, char **out)
{
    const char *s = text ? text : json_string_value(j);
    if (!s)
        return s_fail(ctx, "invalid_type", "must be a string");
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (!copy)
        return s_oom(ctx);
    memcpy(copy, s, len + 1);
    *out = copy;
    return 0;
}

//  Bytes from standard padded base64; out->data is malloc'd (NULL when empty).
static int
s_get_bytes(s_ctx_t *ctx, const json_t *j, const char *text, ProtobufCBinaryData *out)
{
    const char *s = text ? text : json_string_value(j);
    if (!s)
        return s_fail(ctx, "invalid_type", "must be a base64 string");
    size_t len = strlen(s);
    size_t cap = len / 4 * 3 + 3;
    unsigned char *data = malloc(cap);
    size_t n = 0;
    if (!data)
        return s_oom(ctx);
    if (sodium_base642bin(data, cap, s, len, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL)) {
        free(data);
        return s_fail(ctx, "invalid_format", "must be base64 (standard alphabet, padded)");
    }
    if (n == 0) {
        free(data);
        data = NULL;
    }
    out->data = data;
    out->len = n;
    return 0;
}

//  A time field: an RFC 3339 string, stored as Unix milliseconds.
static int
s_get_time(s_ctx_t *ctx, const json_t *j, const char *text, int64_t *out)
{
    const char *s = text ? text : json_string_value(j);
    if (!s)
        return s_fail(ctx, "invalid_type", "must be an RFC 3339 time string");
    if (linli_codec_parse_time(s, out))
        return s_fail(ctx, "invalid_format",
                      "must be an RFC 3339 time such as \"2026-11-23T04:12:51Z\"");
    return 0;
}

//  Convert one scalar into slot (the field, or an item of its array). Writes
//  slot only on success; a string or bytes written belongs to the slot.
static int
s_scalar(s_ctx_t *ctx, const ProtobufCFieldDescriptor *fd, const json_t *j, const char *text,
         void *slot)
{
    int64_t i;
    uint64_t u;
    double d;
    if (!text && json_is_string(j) && strlen(json_string_value(j)) != json_string_length(j))
        return s_fail(ctx, "invalid_format", "must not contain NUL characters");
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (s_get_signed(ctx, j, text, false, INT32_MIN, INT32_MAX, &i))
            return -1;
        *(int32_t *)slot = (int32_t)i;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (s_get_unsigned(ctx, j, text, false, UINT32_MAX, &u))
            return -1;
        *(uint32_t *)slot = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (s_is_time(fd))
            return s_get_time(ctx, j, text, (int64_t *)slot);
        return s_get_signed(ctx, j, text, true, INT64_MIN, INT64_MAX, (int64_t *)slot);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return s_get_unsigned(ctx, j, text, true, UINT64_MAX, (uint64_t *)slot);
    case PROTOBUF_C_TYPE_FLOAT:
        if (s_get_double(ctx, j, text, &d))
            return -1;
        if (fabs(d) > FLT_MAX)
            return s_fail(ctx, "out_of_range", "must be within the range of a float");
        *(float *)slot = (float)d;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return s_get_double(ctx, j, text, (double *)slot);
    case PROTOBUF_C_TYPE_BOOL:
        return s_get_bool(ctx, j, text, (protobuf_c_boolean *)slot);
    case PROTOBUF_C_TYPE_ENUM:
        return s_get_enum(ctx, fd->descriptor, j, text, (int32_t *)slot);
    case PROTOBUF_C_TYPE_STRING:
        return s_get_string(ctx, j, text, (char **)slot);
    case PROTOBUF_C_TYPE_BYTES:
        return s_get_bytes(ctx, j, text, (ProtobufCBinaryData *)slot);
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    return s_fail(ctx, "invalid_type", "has a type the codec does not convert");
}

// --------------------------------------------------------------------------
//  JSON -> message.

static int s_fill(s_ctx_t *ctx, ProtobufCMessage *msg, const json_t *body, const json_t *params,
                  int depth);

//  A new message for a field of msg (at depth) from the JSON object j, stored
//  in *slot before it is filled so that the parent frees it on error.
static int
s_set_message(s_ctx_t *ctx, const ProtobufCFieldDescriptor *fd, const json_t *j,
              ProtobufCMessage **slot, int depth)
{
    if (!json_is_object(j))
        return s_fail(ctx, "invalid_type", "must be an object");
    if (depth + 1 > LINLI_CODEC_MAX_DEPTH)
        return s_fail(ctx, "too_deep", "nests messages more than %d levels deep",
                      LINLI_CODEC_MAX_DEPTH);
    ProtobufCMessage *sub = s_new_message(fd->descriptor);
    if (!sub)
        return s_oom(ctx);
    *slot = sub;
    return s_fill(ctx, sub, j, NULL, depth + 1);
}

//  A repeated field from a JSON array, or from a comma-separated parameter.
static int
s_set_repeated(s_ctx_t *ctx, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd,
               const s_rule_t *rule, const json_t *j, const char *text, int depth)
{
    size_t n = 0;
    if (text) {
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
            return s_fail(ctx, "invalid_type", "cannot be given as a URL parameter");
        n = *text ? 1 : 0; //  "" is no items, "a,,b" three
        for (const char *p = text; *p; p++)
            n += *p == ',';
    } else {
        if (!json_is_array(j))
            return s_fail(ctx, "invalid_type", "must be an array");
        n = json_array_size(j);
    }
    //  before allocating anything: a hostile array stops here
    if (s_check_count(ctx, rule, n))
        return -1;
    if (n == 0)
        return 0;
    size_t size = s_item_size(fd->type);
    char *items = calloc(n, size);
    if (!items)
        return s_oom(ctx);
    //  zeroed items are safe to free: NULL strings, bytes and messages
    *(void **)((char *)msg + fd->offset) = items;
    *(size_t *)((char *)msg + fd->quantifier_offset) = n;

    char *scratch = text ? strdup(text) : NULL;
    if (text && !scratch)
        return s_oom(ctx);
    char *next = scratch;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t saved = s_path_index(ctx, i);
        void *slot = items + i * size;
        if (scratch) {
            char *item = next;
            char *comma = strchr(next, ',');
            if (comma) {
                *comma = '\0';
                next = comma + 1;
            }
            rc = s_scalar(ctx, fd, NULL, item, slot);
        } else if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
            rc = s_set_message(ctx, fd, json_array_get(j, i), (ProtobufCMessage **)slot, depth);
        else
            rc = s_scalar(ctx, fd, json_array_get(j, i), NULL, slot);
        if (!rc && fd->type != PROTOBUF_C_TYPE_MESSAGE)
            rc = s_check_value(ctx, fd, rule, slot, true);
        if (!rc)
            s_path_pop(ctx, saved);
    }
    free(scratch);
    return rc;
}

//  One field of msg (at depth) from a JSON value that is not null, or from
//  text (a URL parameter).
static int
s_set_field(s_ctx_t *ctx, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd,
            const json_t *j, const char *text, int depth)
{
    const s_rule_t *rule = s_rule_find(msg->descriptor, fd);
    if (fd->label == PROTOBUF_C_LABEL_REPEATED)
        return s_set_repeated(ctx, msg, fd, rule, j, text, depth);
    char *base = (char *)msg;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t set = *(uint32_t *)(base + fd->quantifier_offset);
        if (set && set != fd->id) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(msg->descriptor, set);
            return s_fail(ctx, "invalid_value", "cannot be set together with '%s'",
                          other ? other->name : "another field");
        }
    }
    void *slot = base + fd->offset;
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (text)
            return s_fail(ctx, "invalid_type", "cannot be given as a URL parameter");
        //  mark first: the oneof case must say what the union holds before it
        //  holds anything the parent will have to free
        if (!json_is_object(j))
            return s_fail(ctx, "invalid_type", "must be an object");
        s_mark_present(msg, fd);
        *(ProtobufCMessage **)slot = NULL;
        return s_set_message(ctx, fd, j, (ProtobufCMessage **)slot, depth);
    }
    if (s_scalar(ctx, fd, j, text, slot))
        return -1;
    s_mark_present(msg, fd);
    return s_check_value(ctx, fd, rule, slot, false);
}

//  Fill msg (at depth; the top level is 1) from a JSON object body and, at the
//  top level, URL params; then look for missing required fields.
static int
s_fill(s_ctx_t *ctx, ProtobufCMessage *msg, const json_t *body, const json_t *params, int depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    bool *seen = calloc(desc->n_fields + 1, sizeof *seen);
    if (!seen)
        return s_oom(ctx);
    int rc = 0;
    json_t *obj = (json_t *)body; //  jansson's iterators take no const
    for (void *it = obj ? json_object_iter(obj) : NULL; it && !rc;
         it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        const json_t *value = json_object_iter_value(it);
        size_t saved = s_path_field(ctx, key);
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field_by_name(desc, key);
        if (!fd)
            rc = s_fail_raw(ctx, 400, "unknown_field", "unknown field '%s'", ctx->path);
        else if (!json_is_null(value)) {
            seen[fd - desc->fields] = true;
            rc = s_set_field(ctx, msg, fd, value, NULL, depth);
        }
        if (!rc)
            s_path_pop(ctx, saved);
    }
    obj = (json_t *)params;
    for (void *it = obj ? json_object_iter(obj) : NULL; it && !rc;
         it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        const json_t *value = json_object_iter_value(it);
        size_t saved = s_path_field(ctx, key);
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field_by_name(desc, key);
        size_t chars;
        if (!fd)
            rc = s_fail_raw(ctx, 400, "unknown_field", "unknown parameter '%s'", ctx->path);
        else if (!json_is_string(value))
            rc = s_fail(ctx, "invalid_type", "must be given as a string parameter");
        else if (body && json_object_get(body, key))
            rc = s_fail(ctx, "invalid_value", "is given both in the URL and in the body");
        else if (memchr(json_string_value(value), '\0', json_string_length(value)) ||
                 linli_utf8_count(json_string_value(value), json_string_length(value), &chars))
            rc = s_fail(ctx, "invalid_format", "must be valid UTF-8 text without NUL characters");
        else {
            seen[fd - desc->fields] = true;
            rc = s_set_field(ctx, msg, fd, NULL, json_string_value(value), depth);
        }
        if (!rc)
            s_path_pop(ctx, saved);
    }
    for (unsigned f = 0; f < desc->n_fields && !rc; f++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[f];
        if (seen[f])
            continue;
        if (fd->label == PROTOBUF_C_LABEL_REQUIRED) {
            s_path_field(ctx, fd->name);
            rc = s_fail(ctx, "missing_field", "is required");
        } else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            //  an absent list has no items: a min_len still applies
            const s_rule_t *rule = s_rule_find(desc, fd);
            if (rule && rule->c->min_len) {
                size_t saved = s_path_field(ctx, fd->name);
                rc = s_check_count(ctx, rule, 0);
                if (!rc)
                    s_path_pop(ctx, saved);
            }
        }
    }
    free(seen);
    return rc;
}

ProtobufCMessage *
linli_codec_from_json(const ProtobufCMessageDescriptor *desc, const json_t *body,
                      const json_t *params, linli_codec_error_t *err)
{
    linli_codec_error_t ignored;
    s_ctx_t ctx;
    s_ctx_init(&ctx, err ? err : &ignored);
    if (body && !json_is_object(body)) {
        s_fail_raw(&ctx, 400, "invalid_type", "the request body must be a JSON object");
        return NULL;
    }
    if (params && !json_is_object(params)) {
        s_fail_raw(&ctx, 400, "invalid_type", "the URL parameters must be a JSON object");
        return NULL;
    }
    ProtobufCMessage *msg = s_new_message(desc);
    if (!msg || s_rules_acquire()) {
        free(msg);
        s_oom(&ctx);
        return NULL;
    }
    int rc = s_fill(&ctx, msg, body, params, 1);
    s_rules_release();
    if (rc) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return NULL;
    }
    return msg;
}

// --------------------------------------------------------------------------
//  Validation of a message from the wire.

//  Check every field of msg (at depth; the top level is 1), depth first.
static int
s_check_message(s_ctx_t *ctx, const ProtobufCMessage *msg, int depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[f];
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !s_is_present(msg, fd))
            continue;
        size_t saved = s_path_field(ctx, fd->name);
        const s_rule_t *rule = s_rule_find(desc, fd);
        const void *slot = base + fd->offset;
        int rc = 0;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            const char *items = *(const char *const *)slot;
            size_t size = s_item_size(fd->type);
            rc = s_check_count(ctx, rule, n);
            for (size_t i = 0; i < n && items && !rc; i++) {
                size_t at = s_path_index(ctx, i);
                const void *item = items + i * size;
                if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
                    rc = s_check_value(ctx, fd, rule, item, true);
                else if (!*(const ProtobufCMessage *const *)item)
                    rc = s_fail(ctx, "missing_field", "is required");
                else if (depth + 1 > LINLI_CODEC_MAX_DEPTH)
                    rc = s_fail(ctx, "too_deep", "nests messages more than %d levels deep",
                                LINLI_CODEC_MAX_DEPTH);
                else
                    rc = s_check_message(ctx, *(const ProtobufCMessage *const *)item, depth + 1);
                if (!rc)
                    s_path_pop(ctx, at);
            }
        } else if (s_is_present(msg, fd)) {
            if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
                rc = s_check_value(ctx, fd, rule, slot, false);
            else if (!*(const ProtobufCMessage *const *)slot)
                rc = s_fail(ctx, "missing_field", "is required"); //  a oneof case with no message
            else if (depth + 1 > LINLI_CODEC_MAX_DEPTH)
                rc = s_fail(ctx, "too_deep", "nests messages more than %d levels deep",
                            LINLI_CODEC_MAX_DEPTH);
            else
                rc = s_check_message(ctx, *(const ProtobufCMessage *const *)slot, depth + 1);
        } else if (fd->label == PROTOBUF_C_LABEL_REQUIRED)
            rc = s_fail(ctx, "missing_field", "is required");
        if (rc)
            return -1;
        s_path_pop(ctx, saved);
    }
    return 0;
}

int
linli_codec_validate(const ProtobufCMessage *msg, linli_codec_error_t *err)
{
    linli_codec_error_t ignored;
    s_ctx_t ctx;
    s_ctx_init(&ctx, err ? err : &ignored);
    if (!msg)
        return s_fail_raw(&ctx, 400, "invalid_type", "no message to validate");
    if (s_rules_acquire())
        return s_oom(&ctx);
    int rc = s_check_message(&ctx, msg, 1);
    s_rules_release();
    return rc;
}

// --------------------------------------------------------------------------
//  Message -> JSON.

static json_t *s_message_json(const ProtobufCMessage *msg, int depth);

//  Format ms as RFC 3339; -1 outside years 0000-9999.
static int
s_format_time(int64_t ms, char *out, size_t cap)
{
    int64_t secs = ms / 1000;
    int64_t rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        secs--;
    }
    if (secs < S_MIN_SECS || secs > S_MAX_SECS)
        return -1;
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return -1;
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
    return 0;
}

//  Bytes as a base64 JSON string; NULL when memory runs out.
static json_t *
s_bytes_json(const ProtobufCBinaryData *b)
{
    size_t cap = sodium_base64_encoded_len(b->len, sodium_base64_VARIANT_ORIGINAL);
    char *text = malloc(cap);
    if (!text)
        return NULL;
    sodium_bin2base64(text, cap, b->len ? b->data : (const unsigned char *)"", b->len,
                      sodium_base64_VARIANT_ORIGINAL);
    json_t *j = json_string(text);
    free(text);
    return j;
}

//  One value (the field, or one item of it) as JSON; NULL on failure.
static json_t *
s_value_json(const ProtobufCFieldDescriptor *fd, const void *slot, int depth)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v = *(const int64_t *)slot;
        char text[40];
        if (s_is_time(fd) && s_format_time(v, text, sizeof text) == 0)
            return json_string(text);
        return json_integer(v);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)slot;
        if (v <= INT64_MAX)
            return json_integer((json_int_t)v);
        char text[24];
        snprintf(text, sizeof text, "%" PRIu64, v);
        return json_string(text);
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float v = *(const float *)slot;
        return isfinite(v) ? json_real(v) : json_null();
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = *(const double *)slot;
        return isfinite(v) ? json_real(v) : json_null();
    }
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)slot);
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)slot;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)slot;
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES:
        return s_bytes_json((const ProtobufCBinaryData *)slot);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)slot;
        return sub ? s_message_json(sub, depth + 1) : json_object();
    }
    }
    return NULL;
}

//  msg (at depth) as a JSON object; caller owns; NULL on failure.
static json_t *
s_message_json(const ProtobufCMessage *msg, int depth)
{
    if (depth > S_MAX_RENDER_DEPTH)
        return NULL;
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *base = (const char *)msg;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[f];
        json_t *value;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            const char *items = *(const char *const *)(base + fd->offset);
            size_t size = s_item_size(fd->type);
            value = json_array();
            for (size_t i = 0; i < n && items && value; i++)
                if (json_array_append_new(value, s_value_json(fd, items + i * size, depth))) {
                    json_decref(value);
                    value = NULL;
                }
        } else if (s_is_present(msg, fd))
            value = s_value_json(fd, base + fd->offset, depth);
        else
            continue;
        //  jansson takes value even when this fails
        if (json_object_set_new(obj, fd->name, value)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *
linli_codec_to_json(const ProtobufCMessage *msg)
{
    return msg ? s_message_json(msg, 1) : NULL;
}

// --------------------------------------------------------------------------
//  Message -> JSON text, written straight out: the bytes json_dumps gives for
//  linli_codec_to_json's tree (JSON_COMPACT | JSON_REAL_PRECISION(10)),
//  without a json_t per field on the way.

//  A growing output buffer; data NULL once memory ran out.
typedef struct {
    char *data; //  owned
    size_t len; //  bytes written
    size_t cap; //  bytes allocated
} s_text_t;

//  Make room for n more bytes. 0 or -1 (out of memory; data freed).
static int
s_text_reserve(s_text_t *t, size_t n)
{
    if (!t->data)
        return -1;
    if (t->cap - t->len >= n)
        return 0;
    size_t cap = t->cap * 2 > t->len + n ? t->cap * 2 : t->len + n;
    char *data = realloc(t->data, cap);
    if (!data) {
        free(t->data);
        t->data = NULL;
        return -1;
    }
    t->data = data;
    t->cap = cap;
    return 0;
}

static int
s_text_put(s_text_t *t, const char *s, size_t n)
{
    if (s_text_reserve(t, n))
        return -1;
    memcpy(t->data + t->len, s, n);
    t->len += n;
    return 0;
}

//  A decimal integer, as "%lld" writes it.
static int
s_text_int(s_text_t *t, int64_t v)
{
    char digits[24];
    size_t i = sizeof digits;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        digits[--i] = '-';
    return s_text_put(t, digits + i, sizeof digits - i);
}

//  s as a JSON string, escaped as jansson escapes it; -1 when s is not UTF-8.
static int
s_text_string(s_text_t *t, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    //  Worst case every byte becomes \u00XX.
    if (s_text_reserve(t, n * 6 + 2))
        return -1;
    char *out = t->data + t->len;
    *out++ = '"';
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = linli_utf8_seq(p + i, n - i, &cp);
        if (!len)
            return -1;
        if (cp == '"' || cp == '\\') {
            *out++ = '\\';
            *out++ = (char)cp;
        } else if (cp < 0x20) {
            *out++ = '\\';
            switch (cp) {
            case '\b':
                *out++ = 'b';
                break;
            case '\f':
                *out++ = 'f';
                break;
            case '\n':
                *out++ = 'n';
                break;
            case '\r':
                *out++ = 'r';
                break;
            case '\t':
                *out++ = 't';
                break;
            default:
                memcpy(out, "u00", 3);
                out += 3;
                *out++ = hex[cp >> 4];
                *out++ = hex[cp & 15];
            }
        } else {
            memcpy(out, p + i, len);
            out += len;
        }
        i += len;
    }
    *out++ = '"';
    t->len = (size_t)(out - t->data);
    return 0;
}

//  A value rendered through jansson (the rare types: floats, bytes), consumed.
static int
s_text_json(s_text_t *t, json_t *value)
{
    char *text =
        value ? json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(value);
    int rc = text ? s_text_put(t, text, strlen(text)) : -1;
    free(text);
    return rc;
}

static int s_message_text(s_text_t *t, const ProtobufCMessage *msg, int depth);

//  One value (the field, or one item of it), as s_value_json renders it.
static int
s_value_text(s_text_t *t, const ProtobufCFieldDescriptor *fd, const void *slot, int depth)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return s_text_int(t, *(const int32_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return s_text_int(t, *(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v = *(const int64_t *)slot;
        char text[40];
        if (s_is_time(fd) && s_format_time(v, text, sizeof text) == 0)
            return s_text_string(t, text);
        return s_text_int(t, v);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)slot;
        if (v <= INT64_MAX)
            return s_text_int(t, (int64_t)v);
        char text[24];
        snprintf(text, sizeof text, "%" PRIu64, v);
        return s_text_string(t, text);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)slot ? s_text_put(t, "true", 4)
                                                 : s_text_put(t, "false", 5);
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)slot;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
        return ev ? s_text_string(t, ev->name) : s_text_int(t, v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *str = *(const char *const *)slot;
        return s_text_string(t, str ? str : "");
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)slot;
        return sub ? s_message_text(t, sub, depth + 1) : s_text_put(t, "{}", 2);
    }
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_BYTES:
        return s_text_json(t, s_value_json(fd, slot, depth));
    }
    return -1;
}

//  msg (at depth) as a JSON object, fields in descriptor order.
static int
s_message_text(s_text_t *t, const ProtobufCMessage *msg, int depth)
{
    if (depth > S_MAX_RENDER_DEPTH)
        return -1;
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *base = (const char *)msg;
    bool first = true;
    if (s_text_put(t, "{", 1))
        return -1;
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[f];
        bool repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
        if (!repeated && !s_is_present(msg, fd))
            continue;
        if ((!first && s_text_put(t, ",", 1)) || s_text_string(t, fd->name) ||
            s_text_put(t, ":", 1))
            return -1;
        first = false;
        if (!repeated) {
            if (s_value_text(t, fd, base + fd->offset, depth))
                return -1;
            continue;
        }
        size_t n = *(const size_t *)(base + fd->quantifier_offset);
        const char *items = *(const char *const *)(base + fd->offset);
        size_t size = s_item_size(fd->type);
        if (s_text_put(t, "[", 1))
            return -1;
        for (size_t i = 0; i < n && items; i++)
            if ((i && s_text_put(t, ",", 1)) || s_value_text(t, fd, items + i * size, depth))
                return -1;
        if (s_text_put(t, "]", 1))
            return -1;
    }
    return s_text_put(t, "}", 1);
}

char *
linli_codec_to_json_text(const ProtobufCMessage *msg, size_t *len)
{
    s_text_t t = {malloc(1024), 0, 1024};
    if (!msg || s_message_text(&t, msg, 1) || s_text_put(&t, "", 1)) {
        free(t.data);
        return NULL;
    }
    if (len)
        *len = t.len - 1;
    return t.data;
}

// --------------------------------------------------------------------------
//  Times.

void
linli_codec_format_time(int64_t ms, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    if (s_format_time(ms, out, cap))
        out[0] = '\0';
}

//  n digits at p as a number; -1 if any is not a digit (the NUL included).
static int
s_digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

//  Days in month (1-12) of year, Gregorian.
static int
s_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int
linli_codec_parse_time(const char *s, int64_t *ms)
{
    int year, month, day, hour, minute, second;
    if (!s || !ms)
        return -1;
    //  each test reads a character only when the ones before it matched, so
    //  a short string stops at its NUL
    if (s_digits(s, 4, &year) || s[4] != '-' || s_digits(s + 5, 2, &month) || s[7] != '-' ||
        s_digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s_digits(s + 11, 2, &hour) || s[13] != ':' || s_digits(s + 14, 2, &minute) ||
        s[16] != ':' || s_digits(s + 17, 2, &second))
        return -1;
    const char *p = s + 19;
    int millis = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                millis = millis * 10 + (*p - '0');
        if (n == 0 || n > 9)
            return -1;
        for (; n < 3; n++)
            millis *= 10;
    }
    int offset = 0; //  minutes east of UTC
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int oh, om;
        if (s_digits(p + 1, 2, &oh) || p[3] != ':' || s_digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else
        return -1;
    if (*p)
        return -1;
    //  seconds 60 (leap seconds) are refused: Unix time cannot hold them
    if (month < 1 || month > 12 || day < 1 || day > s_days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 59)
        return -1;
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - (int64_t)offset * 60) * 1000 + millis;
    return 0;
}
