/* Request signatures: HMAC-SHA256 through OpenSSL's EVP_MAC (see auth.h). */
#include "auth.h"

#include "fsm/base/crypto.h"

#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../fsm/base/buf.h"
#include "../../fsm/base/err.h"
#include "../../fsm/base/mp.h"

#define SIG_SIZE 32 /* SHA-256 output */

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

/* Raw HMAC-SHA256 of the signed string into @out. */
static int auth_mac(const char *private_key,
                    const char *method,
                    size_t method_len,
                    int64_t timestamp,
                    const uint8_t *request_raw,
                    size_t request_raw_len,
                    uint8_t out[SIG_SIZE])
{
    char ts[24];
    size_t ts_len = 0;
    uint64_t mag =
        timestamp < 0 ? 0 - (uint64_t)timestamp : (uint64_t)timestamp;
    char digits[20];
    size_t nd = 0;

    /* "%" PRId64 without snprintf (once per request) */
    do {
        digits[nd++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    if (timestamp < 0) {
        ts[ts_len++] = '-';
    }
    while (nd > 0) {
        ts[ts_len++] = digits[--nd];
    }
    struct yh_part parts[] = {
        {method, method_len},           {"\n", 1}, {ts, ts_len}, {"\n", 1},
        {request_raw, request_raw_len},
    };

    return yh_hmac_sha256(private_key, strlen(private_key), parts,
                          sizeof(parts) / sizeof(parts[0]), out);
}

int api_auth_sign(const char *private_key,
                  const char *method,
                  size_t method_len,
                  int64_t timestamp,
                  const uint8_t *request_raw,
                  size_t request_raw_len,
                  char out_hex[API_SIG_HEX_SIZE])
{
    uint8_t mac[SIG_SIZE];
    int rc;

    if (private_key == NULL || private_key[0] == '\0' || method == NULL ||
        (request_raw == NULL && request_raw_len > 0)) {
        return YH_EINVAL;
    }
    rc = auth_mac(private_key, method, method_len, timestamp, request_raw,
                  request_raw_len, mac);
    if (rc != 0) {
        return rc;
    }
    yh_hex(mac, SIG_SIZE, out_hex);
    return 0;
}

static int sig_decode(const char *s, size_t len, uint8_t out[SIG_SIZE])
{
    if (len != 2 * SIG_SIZE) {
        return YH_EINVAL;
    }
    return yh_unhex(s, SIG_SIZE, out);
}

int api_auth_parse(const msgpack_object *auth,
                   char *public_key,
                   size_t pk_size,
                   int64_t *timestamp,
                   char sig_hex[API_SIG_HEX_SIZE],
                   char *errmsg,
                   size_t errmsg_size)
{
    const msgpack_object *pk;
    const msgpack_object *ts;
    const msgpack_object *sig;
    uint8_t raw[SIG_SIZE];

    if (auth == NULL || auth->type != MSGPACK_OBJECT_MAP) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "auth is not a map");
    }
    pk = yh_mp_get(auth, "PublicKey");
    if (pk == NULL || pk->type == MSGPACK_OBJECT_NIL) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "missing PublicKey");
    }
    if (pk->type != MSGPACK_OBJECT_STR) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "PublicKey is not a string");
    }
    if (pk->via.str.size == 0) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "PublicKey is empty");
    }
    if (pk->via.str.size >= pk_size ||
        memchr(pk->via.str.ptr, '\0', pk->via.str.size) != NULL) {
        return fail(YH_EAUTH, errmsg, errmsg_size,
                    "PublicKey is longer than %zu bytes or holds a NUL",
                    pk_size > 0 ? pk_size - 1 : 0);
    }

    ts = yh_mp_get(auth, "Timestamp");
    if (ts == NULL || ts->type == MSGPACK_OBJECT_NIL) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "missing Timestamp");
    }
    if (ts->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (ts->via.u64 > INT64_MAX) {
            return fail(YH_EAUTH, errmsg, errmsg_size,
                        "Timestamp out of range");
        }
        *timestamp = (int64_t)ts->via.u64;
    } else if (ts->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *timestamp = ts->via.i64;
    } else {
        return fail(YH_EAUTH, errmsg, errmsg_size,
                    "Timestamp is not an integer");
    }

    sig = yh_mp_get(auth, "Signature");
    if (sig == NULL || sig->type == MSGPACK_OBJECT_NIL) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "missing Signature");
    }
    if (sig->type != MSGPACK_OBJECT_STR) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "Signature is not a string");
    }
    if (sig_decode(sig->via.str.ptr, sig->via.str.size, raw) != 0) {
        return fail(YH_EAUTH, errmsg, errmsg_size,
                    "Signature is not %d hex digits", 2 * SIG_SIZE);
    }
    memcpy(public_key, pk->via.str.ptr, pk->via.str.size);
    public_key[pk->via.str.size] = '\0';
    /* Normalized to lower case, the form api_auth_sign() produces. */
    yh_hex(raw, SIG_SIZE, sig_hex);
    return 0;
}

