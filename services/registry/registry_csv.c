//  registry_csv: an RFC 4180 streaming parser — a byte-wise state machine
//  that assembles one record at a time in a growing buffer.
#include "registry_csv.h"
#include "linli_utf8.h"

#include <stdlib.h>
#include <string.h>

typedef enum {
    S_FIELD_START, //  at the start of a field
    S_UNQUOTED,    //  inside an unquoted field
    S_QUOTED,      //  inside a quoted field
    S_QUOTE_SEEN,  //  a '"' inside a quoted field: doubled quote or the end
} s_state_t;

struct registry_csv_t {
    size_t max_field;             //  limit per field, bytes
    size_t max_row;               //  limit per record, bytes of field content
    registry_csv_row_fn *on_row;  //  the callback
    void *arg;                    //  its argument
    s_state_t state;              //  where the machine is
    registry_csv_status_t status; //  first failure, sticky
    long error_line;              //  line of that failure
    long line;                    //  current physical line, 1-based
    long record_line;             //  line where the current record started
    long records;                 //  records handed over
    bool in_record;               //  a record has begun (bytes or fields seen)
    bool pending_cr;              //  the last byte was a CR: a following LF belongs to it
    size_t bom_seen;              //  bytes of a leading BOM matched so far; 3 = done
    char *buf;                    //  owned: the record's fields, each NUL-terminated
    size_t len, cap;              //  bytes used / allocated in buf
    size_t field_start;           //  offset in buf of the current field
    size_t *starts;               //  owned: offset of each finished field
    size_t *lens;                 //  owned: length of each finished field
    const char **ptrs;            //  owned: pointers handed to the callback
    size_t n_fields, cap_fields;  //  finished fields / room for them
};

static const unsigned char s_bom[3] = {0xef, 0xbb, 0xbf};

registry_csv_t *
registry_csv_new(size_t max_field, size_t max_row, registry_csv_row_fn *on_row, void *arg)
{
    registry_csv_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max_field = max_field;
    self->max_row = max_row;
    self->on_row = on_row;
    self->arg = arg;
    self->line = 1;
    self->cap = 256;
    self->buf = malloc(self->cap);
    self->cap_fields = 16;
    self->starts = malloc(self->cap_fields * sizeof *self->starts);
    self->lens = malloc(self->cap_fields * sizeof *self->lens);
    self->ptrs = malloc(self->cap_fields * sizeof *self->ptrs);
    if (!self->buf || !self->starts || !self->lens || !self->ptrs)
        registry_csv_destroy(&self);
    return self;
}

void
registry_csv_destroy(registry_csv_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_csv_t *self = *self_p;
    free(self->buf);
    free(self->starts);
    free(self->lens);
    free(self->ptrs);
    free(self);
    *self_p = NULL;
}

bool
registry_csv_utf8_valid(const char *s, size_t len)
{
    size_t chars;
    //  NUL is no text either.
    return !memchr(s, '\0', len) && linli_utf8_count(s, len, &chars) == 0;
}

static registry_csv_status_t
s_fail(registry_csv_t *self, registry_csv_status_t status)
{
    if (self->status == REGISTRY_CSV_OK) {
        self->status = status;
        self->error_line = self->line;
    }
    return self->status;
}

//  Make room for one more byte in buf (and its field's NUL). 0 or -1.
static int
s_reserve(registry_csv_t *self, size_t more)
{
    if (self->len + more + 1 <= self->cap)
        return 0;
    size_t cap = self->cap;
    while (self->len + more + 1 > cap)
        cap *= 2;
    char *grown = realloc(self->buf, cap);
    if (!grown)
        return -1;
    self->buf = grown;
    self->cap = cap;
    return 0;
}

//  Append bytes to the current field, within the limits.
static registry_csv_status_t
s_append(registry_csv_t *self, const char *p, size_t n)
{
    size_t field = self->len - self->field_start + n;
    //  Record bytes: content only (one NUL per finished field is not counted).
    size_t row = self->len - self->n_fields + n;
    if (field > self->max_field)
        return s_fail(self, REGISTRY_CSV_FIELD_TOO_LONG);
    if (row > self->max_row)
        return s_fail(self, REGISTRY_CSV_ROW_TOO_LONG);
    if (s_reserve(self, n))
        return s_fail(self, REGISTRY_CSV_NO_MEMORY);
    memcpy(self->buf + self->len, p, n);
    self->len += n;
    return REGISTRY_CSV_OK;
}

