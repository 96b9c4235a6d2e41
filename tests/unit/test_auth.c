/* Request signatures: known answers (computed independently with Python's
 * hmac module), verification failures, auth map parsing, random keys. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "api/wire/auth.h"
#include "fsm/base/buf.h"
#include "fsm/base/err.h"

/* msgpack of {"Limit": 20, "UserIDs.0": "u-1"} */
static const uint8_t req[] = {0x82, 0xa5, 'L',  'i', 'm', 'i', 't', 0x14,
                              0xa9, 'U',  's',  'e', 'r', 'I', 'D', 's',
                              '.',  '0',  0xa3, 'u', '-', '1'};
/* hmac.new(b"secret-key", b"DescribeUser\n1700000000\n" + req, sha256) */
static const char kat_sig[] =
    "428fcd0e2a53e6612a8eb40bd8510ef0397a3f0150aa296e29feb1c80950b4d9";
static const char key[] = "secret-key";
static const char method[] = "DescribeUser";
#define METHOD_LEN (sizeof(method) - 1)
#define TS 1700000000

static char errmsg[YH_ERRMSG_SIZE];

static int verify(const char *k,
                  const char *m,
                  int64_t ts,
                  const uint8_t *raw,
                  size_t raw_len,
                  const char *sig,
                  int64_t now)
{
    errmsg[0] = '\0';
    return api_auth_verify(k, m, strlen(m), ts, raw, raw_len, sig, now,
                           API_AUTH_SKEW_S, errmsg, sizeof(errmsg));
}

static void test_sign_known_answer(void **state)
{
    char hex[API_SIG_HEX_SIZE];

    (void)state;
    assert_int_equal(
        api_auth_sign(key, method, METHOD_LEN, TS, req, sizeof(req), hex), 0);
    assert_string_equal(hex, kat_sig);
    /* Negative timestamp, empty request bytes:
     * hmac.new(b"k", b"M\n-5\n", sha256) */
    assert_int_equal(api_auth_sign("k", "M", 1, -5, NULL, 0, hex), 0);
    assert_string_equal(
        hex,
        "57ce13a12261a72f4dcd94cf7c823a0e83c7fee7ee1ad05a5595f2dbd801a086");
    /* Only method_len bytes of the method are signed. */
    assert_int_equal(api_auth_sign(key, "DescribeUserXYZ", METHOD_LEN, TS, req,
                                   sizeof(req), hex),
                     0);
    assert_string_equal(hex, kat_sig);
    assert_int_equal(
        api_auth_sign("", method, METHOD_LEN, TS, req, sizeof(req), hex),
        YH_EINVAL);
}

static void test_verify_ok(void **state)
{
    char upper[API_SIG_HEX_SIZE];

    (void)state;
    assert_int_equal(verify(key, method, TS, req, sizeof(req), kat_sig, TS), 0);
    /* Exactly at the skew limit, both directions. */
    assert_int_equal(verify(key, method, TS, req, sizeof(req), kat_sig,
                            TS + API_AUTH_SKEW_S),
                     0);
    assert_int_equal(verify(key, method, TS, req, sizeof(req), kat_sig,
                            TS - API_AUTH_SKEW_S),
                     0);
    /* Hex digits in upper case are the same signature. */
    for (size_t i = 0; i < sizeof(upper); i++) {
        upper[i] = (char)toupper((unsigned char)kat_sig[i]);
    }
    assert_int_equal(verify(key, method, TS, req, sizeof(req), upper, TS), 0);
}

static void test_verify_timestamp(void **state)
{
    (void)state;
    assert_int_equal(verify(key, method, TS, req, sizeof(req), kat_sig,
                            TS + API_AUTH_SKEW_S + 1),
                     YH_EAUTH);
    assert_non_null(strstr(errmsg, "timestamp too old"));
    assert_int_equal(verify(key, method, TS, req, sizeof(req), kat_sig,
                            TS - API_AUTH_SKEW_S - 1),
                     YH_EAUTH);
    assert_non_null(strstr(errmsg, "timestamp in the future"));
    /* Extreme values do not overflow into acceptance. */
    assert_int_equal(
        verify(key, method, INT64_MIN, req, sizeof(req), kat_sig, INT64_MAX),
        YH_EAUTH);
    assert_non_null(strstr(errmsg, "too old"));
    assert_int_equal(
        verify(key, method, INT64_MAX, req, sizeof(req), kat_sig, INT64_MIN),
        YH_EAUTH);
    assert_non_null(strstr(errmsg, "future"));
    /* A valid signature for another timestamp than the one claimed. */
    assert_int_equal(verify(key, method, TS + 1, req, sizeof(req), kat_sig, TS),
                     YH_EAUTH);
    assert_non_null(strstr(errmsg, "signature mismatch"));
}

