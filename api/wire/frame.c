/* MessagePack-RPC framing over a byte stream (see frame.h). */
#include "frame.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../fsm/base/err.h"
#include "prescan.h"
#include "prescan_int.h"

/* msgpack-c's unpacker keeps a fixed stack of 32 containers
 * (MSGPACK_EMBED_STACK_SIZE) and reports deeper input as a parse error, so
 * api_frame_decode() re-checks against that before handing bytes over. */
#define DECODE_MAX_DEPTH 32

/* A reader whose buffer grew past this for one big message gives the memory
 * back once the buffer is empty again. */
#define READER_KEEP_CAP (256u << 10)

static int fail(int rc, char *errmsg, size_t errmsg_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int rc, char *errmsg, size_t errmsg_size, const char *fmt, ...)
{
    va_list ap;

    if (errmsg != NULL && errmsg_size > 0) {
        va_start(ap, fmt);
        vsnprintf(errmsg, errmsg_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void api_frame_reader_init(struct api_frame_reader *r,
                           size_t max_size,
                           unsigned max_depth)
{
    yh_buf_init(&r->in);
    r->consumed = 0;
    r->max_size = max_size;
    r->max_depth = max_depth;
    r->need = 0;
}

void api_frame_reader_release(struct api_frame_reader *r)
{
    yh_buf_release(&r->in);
    r->consumed = 0;
}

int api_frame_reader_feed(struct api_frame_reader *r, const void *p, size_t n)
{
    size_t rest = r->in.len - r->consumed;

    /* Messages handed out by _next() die here (documented), so this is the
     * one place the consumed prefix may be dropped. Moving the rest only
     * when it is no longer than the consumed part keeps the copying linear
     * in the bytes received. */
    if (r->consumed > 0 && rest == 0) {
        r->in.len = 0;
        r->consumed = 0;
        if (r->in.cap > READER_KEEP_CAP) {
            yh_buf_release(&r->in);
        }
    } else if (r->consumed > 0 && rest <= r->consumed) {
        memmove(r->in.data, r->in.data + r->consumed, rest);
        r->in.len = rest;
        r->consumed = 0;
    }
    return yh_buf_append(&r->in, p, n);
}

int api_frame_reader_next(struct api_frame_reader *r,
                          const uint8_t **msg,
                          size_t *len,
                          char *errmsg,
                          size_t errmsg_size)
{
    size_t n = 0;
    size_t min_len = 0;
    int rc;

    if (r->consumed == r->in.len || r->in.len - r->consumed < r->need) {
        return YH_EAGAIN;
    }
    /* A peer sending a big message a byte at a time would otherwise make
     * us re-scan the same prefix after every read (quadratic). */
    rc = api__prescan_need(r->in.data + r->consumed, r->in.len - r->consumed,
                           r->max_size, r->max_depth, &n, &min_len, errmsg,
                           errmsg_size);
    if (rc == YH_EAGAIN) {
        r->need = min_len;
        return rc;
    }
    if (rc != 0) {
        return rc;
    }
    r->need = 0;
    *msg = r->in.data + r->consumed;
    *len = n;
    r->consumed += n;
    return 0;
}

/* Byte range of params[0] in @msg: skip the outer array head and the
 * @n_before elements ahead of params, then the params head. */
static int locate_param0(const uint8_t *msg,
                         size_t len,
                         unsigned n_before,
                         const uint8_t **raw,
                         size_t *raw_len)
{
    struct api__mp_head h;
    size_t off = 0;
    size_t n;
    int rc;

    rc = api__mp_head(msg, len, &h);
    if (rc != 0 || h.kind != API__MP_ARRAY) {
        return YH_EPROTO;
    }
    off += h.head_size;
    for (unsigned i = 0; i < n_before; i++) {
        rc = api__prescan_skip(msg + off, len - off, &n);
        if (rc != 0) {
            return YH_EPROTO;
        }
        off += n;
    }
    rc = api__mp_head(msg + off, len - off, &h);
    if (rc != 0 || h.kind != API__MP_ARRAY || h.n == 0) {
        return YH_EPROTO;
    }
    off += h.head_size;
    rc = api__prescan_skip(msg + off, len - off, &n);
    if (rc != 0) {
        return YH_EPROTO;
    }
    *raw = msg + off;
    *raw_len = n;
    return 0;
}

static int is_uint32(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
           o->via.u64 <= UINT32_MAX;
}

static int decode_request(const uint8_t *msg,
                          size_t len,
                          const msgpack_object_array *a,
                          struct api_msg *out,
                          char *errmsg,
                          size_t errmsg_size)
{
    const msgpack_object *params;

    if (a->ptr[2].type != MSGPACK_OBJECT_STR) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "request method must be a string");
    }
    out->method = a->ptr[2].via.str.ptr;
    out->method_len = a->ptr[2].via.str.size;
    params = &a->ptr[3];
    if (params->type != MSGPACK_OBJECT_ARRAY) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "request params must be an array");
    }
    out->params = params;
    if (params->via.array.size < 1 || params->via.array.size > 2) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "request params must be [request] or [request, auth], "
                    "got %u elements",
                    params->via.array.size);
    }
    if (params->via.array.ptr[0].type != MSGPACK_OBJECT_MAP) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "request params[0] must be a map");
    }
    out->request = &params->via.array.ptr[0];
    if (params->via.array.size == 2) {
        const msgpack_object *auth = &params->via.array.ptr[1];
        if (auth->type == MSGPACK_OBJECT_MAP) {
            out->auth = auth;
        } else if (auth->type != MSGPACK_OBJECT_NIL) {
            return fail(YH_EPROTO, errmsg, errmsg_size,
                        "request params[1] (auth) must be a map");
        }
    }
    if (locate_param0(msg, len, 3, &out->request_raw, &out->request_raw_len) !=
        0) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "cannot locate the request bytes");
    }
    return 0;
}