//  Close the current field: check its UTF-8, NUL-terminate it, record it.
static registry_csv_status_t
s_end_field(registry_csv_t *self)
{
    size_t flen = self->len - self->field_start;
    if (!registry_csv_utf8_valid(self->buf + self->field_start, flen))
        return s_fail(self, REGISTRY_CSV_NOT_UTF8);
    if (self->n_fields == self->cap_fields) {
        size_t cap = self->cap_fields * 2;
        size_t *starts = realloc(self->starts, cap * sizeof *starts);
        if (starts)
            self->starts = starts;
        size_t *lens = realloc(self->lens, cap * sizeof *lens);
        if (lens)
            self->lens = lens;
        const char **ptrs = realloc(self->ptrs, cap * sizeof *ptrs);
        if (ptrs)
            self->ptrs = ptrs;
        if (!starts || !lens || !ptrs)
            return s_fail(self, REGISTRY_CSV_NO_MEMORY);
        self->cap_fields = cap;
    }
    if (s_reserve(self, 0))
        return s_fail(self, REGISTRY_CSV_NO_MEMORY);
    self->buf[self->len++] = '\0';
    self->starts[self->n_fields] = self->field_start;
    self->lens[self->n_fields] = flen;
    self->n_fields++;
    self->field_start = self->len;
    self->state = S_FIELD_START;
    return REGISTRY_CSV_OK;
}

//  Close the current field and the record, and hand it over.
static registry_csv_status_t
s_end_record(registry_csv_t *self)
{
    if (s_end_field(self))
        return self->status;
    for (size_t i = 0; i < self->n_fields; i++)
        self->ptrs[i] = self->buf + self->starts[i];
    self->records++;
    registry_csv_row_t row = {
        .line = self->record_line,
        .number = self->records,
        .n_fields = self->n_fields,
        .fields = self->ptrs,
        .lens = self->lens,
    };
    int stop = self->on_row ? self->on_row(self->arg, &row) : 0;
    self->len = 0;
    self->field_start = 0;
    self->n_fields = 0;
    self->in_record = false;
    self->state = S_FIELD_START;
    if (stop)
        return s_fail(self, REGISTRY_CSV_STOPPED);
    return REGISTRY_CSV_OK;
}

//  A line end (CR or LF) outside quotes: the record ends, unless nothing
//  has begun (a blank line, skipped).
static registry_csv_status_t
s_line_end(registry_csv_t *self)
{
    registry_csv_status_t rc = REGISTRY_CSV_OK;
    if (self->in_record)
        rc = s_end_record(self);
    self->state = S_FIELD_START;
    self->line++;
    return rc;
}

