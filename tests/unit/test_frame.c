/* MessagePack-RPC framing: reader, decode shapes, encoders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "api/wire/frame.h"
#include "api/wire/prescan.h"
#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"

static char errmsg[YH_ERRMSG_SIZE];

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* The request map {"Limit": 20, "UserIDs.0": "u-1"}. */
static void pack_request_map(struct yh_buf *b)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "Limit");
    msgpack_pack_int(&pk, 20);
    pack_str(&pk, "UserIDs.0");
    pack_str(&pk, "u-1");
}

struct decoded
{
    msgpack_zone zone;
    struct api_msg m;
    int known;
    int rc;
};

static void decode(struct decoded *d, const struct yh_buf *b)
{
    msgpack_zone_init(&d->zone, 1024);
    errmsg[0] = '\0';
    d->known = -1;
    d->rc = api_frame_decode(b->data, b->len, &d->zone, &d->m, &d->known,
                             errmsg, sizeof(errmsg));
}

static void decoded_done(struct decoded *d)
{
    msgpack_zone_destroy(&d->zone);
}

static void test_decode_request(void **state)
{
    struct yh_buf req = YH_BUF_INIT;
    struct yh_buf msg = YH_BUF_INIT;
    struct decoded d;
    msgpack_packer pk;

    (void)state;
    pack_request_map(&req);
    msgpack_packer_init(&pk, &msg, yh_buf_msgpack_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 4000000000u);
    pack_str(&pk, "DescribeUser");
    msgpack_pack_array(&pk, 1);
    yh_buf_append(&msg, req.data, req.len);

    decode(&d, &msg);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.known, 1);
    assert_int_equal(d.m.type, API_MSG_REQUEST);
    assert_int_equal(d.m.msgid, 4000000000u);
    assert_int_equal(d.m.method_len, 12);
    assert_memory_equal(d.m.method, "DescribeUser", 12);
    assert_non_null(d.m.params);
    assert_non_null(d.m.request);
    assert_null(d.m.auth);
    assert_int_equal(d.m.request_raw_len, req.len);
    assert_ptr_equal(d.m.request_raw, msg.data + msg.len - req.len);
    assert_memory_equal(d.m.request_raw, req.data, req.len);
    assert_non_null(yh_mp_get(d.m.request, "Limit"));
    decoded_done(&d);
    yh_buf_release(&req);
    yh_buf_release(&msg);
}

static void test_decode_request_auth(void **state)
{
    struct yh_buf req = YH_BUF_INIT;
    struct yh_buf msg = YH_BUF_INIT;
    struct decoded d;
    msgpack_packer pk;
    const char *sig =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    size_t req_off;

    (void)state;
    pack_request_map(&req);
    /* Long method name (str8) and msgid that needs uint32 on the wire, so
     * the raw range is not at a fixed offset. */
    msgpack_packer_init(&pk, &msg, yh_buf_msgpack_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 70000);
    pack_str(&pk, "AVeryLongActionNameThatNeedsAStr8HeaderInMsgpack");
    msgpack_pack_array(&pk, 2);
    req_off = msg.len;
    yh_buf_append(&msg, req.data, req.len);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "PublicKey");
    pack_str(&pk, "pk-1");
    pack_str(&pk, "Timestamp");
    msgpack_pack_int64(&pk, 1700000000);
    pack_str(&pk, "Signature");
    pack_str(&pk, sig);

    decode(&d, &msg);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.m.msgid, 70000);
    assert_non_null(d.m.auth);
    assert_ptr_equal(d.m.request_raw, msg.data + req_off);
    assert_int_equal(d.m.request_raw_len, req.len);
    assert_memory_equal(d.m.request_raw, req.data, req.len);
    assert_non_null(yh_mp_get(d.m.auth, "Signature"));
    decoded_done(&d);

    /* The same through the encoder. */
    yh_buf_reset(&msg);
    assert_int_equal(api_frame_pack_request(&msg, 9, "CreateUser", req.data,
                                            req.len, "pk-2", 1700000001, sig),
                     0);
    decode(&d, &msg);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.m.msgid, 9);
    assert_memory_equal(d.m.method, "CreateUser", 10);
    assert_int_equal(d.m.request_raw_len, req.len);
    assert_memory_equal(d.m.request_raw, req.data, req.len);
    assert_non_null(d.m.auth);
    assert_true(yh_mp_eq(yh_mp_get(d.m.auth, "PublicKey"), "pk-2"));
    assert_true(yh_mp_eq(yh_mp_get(d.m.auth, "Signature"), sig));
    assert_int_equal(yh_mp_get(d.m.auth, "Timestamp")->via.u64, 1700000001);
    decoded_done(&d);

    yh_buf_reset(&msg);
    assert_int_equal(api_frame_pack_request(&msg, 10, "DescribeCluster",
                                            req.data, req.len, NULL, 0, NULL),
                     0);
    decode(&d, &msg);
    assert_int_equal(d.rc, 0);
    assert_null(d.m.auth);
    assert_int_equal(d.m.params->via.array.size, 1);
    assert_memory_equal(d.m.request_raw, req.data, req.len);
    decoded_done(&d);
    yh_buf_release(&req);
    yh_buf_release(&msg);
}

