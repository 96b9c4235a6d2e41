/* Blocking MessagePack-RPC client for the Yunhan API.
 *
 * One client holds at most one TCP connection, to one endpoint of a
 * comma-separated list, and moves to the next endpoint when that one fails.
 * A call signs the request (when keys are configured), sends it, and waits
 * for the response with the same msgid. Failover, inside one overall
 * deadline:
 *
 *   - cannot connect, or the connection breaks before the whole request was
 *     written: the server never saw the request; try the next endpoint.
 *   - RetCode 191 (no leader): wait 100-200 ms, retry on the next endpoint.
 *   - RetCode 190 (outcome unknown), or the connection breaks / times out
 *     after the request was written: the request may or may not have taken
 *     effect. It is resent (same bytes, so same RequestToken) on the next
 *     endpoint only when it is safe: the request carries a RequestToken, or
 *     the caller marked it idempotent (reads). Otherwise the caller gets
 *     YH_EUNKNOWN.
 *
 * Not thread-safe: one client per thread.
 */
#ifndef API_CLIENT_H
#define API_CLIENT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../../fsm/base/buf.h"

#define API_CLIENT_TIMEOUT_MS 10000  /* default per-attempt I/O timeout */
#define API_CLIENT_DEADLINE_MS 15000 /* default overall retry deadline */
#define API_CLIENT_MAX_ENDPOINTS 32

struct api_client_config
{
    const char *endpoints;   /* "host:port,host:port" (borrowed) */
    const char *public_key;  /* NULL = anonymous */
    const char *private_key; /* NULL = anonymous */
    int timeout_ms;          /* per-attempt I/O timeout (0 = default) */
    int deadline_ms;         /* overall deadline of one call incl. retries
                                (0 = default) */
};

struct api_client; /* opaque */

enum api_client_flags {
    API_CLIENT_F_IDEMPOTENT = 1 << 0, /* safe to resend after an unknown
                                         outcome even without a token */
    API_CLIENT_F_NO_RETRY = 1 << 1,   /* one endpoint attempt, no failover */
};

/* Create a client. Copies everything it needs from @cfg. Does not connect.
 * Errors: YH_EINVAL (bad endpoint list, key without its pair) with
 * @errmsg (YH_ERRMSG_SIZE), YH_ENOMEM. */
int api_client_new(struct api_client **out,
                   const struct api_client_config *cfg,
                   char *errmsg);

/* Close the connection and free. NULL is a no-op. */
void api_client_free(struct api_client *c);

/* Call @action with the msgpack request map @request_raw (@len bytes,
 * borrowed; sent exactly as is).
 * On 0, @result (reset first) holds the response's result map, or its error
 * map when the server answered an error: both carry RetCode (read it with
 * api_frame_result_retcode()). After the deadline a 191 or 190 answer is
 * returned as such.
 * Errors (no usable answer), with @errmsg (YH_ERRMSG_SIZE):
 *   YH_EUNAVAIL: no endpoint could be reached (request never sent);
 *   YH_EUNKNOWN: the request was sent but no answer came and it could not
 *                be resent safely (or the deadline passed while retrying);
 *   YH_EPROTO:   the server sent an undecodable response;
 *   YH_EINVAL:   @request_raw is not a msgpack map;
 *   YH_ENOMEM. */
int api_client_call(struct api_client *c,
                    const char *action,
                    const uint8_t *request_raw,
                    size_t len,
                    struct yh_buf *result,
                    char *errmsg);

/* As api_client_call, with enum api_client_flags. */
int api_client_call_flags(struct api_client *c,
                          const char *action,
                          const uint8_t *request_raw,
                          size_t len,
                          unsigned flags,
                          struct yh_buf *result,
                          char *errmsg);

/* Streaming call (Watch): send @action, deliver the response's result map
 * to @cb with @notify 0 (an error answer ends the call, returning 0 with
 * the error map in @result), then every notification's first parameter
 * with @notify 1. @cb returning non-zero stops; so does @max_events
 * notifications delivered (0 = no limit). @idle_timeout_ms bounds the wait
 * for each message (-1 = forever).
 * Returns 0 when stopped by @cb / @max_events or after an error answer;
 * YH_EUNAVAIL (could not connect), YH_EIO (connection lost or idle timeout
 * after the response: the caller may resume from the next index),
 * YH_EPROTO, YH_ENOMEM with @errmsg.
 * @obj is valid only during the callback. */
typedef int api_client_stream_cb(void *arg,
                                 int notify,
                                 const msgpack_object *obj);
int api_client_stream(struct api_client *c,
                      const char *action,
                      const uint8_t *request_raw,
                      size_t len,
                      unsigned max_events,
                      int idle_timeout_ms,
                      api_client_stream_cb *cb,
                      void *arg,
                      struct yh_buf *result,
                      char *errmsg);

/* Endpoint of the current (or last) connection, "" if none. */
const char *api_client_endpoint(const struct api_client *c);

/* Split "h:p,h:p" into at most @max entries of @size bytes each.
 * Returns the count, or -1 (with @errmsg) on a malformed list. */
int api_client_parse_endpoints(const char *list,
                               char (*out)[128],
                               unsigned max,
                               char *errmsg);

/* Monotonic clock in ms / ns (CLOCK_MONOTONIC). */
int64_t api_client_now_ms(void);
int64_t api_client_now_ns(void);

/* Open a TCP connection to "host:port" within @timeout_ms, with
 * TCP_NODELAY; the socket is left non-blocking (O_NONBLOCK) and
 * close-on-exec. Returns the fd, or -1 with @errmsg. */
int api_client_connect(const char *endpoint, int timeout_ms, char *errmsg);

#endif