registry_csv_status_t
registry_csv_feed(registry_csv_t *self, const char *data, size_t len)
{
    if (self->status)
        return self->status;
    const char *p = data, *end = data + len;
    //  A UTF-8 BOM at the very start is no part of the first field.
    while (self->bom_seen < 3 && p < end) {
        if ((unsigned char)*p != s_bom[self->bom_seen]) {
            //  Not a BOM after all: parse the bytes matched so far as data.
            size_t matched = self->bom_seen;
            self->bom_seen = 3;
            if (matched && registry_csv_feed(self, (const char *)s_bom, matched))
                return self->status;
            break;
        }
        self->bom_seen++;
        p++;
    }
    while (p < end) {
        char c = *p;
        if (self->pending_cr) {
            self->pending_cr = false;
            if (c == '\n') {
                //  The LF of a CRLF: the CR counted the line already.
                if (self->state == S_QUOTED && s_append(self, p, 1))
                    return self->status;
                p++;
                continue;
            }
        }
        if (!self->in_record && c != '\r' && c != '\n') {
            self->in_record = true;
            self->record_line = self->line;
        }
        switch (self->state) {
        case S_FIELD_START:
            if (c == '"') {
                self->in_record = true;
                self->state = S_QUOTED;
                p++;
                continue;
            }
            self->state = S_UNQUOTED;
            //  Fall through: the byte belongs to an unquoted field.
            /* FALLTHROUGH */
        case S_UNQUOTED: {
            //  Copy the run up to the next special byte in one go.
            const char *q = p;
            while (q < end && *q != ',' && *q != '"' && *q != '\r' && *q != '\n')
                q++;
            if (q > p && s_append(self, p, (size_t)(q - p)))
                return self->status;
            p = q;
            if (p == end)
                break;
            c = *p++;
            if (c == ',') {
                self->in_record = true;
                if (s_end_field(self))
                    return self->status;
            } else if (c == '"') {
                return s_fail(self, REGISTRY_CSV_BAD_QUOTING);
            } else {
                self->pending_cr = c == '\r';
                if (s_line_end(self))
                    return self->status;
            }
            break;
        }
        case S_QUOTED: {
            const char *q = p;
            while (q < end && *q != '"' && *q != '\r' && *q != '\n')
                q++;
            if (q > p && s_append(self, p, (size_t)(q - p)))
                return self->status;
            p = q;
            if (p == end)
                break;
            c = *p;
            if (c == '"') {
                self->state = S_QUOTE_SEEN;
            } else {
                //  A line break inside quotes is data; it still counts as a line.
                if (s_append(self, p, 1))
                    return self->status;
                self->line++;
                self->pending_cr = c == '\r';
            }
            p++;
            break;
        }
        case S_QUOTE_SEEN:
            p++;
            if (c == '"') {
                if (s_append(self, "\"", 1))
                    return self->status;
                self->state = S_QUOTED;
            } else if (c == ',') {
                if (s_end_field(self))
                    return self->status;
            } else if (c == '\r' || c == '\n') {
                self->pending_cr = c == '\r';
                if (s_line_end(self))
                    return self->status;
            } else {
                return s_fail(self, REGISTRY_CSV_BAD_QUOTING);
            }
            break;
        }
    }
    return REGISTRY_CSV_OK;
}

registry_csv_status_t
registry_csv_finish(registry_csv_t *self)
{
    if (self->status)
        return self->status;
    if (self->bom_seen < 3) {
        //  Input shorter than a BOM that began like one: it was data.
        size_t matched = self->bom_seen;
        self->bom_seen = 3;
        if (matched && registry_csv_feed(self, (const char *)s_bom, matched))
            return self->status;
    }
    if (self->state == S_QUOTED) {
        self->line = self->record_line;
        return s_fail(self, REGISTRY_CSV_BAD_QUOTING);
    }
    if (self->in_record)
        return s_end_record(self);
    return REGISTRY_CSV_OK;
}

long
registry_csv_error_line(const registry_csv_t *self)
{
    return self->status ? self->error_line : 0;
}

long
registry_csv_records(const registry_csv_t *self)
{
    return self->records;
}

const char *
registry_csv_status_code(registry_csv_status_t status)
{
    switch (status) {
    case REGISTRY_CSV_OK:
        return "";
    case REGISTRY_CSV_BAD_QUOTING:
        return "bad_quoting";
    case REGISTRY_CSV_NOT_UTF8:
        return "not_utf8";
    case REGISTRY_CSV_FIELD_TOO_LONG:
        return "field_too_long";
    case REGISTRY_CSV_ROW_TOO_LONG:
        return "row_too_long";
    case REGISTRY_CSV_STOPPED:
        return "stopped";
    case REGISTRY_CSV_NO_MEMORY:
        return "no_memory";
    }
    return "unknown";
}

const char *
registry_csv_status_text(registry_csv_status_t status)
{
    switch (status) {
    case REGISTRY_CSV_OK:
        return "";
    case REGISTRY_CSV_BAD_QUOTING:
        return "bad quoting: a '\"' inside an unquoted field, text after a closing quote, "
               "or a quoted field that is never closed";
    case REGISTRY_CSV_NOT_UTF8:
        return "the file is not UTF-8 text (saved as GBK or UTF-16?); save it as "
               "\"CSV UTF-8\" and try again";
    case REGISTRY_CSV_FIELD_TOO_LONG:
        return "a field is too long (a quote that is never closed?)";
    case REGISTRY_CSV_ROW_TOO_LONG:
        return "a row is too long (a quote that is never closed?)";
    case REGISTRY_CSV_STOPPED:
        return "stopped";
    case REGISTRY_CSV_NO_MEMORY:
        return "out of memory";
    }
    return "unknown";
}