int api_auth_verify(const char *private_key,
                    const char *method,
                    size_t method_len,
                    int64_t timestamp,
                    const uint8_t *request_raw,
                    size_t request_raw_len,
                    const char *sig_hex,
                    int64_t now_s,
                    int64_t skew_s,
                    char *errmsg,
                    size_t errmsg_size)
{
    uint8_t want[SIG_SIZE];
    uint8_t got[SIG_SIZE];
    uint64_t skew = skew_s > 0 ? (uint64_t)skew_s : 0;
    int rc;

    if (private_key == NULL || private_key[0] == '\0' || method == NULL ||
        (request_raw == NULL && request_raw_len > 0)) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "no key to verify with");
    }
    /* Differences computed in uint64_t: exact for any two int64_t values
     * ordered this way, where int64_t subtraction could overflow. */
    if (timestamp < now_s && (uint64_t)now_s - (uint64_t)timestamp > skew) {
        return fail(YH_EAUTH, errmsg, errmsg_size,
                    "timestamp too old (%" PRIu64
                    " s before the server "
                    "clock, limit %" PRIu64 " s)",
                    (uint64_t)now_s - (uint64_t)timestamp, skew);
    }
    if (timestamp > now_s && (uint64_t)timestamp - (uint64_t)now_s > skew) {
        return fail(YH_EAUTH, errmsg, errmsg_size,
                    "timestamp in the future (%" PRIu64
                    " s after the server clock, limit %" PRIu64 " s)",
                    (uint64_t)timestamp - (uint64_t)now_s, skew);
    }
    if (sig_hex == NULL || sig_decode(sig_hex, strlen(sig_hex), got) != 0) {
        return fail(YH_EAUTH, errmsg, errmsg_size,
                    "Signature is not %d hex digits", 2 * SIG_SIZE);
    }
    rc = auth_mac(private_key, method, method_len, timestamp, request_raw,
                  request_raw_len, want);
    if (rc != 0) {
        return fail(rc, errmsg, errmsg_size, "cannot compute HMAC-SHA256");
    }
    if (CRYPTO_memcmp(want, got, SIG_SIZE) != 0) {
        return fail(YH_EAUTH, errmsg, errmsg_size, "signature mismatch");
    }
    return 0;
}

int api_auth_random_hex(size_t n, char *out)
{
    uint8_t chunk[64];
    size_t done = 0;

    while (done < n) {
        size_t k = n - done < sizeof(chunk) ? n - done : sizeof(chunk);
        if (RAND_bytes(chunk, (int)k) != 1) {
            OPENSSL_cleanse(chunk, sizeof(chunk));
            out[0] = '\0';
            return YH_EINTERNAL;
        }
        yh_hex(chunk, k, out + 2 * done);
        done += k;
    }
    OPENSSL_cleanse(chunk, sizeof(chunk));
    out[2 * n] = '\0';
    return 0;
}
