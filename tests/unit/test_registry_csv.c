//  Unit tests of registry_csv: the RFC 4180 streaming parser bulk import uses.
//  Unit tests link only common/ and the test support, so the parser's source
//  is compiled into this test directly (it is pure: no other dependency).
#include "../../services/registry/registry_csv.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>

#define S_MAX_ROWS 16
#define S_MAX_FIELDS 8

//  What the callback saw.
typedef struct {
    size_t n;                                  //  records
    long line[S_MAX_ROWS];                     //  their first lines
    size_t n_fields[S_MAX_ROWS];               //  their field counts
    char fields[S_MAX_ROWS][S_MAX_FIELDS][64]; //  their values
    size_t lens[S_MAX_ROWS][S_MAX_FIELDS];     //  and lengths
    size_t stop_after;                         //  stop after this many records (0: never)
} s_seen_t;

static int
s_on_row(void *arg, const registry_csv_row_t *row)
{
    s_seen_t *seen = (s_seen_t *)arg;
    assert_true(seen->n < S_MAX_ROWS);
    assert_int_equal(row->number, (long)seen->n + 1);
    seen->line[seen->n] = row->line;
    seen->n_fields[seen->n] = row->n_fields;
    for (size_t i = 0; i < row->n_fields && i < S_MAX_FIELDS; i++) {
        assert_int_equal(strlen(row->fields[i]), row->lens[i]);
        snprintf(seen->fields[seen->n][i], 64, "%s", row->fields[i]);
        seen->lens[seen->n][i] = row->lens[i];
    }
    seen->n++;
    return seen->stop_after && seen->n >= seen->stop_after;
}

//  Parse text in pieces of `piece` bytes (0: all at once); the final status.
static registry_csv_status_t
s_parse(const char *text, size_t len, size_t piece, s_seen_t *seen, long *error_line)
{
    memset(seen, 0, sizeof *seen);
    registry_csv_t *csv = registry_csv_new(32, 100, s_on_row, seen);
    assert_non_null(csv);
    registry_csv_status_t st = REGISTRY_CSV_OK;
    size_t step = piece ? piece : (len ? len : 1);
    for (size_t off = 0; off < len && !st; off += step)
        st = registry_csv_feed(csv, text + off, len - off < step ? len - off : step);
    if (!st)
        st = registry_csv_finish(csv);
    if (error_line)
        *error_line = registry_csv_error_line(csv);
    registry_csv_destroy(&csv);
    assert_null(csv);
    return st;
}

//  Parse whole, then one byte at a time and in threes: every split must
//  give the same records.
static registry_csv_status_t
s_parse_all_ways(const char *text, s_seen_t *seen, long *error_line)
{
    size_t len = strlen(text);
    s_seen_t other;
    long line_a = 0, line_b = 0;
    registry_csv_status_t st = s_parse(text, len, 0, seen, &line_a);
    for (size_t piece = 1; piece <= 3; piece += 2) {
        registry_csv_status_t st2 = s_parse(text, len, piece, &other, &line_b);
        assert_int_equal(st2, st);
        assert_int_equal(line_b, line_a);
        assert_int_equal(other.n, seen->n);
        for (size_t r = 0; r < seen->n; r++) {
            assert_int_equal(other.line[r], seen->line[r]);
            assert_int_equal(other.n_fields[r], seen->n_fields[r]);
            for (size_t f = 0; f < seen->n_fields[r] && f < S_MAX_FIELDS; f++)
                assert_string_equal(other.fields[r][f], seen->fields[r][f]);
        }
    }
    if (error_line)
        *error_line = line_a;
    return st;
}

static void
test_plain_rows(void **state)
{
    (void)state;
    s_seen_t s;
    assert_int_equal(s_parse_all_ways("name,phone\n张三,138\n李四,139\n", &s, NULL),
                     REGISTRY_CSV_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.n_fields[0], 2);
    assert_string_equal(s.fields[0][0], "name");
    assert_string_equal(s.fields[1][0], "张三");
    assert_string_equal(s.fields[2][1], "139");
    assert_int_equal(s.line[2], 3);
}

