//  linli_codec: the one generic JSON <-> protobuf converter, driven by the
//  protobuf-c descriptors and one constraints table (protobuf-c descriptors
//  carry no custom options, so limits live in linli_constraints.c).
//
//  JSON conventions (DESIGN.md): field names as in the .proto; ids are
//  strings; counts and amounts are numbers; int64 fields whose name ends in
//  "_at" are times: RFC 3339 strings in JSON, Unix milliseconds in protobuf;
//  bytes are base64; repeated fields are arrays; nested messages objects.
#ifndef LINLI_CODEC_H
#define LINLI_CODEC_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

//  Why input was refused. code is one of: invalid_json, invalid_type,
//  unknown_field, missing_field, out_of_range, too_long, too_short,
//  invalid_format, invalid_value, too_many, too_deep (messages nested deeper
//  than LINLI_CODEC_MAX_DEPTH); status is 400 for all of them. Only when
//  memory runs out: status 500, code "internal".
typedef struct {
    int status;        //  HTTP status to answer (400)
    char code[32];     //  machine-readable
    char field[128];   //  dotted path of the field: "grants[1].scope"
    char message[256]; //  one sentence for people
} linli_codec_error_t;

//  One limit on one field. Zero members mean "no such limit".
typedef struct {
    const char *message; //  full proto name, e.g. "linli.registry.LoginRequest"
    const char *field;   //  field name in that message
    int64_t min, max;    //  numbers: inclusive range, used when min != 0 || max != 0
    size_t min_len;      //  strings: fewest UTF-8 characters; repeated: fewest items
    size_t max_len;      //  strings: most UTF-8 characters; repeated: most items
    const char *pattern; //  POSIX extended regex the whole string must match
    const char *one_of;  //  allowed values separated by '|', e.g. "a|b|c"
} linli_constraint_t;

//  Every string without a max_len of its own is limited to this many characters.
#define LINLI_CODEC_DEFAULT_MAX_LEN 4096
//  Every repeated field without a max_len of its own holds at most this many.
#define LINLI_CODEC_DEFAULT_MAX_ITEMS 1000
//  Most levels of messages one message may hold, itself included (the top
//  level is 1); deeper input is refused with too_deep.
#define LINLI_CODEC_MAX_DEPTH 16

//  The suite's constraints table (common/linli_constraints.c), {NULL}-ended.
extern const linli_constraint_t linli_constraints[];

//  Register one more {NULL}-ended constraints table (a test's, say), used
//  beside linli_constraints; a field in both: the later table wins. Borrowed:
//  the table must outlive every codec call. Thread-safe; registering the same
//  table again does nothing. 0, or -1 when too many tables are registered.
int linli_codec_add_constraints(const linli_constraint_t *table);

//  Build a message of type desc from a JSON object body (may be NULL: empty)
//  and params (may be NULL): an object of string values from the URL path and
//  query, each parsed as the field of the same name's type ("12", "true", an
//  enum name, RFC 3339 for times; a repeated field's items comma-separated).
//  A field in both is refused (invalid_value). JSON null means "not set".
//  64-bit integers may also be given as decimal strings (for values beyond
//  what JavaScript holds exactly). Checks types, ranges, required fields (proto2
//  `required`), unknown fields and the constraints table. Returns the message
//  (caller frees with protobuf_c_message_free_unpacked(m, NULL)), or NULL with
//  err filled.
ProtobufCMessage *linli_codec_from_json(const ProtobufCMessageDescriptor *desc, const json_t *body,
                                        const json_t *params, linli_codec_error_t *err);

//  Render msg as a JSON object (unset optional fields are left out, repeated
//  fields always present as arrays). A uint64 above INT64_MAX becomes a
//  decimal string, a time outside years 0000-9999 stays a number, a NaN or
//  infinite float null, an enum value without a name its number. Caller owns
//  the result (json_decref); NULL when memory runs out or a string is not
//  UTF-8 (run linli_codec_validate on what came from the wire).
json_t *linli_codec_to_json(const ProtobufCMessage *msg);

//  msg as JSON text: the same bytes as json_dumps(linli_codec_to_json(msg),
//  JSON_COMPACT | JSON_REAL_PRECISION(10)), written without building the tree
//  (cheaper: the gateway renders every reply). *len (may be NULL) gets its
//  length. Caller frees; NULL in the same cases linli_codec_to_json is NULL.
char *linli_codec_to_json_text(const ProtobufCMessage *msg, size_t *len);

//  Check an unpacked message (e.g. one a service received from the wire)
//  against the constraints table and UTF-8 validity of its strings. 0, or -1
//  with err filled.
int linli_codec_validate(const ProtobufCMessage *msg, linli_codec_error_t *err);

//  Format Unix milliseconds as RFC 3339 UTC ("2026-11-23T04:12:51.123Z");
//  cap 25 is enough. Outside years 0000-9999, out is "".
void linli_codec_format_time(int64_t ms, char *out, size_t cap);
//  Parse RFC 3339 (with Z or an offset, optional fraction); 0 or -1.
//  Impossible dates (2023-02-29, month 13, second 60) are -1.
int linli_codec_parse_time(const char *s, int64_t *ms);

#endif
