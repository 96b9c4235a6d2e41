/* api_prescan(): every msgpack format family, the hostile inputs that
 * msgpack-c mishandles, exact limits, incremental input, and a differential
 * check against msgpack-c on random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "api/wire/prescan.h"
#include "api/wire/prescan_int.h"
#include "fsm/base/buf.h"
#include "fsm/base/err.h"

static char errmsg[YH_ERRMSG_SIZE];

static int scan(const uint8_t *p,
                size_t len,
                size_t max_size,
                unsigned max_depth,
                size_t *n)
{
    errmsg[0] = '\0';
    *n = (size_t)-1;
    return api_prescan(p, len, max_size, max_depth, n, errmsg, sizeof(errmsg));
}

/* Complete and valid: 0 with the exact size; every strict prefix is
 * YH_EAGAIN; trailing bytes are not part of the message. */
static void expect_complete(const uint8_t *p, size_t len)
{
    uint8_t *more = malloc(len + 3);
    size_t n;

    assert_int_equal(scan(p, len, API_MAX_MESSAGE, API_MAX_DEPTH, &n), 0);
    assert_int_equal(n, len);
    for (size_t k = 0; k < len; k++) {
        assert_int_equal(scan(p, k, API_MAX_MESSAGE, API_MAX_DEPTH, &n),
                         YH_EAGAIN);
    }
    assert_non_null(more);
    memcpy(more, p, len);
    memcpy(more + len, "\x01\x02\xc1", 3);
    assert_int_equal(scan(more, len + 3, API_MAX_MESSAGE, API_MAX_DEPTH, &n),
                     0);
    assert_int_equal(n, len);
    free(more);
}

#define COMPLETE(...)                              \
    do {                                           \
        static const uint8_t m_[] = {__VA_ARGS__}; \
        expect_complete(m_, sizeof(m_));           \
    } while (0)

