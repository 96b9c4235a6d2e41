/* Fuzz target: auth map parsing and signature verification on hostile
 * input. Never crashes; a signature it makes itself always verifies.
 *
 * Input: if it is a whole RPC request (frame decode), its auth map and
 * request bytes are used. Otherwise bytes 0-1 give the length L of an auth
 * map that follows, the rest is the request bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "api/wire/auth.h"
#include "api/wire/frame.h"
#include "api/wire/prescan.h"
#include "fsm/base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_key[] = "fuzz-private-key";

static void check(const msgpack_object *auth,
                  const char *method,
                  size_t method_len,
                  const uint8_t *raw,
                  size_t raw_len)
{
    char pk[65];
    char sig[API_SIG_HEX_SIZE];
    char mine[API_SIG_HEX_SIZE];
    char errmsg[YH_ERRMSG_SIZE];
    int64_t ts = 0;
    int rc;

    rc = api_auth_parse(auth, pk, sizeof(pk), &ts, sig, errmsg, sizeof(errmsg));
    if (rc != 0) {
        if (rc != YH_EAUTH || errmsg[0] == '\0') {
            abort();
        }
        return;
    }
    if (strlen(sig) != 64 || strlen(pk) == 0) {
        abort();
    }
    /* Whatever the verdict, it is EAUTH with a reason or 0. */
    rc = api_auth_verify(fuzz_key, method, method_len, ts, raw, raw_len, sig,
                         ts, API_AUTH_SKEW_S, errmsg, sizeof(errmsg));
    if (rc != 0 && (rc != YH_EAUTH || errmsg[0] == '\0')) {
        abort();
    }
    (void)api_auth_verify(fuzz_key, method, method_len, ts, raw, raw_len, sig,
                          0, API_AUTH_SKEW_S, errmsg, sizeof(errmsg));
    /* Our own signature over the same bytes verifies; over one byte less
     * it does not. */
    if (api_auth_sign(fuzz_key, method, method_len, ts, raw, raw_len, mine) !=
            0 ||
        api_auth_verify(fuzz_key, method, method_len, ts, raw, raw_len, mine,
                        ts, API_AUTH_SKEW_S, errmsg, sizeof(errmsg)) != 0) {
        abort();
    }
    if (raw_len > 0 && api_auth_verify(fuzz_key, method, method_len, ts, raw,
                                       raw_len - 1, mine, ts, API_AUTH_SKEW_S,
                                       errmsg, sizeof(errmsg)) != YH_EAUTH) {
        abort();
    }
}

static int try_request(const uint8_t *data, size_t size)
{
    msgpack_zone zone;
    struct api_msg m;
    char errmsg[YH_ERRMSG_SIZE];
    size_t n;
    int known;
    int done = 0;

    if (api_prescan(data, size, API_MAX_MESSAGE, API_MAX_DEPTH, &n, NULL, 0) !=
            0 ||
        n != size) {
        return 0;
    }
    msgpack_zone_init(&zone, 1024);
    if (api_frame_decode(data, size, &zone, &m, &known, errmsg,
                         sizeof(errmsg)) == 0 &&
        m.type == API_MSG_REQUEST && m.auth != NULL) {
        check(m.auth, m.method, m.method_len, m.request_raw, m.request_raw_len);
        done = 1;
    }
    msgpack_zone_destroy(&zone);
    return done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_zone zone;
    msgpack_object auth;
    size_t auth_len;
    size_t n;
    size_t off = 0;

    if (try_request(data, size) || size < 2) {
        return 0;
    }
    auth_len = (size_t)data[0] << 8 | data[1];
    if (auth_len > size - 2) {
        auth_len = size - 2;
    }
    /* msgpack-c only ever sees pre-scanned bytes. */
    if (api_prescan(data + 2, auth_len, auth_len, API_MAX_DEPTH, &n, NULL, 0) !=
        0) {
        return 0;
    }
    msgpack_zone_init(&zone, 1024);
    if (msgpack_unpack((const char *)data + 2, n, &off, &zone, &auth) ==
        MSGPACK_UNPACK_SUCCESS) {
        check(&auth, "DescribeUser", 12, data + 2 + auth_len,
              size - 2 - auth_len);
    } else {
        abort(); /* prescan accepted what msgpack-c cannot decode */
    }
    msgpack_zone_destroy(&zone);
    return 0;
}
