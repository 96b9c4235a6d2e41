/* MessagePack-RPC framing: split a byte stream into messages, decode one
 * message into its parts, and encode requests, responses and notifications.
 *
 *   request      [0, msgid, method, params]   params = [request] or
 *                                              [request, auth]
 *   response     [1, msgid, error, result]
 *   notification [2, method, params]
 */
#ifndef API_FRAME_H
#define API_FRAME_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../../fsm/base/buf.h"

enum api_msg_type {
    API_MSG_REQUEST = 0,
    API_MSG_RESPONSE = 1,
    API_MSG_NOTIFY = 2,
};

/* One decoded message. Pointers borrow from the message bytes and from the
 * zone passed to api_frame_decode(). */
struct api_msg
{
    int type;           /* enum api_msg_type */
    uint32_t msgid;     /* request/response */
    const char *method; /* request/notify: not NUL-terminated */
    size_t method_len;
    const msgpack_object *params;  /* request/notify: the params array */
    const msgpack_object *request; /* request: params[0] (a map) or NULL */
    const uint8_t *request_raw;    /* exact bytes of params[0] */
    size_t request_raw_len;
    const msgpack_object *auth;   /* request: params[1] or NULL */
    const msgpack_object *error;  /* response */
    const msgpack_object *result; /* response */
};

/* Incremental reader for one connection. */
struct api_frame_reader
{
    struct yh_buf in;   /* bytes received, not yet consumed */
    size_t consumed;    /* bytes of @in already returned as messages */
    size_t max_size;    /* message size limit */
    unsigned max_depth; /* nesting limit */
    size_t need;        /* the unfinished message needs at least this many
                           bytes from @consumed (0 = unknown): no re-scan
                           until they are there */
};

void api_frame_reader_init(struct api_frame_reader *r,
                           size_t max_size,
                           unsigned max_depth);
void api_frame_reader_release(struct api_frame_reader *r);
/* Append received bytes. Errors: YH_ENOMEM. */
int api_frame_reader_feed(struct api_frame_reader *r, const void *p, size_t n);
/* Next complete message: 0 with *msg, *len (valid until the next feed or
 * next call), YH_EAGAIN when none is complete yet, YH_EPROTO/YH_ETOOBIG
 * (stream unusable: close the connection after answering) with @errmsg. */
int api_frame_reader_next(struct api_frame_reader *r,
                          const uint8_t **msg,
                          size_t *len,
                          char *errmsg,
                          size_t errmsg_size);

/* Decode one pre-scanned message (from api_frame_reader_next or any
 * buffer that api_prescan accepted in full). Checks the RPC shape: array of
 * 4 (or 3 for notify), type, uint32 msgid, str method, array params with a
 * map first element. Returns 0, or YH_EPROTO with @errmsg; on YH_EPROTO,
 * *msgid_known is set to 1 if out->msgid holds the request's msgid, so the
 * caller can answer it. */
int api_frame_decode(const uint8_t *msg,
                     size_t len,
                     msgpack_zone *zone,
                     struct api_msg *out,
                     int *msgid_known,
                     char *errmsg,
                     size_t errmsg_size);

/* Encoders: append one whole message to @out. */
/* Request with a raw, already-encoded request map and optional auth (pass
 * public_key NULL for none). */
int api_frame_pack_request(struct yh_buf *out,
                           uint32_t msgid,
                           const char *method,
                           const uint8_t *request_raw,
                           size_t request_raw_len,
                           const char *public_key,
                           int64_t timestamp,
                           const char *signature_hex);
/* Response carrying a result map (raw bytes). If the map's RetCode is not
 * 0, it is sent as the error (result nil), per docs/api. */
int api_frame_pack_result(struct yh_buf *out,
                          uint32_t msgid,
                          const uint8_t *result_raw,
                          size_t result_len);
/* Error response {RetCode, Message, Action}. @action may be NULL or "". */
int api_frame_pack_error(struct yh_buf *out,
                         uint32_t msgid,
                         int retcode,
                         const char *message,
                         const char *action);
/* Notification [2, method, [params_raw]]. */
int api_frame_pack_notify(struct yh_buf *out,
                          const char *method,
                          const uint8_t *param_raw,
                          size_t param_len);

/* Read RetCode (int) of a raw result map; -1 if absent/undecodable. */
int api_frame_result_retcode(const uint8_t *result_raw, size_t len);

#endif
