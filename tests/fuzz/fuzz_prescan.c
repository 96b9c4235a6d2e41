/* Fuzz target: the stream reader (api_prescan underneath) and
 * api_frame_decode on whatever it yields, with small limits so that the
 * size and count checks are reached often.
 *
 * Input: byte 0 picks the feed chunk size, the rest is the stream. Besides
 * not crashing, it checks invariants and aborts when one breaks:
 *   - a message from the reader scans alone to the same length;
 *   - request_raw lies inside its message and is one whole object;
 *   - re-encoding a decoded request gives a message that decodes to the
 *     same method, msgid and request bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "api/wire/frame.h"
#include "api/wire/prescan.h"
#include "fsm/base/buf.h"
#include "fsm/base/err.h"

#define FUZZ_MAX_SIZE 4096
#define FUZZ_MAX_DEPTH 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const uint8_t *msg,
                          size_t len,
                          const struct api_msg *m)
{
    struct yh_buf out = YH_BUF_INIT;
    msgpack_zone zone;
    struct api_msg m2;
    char method[256];
    char errmsg[YH_ERRMSG_SIZE];
    size_t n;
    int known;

    if (m->request_raw < msg || m->request_raw_len == 0 ||
        m->request_raw_len > len ||
        m->request_raw + m->request_raw_len > msg + len) {
        abort();
    }
    if (api_prescan(m->request_raw, m->request_raw_len, m->request_raw_len,
                    FUZZ_MAX_DEPTH, &n, NULL, 0) != 0 ||
        n != m->request_raw_len || m->request_raw[0] < 0x80 ||
        (m->request_raw[0] > 0x8f && m->request_raw[0] != 0xde &&
         m->request_raw[0] != 0xdf)) {
        abort();
    }
    if (m->method_len >= sizeof(method) ||
        memchr(m->method, '\0', m->method_len) != NULL) {
        return; /* the encoder takes a C string */
    }
    memcpy(method, m->method, m->method_len);
    method[m->method_len] = '\0';
    if (api_frame_pack_request(&out, m->msgid, method, m->request_raw,
                               m->request_raw_len, NULL, 0, NULL) != 0) {
        abort();
    }
    msgpack_zone_init(&zone, 1024);
    if (api_frame_decode(out.data, out.len, &zone, &m2, &known, errmsg,
                         sizeof(errmsg)) != 0 ||
        m2.type != API_MSG_REQUEST || m2.msgid != m->msgid ||
        m2.method_len != m->method_len ||
        memcmp(m2.method, m->method, m->method_len) != 0 ||
        m2.request_raw_len != m->request_raw_len ||
        memcmp(m2.request_raw, m->request_raw, m->request_raw_len) != 0) {
        abort();
    }
    msgpack_zone_destroy(&zone);
    yh_buf_release(&out);
}

static void handle(const uint8_t *msg, size_t len)
{
    msgpack_zone zone;
    struct api_msg m;
    char errmsg[YH_ERRMSG_SIZE];
    size_t n;
    int known;
    int rc;

    if (api_prescan(msg, len, FUZZ_MAX_SIZE, FUZZ_MAX_DEPTH, &n, NULL, 0) !=
            0 ||
        n != len) {
        abort();
    }
    msgpack_zone_init(&zone, 1024);
    rc = api_frame_decode(msg, len, &zone, &m, &known, errmsg, sizeof(errmsg));
    if (rc == 0 && m.type == API_MSG_REQUEST) {
        check_request(msg, len, &m);
    } else if (rc == 0 && m.request != NULL) {
        check_request(msg, len, &m);
    } else if (rc != 0 && (rc != YH_EPROTO || errmsg[0] == '\0')) {
        abort(); /* every refusal is EPROTO with a reason */
    }
    msgpack_zone_destroy(&zone);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_frame_reader r;
    char errmsg[YH_ERRMSG_SIZE];
    const uint8_t *msg;
    size_t len;
    size_t chunk;
    size_t off = 1;
    int rc = YH_EAGAIN;

    if (size == 0) {
        return 0;
    }
    /* 1 to 8192 bytes per read: byte-by-byte and big reads alike. */
    chunk = (size_t)1 << (data[0] % 14);
    api_frame_reader_init(&r, FUZZ_MAX_SIZE, FUZZ_MAX_DEPTH);
    while (off < size && (rc == YH_EAGAIN || rc == 0)) {
        size_t k = size - off < chunk ? size - off : chunk;
        if (api_frame_reader_feed(&r, data + off, k) != 0) {
            abort();
        }
        off += k;
        while ((rc = api_frame_reader_next(&r, &msg, &len, errmsg,
                                           sizeof(errmsg))) == 0) {
            handle(msg, len);
        }
        if (rc != YH_EAGAIN && errmsg[0] == '\0') {
            abort();
        }
    }
    api_frame_reader_release(&r);
    /* The whole input as one buffer under the default limits. */
    (void)api_prescan(data, size, API_MAX_MESSAGE, API_MAX_DEPTH, &len, errmsg,
                      sizeof(errmsg));
    return 0;
}
