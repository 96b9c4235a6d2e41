/* SHA-256 and HMAC-SHA256.
 *
 * OpenSSL 3 looks the algorithm up in its provider store (a lock and a hash
 * lookup) on every EVP_Digest(EVP_sha256()) or HMAC() call, and 3.0
 * re-creates the provider context on every EVP_DigestInit_ex; on the
 * request path that was several % of a node's CPU. Hashes here use
 * OpenSSL's low-level SHA-256 with a context on the stack (the same
 * assembly), and HMAC is built on it. */
#ifndef YH_CRYPTO_H
#define YH_CRYPTO_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define YH_SHA256_SIZE 32

/* One-shot SHA-256. Errors: YH_EINTERNAL. */
int yh_sha256(const void *p, size_t n, uint8_t out[YH_SHA256_SIZE]);

/* HMAC-SHA256 over the concatenation of @n_parts buffers. Errors:
 * YH_EINTERNAL. */
struct yh_part
{
    const void *p; /* bytes (may be NULL when n == 0) */
    size_t n;      /* length */
};
int yh_hmac_sha256(const void *key,
                   size_t key_len,
                   const struct yh_part *parts,
                   unsigned n_parts,
                   uint8_t out[YH_SHA256_SIZE]);

/* SHA-256 over the concatenation of @n_parts buffers. Errors:
 * YH_EINTERNAL. */
int yh_sha256_parts(const struct yh_part *parts,
                    unsigned n_parts,
                    uint8_t out[YH_SHA256_SIZE]);

#endif