static void
test_line_ends(void **state)
{
    (void)state;
    s_seen_t s;
    //  CRLF, a bare CR, and a last line without a line end.
    assert_int_equal(s_parse_all_ways("a,b\r\nc,d\re,f\ng,h", &s, NULL), REGISTRY_CSV_OK);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.fields[0][1], "b");
    assert_string_equal(s.fields[1][0], "c");
    assert_string_equal(s.fields[2][1], "f");
    assert_string_equal(s.fields[3][1], "h");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(s.line[i], (long)i + 1);
    //  Blank lines (LF, CRLF) are skipped but counted; the record after a blank line may be quoted.
    assert_int_equal(s_parse_all_ways("a\n\n\r\n\"b\"\n\n", &s, NULL), REGISTRY_CSV_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.fields[1][0], "b");
    assert_int_equal(s.line[1], 4);
    //  Nothing at all: no records, no error.
    assert_int_equal(s_parse_all_ways("", &s, NULL), REGISTRY_CSV_OK);
    assert_int_equal(s.n, 0);
}

static void
test_quotes(void **state)
{
    (void)state;
    s_seen_t s;
    const char *text = "\"a,b\",\"say \"\"hi\"\"\",\"\"\n"
                       "\"two\nlines\",x\r\n"
                       "\"crlf\r\ninside\",y\n"
                       "after,z\n";
    assert_int_equal(s_parse_all_ways(text, &s, NULL), REGISTRY_CSV_OK);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.n_fields[0], 3);
    assert_string_equal(s.fields[0][0], "a,b");
    assert_string_equal(s.fields[0][1], "say \"hi\"");
    assert_string_equal(s.fields[0][2], "");
    assert_string_equal(s.fields[1][0], "two\nlines");
    assert_int_equal(s.line[1], 2);
    assert_string_equal(s.fields[2][0], "crlf\r\ninside");
    assert_int_equal(s.line[2], 4);
    //  Physical lines: the record after two multi-line ones starts on line 6.
    assert_int_equal(s.line[3], 6);
}

static void
test_empty_fields(void **state)
{
    (void)state;
    s_seen_t s;
    assert_int_equal(s_parse_all_ways(",,\na,\n,b", &s, NULL), REGISTRY_CSV_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.n_fields[0], 3);
    assert_string_equal(s.fields[0][2], "");
    assert_int_equal(s.n_fields[1], 2);
    assert_string_equal(s.fields[1][1], "");
    assert_int_equal(s.n_fields[2], 2);
    assert_string_equal(s.fields[2][1], "b");
}

static void
test_bom(void **state)
{
    (void)state;
    s_seen_t s;
    assert_int_equal(s_parse_all_ways("\xef\xbb\xbfname,x\n1,2\n", &s, NULL), REGISTRY_CSV_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.fields[0][0], "name");
    //  A BOM-like start that is not one is data (here invalid UTF-8).
    long line;
    assert_int_equal(s_parse_all_ways("\xef\xbbname\n", &s, &line), REGISTRY_CSV_NOT_UTF8);
    assert_int_equal(line, 1);
    //  A file that begins with a real character sharing the BOM's first byte.
    assert_int_equal(s_parse_all_ways("\xef\xbc\x8c,a\n", &s, NULL), REGISTRY_CSV_OK);
    assert_string_equal(s.fields[0][0], "\xef\xbc\x8c");
    //  A BOM only.
    assert_int_equal(s_parse_all_ways("\xef\xbb\xbf", &s, NULL), REGISTRY_CSV_OK);
    assert_int_equal(s.n, 0);
}

static void
test_bad_quoting(void **state)
{
    (void)state;
    s_seen_t s;
    long line;
    //  A quote inside an unquoted field.
    assert_int_equal(s_parse_all_ways("a,b\nc,d\"e\n", &s, &line), REGISTRY_CSV_BAD_QUOTING);
    assert_int_equal(line, 2);
    assert_int_equal(s.n, 1);
    //  Text after a closing quote.
    assert_int_equal(s_parse_all_ways("a\n\"b\"c,d\n", &s, &line), REGISTRY_CSV_BAD_QUOTING);
    assert_int_equal(line, 2);
    //  A quoted field never closed: reported at the line where it opened.
    assert_int_equal(s_parse_all_ways("a\nb\n\"c,d\ne\n", &s, &line), REGISTRY_CSV_BAD_QUOTING);
    assert_int_equal(line, 3);
    assert_int_equal(s.n, 2);
    assert_string_equal(registry_csv_status_code(REGISTRY_CSV_BAD_QUOTING), "bad_quoting");
    assert_true(strlen(registry_csv_status_text(REGISTRY_CSV_BAD_QUOTING)) > 10);
}