struct shape
{
    const char *name;
    const char *bytes; /* the message */
    size_t len;
    int known;       /* expected *msgid_known */
    uint32_t msgid;  /* when known */
    const char *why; /* substring of errmsg */
};

#define SHAPE(name, lit, known, msgid, why)           \
    {                                                 \
        name, lit, sizeof(lit) - 1, known, msgid, why \
    }

static void test_decode_bad_shapes(void **state)
{
    static const struct shape shapes[] = {
        SHAPE("map", "\x81\xa1k\x01", 0, 0, "not an array"),
        SHAPE("str",
              "\xa3"
              "abc",
              0, 0, "not an array"),
        SHAPE("empty", "\x90", 0, 0, "message type"),
        SHAPE("type 3", "\x94\x03\x01\xa1M\x91\x80", 0, 0, "message type"),
        SHAPE("type str", "\x94\xa1\x30\x01\xa1M\x91\x80", 0, 0,
              "message type"),
        SHAPE("type negative", "\x94\xff\x01\xa1M\x91\x80", 0, 0,
              "message type"),
        SHAPE("size 3", "\x93\x00\x05\xa1M", 1, 5, "array of 4"),
        SHAPE("size 5", "\x95\x00\x06\xa1M\x91\x80\xc0", 1, 6, "array of 4"),
        SHAPE("size 1", "\x91\x00", 0, 0, "array of 4"),
        SHAPE("msgid str",
              "\x94\x00\xa1"
              "1\xa1M\x91\x80",
              0, 0, "msgid"),
        SHAPE("msgid negative", "\x94\x00\xff\xa1M\x91\x80", 0, 0, "msgid"),
        SHAPE("msgid too big",
              "\x94\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00"
              "\xa1M\x91\x80",
              0, 0, "msgid"),
        SHAPE("method int", "\x94\x00\x07\x01\x91\x80", 1, 7, "method"),
        SHAPE("method bin", "\x94\x00\x07\xc4\x01M\x91\x80", 1, 7, "method"),
        SHAPE("params map", "\x94\x00\x08\xa1M\x80", 1, 8, "params"),
        SHAPE("params empty", "\x94\x00\x08\xa1M\x90", 1, 8, "params"),
        SHAPE("params 3", "\x94\x00\x08\xa1M\x93\x80\x80\x80", 1, 8, "params"),
        SHAPE("param0 array", "\x94\x00\x09\xa1M\x91\x90", 1, 9, "params[0]"),
        SHAPE("param0 nil", "\x94\x00\x09\xa1M\x91\xc0", 1, 9, "params[0]"),
        SHAPE("auth str", "\x94\x00\x0a\xa1M\x92\x80\xa1x", 1, 10, "params[1]"),
        SHAPE("notify size", "\x94\x02\xa1M\x91\x80\xc0", 0, 0, "array of 3"),
        SHAPE("notify method", "\x93\x02\x01\x91\x80", 0, 0, "method"),
        SHAPE("notify params", "\x93\x02\xa1M\x80", 0, 0, "params"),
        SHAPE("trailing", "\x94\x00\x07\xa1M\x91\x80\x00", 0, 0, "trailing"),
        SHAPE("truncated", "\x94\x00\x07\xa1M\x91", 0, 0, "truncated"),
        SHAPE("0xc1", "\x94\x00\x07\xa1M\x91\x81\xc1\x01", 0, 0, "0xc1"),
        SHAPE("huge array", "\x94\x00\x07\xa1M\x91\xdd\xff\xff\xff\xff", 0, 0,
              "truncated"),
    };
    msgpack_zone zone;
    struct api_msg m;
    int known;
    int rc;

    (void)state;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        const struct shape *s = &shapes[i];
        msgpack_zone_init(&zone, 256);
        errmsg[0] = '\0';
        known = -1;
        rc = api_frame_decode((const uint8_t *)s->bytes, s->len, &zone, &m,
                              &known, errmsg, sizeof(errmsg));
        if (rc != YH_EPROTO || known != s->known ||
            (known && m.msgid != s->msgid) || strstr(errmsg, s->why) == NULL) {
            fail_msg("%s: rc %d known %d msgid %u errmsg '%s'", s->name, rc,
                     known, m.msgid, errmsg);
        }
        msgpack_zone_destroy(&zone);
    }
    msgpack_zone_init(&zone, 256);
    assert_int_equal(api_frame_decode((const uint8_t *)"", 0, &zone, &m, &known,
                                      errmsg, sizeof(errmsg)),
                     YH_EPROTO);
    /* nil auth is the same as no auth. */
    assert_int_equal(
        api_frame_decode((const uint8_t *)"\x94\x00\x07\xa1M\x92\x80\xc0", 8,
                         &zone, &m, &known, errmsg, sizeof(errmsg)),
        0);
    assert_null(m.auth);
    assert_int_equal(m.request_raw_len, 1);
    assert_int_equal(m.request_raw[0], 0x80);
    msgpack_zone_destroy(&zone);
}

