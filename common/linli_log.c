//  linli_log: JSON-lines logging on stderr.
#include "linli_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char s_service[64] = "linli";
static linli_log_level_t s_level = LINLI_LOG_INFO;
static const char *s_level_names[] = {"debug", "info", "warn", "error"};

void
linli_log_init(const char *service, linli_log_level_t level)
{
    snprintf(s_service, sizeof s_service, "%s", service ? service : "linli");
    s_level = level;
}

int
linli_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, s_level_names[i]) == 0)
            return i;
    return -1;
}

bool
linli_log_enabled(linli_log_level_t level)
{
    return level >= s_level;
}

size_t
linli_log_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t len;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            len = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            len = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            len = 2;
        } else if (c < 0x20) {
            len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[0] = (char)c;
            len = 1;
        }
        if (n + len >= cap)
            break;
        memcpy(out + n, esc, len);
        n += len;
    }
    out[n] = '\0';
    return n;
}

void
linli_log_ctx(linli_log_level_t level, const char *request_id, const char *event_id,
              const char *fmt, ...)
{
    if (level < s_level || level > LINLI_LOG_ERROR)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);

    char line[4096];
    size_t n = (size_t)snprintf(line, sizeof line,
                                "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
                                "\"level\":\"%s\",\"service\":\"%s\"",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                tm.tm_sec, now.tv_nsec / 1000000, s_level_names[level], s_service);
    char esc[2048];
    if (request_id && *request_id && n < sizeof line) {
        linli_log_escape(esc, 256, request_id);
        n += (size_t)snprintf(line + n, sizeof line - n, ",\"request_id\":\"%s\"", esc);
    }
    if (event_id && *event_id && n < sizeof line) {
        linli_log_escape(esc, 256, event_id);
        n += (size_t)snprintf(line + n, sizeof line - n, ",\"event_id\":\"%s\"", esc);
    }
    if (n < sizeof line) {
        linli_log_escape(esc, sizeof esc, msg);
        n += (size_t)snprintf(line + n, sizeof line - n, ",\"msg\":\"%s\"}\n", esc);
    }
    if (n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 2] = '}';
        line[n - 1] = '\n';
    }
    //  One write per line so lines from threads and processes never interleave.
    ssize_t rc = write(STDERR_FILENO, line, n);
    (void)rc;
}
