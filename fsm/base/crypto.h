/* SHA-256 and HMAC-SHA256 through OpenSSL 3 with the algorithms fetched once.
 *
 * OpenSSL 3 looks the algorithm up in its provider store (a lock and a hash
 * lookup) on every EVP_Digest(EVP_sha256()) or HMAC() call; on the request
 * path that was ~6% of a node's CPU. Here the digest is fetched once per
 * process and each thread keeps one HMAC context that is re-keyed per use. */
#ifndef YH_CRYPTO_H
#define YH_CRYPTO_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define YH_SHA256_SIZE 32

/* The fetched SHA-256 implementation (NULL if OpenSSL has none). */
EVP_MD *yh_sha256_md(void);

/* One-shot SHA-256. Errors: YH_EINTERNAL. */
int yh_sha256(const void *p, size_t n, uint8_t out[YH_SHA256_SIZE]);

/* HMAC-SHA256 over the concatenation of @n_parts buffers. Uses this
 * thread's context. Errors: YH_EINTERNAL, YH_ENOMEM. */
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

/* SHA-256 over the concatenation of @n_parts buffers, with this thread's
 * reused context. Errors: YH_EINTERNAL, YH_ENOMEM. */
int yh_sha256_parts(const struct yh_part *parts,
                    unsigned n_parts,
                    uint8_t out[YH_SHA256_SIZE]);

#endif
