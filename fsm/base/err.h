/* Error and result codes: the one list every layer uses.
 *
 * A code below 500 is a RetCode: it is the result of a command or request and
 * travels on the wire (docs/errors.md documents each one; they are stable).
 * Codes from 500 up are local, transient failures (I/O, memory, corruption)
 * that never become the result of a command. 0 is success everywhere. */
#ifndef YH_ERR_H
#define YH_ERR_H

#include <stddef.h>

#define YH_ERRMSG_SIZE 256

/* X(name, code, text) */
#define YH_ERR_LIST(X)                                                       \
    X(YH_OK, 0, "ok")                                                        \
    X(YH_EPROTO, 100, "bad message")                                         \
    X(YH_ETOOBIG, 101, "message too large")                                  \
    X(YH_EACTION, 110, "unknown action")                                     \
    X(YH_EMISSING, 120, "missing parameter")                                 \
    X(YH_EINVAL, 121, "invalid parameter")                                   \
    X(YH_EAUTH, 130, "authentication failed")                                \
    X(YH_EPERM, 140, "permission denied")                                    \
    X(YH_ENOTFOUND, 150, "not found")                                        \
    X(YH_ECONFLICT, 160, "conflict")                                         \
    X(YH_EEXIST, 161, "already exists")                                      \
    X(YH_ESTATE, 162, "invalid state")                                       \
    X(YH_EQUOTA, 170, "quota exceeded")                                      \
    X(YH_EBALANCE, 171, "insufficient balance")                              \
    X(YH_ECAPACITY, 172, "insufficient capacity")                            \
    X(YH_ETOKEN, 180, "request token reused with another body")              \
    X(YH_EUNKNOWN, 190, "outcome unknown, retry with the same RequestToken") \
    X(YH_EUNAVAIL, 191, "no leader, cluster unavailable")                    \
    X(YH_EBUSY, 192, "server busy, retry later")                             \
    X(YH_ENOMEM, 500, "out of memory")                                       \
    X(YH_EIO, 501, "i/o error")                                              \
    X(YH_ECORRUPT, 502, "corrupt data")                                      \
    X(YH_EAGAIN, 503, "need more data")                                      \
    X(YH_ECANCELED, 504, "canceled")                                         \
    X(YH_EINTERNAL, 505, "internal error")

enum yh_err {
#define YH__ERR_ENUM(name, code, text) name = code,
    YH_ERR_LIST(YH__ERR_ENUM)
#undef YH__ERR_ENUM
};

/* Static text for @code ("unknown error" for codes not in the list). */
const char *yh_strerror(int code);

/* 1 if @code is a RetCode that may be the result of a command. */
int yh_err_is_result(int code);

#endif
