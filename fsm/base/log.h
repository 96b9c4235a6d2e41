/* Logging to stderr with a per-file module name and a global level.
 *
 *   YH_LOG_MODULE("fsm");
 *   YH_INFO("applied %llu", idx);
 *
 * The level is checked before anything is formatted. */
#ifndef YH_LOG_H
#define YH_LOG_H

enum yh_log_level { YH_LOG_ERR, YH_LOG_WARN, YH_LOG_INFO, YH_LOG_DBG };

extern int yh_log_level;       /* messages above this level are dropped */
extern const char *yh_log_tag; /* process tag, e.g. "n1" (may be NULL) */

void yh_log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rate limit: at most @burst messages per @period_s seconds. */
struct yh_ratelimit
{
    int burst;         /* messages allowed per period */
    int period_s;      /* period length in seconds */
    long window_start; /* start of the current period (monotonic s) */
    int n_sent;        /* messages sent in the current period */
};
#define YH_RATELIMIT_INIT(burst, period) \
    {                                    \
        (burst), (period), 0, 0          \
    }
int yh_ratelimit_ok(struct yh_ratelimit *rl);

#define YH_LOG_MODULE(name) \
    static const char *yh__log_module __attribute__((unused)) = name

#define YH__LOG(level, ...)                                     \
    do {                                                        \
        if ((level) <= yh_log_level) {                          \
            yh_log_write((level), yh__log_module, __VA_ARGS__); \
        }                                                       \
    } while (0)

#define YH_ERR(...) YH__LOG(YH_LOG_ERR, __VA_ARGS__)
#define YH_WARN(...) YH__LOG(YH_LOG_WARN, __VA_ARGS__)
#define YH_INFO(...) YH__LOG(YH_LOG_INFO, __VA_ARGS__)
#define YH_DBG(...) YH__LOG(YH_LOG_DBG, __VA_ARGS__)
#define YH_WARN_RL(rl, ...)                                       \
    do {                                                          \
        if (YH_LOG_WARN <= yh_log_level && yh_ratelimit_ok(rl)) { \
            YH__LOG(YH_LOG_WARN, __VA_ARGS__);                    \
        }                                                         \
    } while (0)

#endif
