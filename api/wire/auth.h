/* Request authentication: HMAC-SHA256 (OpenSSL) over the raw request.
 *
 *   Signature = hex(HMAC-SHA256(PrivateKey,
 *                   method || 0x0A || decimal Timestamp || 0x0A ||
 *                   raw msgpack bytes of the request map as sent))
 *
 * The auth map is {"PublicKey": str, "Timestamp": int (unix s),
 * "Signature": hex str}.
 */
#ifndef API_AUTH_H
#define API_AUTH_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define API_AUTH_SKEW_S 300 /* allowed clock difference */
#define API_SIG_HEX_SIZE 65

int api_auth_sign(const char *private_key,
                  const char *method,
                  size_t method_len,
                  int64_t timestamp,
                  const uint8_t *request_raw,
                  size_t request_raw_len,
                  char out_hex[API_SIG_HEX_SIZE]);

/* Parse an auth map: copies PublicKey into @public_key (@pk_size bytes),
 * Timestamp and Signature. Errors: YH_EAUTH with a reason in @errmsg. */
int api_auth_parse(const msgpack_object *auth,
                   char *public_key,
                   size_t pk_size,
                   int64_t *timestamp,
                   char sig_hex[API_SIG_HEX_SIZE],
                   char *errmsg,
                   size_t errmsg_size);

/* Verify: timestamp within @skew_s of @now_s, signature equal (constant
 * time). Errors: YH_EAUTH with a reason in @errmsg. */
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
                    size_t errmsg_size);

/* Random key material: @n random bytes (OpenSSL RAND_bytes) as hex into
 * @out (2n+1). Errors: YH_EINTERNAL. */
int api_auth_random_hex(size_t n, char *out);

#endif