static void
test_utf8(void **state)
{
    (void)state;
    s_seen_t s;
    long line;
    //  Two-, three- and four-byte characters.
    assert_int_equal(s_parse_all_ways("é,中文,\xf0\x9f\x98\x80\n", &s, NULL), REGISTRY_CSV_OK);
    assert_string_equal(s.fields[0][2], "\xf0\x9f\x98\x80");
    //  GBK bytes (张三 saved as GBK), on line 2.
    assert_int_equal(s_parse_all_ways("name\n\xd5\xc5\xc8\xfd\n", &s, &line),
                     REGISTRY_CSV_NOT_UTF8);
    assert_int_equal(line, 2);
    assert_string_equal(registry_csv_status_code(REGISTRY_CSV_NOT_UTF8), "not_utf8");
    //  A NUL byte (UTF-16 text has them everywhere).
    assert_int_equal(s_parse("a\0b\n", 4, 0, &s, NULL), REGISTRY_CSV_NOT_UTF8);
    assert_false(registry_csv_utf8_valid("\xc0\x80", 2));         //  overlong NUL
    assert_false(registry_csv_utf8_valid("\xe0\x80\xaf", 3));     //  overlong '/'
    assert_false(registry_csv_utf8_valid("\xed\xa0\x80", 3));     //  a surrogate
    assert_false(registry_csv_utf8_valid("\xf4\x90\x80\x80", 4)); //  beyond U+10FFFF
    assert_false(registry_csv_utf8_valid("\xe4\xb8", 2));         //  cut short
    assert_false(registry_csv_utf8_valid("\x80", 1));             //  a lone continuation
    assert_true(registry_csv_utf8_valid("\xf4\x8f\xbf\xbf", 4));  //  U+10FFFF
    assert_true(registry_csv_utf8_valid("", 0));
    //  A character split across two feeds is still one character.
    memset(&s, 0, sizeof s);
    registry_csv_t *csv = registry_csv_new(32, 100, s_on_row, &s);
    assert_int_equal(registry_csv_feed(csv, "\xe4\xb8", 2), REGISTRY_CSV_OK);
    assert_int_equal(registry_csv_feed(csv, "\xad\n", 2), REGISTRY_CSV_OK);
    assert_int_equal(registry_csv_finish(csv), REGISTRY_CSV_OK);
    assert_string_equal(s.fields[0][0], "中");
    registry_csv_destroy(&csv);
}

static void
test_limits(void **state)
{
    (void)state;
    s_seen_t s;
    long line;
    char text[512];
    //  A 32-byte field is fine, 33 is not (max_field 32 in s_parse).
    snprintf(text, sizeof text, "x\n%s\n", "01234567890123456789012345678901");
    assert_int_equal(s_parse_all_ways(text, &s, NULL), REGISTRY_CSV_OK);
    snprintf(text, sizeof text, "x\n\"%s\"\n", "01234567890123456789012345678901z");
    assert_int_equal(s_parse_all_ways(text, &s, &line), REGISTRY_CSV_FIELD_TOO_LONG);
    assert_int_equal(line, 2);
    //  A record of more than 100 bytes of content (max_row 100).
    snprintf(text, sizeof text, "%s,%s,%s,%s\n", "0123456789012345678901234",
             "0123456789012345678901234", "0123456789012345678901234",
             "0123456789012345678901234x");
    assert_int_equal(s_parse_all_ways(text, &s, NULL), REGISTRY_CSV_ROW_TOO_LONG);
    //  Many short fields grow the field table.
    memset(text, ',', 60);
    text[60] = '\n';
    text[61] = '\0';
    assert_int_equal(s_parse_all_ways(text, &s, NULL), REGISTRY_CSV_OK);
    assert_int_equal(s.n_fields[0], 61);
}

static void
test_stop_and_sticky(void **state)
{
    (void)state;
    s_seen_t s;
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    registry_csv_t *csv = registry_csv_new(32, 100, s_on_row, &s);
    assert_int_equal(registry_csv_feed(csv, "a\nb\nc\n", 6), REGISTRY_CSV_STOPPED);
    assert_int_equal(s.n, 2);
    assert_int_equal(registry_csv_records(csv), 2);
    //  The failure sticks.
    assert_int_equal(registry_csv_feed(csv, "d\n", 2), REGISTRY_CSV_STOPPED);
    assert_int_equal(registry_csv_finish(csv), REGISTRY_CSV_STOPPED);
    assert_int_equal(s.n, 2);
    registry_csv_destroy(&csv);
    registry_csv_destroy(&csv); //  NULL is fine
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_rows),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_empty_fields),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_bad_quoting),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stop_and_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
