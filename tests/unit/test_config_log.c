//  Unit tests for linli_config and linli_log: pure logic.
#include "linli_config.h"
#include "linli_log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

static const linli_cfg_entry_t s_table[] = {
    {"LINLI_T_NAME", LINLI_CFG_STRING, "default", 0, 0, false, "a name"},
    {"LINLI_T_PORT", LINLI_CFG_INT, "80", 1, 65535, false, "a port"},
    {"LINLI_T_FLAG", LINLI_CFG_BOOL, "false", 0, 0, false, "a flag"},
    {"LINLI_T_SECRET", LINLI_CFG_STRING, NULL, 0, 0, true, "a secret"},
    LINLI_CFG_END,
};
static const linli_cfg_entry_t *const s_tables[] = {s_table, NULL};

static void
test_defaults_and_required(void **state)
{
    (void)state;
    char err[256] = "";
    unsetenv("LINLI_T_NAME");
    unsetenv("LINLI_T_PORT");
    unsetenv("LINLI_T_SECRET");
    linli_config_t *cfg = linli_config_load(s_tables, err, sizeof err);
    assert_null(cfg);
    assert_non_null(strstr(err, "LINLI_T_SECRET is required"));

    setenv("LINLI_T_SECRET", "s3cret", 1);
    cfg = linli_config_load(s_tables, err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(linli_config_str(cfg, "LINLI_T_NAME"), "default");
    assert_int_equal(linli_config_int(cfg, "LINLI_T_PORT"), 80);
    assert_false(linli_config_bool(cfg, "LINLI_T_FLAG"));
    linli_config_destroy(&cfg);
    assert_null(cfg);
    linli_config_destroy(&cfg); //  accepts NULL
}

static void
test_invalid_values_rejected(void **state)
{
    (void)state;
    char err[256] = "";
    setenv("LINLI_T_SECRET", "s3cret", 1);
    setenv("LINLI_T_PORT", "70000", 1);
    assert_null(linli_config_load(s_tables, err, sizeof err));
    assert_non_null(strstr(err, "LINLI_T_PORT must be an integer from 1 to 65535"));
    setenv("LINLI_T_PORT", "12ab", 1);
    assert_null(linli_config_load(s_tables, err, sizeof err));
    setenv("LINLI_T_PORT", "8080", 1);
    setenv("LINLI_T_FLAG", "maybe", 1);
    assert_null(linli_config_load(s_tables, err, sizeof err));
    assert_non_null(strstr(err, "LINLI_T_FLAG"));
    setenv("LINLI_T_FLAG", "yes", 1);
    linli_config_t *cfg = linli_config_load(s_tables, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(linli_config_int(cfg, "LINLI_T_PORT"), 8080);
    assert_true(linli_config_bool(cfg, "LINLI_T_FLAG"));
    linli_config_destroy(&cfg);
    unsetenv("LINLI_T_PORT");
    unsetenv("LINLI_T_FLAG");
}

//  Comma-separated lists (broker endpoints): trimmed, empty items skipped.
static void
test_list_next(void **state)
{
    (void)state;
    char list[] = " tcp://a:1 , ,ipc:///b,, c ";
    char *cursor = list;
    assert_string_equal(linli_list_next(&cursor), "tcp://a:1");
    assert_string_equal(linli_list_next(&cursor), "ipc:///b");
    assert_string_equal(linli_list_next(&cursor), "c");
    assert_null(linli_list_next(&cursor));
    assert_null(linli_list_next(&cursor));
    char empty[] = " , ";
    cursor = empty;
    assert_null(linli_list_next(&cursor));
    cursor = NULL;
    assert_null(linli_list_next(&cursor));
}

static void
test_log_escape(void **state)
{
    (void)state;
    char out[64];
    linli_log_escape(out, sizeof out, "a\"b\\c\nd\x01");
    assert_string_equal(out, "a\\\"b\\\\c\\nd\\u0001");
    //  never overflows, never splits an escape
    char small[4];
    linli_log_escape(small, sizeof small, "\"\"\"");
    assert_string_equal(small, "\\\"");
    assert_int_equal(linli_log_level_parse("warn"), LINLI_LOG_WARN);
    assert_int_equal(linli_log_level_parse("loud"), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_required),
        cmocka_unit_test(test_invalid_values_rejected),
        cmocka_unit_test(test_log_escape),
        cmocka_unit_test(test_list_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