static void test_reader_pipelined(void **state)
{
    struct api_frame_reader r;
    struct yh_buf stream = YH_BUF_INIT;
    struct yh_buf req = YH_BUF_INIT;
    size_t ends[3];
    const uint8_t *msg;
    size_t len;
    size_t start;

    (void)state;
    pack_request_map(&req);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(
            api_frame_pack_request(&stream, i, "DescribeUser", req.data,
                                   req.len, NULL, 0, NULL),
            0);
        ends[i] = stream.len;
    }
    api_frame_reader_init(&r, API_MAX_MESSAGE, API_MAX_DEPTH);
    assert_int_equal(
        api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)),
        YH_EAGAIN);
    /* All three in one feed, plus the first byte of a fourth. */
    assert_int_equal(api_frame_reader_feed(&r, stream.data, stream.len), 0);
    assert_int_equal(api_frame_reader_feed(&r, "\x94", 1), 0);
    start = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)), 0);
        assert_int_equal(len, ends[i] - start);
        assert_memory_equal(msg, stream.data + start, len);
        start = ends[i];
    }
    assert_int_equal(
        api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)),
        YH_EAGAIN);
    /* The rest of the fourth message completes it. */
    assert_int_equal(api_frame_reader_feed(&r, stream.data + 1, ends[0] - 1),
                     0);
    assert_int_equal(
        api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)), 0);
    assert_int_equal(len, ends[0]);
    assert_memory_equal(msg, stream.data, len);
    api_frame_reader_release(&r);

    /* Byte by byte. */
    api_frame_reader_init(&r, API_MAX_MESSAGE, API_MAX_DEPTH);
    start = 0;
    for (size_t k = 0, i = 0; k < stream.len; k++) {
        int rc;
        assert_int_equal(api_frame_reader_feed(&r, stream.data + k, 1), 0);
        rc = api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg));
        if (k + 1 == ends[i]) {
            assert_int_equal(rc, 0);
            assert_int_equal(len, ends[i] - start);
            start = ends[i++];
        } else {
            assert_int_equal(rc, YH_EAGAIN);
        }
    }
    api_frame_reader_release(&r);
    yh_buf_release(&stream);
    yh_buf_release(&req);
}

