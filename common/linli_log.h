//  linli_log: one JSON object per line on stderr (ts, level, service, msg,
//  and request_id / event_id where known). Thread-safe: each line is one write.
#ifndef LINLI_LOG_H
#define LINLI_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    LINLI_LOG_DEBUG = 0,
    LINLI_LOG_INFO = 1,
    LINLI_LOG_WARN = 2,
    LINLI_LOG_ERROR = 3,
} linli_log_level_t;

//  Set the service name written on every line and the lowest level written.
void linli_log_init(const char *service, linli_log_level_t level);

//  Parse "debug", "info", "warn" or "error"; -1 if it is none of them.
int linli_log_level_parse(const char *name);

//  True when lines at this level are written (skip building costly messages).
bool linli_log_enabled(linli_log_level_t level);

//  Write one line. request_id and event_id may be NULL.
void linli_log_ctx(linli_log_level_t level, const char *request_id, const char *event_id,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define linli_debug(...) linli_log_ctx(LINLI_LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define linli_info(...) linli_log_ctx(LINLI_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define linli_warn(...) linli_log_ctx(LINLI_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define linli_error(...) linli_log_ctx(LINLI_LOG_ERROR, NULL, NULL, __VA_ARGS__)

//  Append s to out as the inside of a JSON string (no quotes), escaping as
//  JSON requires; never writes more than cap bytes including the NUL.
//  Returns the number of bytes written (without the NUL).
size_t linli_log_escape(char *out, size_t cap, const char *s);

#endif