static void test_verify_mismatch(void **state)
{
    uint8_t other[sizeof(req)];
    char sig[API_SIG_HEX_SIZE];

    (void)state;
    assert_int_equal(
        verify("secret-kez", method, TS, req, sizeof(req), kat_sig, TS),
        YH_EAUTH);
    assert_non_null(strstr(errmsg, "signature mismatch"));
    memcpy(other, req, sizeof(req));
    other[7] = 0x15; /* Limit 21 */
    assert_int_equal(verify(key, method, TS, other, sizeof(other), kat_sig, TS),
                     YH_EAUTH);
    assert_non_null(strstr(errmsg, "signature mismatch"));
    assert_int_equal(verify(key, method, TS, req, sizeof(req) - 1, kat_sig, TS),
                     YH_EAUTH);
    assert_int_equal(
        verify(key, "CreateUser", TS, req, sizeof(req), kat_sig, TS), YH_EAUTH);
    assert_non_null(strstr(errmsg, "signature mismatch"));
    /* One flipped digit. */
    memcpy(sig, kat_sig, sizeof(sig));
    sig[63] = sig[63] == '0' ? '1' : '0';
    assert_int_equal(verify(key, method, TS, req, sizeof(req), sig, TS),
                     YH_EAUTH);
    assert_non_null(strstr(errmsg, "signature mismatch"));
}

static void test_verify_malformed(void **state)
{
    char sig[API_SIG_HEX_SIZE + 2];

    (void)state;
    memcpy(sig, kat_sig, API_SIG_HEX_SIZE);
    sig[63] = '\0'; /* 63 digits */
    assert_int_equal(verify(key, method, TS, req, sizeof(req), sig, TS),
                     YH_EAUTH);
    assert_non_null(strstr(errmsg, "hex"));
    memcpy(sig, kat_sig, API_SIG_HEX_SIZE);
    sig[64] = '0'; /* 65 digits */
    sig[65] = '\0';
    assert_int_equal(verify(key, method, TS, req, sizeof(req), sig, TS),
                     YH_EAUTH);
    memcpy(sig, kat_sig, API_SIG_HEX_SIZE);
    sig[10] = 'g';
    assert_int_equal(verify(key, method, TS, req, sizeof(req), sig, TS),
                     YH_EAUTH);
    assert_non_null(strstr(errmsg, "hex"));
    assert_int_equal(verify(key, method, TS, req, sizeof(req), "", TS),
                     YH_EAUTH);
    assert_int_equal(verify(key, method, TS, req, sizeof(req), NULL, TS),
                     YH_EAUTH);
    assert_int_equal(verify("", method, TS, req, sizeof(req), kat_sig, TS),
                     YH_EAUTH);
}

/* Build an auth map from (key, value) parts; @ts_kind: 'u' uint, 'i'
 * negative int, 's' string, 'n' absent. */
struct auth_spec
{
    const char *pk; /* NULL: absent */
    char ts_kind;
    int64_t ts;
    const char *sig; /* NULL: absent */
    int pk_int;      /* PublicKey sent as an integer */
};

static int parse(const struct auth_spec *s,
                 char *pk,
                 size_t pk_size,
                 int64_t *ts,
                 char *sig_hex)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_packer pk_;
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    uint32_t n =
        (s->pk != NULL || s->pk_int) + (s->ts_kind != 'n') + (s->sig != NULL);
    int rc;

    msgpack_packer_init(&pk_, &b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk_, n);
    if (s->pk_int) {
        msgpack_pack_str_with_body(&pk_, "PublicKey", 9);
        msgpack_pack_int(&pk_, 5);
    } else if (s->pk != NULL) {
        msgpack_pack_str_with_body(&pk_, "PublicKey", 9);
        msgpack_pack_str_with_body(&pk_, s->pk, strlen(s->pk));
    }
    if (s->ts_kind != 'n') {
        msgpack_pack_str_with_body(&pk_, "Timestamp", 9);
        if (s->ts_kind == 's') {
            msgpack_pack_str_with_body(&pk_, "1700000000", 10);
        } else {
            msgpack_pack_int64(&pk_, s->ts);
        }
    }
    if (s->sig != NULL) {
        msgpack_pack_str_with_body(&pk_, "Signature", 9);
        msgpack_pack_str_with_body(&pk_, s->sig, strlen(s->sig));
    }
    msgpack_zone_init(&zone, 256);
    assert_int_equal(
        msgpack_unpack((const char *)b.data, b.len, &off, &zone, &obj),
        MSGPACK_UNPACK_SUCCESS);
    errmsg[0] = '\0';
    rc = api_auth_parse(&obj, pk, pk_size, ts, sig_hex, errmsg, sizeof(errmsg));
    msgpack_zone_destroy(&zone);
    yh_buf_release(&b);
    return rc;
}