/* Many messages in random chunks: the reader compacts its buffer and never
 * loses or reorders bytes. */
static void test_reader_chunks(void **state)
{
    struct api_frame_reader r;
    struct yh_buf stream = YH_BUF_INIT;
    struct yh_buf body = YH_BUF_INIT;
    msgpack_packer pk;
    const uint8_t *msg;
    size_t len;
    size_t off = 0;
    uint32_t next_id = 0;
    msgpack_zone zone;
    struct api_msg m;
    int known;
    const int count = 3000;

    (void)state;
    srand(3);
    for (int i = 0; i < count; i++) {
        size_t pad = (size_t)(rand() % 3000);
        char *filler = calloc(1, pad + 1);
        yh_buf_reset(&body);
        msgpack_packer_init(&pk, &body, yh_buf_msgpack_write);
        msgpack_pack_map(&pk, 1);
        pack_str(&pk, "Pad");
        msgpack_pack_str_with_body(&pk, filler, pad);
        free(filler);
        assert_int_equal(
            api_frame_pack_request(&stream, (uint32_t)i, "M", body.data,
                                   body.len, NULL, 0, NULL),
            0);
    }
    api_frame_reader_init(&r, 8192, API_MAX_DEPTH);
    msgpack_zone_init(&zone, 1024);
    while (off < stream.len) {
        size_t chunk = (size_t)(rand() % 20000) + 1;
        if (chunk > stream.len - off) {
            chunk = stream.len - off;
        }
        assert_int_equal(api_frame_reader_feed(&r, stream.data + off, chunk),
                         0);
        off += chunk;
        while (api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)) ==
               0) {
            assert_int_equal(api_frame_decode(msg, len, &zone, &m, &known,
                                              errmsg, sizeof(errmsg)),
                             0);
            assert_int_equal(m.msgid, next_id);
            next_id++;
            msgpack_zone_clear(&zone);
        }
        /* Unconsumed bytes never exceed one message plus one chunk. */
        assert_true(r.in.len - r.consumed < 8192 + 20000);
        /* ... and the consumed prefix is dropped: memory stays bounded
         * although megabytes pass through. */
        assert_true(r.in.cap <= 256 * 1024);
    }
    assert_int_equal(next_id, count);
    msgpack_zone_destroy(&zone);
    api_frame_reader_release(&r);
    yh_buf_release(&stream);
    yh_buf_release(&body);
}

static void test_reader_errors(void **state)
{
    struct api_frame_reader r;
    const uint8_t *msg;
    size_t len;
    uint8_t big[64];

    (void)state;
    api_frame_reader_init(&r, API_MAX_MESSAGE, API_MAX_DEPTH);
    assert_int_equal(api_frame_reader_feed(&r, "\x01\xdd\xff\xff\xff\xff", 6),
                     0);
    assert_int_equal(
        api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)), 0);
    assert_int_equal(len, 1);
    assert_int_equal(
        api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)),
        YH_EPROTO);
    assert_non_null(strstr(errmsg, "array"));
    /* Sticky: the stream stays unusable. */
    assert_int_equal(
        api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)),
        YH_EPROTO);
    api_frame_reader_release(&r);

    /* Over the configured size: a 64-byte str against a 32-byte limit. */
    api_frame_reader_init(&r, 32, API_MAX_DEPTH);
    memset(big, 'x', sizeof(big));
    big[0] = 0xd9;
    big[1] = 62;
    assert_int_equal(api_frame_reader_feed(&r, big, 2), 0);
    assert_int_equal(
        api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)),
        YH_ETOOBIG);
    api_frame_reader_release(&r);

    /* Depth limit of the reader. */
    api_frame_reader_init(&r, 1024, 2);
    assert_int_equal(api_frame_reader_feed(&r, "\x91\x91\x90", 3), 0);
    assert_int_equal(
        api_frame_reader_next(&r, &msg, &len, errmsg, sizeof(errmsg)),
        YH_EPROTO);
    assert_non_null(strstr(errmsg, "nesting"));
    api_frame_reader_release(&r);
}