static int decode_notify(const uint8_t *msg,
                         size_t len,
                         const msgpack_object_array *a,
                         struct api_msg *out,
                         char *errmsg,
                         size_t errmsg_size)
{
    const msgpack_object *params;

    if (a->ptr[1].type != MSGPACK_OBJECT_STR) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "notification method must be a string");
    }
    out->method = a->ptr[1].via.str.ptr;
    out->method_len = a->ptr[1].via.str.size;
    params = &a->ptr[2];
    if (params->type != MSGPACK_OBJECT_ARRAY) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "notification params must be an array");
    }
    out->params = params;
    if (params->via.array.size >= 1 &&
        params->via.array.ptr[0].type == MSGPACK_OBJECT_MAP) {
        out->request = &params->via.array.ptr[0];
        if (locate_param0(msg, len, 2, &out->request_raw,
                          &out->request_raw_len) != 0) {
            return fail(YH_EPROTO, errmsg, errmsg_size,
                        "cannot locate the notification bytes");
        }
    }
    return 0;
}

int api_frame_decode(const uint8_t *msg,
                     size_t len,
                     msgpack_zone *zone,
                     struct api_msg *out,
                     int *msgid_known,
                     char *errmsg,
                     size_t errmsg_size)
{
    msgpack_object root;
    const msgpack_object_array *a;
    msgpack_unpack_return ur;
    size_t n = 0;
    size_t off = 0;
    uint64_t type;
    int rc;

    memset(out, 0, sizeof(*out));
    *msgid_known = 0;
    if (len == 0) {
        return fail(YH_EPROTO, errmsg, errmsg_size, "empty message");
    }
    /* Callers pass pre-scanned bytes, but msgpack-c must never see
     * unchecked input, so the (cheap, linear) scan runs again here. The
     * size limit was the reader's business; what matters here is that
     * every declared element is present in @msg, i.e. the scan completes
     * within @len. */
    rc = api_prescan(msg, len, SIZE_MAX, DECODE_MAX_DEPTH, &n, errmsg,
                     errmsg_size);
    if (rc == YH_EAGAIN) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "truncated message: its contents run past its %zu "
                    "bytes",
                    len);
    }
    if (rc != 0) {
        return YH_EPROTO;
    }
    if (n != len) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "%zu trailing bytes after the message", len - n);
    }
    ur = msgpack_unpack((const char *)msg, len, &off, zone, &root);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        return fail(YH_ENOMEM, errmsg, errmsg_size,
                    "out of memory decoding a %zu-byte message", len);
    }
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        return fail(YH_EPROTO, errmsg, errmsg_size, "undecodable message");
    }
    if (root.type != MSGPACK_OBJECT_ARRAY) {
        return fail(YH_EPROTO, errmsg, errmsg_size, "message is not an array");
    }
    a = &root.via.array;
    if (a->size == 0 || a->ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a->ptr[0].via.u64 > API_MSG_NOTIFY) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "message type must be 0 (request), 1 (response) or 2 "
                    "(notification)");
    }
    type = a->ptr[0].via.u64;
    out->type = (int)type;
    if (type == API_MSG_NOTIFY) {
        if (a->size != 3) {
            return fail(YH_EPROTO, errmsg, errmsg_size,
                        "notification must be an array of 3, got %u", a->size);
        }
        return decode_notify(msg, len, a, out, errmsg, errmsg_size);
    }
    /* Known msgid first, so that a request of the wrong shape can still be
     * answered. */
    if (a->size >= 2 && is_uint32(&a->ptr[1])) {
        out->msgid = (uint32_t)a->ptr[1].via.u64;
        *msgid_known = 1;
    }
    if (a->size != 4) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "%s must be an array of 4, got %u",
                    type == API_MSG_REQUEST ? "request" : "response", a->size);
    }
    if (!*msgid_known) {
        return fail(YH_EPROTO, errmsg, errmsg_size,
                    "msgid must be an unsigned 32-bit integer");
    }
    if (type == API_MSG_RESPONSE) {
        out->error = &a->ptr[2];
        out->result = &a->ptr[3];
        return 0;
    }
    return decode_request(msg, len, a, out, errmsg, errmsg_size);
}

