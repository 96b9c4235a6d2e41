/* SHA256_Init/Update/Final: deprecated in OpenSSL 3 (see below). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

#include "err.h"

/* The low-level SHA-256 (deprecated in OpenSSL 3, still built and using
 * the same SHA-NI/AVX code): a context on the stack, no provider dispatch.
 * In OpenSSL 3.0 every EVP_DigestInit_ex frees and re-creates the
 * provider's context (a malloc, a free and a cleanse per hash), and
 * EVP_MAC_init re-keys through the provider as well: per write that was
 * ~1 us of the digest chain on every node and ~2 us of the request's
 * HMAC on the leader. */
int yh_sha256(const void *p, size_t n, uint8_t out[YH_SHA256_SIZE])
{
    struct yh_part part = {p, n};

    return yh_sha256_parts(&part, 1, out);
}

int yh_sha256_parts(const struct yh_part *parts,
                    unsigned n_parts,
                    uint8_t out[YH_SHA256_SIZE])
{
    SHA256_CTX ctx;

    if (!SHA256_Init(&ctx)) {
        return YH_EINTERNAL;
    }
    for (unsigned i = 0; i < n_parts; i++) {
        if (parts[i].n > 0 && !SHA256_Update(&ctx, parts[i].p, parts[i].n)) {
            return YH_EINTERNAL;
        }
    }
    if (!SHA256_Final(out, &ctx)) {
        return YH_EINTERNAL;
    }
    return 0;
}

/* HMAC (RFC 2104) with SHA-256: a key longer than the 64-byte block is
 * hashed first; inner = H(K ^ ipad || text), mac = H(K ^ opad || inner). */
int yh_hmac_sha256(const void *key,
                   size_t key_len,
                   const struct yh_part *parts,
                   unsigned n_parts,
                   uint8_t out[YH_SHA256_SIZE])
{
    uint8_t k[SHA256_CBLOCK];
    uint8_t pad[SHA256_CBLOCK];
    uint8_t inner[YH_SHA256_SIZE];
    SHA256_CTX ctx;
    int ok;

    memset(k, 0, sizeof k);
    if (key_len > sizeof k) {
        struct yh_part kp = {key, key_len};
        if (yh_sha256_parts(&kp, 1, k) != 0) {
            return YH_EINTERNAL;
        }
    } else if (key_len > 0) {
        memcpy(k, key, key_len);
    }
    for (size_t i = 0; i < sizeof k; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    ok = SHA256_Init(&ctx) && SHA256_Update(&ctx, pad, sizeof pad);
    for (unsigned i = 0; ok && i < n_parts; i++) {
        if (parts[i].n > 0) {
            ok = SHA256_Update(&ctx, parts[i].p, parts[i].n);
        }
    }
    ok = ok && SHA256_Final(inner, &ctx);
    for (size_t i = 0; i < sizeof k; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    ok = ok && SHA256_Init(&ctx) && SHA256_Update(&ctx, pad, sizeof pad) &&
         SHA256_Update(&ctx, inner, sizeof inner) && SHA256_Final(out, &ctx);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(&ctx, sizeof ctx);
    return ok ? 0 : YH_EINTERNAL;
}
