//  registry_csv: an RFC 4180 CSV parser fed bytes in pieces of any size,
//  handing each record to a callback. Quoted fields, doubled quotes, line
//  breaks inside quotes, CRLF, LF or CR line ends, a leading UTF-8 BOM,
//  strict UTF-8 (no NUL), and limits on field and record size. Blank lines
//  are skipped. Pure: no I/O, no global state; one parser per thread.
#ifndef REGISTRY_CSV_H
#define REGISTRY_CSV_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    REGISTRY_CSV_OK = 0,
    REGISTRY_CSV_BAD_QUOTING,    //  '"' inside an unquoted field, text after a closing
                                 //  quote, or a quoted field never closed
    REGISTRY_CSV_NOT_UTF8,       //  a byte sequence that is not UTF-8, or a NUL byte
    REGISTRY_CSV_FIELD_TOO_LONG, //  a field longer than max_field bytes
    REGISTRY_CSV_ROW_TOO_LONG,   //  a record longer than max_row bytes
    REGISTRY_CSV_STOPPED,        //  the callback returned nonzero
    REGISTRY_CSV_NO_MEMORY,      //  a buffer could not grow
} registry_csv_status_t;

//  One record, borrowed by the callback until it returns.
typedef struct {
    long line;                 //  physical line (1-based) where the record starts
    long number;               //  1-based count of records (the header is 1)
    size_t n_fields;           //  at least 1
    const char *const *fields; //  n_fields NUL-terminated values, quotes removed
    const size_t *lens;        //  their lengths in bytes
} registry_csv_row_t;

//  Called once per record; a nonzero return stops the parser (REGISTRY_CSV_STOPPED).
typedef int(registry_csv_row_fn)(void *arg, const registry_csv_row_t *row);

typedef struct registry_csv_t registry_csv_t;

//  New parser: fields of at most max_field bytes, records of at most max_row
//  bytes (fields without quotes and separators); on_row(arg, row) per record.
//  NULL when out of memory. Caller owns.
registry_csv_t *registry_csv_new(size_t max_field, size_t max_row, registry_csv_row_fn *on_row,
                                 void *arg);

//  Destroy; accepts NULL and nulls the caller's pointer.
void registry_csv_destroy(registry_csv_t **self_p);

//  Parse len more bytes (a piece may end anywhere, even inside a UTF-8
//  character). Returns REGISTRY_CSV_OK or the first failure, which sticks:
//  later calls return it again.
registry_csv_status_t registry_csv_feed(registry_csv_t *self, const char *data, size_t len);

//  End of input: hand over a last record without a line end, and fail on a
//  quoted field never closed. Returns REGISTRY_CSV_OK or the failure.
registry_csv_status_t registry_csv_finish(registry_csv_t *self);

//  Physical line (1-based) of the failure; 0 when there is none.
long registry_csv_error_line(const registry_csv_t *self);

//  Records handed over so far.
long registry_csv_records(const registry_csv_t *self);

//  The failure's code word ("bad_quoting", "not_utf8", "field_too_long",
//  "row_too_long", "stopped", "no_memory"; "" for OK) and one sentence for people.
const char *registry_csv_status_code(registry_csv_status_t status);
const char *registry_csv_status_text(registry_csv_status_t status);

//  True when the len bytes at s are UTF-8 without NUL bytes, overlong forms
//  or surrogates.
bool registry_csv_utf8_valid(const char *s, size_t len);

#endif
