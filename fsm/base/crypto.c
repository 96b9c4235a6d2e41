#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <pthread.h>

#include "err.h"

static EVP_MD *sha256;
static EVP_MAC *hmac;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

EVP_MD *yh_sha256_md(void)
{
    pthread_once(&once, fetch);
    return sha256;
}

int yh_sha256(const void *p, size_t n, uint8_t out[YH_SHA256_SIZE])
{
    unsigned len = 0;
    EVP_MD *md = yh_sha256_md();

    if (md == NULL || !EVP_Digest(p, n, out, &len, md, NULL) ||
        len != YH_SHA256_SIZE) {
        return YH_EINTERNAL;
    }
    return 0;
}

/* One context per thread, with SHA-256 set once; EVP_MAC_init re-keys it.
 * Freed at thread exit. */
static pthread_key_t ctx_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *p)
{
    EVP_MAC_CTX_free(p);
}

static void make_key(void)
{
    pthread_key_create(&ctx_key, ctx_free);
}

static EVP_MAC_CTX *thread_ctx(void)
{
    EVP_MAC_CTX *ctx;
    char digest[] = "SHA256";
    OSSL_PARAM params[2];

    pthread_once(&once, fetch);
    pthread_once(&key_once, make_key);
    ctx = pthread_getspecific(ctx_key);
    if (ctx != NULL || hmac == NULL) {
        return ctx;
    }
    ctx = EVP_MAC_CTX_new(hmac);
    if (ctx == NULL) {
        return NULL;
    }
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(ctx, params) != 1 ||
        pthread_setspecific(ctx_key, ctx) != 0) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int yh_hmac_sha256(const void *key,
                   size_t key_len,
                   const struct yh_part *parts,
                   unsigned n_parts,
                   uint8_t out[YH_SHA256_SIZE])
{
    static const unsigned char empty[1] = {0};
    EVP_MAC_CTX *ctx = thread_ctx();
    size_t out_len = 0;

    if (ctx == NULL) {
        return YH_ENOMEM;
    }
    /* A non-NULL key even when empty: NULL means "keep the previous key". */
    if (EVP_MAC_init(ctx, key_len > 0 ? key : empty, key_len, NULL) != 1) {
        return YH_EINTERNAL;
    }
    for (unsigned i = 0; i < n_parts; i++) {
        if (parts[i].n > 0 &&
            EVP_MAC_update(ctx, parts[i].p, parts[i].n) != 1) {
            return YH_EINTERNAL;
        }
    }
    if (EVP_MAC_final(ctx, out, &out_len, YH_SHA256_SIZE) != 1 ||
        out_len != YH_SHA256_SIZE) {
        return YH_EINTERNAL;
    }
    return 0;
}

/* One SHA-256 context per thread, reused: EVP_MD_CTX_new/free per hash was
 * a malloc and a free per record written (the content hash). */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *p)
{
    EVP_MD_CTX_free(p);
}

static void make_md_key(void)
{
    pthread_key_create(&md_key, md_free);
}

int yh_sha256_parts(const struct yh_part *parts,
                    unsigned n_parts,
                    uint8_t out[YH_SHA256_SIZE])
{
    EVP_MD *md = yh_sha256_md();
    EVP_MD_CTX *ctx;
    unsigned len = 0;

    pthread_once(&md_once, make_md_key);
    ctx = pthread_getspecific(md_key);
    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL || pthread_setspecific(md_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            return YH_ENOMEM;
        }
    }
    if (md == NULL || !EVP_DigestInit_ex(ctx, md, NULL)) {
        return YH_EINTERNAL;
    }
    for (unsigned i = 0; i < n_parts; i++) {
        if (parts[i].n > 0 && !EVP_DigestUpdate(ctx, parts[i].p, parts[i].n)) {
            return YH_EINTERNAL;
        }
    }
    if (!EVP_DigestFinal_ex(ctx, out, &len) || len != YH_SHA256_SIZE) {
        return YH_EINTERNAL;
    }
    return 0;
}