/* 1 if @raw[0..len) is exactly one well-formed msgpack object (a map when
 * @want_map). */
static int is_one_object(const uint8_t *raw, size_t len, int want_map)
{
    struct api__mp_head h;
    size_t n;

    if (raw == NULL || len == 0 || api__prescan_skip(raw, len, &n) != 0 ||
        n != len) {
        return 0;
    }
    if (want_map &&
        (api__mp_head(raw, len, &h) != 0 || h.kind != API__MP_MAP)) {
        return 0;
    }
    return 1;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);

    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

/* Undo a partly written message: its bytes are cut off again. */
static int pack_done(struct yh_buf *out, size_t start, int bad)
{
    if (bad) {
        out->len = start;
        return YH_ENOMEM;
    }
    return 0;
}

int api_frame_pack_request(struct yh_buf *out,
                           uint32_t msgid,
                           const char *method,
                           const uint8_t *request_raw,
                           size_t request_raw_len,
                           const char *public_key,
                           int64_t timestamp,
                           const char *signature_hex)
{
    size_t start = out->len;
    msgpack_packer pk;
    int bad = 0;

    if (method == NULL || !is_one_object(request_raw, request_raw_len, 1) ||
        (public_key != NULL && signature_hex == NULL)) {
        return YH_EINVAL;
    }
    msgpack_packer_init(&pk, out, yh_buf_msgpack_write);
    bad |= msgpack_pack_array(&pk, 4);
    bad |= msgpack_pack_uint8(&pk, API_MSG_REQUEST);
    bad |= msgpack_pack_uint32(&pk, msgid);
    bad |= pack_str(&pk, method);
    bad |= msgpack_pack_array(&pk, public_key != NULL ? 2 : 1);
    bad |= yh_buf_append(out, request_raw, request_raw_len) != 0;
    if (public_key != NULL) {
        bad |= msgpack_pack_map(&pk, 3);
        bad |= pack_str(&pk, "PublicKey");
        bad |= pack_str(&pk, public_key);
        bad |= pack_str(&pk, "Timestamp");
        bad |= msgpack_pack_int64(&pk, timestamp);
        bad |= pack_str(&pk, "Signature");
        bad |= pack_str(&pk, signature_hex);
    }
    return pack_done(out, start, bad);
}

int api_frame_pack_result(struct yh_buf *out,
                          uint32_t msgid,
                          const uint8_t *result_raw,
                          size_t result_len)
{
    size_t start = out->len;
    msgpack_packer pk;
    int is_error;
    int bad = 0;

    if (!is_one_object(result_raw, result_len, 1)) {
        return YH_EINVAL;
    }
    /* A map without a readable RetCode is not a success either. */
    is_error = api_frame_result_retcode(result_raw, result_len) != 0;
    msgpack_packer_init(&pk, out, yh_buf_msgpack_write);
    bad |= msgpack_pack_array(&pk, 4);
    bad |= msgpack_pack_uint8(&pk, API_MSG_RESPONSE);
    bad |= msgpack_pack_uint32(&pk, msgid);
    if (is_error) {
        bad |= yh_buf_append(out, result_raw, result_len) != 0;
        bad |= msgpack_pack_nil(&pk);
    } else {
        bad |= msgpack_pack_nil(&pk);
        bad |= yh_buf_append(out, result_raw, result_len) != 0;
    }
    return pack_done(out, start, bad);
}