/* {"RetCode": rc, "Action": "XResponse", "Message": msg} */
static void pack_result_map(struct yh_buf *b, int with_code, int64_t rc)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, with_code ? 3 : 2);
    pack_str(&pk, "Action");
    pack_str(&pk, "XResponse");
    pack_str(&pk, "Message");
    pack_str(&pk, "");
    if (with_code) {
        pack_str(&pk, "RetCode");
        msgpack_pack_int64(&pk, rc);
    }
}

static void test_pack_result(void **state)
{
    struct yh_buf res = YH_BUF_INIT;
    struct yh_buf msg = YH_BUF_INIT;
    struct decoded d;
    size_t before;

    (void)state;
    pack_result_map(&res, 1, 0);
    assert_int_equal(api_frame_result_retcode(res.data, res.len), 0);
    assert_int_equal(api_frame_pack_result(&msg, 77, res.data, res.len), 0);
    decode(&d, &msg);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.m.type, API_MSG_RESPONSE);
    assert_int_equal(d.m.msgid, 77);
    assert_int_equal(d.m.error->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(d.m.result->type, MSGPACK_OBJECT_MAP);
    /* The raw bytes are copied as they are: the result is the tail. */
    assert_memory_equal(msg.data + msg.len - res.len, res.data, res.len);
    decoded_done(&d);

    yh_buf_reset(&res);
    yh_buf_reset(&msg);
    pack_result_map(&res, 1, 150);
    assert_int_equal(api_frame_result_retcode(res.data, res.len), 150);
    assert_int_equal(api_frame_pack_result(&msg, 78, res.data, res.len), 0);
    decode(&d, &msg);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.m.error->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(d.m.result->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(yh_mp_get(d.m.error, "RetCode")->via.u64, 150);
    decoded_done(&d);

    /* No RetCode: not a success. */
    yh_buf_reset(&res);
    yh_buf_reset(&msg);
    pack_result_map(&res, 0, 0);
    assert_int_equal(api_frame_result_retcode(res.data, res.len), -1);
    assert_int_equal(api_frame_pack_result(&msg, 79, res.data, res.len), 0);
    decode(&d, &msg);
    assert_int_equal(d.m.error->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(d.m.result->type, MSGPACK_OBJECT_NIL);
    decoded_done(&d);

    /* Not a map, or not one whole object: refused, @out untouched. */
    before = msg.len;
    assert_int_equal(api_frame_pack_result(&msg, 1, (const uint8_t *)"\x90", 1),
                     YH_EINVAL);
    assert_int_equal(
        api_frame_pack_result(&msg, 1, (const uint8_t *)"\x81\xa1k", 3),
        YH_EINVAL);
    assert_int_equal(
        api_frame_pack_result(&msg, 1, (const uint8_t *)"\x80\x80", 2),
        YH_EINVAL);
    assert_int_equal(
        api_frame_pack_request(&msg, 1, "M", (const uint8_t *)"\x01", 1, NULL,
                               0, NULL),
        YH_EINVAL);
    assert_int_equal(api_frame_pack_notify(&msg, "M", NULL, 0), YH_EINVAL);
    assert_int_equal(msg.len, before);
    yh_buf_release(&res);
    yh_buf_release(&msg);
}

static void test_result_retcode(void **state)
{
    (void)state;
    /* {"RetCode": 7} */
    assert_int_equal(
        api_frame_result_retcode((const uint8_t *)"\x81\xa7RetCode\x07", 10),
        7);
    /* uint16, after another key whose value is a nested map */
    assert_int_equal(
        api_frame_result_retcode((const uint8_t *)"\x82\xa1x\x81\xa7RetCode\x01"
                                                  "\xa7RetCode\xcd\x01\x90",
                                 24),
        400);
    /* str8 key */
    assert_int_equal(api_frame_result_retcode(
                         (const uint8_t *)"\x81\xd9\x07RetCode\xcc\xbe", 12),
                     190);
    /* bin key is not the key; negative, string and float values are not
     * RetCodes */
    assert_int_equal(api_frame_result_retcode(
                         (const uint8_t *)"\x81\xc4\x07RetCode\x00", 11),
                     -1);
    assert_int_equal(
        api_frame_result_retcode((const uint8_t *)"\x81\xa7RetCode\xff", 10),
        -1);
    assert_int_equal(api_frame_result_retcode(
                         (const uint8_t *)"\x81\xa7RetCode\xa1\x30", 11),
                     -1);
    assert_int_equal(api_frame_result_retcode(
                         (const uint8_t *)"\x81\xa7RetCode\xca\0\0\0\0", 14),
                     -1);
    assert_int_equal(api_frame_result_retcode((const uint8_t *)"\x90", 1), -1);
    assert_int_equal(
        api_frame_result_retcode((const uint8_t *)"\x81\xa7RetCode", 9), -1);
    assert_int_equal(api_frame_result_retcode(NULL, 0), -1);
}

static void test_pack_error_notify(void **state)
{
    struct yh_buf msg = YH_BUF_INIT;
    struct yh_buf ev = YH_BUF_INIT;
    struct decoded d;
    const msgpack_object *o;

    (void)state;
    assert_int_equal(
        api_frame_pack_error(&msg, 5, YH_EAUTH, "signature mismatch",
                             "CreateUserResponse"),
        0);
    decode(&d, &msg);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.m.msgid, 5);
    assert_int_equal(d.m.result->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(yh_mp_get(d.m.error, "RetCode")->via.u64, YH_EAUTH);
    assert_true(
        yh_mp_eq(yh_mp_get(d.m.error, "Message"), "signature mismatch"));
    assert_true(yh_mp_eq(yh_mp_get(d.m.error, "Action"), "CreateUserResponse"));
    decoded_done(&d);

    yh_buf_reset(&msg);
    assert_int_equal(api_frame_pack_error(&msg, 6, YH_EPROTO, NULL, NULL), 0);
    decode(&d, &msg);
    assert_true(yh_mp_eq(yh_mp_get(d.m.error, "Message"), "bad message"));
    assert_true(yh_mp_eq(yh_mp_get(d.m.error, "Action"), ""));
    decoded_done(&d);

    yh_buf_reset(&msg);
    pack_result_map(&ev, 1, 0);
    assert_int_equal(api_frame_pack_notify(&msg, "Watch", ev.data, ev.len), 0);
    decode(&d, &msg);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.m.type, API_MSG_NOTIFY);
    assert_int_equal(d.m.method_len, 5);
    assert_memory_equal(d.m.method, "Watch", 5);
    assert_int_equal(d.m.params->via.array.size, 1);
    o = d.m.request;
    assert_non_null(o);
    assert_true(yh_mp_eq(yh_mp_get(o, "Action"), "XResponse"));
    assert_int_equal(d.m.request_raw_len, ev.len);
    assert_memory_equal(d.m.request_raw, ev.data, ev.len);
    decoded_done(&d);
    yh_buf_release(&msg);
    yh_buf_release(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_request),
        cmocka_unit_test(test_decode_request_auth),
        cmocka_unit_test(test_decode_bad_shapes),
        cmocka_unit_test(test_reader_pipelined),
        cmocka_unit_test(test_reader_chunks),
        cmocka_unit_test(test_reader_errors),
        cmocka_unit_test(test_pack_result),
        cmocka_unit_test(test_result_retcode),
        cmocka_unit_test(test_pack_error_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