static void test_scalars(void **state)
{
    (void)state;
    COMPLETE(0x00); /* positive fixint */
    COMPLETE(0x7f);
    COMPLETE(0xe0); /* negative fixint */
    COMPLETE(0xff);
    COMPLETE(0xc0);                   /* nil */
    COMPLETE(0xc2);                   /* false */
    COMPLETE(0xc3);                   /* true */
    COMPLETE(0xca, 0x3f, 0x80, 0, 0); /* float32 1.0 */
    COMPLETE(0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
    COMPLETE(0xcc, 0xff); /* uint8..64 */
    COMPLETE(0xcd, 0xff, 0xff);
    COMPLETE(0xce, 0xff, 0xff, 0xff, 0xff);
    COMPLETE(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    COMPLETE(0xd0, 0x80); /* int8..64 */
    COMPLETE(0xd1, 0x80, 0x00);
    COMPLETE(0xd2, 0x80, 0, 0, 0);
    COMPLETE(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
}

static void test_bytes(void **state)
{
    (void)state;
    COMPLETE(0xa0); /* fixstr */
    COMPLETE(0xa3, 'a', 'b', 'c');
    COMPLETE(0xd9, 2, 'h', 'i'); /* str8/16/32 */
    COMPLETE(0xda, 0, 1, 'x');
    COMPLETE(0xdb, 0, 0, 0, 2, 'x', 'y');
    COMPLETE(0xc4, 1, 0xc1); /* bin8/16/32: body bytes are not types */
    COMPLETE(0xc5, 0, 2, 0xc1, 0xc1);
    COMPLETE(0xc6, 0, 0, 0, 0);
    COMPLETE(0xd4, 7, 0xc1); /* fixext 1/2/4/8/16 */
    COMPLETE(0xd5, 7, 1, 2);
    COMPLETE(0xd6, 7, 1, 2, 3, 4);
    COMPLETE(0xd7, 7, 1, 2, 3, 4, 5, 6, 7, 8);
    COMPLETE(0xd8, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    COMPLETE(0xc7, 2, 7, 0xaa, 0xbb); /* ext8/16/32 */
    COMPLETE(0xc8, 0, 1, 7, 0xaa);
    COMPLETE(0xc9, 0, 0, 0, 0, 7);
}

static void test_containers(void **state)
{
    (void)state;
    COMPLETE(0x90); /* fixarray */
    COMPLETE(0x93, 1, 2, 3);
    COMPLETE(0xdc, 0, 2, 0xc0, 0xc3); /* array16/32 */
    COMPLETE(0xdd, 0, 0, 0, 1, 0xa1, 'z');
    COMPLETE(0x80); /* fixmap */
    COMPLETE(0x81, 0xa1, 'k', 0x05);
    COMPLETE(0xde, 0, 1, 0x01, 0x02); /* map16/32 */
    COMPLETE(0xdf, 0, 0, 0, 1, 0xc0, 0x90);
    /* Nested maps and arrays: {"a": [1, {"b": {}}, []], "c": "d"} */
    COMPLETE(0x82, 0xa1, 'a', 0x93, 0x01, 0x81, 0xa1, 'b', 0x80, 0x90, 0xa1,
             'c', 0xa1, 'd');
    /* An RPC request [0, 7, "M", [{"K": 1}]] */
    COMPLETE(0x94, 0x00, 0x07, 0xa1, 'M', 0x91, 0x81, 0xa1, 'K', 0x01);
}

static void test_hostile(void **state)
{
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t str32[] = {0xdb, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t ext32[] = {0xc9, 0x00, 0x50, 0x00, 0x00, 0x01};
    static const uint8_t c1[] = {0xc1};
    static const uint8_t c1_inside[] = {0x92, 0x01, 0xc1};
    size_t n;

    (void)state;
    assert_int_equal(scan(array32, 5, API_MAX_MESSAGE, 16, &n), YH_EPROTO);
    assert_non_null(strstr(errmsg, "array"));
    assert_int_equal(scan(map32, 5, API_MAX_MESSAGE, 16, &n), YH_EPROTO);
    assert_non_null(strstr(errmsg, "map"));
    assert_int_equal(scan(str32, 5, API_MAX_MESSAGE, 16, &n), YH_ETOOBIG);
    assert_non_null(strstr(errmsg, "str"));
    assert_int_equal(scan(bin32, 5, API_MAX_MESSAGE, 16, &n), YH_ETOOBIG);
    assert_non_null(strstr(errmsg, "bin"));
    assert_int_equal(scan(ext32, 6, API_MAX_MESSAGE, 16, &n), YH_ETOOBIG);
    assert_non_null(strstr(errmsg, "ext"));
    assert_int_equal(scan(c1, 1, API_MAX_MESSAGE, 16, &n), YH_EPROTO);
    assert_non_null(strstr(errmsg, "0xc1"));
    assert_int_equal(scan(c1_inside, 3, API_MAX_MESSAGE, 16, &n), YH_EPROTO);
    assert_non_null(strstr(errmsg, "offset 2"));
    /* A huge count is refused from its head alone, before any element. */
    assert_int_equal(scan(array32, 3, API_MAX_MESSAGE, 16, &n), YH_EAGAIN);
}

static void test_deep_nesting(void **state)
{
    uint8_t *deep = malloc(10001);
    size_t n;

    (void)state;
    assert_non_null(deep);
    memset(deep, 0x91, 10000);
    deep[10000] = 0x01;
    /* Rejected at level 17 without walking (or recursing) further. */
    assert_int_equal(scan(deep, 10001, API_MAX_MESSAGE, API_MAX_DEPTH, &n),
                     YH_EPROTO);
    assert_non_null(strstr(errmsg, "nesting"));
    /* 16 levels pass, 17 do not; an empty container counts as a level. */
    assert_int_equal(scan(deep + 10000 - 16, 17, 100, 16, &n), 0);
    assert_int_equal(n, 17);
    assert_int_equal(scan(deep + 10000 - 17, 18, 100, 16, &n), YH_EPROTO);
    deep[9999] = 0x90;
    assert_int_equal(scan(deep + 10000 - 16, 16, 100, 16, &n), 0);
    assert_int_equal(scan(deep + 10000 - 17, 17, 100, 16, &n), YH_EPROTO);
    /* Maps nest the same way: {k: {k: ... 1}} */
    for (int i = 0; i < 17; i++) {
        deep[2 * i] = 0x81;
        deep[2 * i + 1] = 0x00;
    }
    deep[34] = 0x01;
    assert_int_equal(scan(deep + 2, 33, 100, 16, &n), 0);
    assert_int_equal(scan(deep, 35, 100, 16, &n), YH_EPROTO);
    /* Depth 0 allows only scalars; a very large depth is capped, not an
     * overflow of the walker's stack. */
    assert_int_equal(scan(deep + 34, 1, 100, 0, &n), 0);
    assert_int_equal(scan((const uint8_t *)"\x90", 1, 100, 0, &n), YH_EPROTO);
    memset(deep, 0x91, 10000);
    deep[10000] = 0x01;
    assert_int_equal(scan(deep, 10001, API_MAX_MESSAGE, 1u << 30, &n),
                     YH_EPROTO);
    free(deep);
}

static void test_limits(void **state)
{
    static const uint8_t arr5[] = {0x95, 1, 2, 3, 4, 5};
    static const uint8_t arr6[] = {0x96};
    static const uint8_t map3[] = {0x83, 1, 2, 3, 4, 5, 6};
    static const uint8_t str3[] = {0xa3, 'a', 'b', 'c'};
    static const uint8_t two_str[] = {0x92, 0xa4, 'a', 'a', 'a', 'a',
                                      0xa4, 'b',  'b', 'b', 'b'};
    static const uint8_t u16[] = {0xcd, 0, 1};
    static const uint8_t outer[] = {0x92, 0x93};
    size_t n;

    (void)state;
    assert_int_equal(scan(arr5, 6, 6, 16, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(scan(arr5, 6, 5, 16, &n), YH_EPROTO);
    assert_int_equal(scan(arr5, 1, 5, 16, &n), YH_EPROTO);
    assert_int_equal(scan(arr6, 1, 6, 16, &n), YH_EPROTO);
    assert_int_equal(scan(map3, 7, 7, 16, &n), 0);
    assert_int_equal(scan(map3, 1, 6, 16, &n), YH_EPROTO);
    assert_int_equal(scan(str3, 4, 4, 16, &n), 0);
    assert_int_equal(scan(str3, 1, 3, 16, &n), YH_ETOOBIG);
    /* Each part fits on its own, the whole does not. */
    assert_int_equal(scan(two_str, 11, 11, 16, &n), 0);
    assert_int_equal(scan(two_str, 11, 10, 16, &n), YH_ETOOBIG);
    assert_int_equal(scan(two_str, 6, 10, 16, &n), YH_EAGAIN);
    assert_int_equal(scan(two_str, 7, 10, 16, &n), YH_ETOOBIG);
    assert_int_equal(scan(u16, 3, 3, 16, &n), 0);
    assert_int_equal(scan(u16, 1, 2, 16, &n), YH_ETOOBIG);
    /* Elements still owed by outer levels count too: [[a, b, c], x] needs
     * at least 6 bytes. */
    assert_int_equal(scan(outer, 2, 6, 16, &n), YH_EAGAIN);
    assert_int_equal(scan(outer, 2, 5, 16, &n), YH_EPROTO);
    assert_int_equal(scan(arr5, 6, 0, 16, &n), YH_ETOOBIG);
    assert_int_equal(scan(arr5, 0, 6, 16, &n), YH_EAGAIN);
}

static void test_min_len(void **state)
{
    static const uint8_t arr[] = {0xdd, 0x00, 0x00, 0x03, 0xe8, 0x01};
    static const uint8_t str[] = {0x92, 0xd9, 0x10, 'a'};
    size_t n;
    size_t min_len = 0;

    (void)state;
    /* array32 of 1000: at least 5 + 1000 bytes in all */
    assert_int_equal(
        api__prescan_need(arr, 6, API_MAX_MESSAGE, 16, &n, &min_len, NULL, 0),
        YH_EAGAIN);
    assert_int_equal(min_len, 1005);
    assert_int_equal(
        api__prescan_need(arr, 3, API_MAX_MESSAGE, 16, &n, &min_len, NULL, 0),
        YH_EAGAIN);
    assert_int_equal(min_len, 5);
    /* [str8 of 16, x]: 1 + 2 + 16 + 1 */
    assert_int_equal(
        api__prescan_need(str, 4, API_MAX_MESSAGE, 16, &n, &min_len, NULL, 0),
        YH_EAGAIN);
    assert_int_equal(min_len, 20);
    assert_int_equal(
        api__prescan_need(str, 0, API_MAX_MESSAGE, 16, &n, &min_len, NULL, 0),
        YH_EAGAIN);
    assert_int_equal(min_len, 1);
}

static void test_byte_by_byte(void **state)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_packer pk;
    size_t n;
    int rc;

    (void)state;
    msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 123456);
    msgpack_pack_str_with_body(&pk, "DescribeUser", 12);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "Limit", 5);
    msgpack_pack_int(&pk, 20);
    msgpack_pack_str_with_body(&pk, "Blob", 4);
    msgpack_pack_bin_with_body(&pk, "\xc1\xc1\xc1", 3);
    msgpack_pack_str_with_body(&pk, "Pi", 2);
    msgpack_pack_double(&pk, 3.14);
    for (size_t k = 0; k <= b.len; k++) {
        rc = scan(b.data, k, API_MAX_MESSAGE, API_MAX_DEPTH, &n);
        if (k < b.len) {
            assert_int_equal(rc, YH_EAGAIN);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(n, b.len);
        }
    }
    yh_buf_release(&b);
}

/* Random msgpack value built with msgpack-c's packer. */
static void gen(msgpack_packer *pk, unsigned depth)
{
    static const char filler[300] = {0};
    int pick = rand() % (depth < 6 ? 14 : 11);
    unsigned n;

    switch (pick) {
    case 0:
        msgpack_pack_nil(pk);
        break;
    case 1:
        msgpack_pack_true(pk);
        break;
    case 2:
        msgpack_pack_int64(pk, (int64_t)rand() * (rand() % 2 ? 1 : -1) *
                                   (int64_t)(rand() % 100000));
        break;
    case 3:
        msgpack_pack_uint64(pk, (uint64_t)rand() << (rand() % 33));
        break;
    case 4:
        msgpack_pack_float(pk, 1.5f);
        break;
    case 5:
        msgpack_pack_double(pk, -2.25);
        break;
    case 6:
    case 7:
        n = (unsigned)(rand() % 300);
        msgpack_pack_str_with_body(pk, filler, n);
        break;
    case 8:
        n = (unsigned)(rand() % 70000 == 0 ? 70000 : rand() % 300);
        if (n > sizeof(filler)) {
            char *big = calloc(1, n);
            msgpack_pack_bin_with_body(pk, big, n);
            free(big);
        } else {
            msgpack_pack_bin_with_body(pk, filler, n);
        }
        break;
    case 9:
        n = (unsigned)(rand() % 20);
        msgpack_pack_ext_with_body(pk, filler, n, 5);
        break;
    case 10:
        msgpack_pack_int8(pk, -5);
        break;
    case 11:
    case 12:
        n = (unsigned)(rand() % (rand() % 10 == 0 ? 40 : 5));
        msgpack_pack_array(pk, n);
        for (unsigned i = 0; i < n; i++) {
            gen(pk, depth + 1);
        }
        break;
    default:
        n = (unsigned)(rand() % 5);
        msgpack_pack_map(pk, n);
        for (unsigned i = 0; i < 2 * n; i++) {
            gen(pk, depth + 1);
        }
        break;
    }
}

static void test_random_valid(void **state)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
    size_t n;
    size_t off;

    (void)state;
    srand(42);
    msgpack_zone_init(&zone, 4096);
    for (int i = 0; i < 500; i++) {
        yh_buf_reset(&b);
        msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
        gen(&pk, 0);
        assert_int_equal(scan(b.data, b.len, b.len, 8, &n), 0);
        assert_int_equal(n, b.len);
        assert_int_equal(scan(b.data, b.len - 1, b.len, 8, &n), YH_EAGAIN);
        /* The lower bound a reader may wait for never overshoots. */
        for (size_t k = 0; k < b.len; k += 1 + b.len / 50) {
            size_t min_len = 0;
            assert_int_equal(
                api__prescan_need(b.data, k, b.len, 8, &n, &min_len, NULL, 0),
                YH_EAGAIN);
            assert_true(min_len > k && min_len <= b.len);
        }
        off = 0;
        assert_int_equal(
            msgpack_unpack((const char *)b.data, b.len, &off, &zone, &obj),
            MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, b.len);
        msgpack_zone_clear(&zone);
    }
    msgpack_zone_destroy(&zone);
    yh_buf_release(&b);
}

/* Whatever api_prescan accepts, msgpack-c decodes to the same length;
 * whatever msgpack-c says is incomplete, api_prescan does not accept. */
static void test_random_bytes_differential(void **state)
{
    uint8_t buf[64];
    msgpack_zone zone;
    msgpack_object obj;
    size_t n;
    size_t off;
    int rc;
    int accepted = 0;

    (void)state;
    srand(7);
    msgpack_zone_init(&zone, 4096);
    for (int i = 0; i < 200000; i++) {
        size_t len = 1 + (size_t)(rand() % (int)sizeof(buf));
        for (size_t k = 0; k < len; k++) {
            /* Bias towards small counts so that nested input is common. */
            buf[k] = (uint8_t)(rand() % 3 ? rand() : 0x80 | (rand() % 32));
        }
        rc = scan(buf, len, sizeof(buf), 16, &n);
        if (rc != 0) {
            assert_true(rc == YH_EAGAIN || rc == YH_EPROTO || rc == YH_ETOOBIG);
            if (rc != YH_EAGAIN) {
                assert_true(errmsg[0] != '\0');
            }
            continue;
        }
        accepted++;
        assert_true(n >= 1 && n <= len);
        off = 0;
        assert_int_equal(
            msgpack_unpack((const char *)buf, n, &off, &zone, &obj),
            MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, n);
        msgpack_zone_clear(&zone);
    }
    assert_true(accepted > 1000);
    msgpack_zone_destroy(&zone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_min_len),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_random_valid),
        cmocka_unit_test(test_random_bytes_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