int api_frame_pack_error(struct yh_buf *out,
                         uint32_t msgid,
                         int retcode,
                         const char *message,
                         const char *action)
{
    size_t start = out->len;
    msgpack_packer pk;
    int bad = 0;

    if (message == NULL) {
        message = yh_strerror(retcode);
    }
    msgpack_packer_init(&pk, out, yh_buf_msgpack_write);
    bad |= msgpack_pack_array(&pk, 4);
    bad |= msgpack_pack_uint8(&pk, API_MSG_RESPONSE);
    bad |= msgpack_pack_uint32(&pk, msgid);
    bad |= msgpack_pack_map(&pk, 3);
    bad |= pack_str(&pk, "RetCode");
    bad |= msgpack_pack_int(&pk, retcode);
    bad |= pack_str(&pk, "Message");
    bad |= pack_str(&pk, message);
    bad |= pack_str(&pk, "Action");
    bad |= pack_str(&pk, action != NULL ? action : "");
    bad |= msgpack_pack_nil(&pk);
    return pack_done(out, start, bad);
}

int api_frame_pack_notify(struct yh_buf *out,
                          const char *method,
                          const uint8_t *param_raw,
                          size_t param_len)
{
    size_t start = out->len;
    msgpack_packer pk;
    int bad = 0;

    if (method == NULL || !is_one_object(param_raw, param_len, 0)) {
        return YH_EINVAL;
    }
    msgpack_packer_init(&pk, out, yh_buf_msgpack_write);
    bad |= msgpack_pack_array(&pk, 3);
    bad |= msgpack_pack_uint8(&pk, API_MSG_NOTIFY);
    bad |= pack_str(&pk, method);
    bad |= msgpack_pack_array(&pk, 1);
    bad |= yh_buf_append(out, param_raw, param_len) != 0;
    return pack_done(out, start, bad);
}

/* Integer value of the object at @p (whose head is @h), if it is one. */
static int read_int(const uint8_t *p, const struct api__mp_head *h, int64_t *v)
{
    uint64_t u = 0;
    uint8_t b = h->type;

    if (b <= 0x7f) {
        *v = b;
        return 0;
    }
    if (b >= 0xe0) {
        *v = (int8_t)b;
        return 0;
    }
    if (b < 0xcc || b > 0xd3) {
        return YH_EINVAL;
    }
    for (size_t i = 1; i < h->head_size; i++) {
        u = (u << 8) | p[i];
    }
    if (b <= 0xcf) {
        if (u > INT64_MAX) {
            return YH_EINVAL;
        }
        *v = (int64_t)u;
        return 0;
    }
    switch (b) {
    case 0xd0:
        *v = (int8_t)u;
        break;
    case 0xd1:
        *v = (int16_t)u;
        break;
    case 0xd2:
        *v = (int32_t)u;
        break;
    default:
        *v = (int64_t)u;
        break;
    }
    return 0;
}

int api_frame_result_retcode(const uint8_t *result_raw, size_t len)
{
    static const char key[] = "RetCode";
    struct api__mp_head h;
    struct api__mp_head vh;
    size_t off;
    size_t n;
    int64_t v;

    if (!is_one_object(result_raw, len, 1)) {
        return -1;
    }
    api__mp_head(result_raw, len, &h);
    off = h.head_size;
    for (uint64_t i = 0; i < h.n; i++) {
        struct api__mp_head kh;
        int is_key;

        /* The whole map was validated, so every head and skip succeeds. */
        if (api__mp_head(result_raw + off, len - off, &kh) != 0) {
            return -1;
        }
        is_key = kh.kind == API__MP_BYTES &&
                 ((kh.type >= 0xa0 && kh.type <= 0xbf) ||
                  (kh.type >= 0xd9 && kh.type <= 0xdb)) &&
                 kh.n == sizeof(key) - 1 &&
                 memcmp(result_raw + off + kh.head_size, key, kh.n) == 0;
        if (api__prescan_skip(result_raw + off, len - off, &n) != 0) {
            return -1;
        }
        off += n;
        if (is_key) {
            if (api__mp_head(result_raw + off, len - off, &vh) != 0 ||
                read_int(result_raw + off, &vh, &v) != 0 || v < 0 ||
                v > INT32_MAX) {
                return -1;
            }
            return (int)v;
        }
        if (api__prescan_skip(result_raw + off, len - off, &n) != 0) {
            return -1;
        }
        off += n;
    }
    return -1;
}