static void test_parse(void **state)
{
    char pk[64];
    int64_t ts = 0;
    char sig[API_SIG_HEX_SIZE];
    char upper[API_SIG_HEX_SIZE];
    struct auth_spec s = {"AKID-1", 'u', TS, kat_sig, 0};

    (void)state;
    assert_int_equal(parse(&s, pk, sizeof(pk), &ts, sig), 0);
    assert_string_equal(pk, "AKID-1");
    assert_int_equal(ts, TS);
    assert_string_equal(sig, kat_sig);
    /* Upper-case digits come back normalized. */
    for (size_t i = 0; i < sizeof(upper); i++) {
        upper[i] = (char)toupper((unsigned char)kat_sig[i]);
    }
    s.sig = upper;
    assert_int_equal(parse(&s, pk, sizeof(pk), &ts, sig), 0);
    assert_string_equal(sig, kat_sig);
    s.sig = kat_sig;
    /* A negative int is still an integer (and then fails the skew check). */
    s.ts_kind = 'i';
    s.ts = -3;
    assert_int_equal(parse(&s, pk, sizeof(pk), &ts, sig), 0);
    assert_int_equal(ts, -3);

    struct
    {
        struct auth_spec spec;
        const char *why;
    } bad[] = {
        {{NULL, 'u', TS, kat_sig, 0}, "missing PublicKey"},
        {{"", 'u', TS, kat_sig, 0}, "PublicKey is empty"},
        {{NULL, 'u', TS, kat_sig, 1}, "PublicKey is not a string"},
        {{"AKID-1", 'n', TS, kat_sig, 0}, "missing Timestamp"},
        {{"AKID-1", 's', TS, kat_sig, 0}, "Timestamp is not an integer"},
        {{"AKID-1", 'u', TS, NULL, 0}, "missing Signature"},
        {{"AKID-1", 'u', TS, "abc", 0}, "hex"},
        {{"AKID-1", 'u', TS, "", 0}, "hex"},
        {{"AKID-1", 'u', TS,
          "zz8fcd0e2a53e6612a8eb40bd8510ef0397a3f0150aa296e29feb1c80950b4d9",
          0},
         "hex"},
        {{"AKID-1", 'u', TS,
          "428fcd0e2a53e6612a8eb40bd8510ef0397a3f0150aa296e29feb1c80950b4d90",
          0},
         "hex"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(&bad[i].spec, pk, sizeof(pk), &ts, sig);
        if (rc != YH_EAUTH || strstr(errmsg, bad[i].why) == NULL) {
            fail_msg("case %zu: rc %d errmsg '%s', want '%s'", i, rc, errmsg,
                     bad[i].why);
        }
    }
    /* PublicKey longer than the caller's buffer. */
    assert_int_equal(parse(&s, pk, 6, &ts, sig), YH_EAUTH);
    assert_non_null(strstr(errmsg, "PublicKey"));
    assert_int_equal(parse(&s, pk, 7, &ts, sig), 0);
    assert_string_equal(pk, "AKID-1");
}

static void test_parse_not_map(void **state)
{
    msgpack_object o;
    char pk[8];
    int64_t ts;
    char sig[API_SIG_HEX_SIZE];

    (void)state;
    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_NIL;
    assert_int_equal(
        api_auth_parse(&o, pk, sizeof(pk), &ts, sig, errmsg, sizeof(errmsg)),
        YH_EAUTH);
    assert_non_null(strstr(errmsg, "not a map"));
    assert_int_equal(
        api_auth_parse(NULL, pk, sizeof(pk), &ts, sig, errmsg, sizeof(errmsg)),
        YH_EAUTH);
}

static void test_random_hex(void **state)
{
    char a[2 * 100 + 1];
    char b[2 * 100 + 1];

    (void)state;
    assert_int_equal(api_auth_random_hex(100, a), 0);
    assert_int_equal(strlen(a), 200);
    for (size_t i = 0; i < 200; i++) {
        assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(api_auth_random_hex(100, b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(api_auth_random_hex(0, a), 0);
    assert_string_equal(a, "");
    assert_int_equal(api_auth_random_hex(16, a), 0);
    assert_int_equal(strlen(a), 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_known_answer),
        cmocka_unit_test(test_verify_ok),
        cmocka_unit_test(test_verify_timestamp),
        cmocka_unit_test(test_verify_mismatch),
        cmocka_unit_test(test_verify_malformed),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_not_map),
        cmocka_unit_test(test_random_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
