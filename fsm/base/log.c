#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int yh_log_level = YH_LOG_INFO;
const char *yh_log_tag = NULL;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void yh_log_write(int level, const char *module, const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    char line[1024];
    va_list ap;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof line,
                 "%02d:%02d:%02d.%03ld %s%s%s %s: ", tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000, yh_log_tag ? "[" : "",
                 yh_log_tag ? yh_log_tag : "", yh_log_tag ? "] " : "", module);
    if (n < 0 || (size_t)n >= sizeof line) {
        n = 0;
    }
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s\n", level_names[level & 3], line);
}

int yh_ratelimit_ok(struct yh_ratelimit *rl)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ts.tv_sec - rl->window_start >= rl->period_s) {
        rl->window_start = ts.tv_sec;
        rl->n_sent = 0;
    }
    if (rl->n_sent >= rl->burst) {
        return 0;
    }
    rl->n_sent++;
    return 1;
}
